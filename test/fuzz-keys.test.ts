/**
 * Fuzzing the keys file (issue 12, point 7): lines with comments, commas, blanks, CRLF, a BOM, spaces inside,
 * characters a header cannot carry. The parser never yields a key no request can present; the watched file, once
 * rewritten, lets in exactly its keys (or, holding none it can use, leaves the keys in force), refusals carry our
 * body, the model answers as before, and resident memory comes back near where it started.
 */
import { mkdtemp, rename, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { parseKeys } from '../src/config/settings.js';
import { fuzzRuns, keysFileText } from './support/arbitraries.js';
import { contractBreach, residentMiB, smallPhoto, testResidentMemoryReturns } from './support/fuzz-checks.js';
import { startService, type TestService } from './support/service.js';

/** What a request can carry after "Bearer ": visible ASCII, no spaces (the Authorization header's token). */
const SENDABLE = /^[\x21-\x7e]+$/;

/** The keys a file yields, or the parser's refusal. */
function keysOf(text: string): string[] | Error {
  try {
    return parseKeys(text);
  } catch (error) {
    return error as Error;
  }
}

test('the parser yields only keys a request can present, without separators, comments or blanks', (t) => {
  fc.assert(
    fc.property(keysFileText, (text) => {
      const keys = keysOf(text);
      if (keys instanceof Error) return;
      for (const key of keys) {
        if (!SENDABLE.test(key) || key.includes(',') || key.includes('#')) throw new Error(`the key ${JSON.stringify(key)} from ${JSON.stringify(text)}`);
      }
    }),
    fuzzRuns(1000),
  );
  t.deepEqual(parseKeys('\uFEFFa-key\r\n# note\r\nb-key # old\r\n'), ['a-key', 'b-key']);
});

let service: TestService;
let file: string;
let inForce: string[];
let goodImage: Buffer;
let goodAnswer: string;
let startMiB: number;
/** Every case asks from an address of its own, so that no address is slowed down by earlier cases' refusals. */
let address = 0;

test.before(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-infer-fuzz-keys-'));
  file = path.join(dir, 'keys');
  inForce = ['first-key'];
  await writeFile(file, 'first-key\n');
  service = await startService({ args: ['--keys-file', file] });
  goodImage = await smallPhoto();
  goodAnswer = await scoreWith(inForce[0]!);
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

/** A request from 127.0.x.y, with `key` if given; status and parsed body. */
function ask(method: string, route: string, key: string | undefined, body?: Buffer): Promise<{ status: number; body: unknown }> {
  const { port } = new URL(service.url);
  address++;
  const localAddress = `127.0.${Math.floor(address / 250) + 1}.${(address % 250) + 1}`;
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: '127.0.0.1', port, method, path: route, localAddress, headers: { ...(key === undefined ? {} : { authorization: `Bearer ${key}` }), ...(body ? { 'content-type': 'image/jpeg' } : {}) } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: the caller's check says so
          }
          resolve({ status: response.statusCode!, body: parsed });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

async function scoreWith(key: string): Promise<string> {
  const answer = await ask('POST', '/models/face/score', key, goodImage);
  return `${answer.status} ${JSON.stringify(answer.body)}`;
}

/** Writes the file whole, by renaming a new one over it (what a mounted secret does). */
async function replaceKeysFile(text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

/** The file is polled twice a second: a file that changes nothing has been read after this long. */
const RELOAD_MS = 1300;
/** A file that brings keys is waited for until they are let in, this long at most (the machine may be busy). */
const RELOAD_DEADLINE_MS = 15_000;

/** Whether every key is let in now (each request from an address of its own, so refusals slow nothing down). */
async function allLetIn(keys: readonly string[]): Promise<boolean> {
  for (const key of keys) if ((await ask('GET', '/status', key)).status !== 200) return false;
  return true;
}

test.serial('a rewritten keys file lets in its keys, or leaves the keys in force, and refusals keep the contract', async (t) => {
  await fc.assert(
    fc.asyncProperty(keysFileText, async (text) => {
      const parsed = keysOf(text);
      const before = inForce;
      await replaceKeysFile(text);
      if (parsed instanceof Error || parsed.length === 0) await new Promise((resolve) => setTimeout(resolve, RELOAD_MS));
      else inForce = parsed;
      const deadline = Date.now() + RELOAD_DEADLINE_MS;
      while (!(await allLetIn(inForce))) {
        if (Date.now() > deadline) throw new Error(`the keys in force (${inForce.length}) are not all let in`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const removed of before.filter((key) => !inForce.includes(key))) {
        const answer = await ask('GET', '/status', removed);
        if (answer.status !== 401) throw new Error(`a key the file no longer holds answered ${answer.status}`);
      }
      const refused = await ask('GET', '/status', undefined);
      if (refused.status !== 401) throw new Error(`no key answered ${refused.status}`);
      const breach = contractBreach(refused.status, refused.body);
      if (breach) throw new Error(breach);
      const after = await scoreWith(inForce[0]!);
      if (after !== goodAnswer) throw new Error(`the model now answers ${after.slice(0, 300)}`);
    }),
    fuzzRuns(10),
  );
  t.pass();
});

testResidentMemoryReturns(() => startMiB);
