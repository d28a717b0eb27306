/**
 * Where a server's main thread spent its time per request, read from its V8 CPU profile (`--cpu-prof`): ONNX
 * Runtime's run, garbage collection, and the rest (HTTP, routing, the service's own work). The bare server and the
 * service run the same `session.run` on the same input, so "the rest" is where the two can differ; the profile
 * splits it by the first frame of our own code (src/ or bench/) above each sample, Node's own frames by name.
 *
 * The window runs from the first sample inside `session.run` to the last, so start-up and shutdown stay out.
 * Idle samples are left out: in oip-cpu.ts the two servers take turns, so a server is idle while the other works.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** Microseconds from the sample before; the first is from the profile's start. */
  timeDeltas: number[];
}

export interface ProfileSplit {
  /** ms per request: inside ONNX Runtime's run (with the output tensors it builds). */
  run: number;
  /** ms per request: V8's garbage collector on this thread. */
  gc: number;
  /** ms per request: everything else the thread did. */
  rest: number;
  /** The rest's largest parts, ms per request, largest first. */
  parts: Array<{ frame: string; ms: number }>;
}

// onnxruntime-node runs a session in a setImmediate callback of its backend (dist/backend.js): that callback,
// called from Node's immediate queue, is the run.
const ORT_BACKEND = /onnxruntime-node\/dist\/backend\.js$/;
const OWN_CODE = /\/dist\/(src|bench)\//;

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url ? ` ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${file}`;
}

/** The split of `profile` over `requests` requests. */
export function splitProfile(profile: CpuProfile, requests: number): ProfileSplit {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const inRun = new Map<number, boolean>();
  const isInRun = (node: ProfileNode): boolean => {
    let known = inRun.get(node.id);
    if (known === undefined) {
      const parent = parentOf.get(node.id);
      known = (ORT_BACKEND.test(node.callFrame.url) && parent?.callFrame.functionName === 'processImmediate') || (parent !== undefined && isInRun(parent));
      inRun.set(node.id, known);
    }
    return known;
  };
  const ownFrame = (node: ProfileNode): string => {
    for (let at: ProfileNode | undefined = node; at; at = parentOf.get(at.id)) if (OWN_CODE.test(at.callFrame.url)) return frameName(at);
    return `(node) ${frameName(node)}`;
  };

  // A sample's time is the delta to the next sample: the time until the profiler looked again.
  const samples = profile.samples.map((id, i) => ({ node: byId.get(id)!, us: profile.timeDeltas[i + 1] ?? 0 }));
  const first = samples.findIndex((s) => isInRun(s.node));
  if (first < 0) throw new Error('the profile holds no session.run: was the server profiled while it served?');
  let last = samples.length - 1;
  while (last > first && !isInRun(samples[last]!.node)) last--;
  let run = 0;
  let gc = 0;
  let rest = 0;
  const parts = new Map<string, number>();
  for (const { node, us } of samples.slice(first, last + 1)) {
    const name = node.callFrame.functionName;
    if (name === '(idle)') continue;
    if (isInRun(node)) run += us;
    else if (name === '(garbage collector)') gc += us;
    else {
      rest += us;
      const frame = ownFrame(node);
      parts.set(frame, (parts.get(frame) ?? 0) + us);
    }
  }
  const perRequest = (us: number) => us / 1000 / requests;
  return {
    run: perRequest(run),
    gc: perRequest(gc),
    rest: perRequest(rest),
    parts: [...parts].sort((a, b) => b[1] - a[1]).map(([frame, us]) => ({ frame, ms: perRequest(us) })),
  };
}

/** The profile that process `pid` wrote into `dir` (Node names it CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile). */
export async function readProfileOf(dir: string, pid: number): Promise<CpuProfile> {
  const name = (await readdir(dir)).find((file) => file.split('.')[3] === String(pid) && file.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no CPU profile of process ${pid} in ${dir}`);
  return JSON.parse(await readFile(path.join(dir, name), 'utf8')) as CpuProfile;
}
