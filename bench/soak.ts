/**
 * `npm run soak`: the real module under SOAK_MINUTES (default 30) of mixed load and trouble, as on a device
 * that runs for months. The module runs as `npm start` runs it, connected to the test edgeHub over MQTT+TLS, its
 * store on a small tmpfs, its model versions (two packages of the bundled detector) from a file server, one
 * RTSP camera always on and a second one coming and going.
 *
 * Load: /score (JPEG) and OIP binary requests, edgeHub input messages. Trouble: a swap between the two versions
 * through the twin every 30 s, the second camera added or removed every 45 s, the edgeHub restarted every 4
 * minutes, and every 3 minutes a third slot asks for a download bigger than the store's free space (announced,
 * refused before a byte is written; or unannounced, filling the disk until the write fails).
 *
 * Prints one row a minute; at the end a markdown table for the README. Exits 1 when a request failed (anything
 * but 200 or a 503 `EI_OVERLOADED` shed), a message was lost (sent and never answered on `results` or
 * `errors`), or the module exited.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { BUNDLED_MODEL } from '../src/models/bundled.js';
import { EdgeHub } from '../test/support/edgehub.js';
import { startFileServer } from '../test/support/file-server.js';
import { photo } from '../test/support/fixtures.js';
import { makeCertificate } from '../test/support/network.js';
import { makePackageFolder, tarGz } from '../test/support/packages.js';
import { startRtspServer } from '../test/support/rtsp-server.js';
import { mountTmpfs } from '../test/support/tmpfs.js';
import { freePort, startModule } from './children.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 30);
const STORE_SIZE = '24m';
/** What the filling slot asks for: more than the whole store. */
const BULK_BYTES = 32 * 1024 * 1024;
const REQUESTS_PER_SECOND = 4;
const MESSAGES_PER_SECOND = 2;
const MAX_IN_FLIGHT = 32;
/** A message not answered this long after the run is lost. */
const MESSAGE_GRACE_MS = 60_000;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Minute {
  requests: number;
  failed: number;
  shed: number;
  messages: number;
  swaps: number;
  rssMiB: number;
  events: string[];
}

const minutes: Minute[] = [];
const minute = () => minutes.at(-1)!;
const newMinute = (): Minute => ({ requests: 0, failed: 0, shed: 0, messages: 0, swaps: 0, rssMiB: 0, events: [] });
/** Why requests failed, first few of each. */
const failures = new Map<string, number>();

/** Two packages of the bundled detector that differ only in their manifest: two versions, two sha256s. */
async function modelVersions(): Promise<Array<{ version: string; body: Buffer }>> {
  return Promise.all(
    ['1', '2'].map(async (version) => {
      const folder = await makePackageFolder({
        copy: { 'model.onnx': BUNDLED_MODEL.uri },
        write: { 'edge-infer.json': { ...BUNDLED_MODEL.settings, outputSample: { soakVersion: version } } },
      });
      return { version, body: await readFile(await tarGz(folder)) };
    }),
  );
}

/** Serves the filling slot's bytes: `/sized/*` with their length, `/unsized/*` chunked (no length to refuse early). */
async function startBulkServer(bulk: Buffer): Promise<{ url: string; close(): void }> {
  const server = createServer((request, response) => {
    const sized = request.url?.startsWith('/sized/');
    response.writeHead(200, sized ? { 'content-length': bulk.length } : {});
    let at = 0;
    const next = () => {
      while (at < bulk.length && !response.destroyed) if (!response.write(bulk.subarray(at, (at += 256 * 1024)))) return void response.once('drain', next);
      response.end();
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => (server.closeAllConnections(), server.close()) };
}

async function residentMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** A request's outcome: counted sent, and failed unless it is a 200 or a documented shed. */
async function request(url: string, init: RequestInit): Promise<void> {
  const counted = minute();
  counted.requests++;
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
    const body = await response.text();
    if (response.status === 200) return;
    // The documented shed: 503 with Retry-After (EI_OVERLOADED; /score answers Azure ML's body, without the code).
    if (response.status === 503 && response.headers.has('retry-after')) return void counted.shed++;
    fail(counted, `${response.status} ${body.slice(0, 160)}`);
  } catch (error) {
    fail(counted, (error as Error).message);
  }
}

function fail(counted: Minute, why: string): void {
  counted.failed++;
  const seen = failures.get(why) ?? 0;
  failures.set(why, seen + 1);
  if (seen === 0) console.error(`a request failed: ${why}`);
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const tmpfs = await mountTmpfs(STORE_SIZE);
  if (!tmpfs) throw new Error('the soak needs a tmpfs store (run it as root)');
  const versions = await modelVersions();
  const files = await startFileServer();
  for (const { version, body } of versions) files.files.set(`/face-${version}.tar.gz`, { body });
  const slot = (version: string) => {
    const { body } = versions.find((v) => v.version === version)!;
    return { version, uri: `${files.url}/face-${version}.tar.gz`, sha256: sha256(body) };
  };
  const bulk = randomBytes(BULK_BYTES);
  const bulkServer = await startBulkServer(bulk);
  const rtsp = await startRtspServer();
  const camera = { uri: rtsp.url('/face'), fps: 2 };

  const tls = await makeCertificate();
  const scratch = await mkdtemp(path.join(tmpdir(), 'edge-infer-soak-'));
  const caFile = path.join(scratch, 'ca.pem');
  await writeFile(caFile, tls.cert);
  const hub = new EdgeHub({
    tls,
    hubName: 'hub.example',
    deviceId: 'soak',
    moduleId: 'edge-infer',
    key: Buffer.from('soak-key-0123456789abcdef').toString('base64'),
    desired: { models: { face: slot('1') }, defaultModel: 'face', cameras: { door: camera } },
  });
  await hub.start();
  const port = await freePort();
  const { child: module } = await startModule(['--port', String(port), '--host', '127.0.0.1', '--store', tmpfs.dir], (line) => line.includes('model version active'), {
    env: { EDGE_INFER_CONNECTION_STRING: hub.connectionString, EDGE_INFER_CA_FILE: caFile },
  });
  // The module's warnings and errors go to this run's stderr, as an operator would read them.
  // Messages the module scored but could not answer (the link was down): edgeHub has them acknowledged already.
  const unsentAnswers = new Set<string>();
  createInterface({ input: module.stdout! }).on('line', (line) => {
    if (!/"level":(4|5|6)0/.test(line)) return;
    const unsent = /"messageId":"([^"]+)".*an answer could not be sent/.exec(line);
    if (unsent) unsentAnswers.add(unsent[1]!);
    else console.error(`module: ${line.slice(0, 400)}`);
  });
  let moduleExit: string | undefined;
  module.once('exit', (code, signal) => (moduleExit = `the module exited (${code ?? signal})`));
  const base = `http://127.0.0.1:${port}`;

  // Messages: sent (the hub took it) → answered once an output carries its id as correlation id.
  const sentAt = new Map<string, { minute: Minute; at: number }>();
  const answered = new Set<string>();
  let messagesShed = 0;
  hub.onOutput((message) => {
    const id = message.properties['$.cid'];
    if (!id || !sentAt.has(id)) return;
    if (message.output === 'errors' && message.body.toString().includes('EI_OVERLOADED')) messagesShed++;
    answered.add(id);
  });

  const image = await photo(1);
  const oipInput = await oipBody(base);
  let inFlight = 0;
  const limited = (work: () => Promise<void>) => {
    if (inFlight >= MAX_IN_FLIGHT) return void fail(minute(), `the client's own bound: ${MAX_IN_FLIGHT} requests still open`);
    inFlight++;
    void work().finally(() => inFlight--);
  };

  const endAt = Date.now() + MINUTES * 60_000;
  const running = () => Date.now() < endAt && !moduleExit;
  minutes.push(newMinute());
  const tasks: Array<Promise<void>> = [];
  const every = (ms: number, offsetMs: number, work: (n: number) => Promise<void>) =>
    tasks.push(
      (async () => {
        await sleep(Math.min(offsetMs, endAt - Date.now()));
        for (let n = 0; running(); n++) {
          const next = Math.min(Date.now() + ms, endAt);
          await work(n).catch((error: unknown) => minute().events.push(`error: ${(error as Error).message}`));
          await sleep(Math.max(0, next - Date.now()));
        }
      })(),
    );

  every(1000 / REQUESTS_PER_SECOND, 0, async (n) => {
    if (n % 2 === 0) limited(() => request(`${base}/score`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: new Uint8Array(image) }));
    else limited(() => request(`${base}/v2/models/face/infer`, { method: 'POST', headers: oipInput.headers, body: new Uint8Array(oipInput.body) }));
  });
  every(1000 / MESSAGES_PER_SECOND, 0, async () => {
    if (!hub.running) return;
    const id = randomUUID();
    const counted = minute();
    // Counted once the hub has it (QoS 1 to the module's session); a stopped hub refuses, which is not a loss.
    sentAt.set(id, { minute: counted, at: Date.now() });
    try {
      await hub.sendInput('score', image, { '$.ct': 'image/jpeg' }, id);
      counted.messages++;
    } catch {
      sentAt.delete(id);
    }
  });
  let swapsAsked = 0;
  every(30_000, 15_000, async () => {
    const version = swapsAsked++ % 2 === 0 ? '2' : '1';
    await hub.patchDesired({ models: { face: slot(version) } });
    const deadline = Date.now() + 25_000;
    while (Date.now() < deadline) {
      const face = await fetch(`${base}/status`)
        .then((r) => r.json() as Promise<{ models: { face?: { version: string; status: string } } }>)
        .then((s) => s.models.face)
        .catch(() => undefined);
      if (face?.version === version && face.status === 'active') return void minute().swaps++;
      await sleep(250);
    }
    minute().events.push(`swap to ${version} not done in 25 s`);
  });
  every(45_000, 20_000, async (n) => {
    const add = n % 2 === 0;
    await hub.patchDesired({ cameras: { lobby: add ? camera : null } });
    minute().events.push(add ? 'camera +' : 'camera −');
  });
  every(4 * 60_000, 2 * 60_000, async (n) => {
    const abrupt = n % 2 === 0;
    await hub.stop(abrupt);
    await sleep(3_000);
    await hub.start(hub.port);
    minute().events.push(`hub restart (${abrupt ? 'reset' : 'closed'}, 3 s away)`);
  });
  every(3 * 60_000, 90_000, async (n) => {
    const how = n % 2 === 0 ? 'unsized' : 'sized';
    await hub.patchDesired({ models: { bulk: { version: String(n), uri: `${bulkServer.url}/${how}/bulk-${n}.onnx`, sha256: sha256(bulk) } } });
    const deadline = Date.now() + 60_000;
    let outcome = 'no answer in 60 s';
    while (Date.now() < deadline) {
      const bulkSlot = await fetch(`${base}/status`)
        .then((r) => r.json() as Promise<{ models: { bulk?: { status: string; error?: { code: string } | null } } }>)
        .then((s) => s.models.bulk)
        .catch(() => undefined);
      if (bulkSlot?.status === 'failed') {
        outcome = bulkSlot.error?.code ?? 'failed';
        break;
      }
      await sleep(500);
    }
    minute().events.push(`disk filled (${how}): ${outcome}`);
  });

  // One row a minute.
  console.log(`soak: ${MINUTES} min, store on a ${STORE_SIZE} tmpfs, ${REQUESTS_PER_SECOND} requests/s, ${MESSAGES_PER_SECOND} messages/s`);
  console.log('min | requests | failed | shed | messages | unanswered now | swaps | RSS MiB | events');
  for (let m = 1; running(); m++) {
    await sleep(Math.min(60_000, endAt - Date.now()));
    const row = minute();
    row.rssMiB = await residentMiB(module.pid!);
    const unanswered = [...sentAt].filter(([id, sent]) => sent.minute === row && !answered.has(id)).length;
    console.log(`${m} | ${row.requests} | ${row.failed} | ${row.shed} | ${row.messages} | ${unanswered} | ${row.swaps} | ${row.rssMiB.toFixed(0)} | ${row.events.join('; ')}`);
    if (running()) minutes.push(newMinute());
  }
  await Promise.all(tasks);
  // The last messages get their grace, then whatever has no answer is lost.
  const graceEnd = Date.now() + MESSAGE_GRACE_MS;
  while (Date.now() < graceEnd && [...sentAt.keys()].some((id) => !answered.has(id))) await sleep(500);
  while (inFlight > 0) await sleep(100);
  const load = loadavg().map((n) => n.toFixed(2)).join(' ');
  const finalRss = moduleExit ? 0 : await residentMiB(module.pid!);

  module.kill('SIGTERM');
  await hub.stop().catch(() => undefined);
  await files.close();
  bulkServer.close();
  await rtsp.close();
  await tmpfs.unmount();
  await rm(scratch, { recursive: true, force: true });

  const lostIn = (row: Minute) => [...sentAt].filter(([id, sent]) => sent.minute === row && !answered.has(id)).length;
  const total = (pick: (row: Minute) => number) => minutes.reduce((sum, row) => sum + pick(row), 0);
  const lost = total(lostIn);
  const failed = total((r) => r.failed);
  console.log('');
  console.log(`Soak run of ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${MINUTES} min, load average at the end ${load} (1, 5, 15 min)`);
  console.log('');
  console.log('| minute | requests sent | failed | shed (503) | messages sent | lost | swaps | resident MiB | events |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  minutes.forEach((row, i) =>
    console.log(`| ${i + 1} | ${row.requests} | ${row.failed} | ${row.shed} | ${row.messages} | ${lostIn(row)} | ${row.swaps} | ${row.rssMiB.toFixed(0)} | ${row.events.join('; ')} |`),
  );
  console.log(
    `| all | ${total((r) => r.requests)} | ${failed} | ${total((r) => r.shed)} | ${total((r) => r.messages)} | ${lost} | ${total((r) => r.swaps)} | ${finalRss.toFixed(0)} at the end | ${messagesShed} messages shed (EI_OVERLOADED on errors) |`,
  );
  for (const [why, count] of failures) console.log(`failed ${count}x: ${why}`);
  const lostIds = [...sentAt.keys()].filter((id) => !answered.has(id));
  const scoredUnsent = lostIds.filter((id) => unsentAnswers.has(id)).length;
  if (lost > 0) console.log(`lost: ${lost} messages, ${scoredUnsent} of them scored by the module whose answer could not be sent (the hub link was down)`);
  if (moduleExit) console.log(moduleExit);
  process.exitCode = failed > 0 || lost > 0 || moduleExit ? 1 : 0;
}

/** An OIP binary request for the bundled detector: its input's name and shape from the model's metadata, grey pixels. */
async function oipBody(base: string): Promise<{ headers: Record<string, string>; body: Buffer }> {
  const metadata = (await (await fetch(`${base}/v2/models/face`)).json()) as { inputs: Array<{ name: string; shape: number[] }> };
  const input = metadata.inputs[0]!;
  const shape = input.shape.map((d) => (d > 0 ? d : 1));
  const data = Buffer.alloc(shape.reduce((a, b) => a * b, 1) * 4);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: input.name, shape, datatype: 'FP32', parameters: { binary_data_size: data.length } }] }));
  return { headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }, body: Buffer.concat([header, data]) };
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
