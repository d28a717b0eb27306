/**
 * What the fuzz tests (test/fuzz-*.test.ts) throw at the module, as fast-check arbitraries, and how many runs
 * with which seed (the checks they share are in fuzz-checks.ts).
 *
 * The arbitraries lean towards the edges where parsers break: values near a valid request (the right input
 * name with a wrong shape, a header length off by a few bytes) more than random noise, which the first check
 * refuses anyway.
 */
import fc from 'fast-check';

// ---- Runs and seeds -------------------------------------------------------------------------------------------

/**
 * `npm run fuzz` sets FUZZ=long, ten times the runs, and FUZZ_SEED to the time unless given (one seed for every
 * file, printed, to replay); FUZZ=long alone (one file by hand) draws a seed of its own.
 */
const LONG = process.env.FUZZ === 'long';
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : LONG ? Math.floor(Math.random() * 2 ** 31) : 20261126;
let announced = false;

/**
 * fast-check's parameters for a property: a fixed seed and `runs` runs in `npm test`; FUZZ_SEED replays a seed,
 * FUZZ_RUNS sets the runs of every property.
 */
export function fuzzRuns(runs: number): { seed: number; numRuns: number; includeErrorInReport: boolean } {
  if (!announced && (LONG || process.env.FUZZ_SEED)) {
    announced = true;
    // On stdout, so the seed of a long run is in its log even when every property held.
    console.log(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED} npm run fuzz)`);
  }
  const numRuns = process.env.FUZZ_RUNS ? Number(process.env.FUZZ_RUNS) : LONG ? runs * 10 : runs;
  return { seed: SEED, numRuns, includeErrorInReport: true };
}

// ---- JSON and tensors -----------------------------------------------------------------------------------------

/** Numbers a tensor parser must take or refuse cleanly: huge, tiny, negative zero, non-integers. */
export const oddNumber = fc.oneof(
  fc.integer({ min: -300, max: 300 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 2 ** 53, 2 ** 64, 0.5, 255, 256, -129),
);

/** A leaf of a tensor's data: mostly numbers, sometimes what JSON allows besides. */
export const tensorLeaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: oddNumber },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null, '1', '', 'NaN', 'Infinity') },
  { weight: 1, arbitrary: fc.constantFrom({}, { data: 1 }, [], [[]]) },
);

/** A rectangular nested array of `shape`, filled from `leaf`. */
export function nestedOf(shape: readonly number[], leaf: fc.Arbitrary<unknown> = tensorLeaf): fc.Arbitrary<unknown> {
  if (shape.length === 0) return leaf;
  const [first, ...rest] = shape;
  return fc.array(nestedOf(rest, leaf), { minLength: first!, maxLength: first! });
}

/** Small shapes, with zero-sized and rank-0 ones among them. */
export const smallShape = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 5 });

/** Nested arrays: rectangular of a small shape, or ragged (rows of different lengths, scalars among rows). */
export const tensorData: fc.Arbitrary<unknown> = fc.oneof(
  smallShape.chain((shape) => nestedOf(shape)),
  fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tensorLeaf, fc.array(tie('node'), { maxLength: 4 })),
  })).node,
);

/** Shapes a request may state: negative, fractional, huge, as strings, not a list. */
export const statedShape: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: smallShape },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.integer({ min: -3, max: 2 ** 31 }), fc.constantFrom(1.5, -1, 2 ** 53, 1e300, '1', null)), { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, 3, 'NCHW', {}, [[1]]) },
);

/** dtype names, ours and not. */
export const dtypeName = fc.constantFrom('float32', 'float64', 'int64', 'uint8', 'bool', 'string', 'float16', 'FP32', '', '__proto__', 'toString');

/** Text around JSON: truncated, with trailing bytes, with characters JSON.parse trips on, nested near the limit. */
export const oddJsonText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 64 }),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.jsonValue({ maxDepth: 3 }).chain((value) => {
    const text = JSON.stringify(value) ?? 'null';
    return fc.integer({ min: 0, max: text.length }).map((cut) => text.slice(0, cut));
  }),
  // Around the 64-level nesting limit, as arrays, objects and both.
  fc.tuple(fc.integer({ min: 55, max: 80 }), fc.constantFrom('[', '{"a":')).map(([depth, open]) => {
    const close = open === '[' ? ']' : '}';
    return `{"data":${open.repeat(depth)}1${close.repeat(depth)}}`;
  }),
  fc.constantFrom('{"__proto__":{"data":[1]}}', '{"constructor":{"prototype":{"data":1}}}', '{"data":[1,]}', '\uFEFF{"data":[1]}', '{"data":1e999}'),
);

// ---- Images ---------------------------------------------------------------------------------------------------

/** Bytes with an image's content type: noise, a real image cut or with bytes changed. `real` is a small valid image. */
export function oddImageBytes(real: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 256 }),
    fc.integer({ min: 0, max: real.length - 1 }).map((cut) => real.slice(0, cut)),
    fc.array(fc.tuple(fc.nat({ max: real.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((changes) => {
      const bytes = real.slice();
      for (const [at, value] of changes) bytes[at] = value;
      return bytes;
    }),
    fc.tuple(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 2 ** 31 - 1 })).map(([width, height]) => pngClaiming(width, height)),
  );
}

/** A PNG whose header claims `width` × `height` and whose pixel data is one empty row: a decompression bomb's shape. */
export function pngClaiming(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Content types a client may send: ours, with parameters, in odd case, and others. */
export const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'image/jpeg',
  'image/png',
  'image/webp',
  'IMAGE/PNG; q=1',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'image/',
  'application/json; charset=utf-16',
);

/** Names in a request path: valid, reserved by every JavaScript object, long, unicode, escapes. */
export const pathName = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', '..', '.', '%2e%2e', 'face%00', 'a'.repeat(101)),
  fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent),
);

// ---- The Open Inference Protocol ------------------------------------------------------------------------------

export const oipDatatype = fc.constantFrom('FP32', 'fp32', 'FP64', 'FP16', 'INT64', 'INT8', 'UINT8', 'BOOL', 'BYTES', 'BF16', '', 'float32', '__proto__');

/** One input of an infer request; `name` from the model's inputs or not, binary or JSON data. */
export function oipInput(names: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      name: fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 8 }), fc.constantFrom(1, null)),
      shape: statedShape,
      datatype: fc.oneof({ weight: 4, arbitrary: oipDatatype }, { weight: 1, arbitrary: fc.constantFrom(32, null) }),
      data: tensorData,
      parameters: fc.oneof(
        fc.record({ binary_data_size: fc.oneof(fc.integer({ min: -8, max: 4096 }), fc.constantFrom(1.5, '8', null, 2 ** 53)) }, { requiredKeys: [] }),
        fc.constantFrom(null, [], 'binary'),
      ),
    },
    { requiredKeys: ['name', 'shape', 'datatype'] },
  );
}

/** An infer request's JSON: inputs as above, outputs named or not, ids and parameters of any type. */
export function oipRequest(inputs: readonly string[], outputs: readonly string[]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      id: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(7, null)),
      parameters: fc.oneof(fc.record({ binary_data_output: fc.oneof(fc.boolean(), fc.constant('yes')) }), fc.constantFrom(null, 1)),
      inputs: fc.oneof({ weight: 5, arbitrary: fc.array(oipInput(inputs), { maxLength: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(null, {}, 'x') }),
      outputs: fc.array(
        fc.record({ name: fc.oneof(fc.constantFrom(...outputs), fc.string({ maxLength: 6 })), parameters: fc.option(fc.record({ binary_data: fc.boolean() })) }, { requiredKeys: ['name'] }),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: ['inputs'] },
  );
}

/** The `Inference-Header-Content-Length` to send for a JSON header of `length` bytes: right, off, absent, junk. */
export const headerLengthFor = (length: number): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(String(length)) },
    { weight: 2, arbitrary: fc.integer({ min: -6, max: 6 }).map((off) => String(length + off)) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom('abc', '', ' 1', '1e3', '0x10', '-0', '99999999999999999999', '0') },
  );

// ---- Desired state and twin patches ---------------------------------------------------------------------------

/** Keys of desired maps: valid names, reserved ones, too long, with characters names may not have. */
export const entryName = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', '', 'a'.repeat(65), 'a/b', '../x', 'ünï', '$version'),
);

/** A value of any JSON type, for fields that want one type. */
const anyJson = fc.jsonValue({ maxDepth: 2 });

/** A model slot: its fields with right and wrong values; never one that loads (uris name nothing that exists). */
export const desiredSlot: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: anyJson },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        version: fc.oneof(fc.string({ maxLength: 6 }), anyJson),
        uri: fc.oneof(
          fc.constantFrom('file:///nonexistent/model.onnx', '/nonexistent.tar.gz', 'file:///dev/zero', 'ftp://x/y', 'http://', 'https://[::1', 'file://%zz', '', '\u0000'),
          anyJson,
        ),
        sha256: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 8 })),
        size: fc.oneof(fc.integer({ min: -2, max: 2 ** 40 }), fc.constantFrom(1.5, '1', 2 ** 60)),
        target: fc.oneof(fc.constantFrom('cpu', 'gpu', 'fpga', 'tpu'), anyJson),
        fallback: fc.constantFrom('cpu', 'none', 'gpu', 1),
        threads: fc.oneof(fc.integer({ min: -1, max: 300 }), anyJson),
        image: fc.oneof(fc.record({ width: fc.integer({ min: -1, max: 10_000 }), layout: fc.constantFrom('NHWC', 'NCHW', 'HWC'), mean: fc.oneof(fc.double(), fc.string({ maxLength: 8 }), fc.array(fc.double(), { maxLength: 5 })) }, { requiredKeys: [] }), anyJson),
        postprocess: fc.oneof(fc.record({ kind: fc.constantFrom('raw', 'classification', 'blazeface', 'yolo'), topK: fc.integer({ min: -1, max: 10 }) }, { requiredKeys: [] }), anyJson),
        extra: anyJson,
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.constant(null) },
);

/** A camera: pointed at nothing that answers (file URIs that do not exist), or wrong. */
export const desiredCamera: fc.Arbitrary<unknown> = fc.oneof(
  anyJson,
  fc.record(
    {
      uri: fc.constantFrom('file:///nonexistent/video.mp4', 'rtsp://', 'gopher://x', 'file:///dev/null', ''),
      fps: fc.oneof(fc.double({ min: -1, max: 100 }), anyJson),
      enabled: fc.oneof(fc.boolean(), anyJson),
      timeoutSeconds: fc.oneof(fc.integer({ min: -1, max: 1000 }), anyJson),
      minScore: fc.double(),
    },
    { requiredKeys: [] },
  ),
  fc.constant(null),
);

/**
 * A twin patch (or a whole desired document): models and cameras keyed by odd names, the top-level fields of
 * wrong types, twin metadata, keys the module does not know. `protect` is a slot name the patch never touches.
 */
export function desiredPatch(protect: string): fc.Arbitrary<Record<string, unknown>> {
  const names = entryName.filter((name) => name !== protect);
  return fc.record(
    {
      models: fc.oneof({ weight: 4, arbitrary: fc.dictionary(names, desiredSlot, { maxKeys: 3 }) }, { weight: 1, arbitrary: fc.constantFrom([], 'face', 1) }),
      cameras: fc.oneof({ weight: 3, arbitrary: fc.dictionary(names, desiredCamera, { maxKeys: 2 }) }, { weight: 1, arbitrary: fc.constantFrom([], 'cam', true) }),
      defaultModel: fc.oneof(names, anyJson),
      output: fc.oneof(fc.record({ name: fc.string({ maxLength: 8 }), minScore: fc.double(), heartbeatSeconds: fc.double() }, { requiredKeys: [] }), anyJson),
      $version: fc.oneof(fc.integer({ min: -1, max: 1000 }), anyJson),
      unknown: anyJson,
    },
    { requiredKeys: [] },
  );
}

// ---- Input messages -------------------------------------------------------------------------------------------

/** Application properties of an input message: the ones the module reads (`model`, content type), and noise. */
export const messageProperties: fc.Arbitrary<Record<string, string>> = fc
  .record(
    {
      model: fc.oneof(fc.constant('face'), pathName, fc.string({ maxLength: 12 })),
      '$.ct': contentType,
      '$.ce': fc.constantFrom('utf-8', 'utf-16', 'gzip', ''),
      '$.cid': fc.string({ maxLength: 12 }),
    },
    { requiredKeys: [] },
  )
  .chain((known) => fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 24 }), { maxKeys: 3 }).map((noise) => ({ ...noise, ...known })));

// ---- Keys files -----------------------------------------------------------------------------------------------

/** One key as an operator might write it: base64-like, with spaces, commas, comments, non-ASCII. */
export const keyLine = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[A-Za-z0-9+/=_-]{8,44}$/) },
  { weight: 1, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom('# a comment', '   ', 'key # with a comment', 'two words', '\t tabbed \t', 'ключ', 'k\u0000ey', 'a,b,,c') },
);

/** A keys file's text: lines joined with LF or CRLF, sometimes a BOM, sometimes no final newline. */
export const keysFileText: fc.Arbitrary<string> = fc
  .tuple(fc.array(keyLine, { maxLength: 6 }), fc.constantFrom('\n', '\r\n'), fc.boolean(), fc.boolean())
  .map(([lines, eol, bom, finalEol]) => `${bom ? '\uFEFF' : ''}${lines.join(eol)}${finalEol ? eol : ''}`);

// ---- Model packages -------------------------------------------------------------------------------------------

/** Where an archive's entry claims to go: inside, outside (`..`, absolute), nowhere, or very deep. */
export const packageEntryName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('cls.onnx', 'model/cls.onnx', 'edge-infer.json', 'model/edge-infer.json', 'labels.txt', 'other.onnx', 'README') },
  { weight: 2, arbitrary: fc.constantFrom('../fuzz-escape.onnx', '../../fuzz-escape', '/tmp/fuzz-escape', 'a/../../fuzz-escape', './edge-infer.json', '', '.', 'model/', 'ünï/cls.onnx', 'a\\..\\..\\fuzz-escape') },
  { weight: 1, arbitrary: fc.array(fc.stringMatching(/^[a-z.]{1,12}$/), { minLength: 1, maxLength: 8 }).map((parts) => parts.join('/')) },
);

/** The kinds of tar entry: a file, and what a package may not hold (links, devices). */
export const packageEntryType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('File' as const) },
  { weight: 1, arbitrary: fc.constantFrom('Directory' as const, 'SymbolicLink' as const, 'Link' as const, 'FIFO' as const, 'CharacterDevice' as const) },
);

/** A manifest near the schema: fields right, of the wrong type, names that leave the package, samples of any shape. */
export const manifest: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  // Valid for the classifier of the fixtures, so that loads, warm-ups and postprocessors run too.
  {
    weight: 3,
    arbitrary: fc.record(
      {
        model: fc.constant('cls.onnx'),
        image: fc.record({ width: fc.integer({ min: 1, max: 400 }), height: fc.integer({ min: 1, max: 100 }), layout: fc.constant('NCHW'), resize: fc.constantFrom('fill', 'contain', 'cover') }),
        postprocess: fc.oneof(
          fc.constant({ kind: 'raw' }),
          fc.record({ kind: fc.constant('classification'), labels: fc.oneof(fc.constant('labels.txt'), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 })), topK: fc.integer({ min: 1, max: 5 }), softmax: fc.boolean() }),
        ),
      },
      { requiredKeys: ['postprocess'] },
    ),
  },
  {
    weight: 4,
    arbitrary: fc.record(
      {
        model: fc.constantFrom('cls.onnx', 'model/cls.onnx', 'missing.onnx', '../cls.onnx', '/etc/hostname', '', 'labels.txt'),
        image: fc.record(
          {
            width: fc.oneof(fc.integer({ min: -1, max: 9000 }), fc.constant(2 ** 40)),
            height: fc.integer({ min: 0, max: 9000 }),
            layout: fc.constantFrom('NCHW', 'NHWC', 'CHW'),
            channels: fc.constantFrom('RGB', 'BGR', 'GRAY'),
            resize: fc.constantFrom('fill', 'contain', 'cover', 'stretch'),
            mean: fc.oneof(fc.double(), fc.string({ maxLength: 12 }), fc.array(fc.double(), { maxLength: 5 })),
            std: fc.oneof(fc.constantFrom(0, -1, 255, '0,0,0', 'a,b,c'), fc.array(fc.double(), { maxLength: 5 })),
          },
          { requiredKeys: [] },
        ),
        postprocess: fc.record(
          {
            kind: fc.constantFrom('raw', 'classification', 'blazeface', 'yolo'),
            labels: fc.oneof(fc.constantFrom('labels.txt', '../../etc/hostname', '/etc/hostname', 'missing.txt'), fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 })),
            topK: fc.integer({ min: -1, max: 2 ** 31 }),
            softmax: fc.oneof(fc.boolean(), fc.constant('yes')),
            output: fc.constantFrom('softmax_0.tmp_0', 'nope', ''),
          },
          { requiredKeys: [] },
        ),
        inputSample: fc.oneof(tensorData, fc.record({ data: tensorData })),
        outputSample: fc.jsonValue({ maxDepth: 2 }),
      },
      { requiredKeys: [] },
    ),
  },
);
