/**
 * CPU time from /proc: what a process (`/proc/PID/stat`) or one of its threads (`/proc/PID/task/TID/stat`) has
 * used, user + system. The tests and benches that count CPU rather than wall time read it here.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** utime + stime in ms, read from a `stat` file of /proc. */
export async function cpuMs(statFile: string): Promise<number> {
  const stat = await readFile(statFile, 'utf8');
  // The name field is in parentheses and may hold spaces; the fields after it are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** The CPU ms a process has used; 0 once it is gone (an ffmpeg that ended between two readings). */
export function processCpuMs(pid: number): Promise<number> {
  return cpuMs(`/proc/${pid}/stat`).catch(() => 0);
}
