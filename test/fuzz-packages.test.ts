/**
 * Fuzzing model packages (issue 12, point 7): folders, .tar.gz, .tar and .zip archives whose entries leave the
 * package (`..`, absolute names), are links or devices, hold noise or the real model, with manifests near the
 * schema; archives cut short or with bytes changed; archive bombs past `--max-unpacked`. Each version either
 * loads or fails with its code (never EI_INTERNAL), nothing lands outside the store's package folders, the model
 * already serving answers as before, and resident memory comes back near where it started.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import fc from 'fast-check';
import * as tar from 'tar';
import yazl from 'yazl';
import { fuzzRuns, manifest, packageEntryName, packageEntryType } from './support/arbitraries.js';
import { ERRORS } from '../src/errors.js';
import { writeTarGzBomb } from './support/archive-bomb.js';
import { ocrClassifierPath } from './support/fixtures.js';
import { faceAnswer, residentMiB, smallPhoto, testResidentMemoryReturns } from './support/fuzz-checks.js';
import { startService, type TestService } from './support/service.js';

/** Archives may expand to this much; the bombs below expand past it. */
const MAX_UNPACKED_MIB = 16;

let service: TestService;
let work: string;
let classifier: Buffer;
let goodImage: Buffer;
let goodAnswer: string;
let startMiB: number;

test.before(async () => {
  service = await startService({ args: ['--max-unpacked', `${MAX_UNPACKED_MIB}MiB`] });
  work = await mkdtemp(path.join(tmpdir(), 'edge-infer-fuzz-pkg-'));
  classifier = await readFile(ocrClassifierPath);
  goodImage = await smallPhoto();
  goodAnswer = await faceAnswer(service.url, goodImage);
  startMiB = residentMiB();
});
test.after.always(() => service?.close());

type EntryType = 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO' | 'CharacterDevice';
interface Entry {
  name: string;
  type: EntryType;
  /** `model` stands for the classifier's bytes (a counterexample prints the word, not 570 kB). */
  content: Buffer | 'model';
}

function bytesOf(entry: Entry | undefined): Buffer {
  return entry === undefined || entry.content === 'model' ? classifier : entry.content;
}

const content = fc.oneof(
  { weight: 3, arbitrary: fc.constant('model' as const) },
  { weight: 3, arbitrary: manifest.map((value) => Buffer.from(JSON.stringify(value) ?? 'null')) },
  { weight: 1, arbitrary: fc.constant(Buffer.from('0°\n180°\n')) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)) },
);

const entry: fc.Arbitrary<Entry> = fc.record({ name: packageEntryName, type: packageEntryType, content });

/** Often the real model at the top, so that manifests and neighbours decide; else entries alone. */
const entries: fc.Arbitrary<Entry[]> = fc
  .tuple(fc.boolean(), fc.array(entry, { maxLength: 4 }))
  .map(([withModel, rest]) => (withModel ? [{ name: 'cls.onnx', type: 'File' as const, content: 'model' as const }, ...rest] : rest));

/** A tar of the entries as given: names are not cleaned, so hostile ones reach the unpacker as they are. */
function tarOf(list: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of list) {
    const bytes = bytesOf(entry);
    const size = entry.type === 'File' ? bytes.length : 0;
    const header = new tar.Header({ path: entry.name, mode: 0o644, size, mtime: new Date(0), type: entry.type, ...(entry.type === 'SymbolicLink' || entry.type === 'Link' ? { linkpath: '/etc/hostname' } : {}) });
    header.encode();
    blocks.push(header.block!);
    if (size > 0) blocks.push(bytes, Buffer.alloc((512 - (size % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function zipOf(list: Entry[]): Promise<Buffer> {
  const archive = new yazl.ZipFile();
  for (const entry of list) {
    // yazl refuses names that leave the archive itself; those go into the tars.
    try {
      if (entry.type === 'Directory') archive.addEmptyDirectory(entry.name);
      else archive.addBuffer(bytesOf(entry), entry.name);
    } catch {
      continue;
    }
  }
  archive.end();
  const chunks: Buffer[] = [];
  for await (const chunk of archive.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A folder of the entries that stay inside it (a folder package is what the user put on disk). */
async function folderOf(dir: string, list: Entry[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const entry of list) {
    const target = path.resolve(dir, entry.name);
    if (entry.type !== 'File' || !target.startsWith(`${dir}${path.sep}`)) continue;
    await mkdir(path.dirname(target), { recursive: true }).catch(() => undefined);
    await writeFile(target, bytesOf(entry)).catch(() => undefined);
  }
}

/** How an archive is damaged on its way: not at all, cut at a fraction of its length, or bytes changed. */
type Damage = { kind: 'none' } | { kind: 'cut'; at: number } | { kind: 'change'; changes: Array<[number, number]> };
const damage: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 1, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map((at) => ({ kind: 'cut' as const, at })) },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((changes) => ({ kind: 'change' as const, changes })) },
);

function damaged(bytes: Buffer, how: Damage): Buffer {
  if (how.kind === 'none' || bytes.length === 0) return bytes;
  if (how.kind === 'cut') return bytes.subarray(0, Math.floor(bytes.length * how.at));
  const copy = Buffer.from(bytes);
  for (const [at, value] of how.changes) copy[Math.min(copy.length - 1, Math.floor(copy.length * at))] = value;
  return copy;
}

const packageCase = fc.record({
  form: fc.constantFrom('tar.gz', 'tar.gz', 'tar', 'zip', 'zip', 'folder', 'file', 'bomb'),
  entries,
  damage,
  bombMiB: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }).filter((parts) => parts.reduce((a, b) => a + b, 0) > MAX_UNPACKED_MIB),
  fileName: fc.constantFrom('model.onnx', 'model.ONNX', 'model.tgz', 'model.bin', 'model'),
});

type PackageCase = typeof packageCase extends fc.Arbitrary<infer T> ? T : never;
let cases = 0;

/** Writes the case where the module can read it; returns its URI. */
async function place(c: PackageCase): Promise<string> {
  const base = path.join(work, `case-${++cases}`);
  switch (c.form) {
    case 'tar.gz':
      await writeFile(`${base}.tar.gz`, damaged(gzipSync(tarOf(c.entries)), c.damage));
      return `${base}.tar.gz`;
    case 'tar':
      await writeFile(`${base}.tar`, damaged(tarOf(c.entries), c.damage));
      return `${base}.tar`;
    case 'zip':
      await writeFile(`${base}.zip`, damaged(await zipOf(c.entries), c.damage));
      return `${base}.zip`;
    case 'folder':
      await folderOf(base, c.entries);
      return base;
    case 'file':
      await mkdir(base);
      await writeFile(path.join(base, c.fileName), damaged(bytesOf(c.entries[0]), c.damage));
      return path.join(base, c.fileName);
    case 'bomb':
      await writeTarGzBomb(`${base}.tar.gz`, c.bombMiB.map((mib, i) => ({ name: `zeros-${i}.bin`, mib })));
      return `${base}.tar.gz`;
  }
  throw new Error(`no such form ${String(c.form)}`);
}

/** Files named `fuzz-escape` anywhere but inside an unpacked package's own folder. */
async function escapes(): Promise<string[]> {
  const found = ['/tmp/fuzz-escape', path.join(tmpdir(), 'fuzz-escape'), path.join(work, 'fuzz-escape'), path.join(work, 'fuzz-escape.onnx')].filter((file) => existsSync(file));
  const walk = async (dir: string, insidePackage: boolean): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name);
      if (entry.name.includes('fuzz-escape') && !insidePackage) found.push(full);
      if (entry.isDirectory()) await walk(full, insidePackage || (path.basename(dir) === 'packages' && /^[0-9a-f]{64}$/.test(entry.name)));
    }
  };
  await walk(service.storeDir, false);
  return found;
}

test.serial('packages either load or fail with their code, stay inside the store, and leave the serving model alone', async (t) => {
  let loaded = 0;
  await fc.assert(
    fc.asyncProperty(packageCase, async (c) => {
      const uri = await place(c);
      const ok = await service.deploy({ name: 'pkg', version: String(cases), uri });
      const status = service.status.model('pkg');
      if (ok) loaded++;
      else {
        const code = status?.error?.code ?? '(no error)';
        // A package is configuration: its refusals are ours, never an internal error.
        if (code === 'EI_INTERNAL' || !(code in ERRORS)) throw new Error(`${c.form}: ${code}: ${status?.error?.message}`);
        if (c.form === 'bomb' && code !== 'EI_UNPACK_TOO_LARGE') throw new Error(`a bomb failed with ${code}: ${status?.error?.message}`);
      }
      const outside = await escapes();
      if (outside.length > 0) throw new Error(`written outside the package: ${outside.join(', ')}`);
      const after = await faceAnswer(service.url, goodImage);
      if (after !== goodAnswer) throw new Error(`the face slot now answers ${after.slice(0, 300)}`);
    }),
    fuzzRuns(20),
  );
  t.log(`${loaded} of the packages loaded`);
  t.deepEqual(await escapes(), []);
});

testResidentMemoryReturns(() => startMiB);
