/**
 * Every error edge-infer raises on purpose, in one table (fastify's lib/errors.js habit).
 *
 * An error carries a stable `code` and a transport-neutral `kind`; each transport maps the kind once:
 * `server/http-errors.ts` to an HTTP status, the IoT Hub side to a twin status or method response.
 * The core never knows a status code.
 */

/** What sort of failure this is, independent of how it is reported. */
export type ErrorKind =
  | 'malformed' // the request itself cannot be read: bad JSON, an image that does not decode
  | 'unauthenticated'
  | 'not-found'
  | 'too-large'
  | 'unsupported-media'
  | 'unprocessable' // readable, but does not fit the model: wrong input name, dtype or shape
  | 'unavailable' // no version of the model is active yet
  | 'throttled' // this client sent too many refused requests; it may try again later
  | 'invalid-config' // settings, a package manifest or desired state that cannot be used
  | 'failed'; // the work itself failed: inference, an entry script, a download

interface ErrorDefinition {
  kind: ErrorKind;
  /** A message template; `%s` placeholders are filled in order from the constructor's arguments. */
  message: string;
}

export const ERRORS = {
  EI_BAD_JSON: { kind: 'malformed', message: 'The body is not valid JSON: %s' },
  EI_BAD_REQUEST: { kind: 'malformed', message: '%s' },
  EI_BAD_IMAGE: { kind: 'malformed', message: 'The image could not be decoded (%s); send a JPEG, PNG or WebP file' },
  EI_BAD_BINARY_TENSOR: { kind: 'malformed', message: 'Binary tensor data does not match its header: %s' },
  EI_UNAUTHORIZED: {
    kind: 'unauthenticated',
    message: 'A scoring key is required: send the header "Authorization: Bearer <key>"',
  },
  EI_ROUTE_NOT_FOUND: { kind: 'not-found', message: 'No route %s %s' },
  EI_MODEL_NOT_FOUND: { kind: 'not-found', message: 'No model named "%s"; the models served are: %s' },
  EI_VERSION_NOT_FOUND: { kind: 'not-found', message: 'Model "%s" has no version "%s" loaded; loaded: %s' },
  EI_BODY_TOO_LARGE: { kind: 'too-large', message: 'The body is larger than the limit of %s bytes (setting --max-body)' },
  EI_UNSUPPORTED_MEDIA_TYPE: {
    kind: 'unsupported-media',
    message: 'Content type "%s" is not accepted here; send %s',
  },
  EI_INPUT_NAME: { kind: 'unprocessable', message: 'Model "%s" has no input "%s"; its inputs are: %s' },
  EI_INPUT_MISSING: { kind: 'unprocessable', message: 'Model "%s" needs input "%s", which the request does not give' },
  EI_INPUT_DTYPE: { kind: 'unprocessable', message: 'Input "%s" must be %s, not %s' },
  EI_INPUT_SHAPE: { kind: 'unprocessable', message: 'Input "%s" must have shape %s, not %s' },
  EI_INPUT_EMPTY: { kind: 'malformed', message: 'Input "%s" has shape %s: a free dimension of size 0 holds no data; each must be at least 1' },
  EI_INPUT_TOO_LARGE: { kind: 'too-large', message: 'Input "%s" of model "%s" has shape %s, over its limit of %s (%s)' },
  EI_OUTPUT_TOO_LARGE: {
    kind: 'too-large',
    message: 'The outputs of model "%s" would make a response of up to %s bytes, over the limit of %s (%s); send a smaller input or ask for fewer outputs',
  },
  EI_INPUT_NOT_IMAGE: {
    kind: 'unprocessable',
    message: 'Model "%s" cannot take an image: %s',
  },
  EI_OUTPUT_NAME: { kind: 'unprocessable', message: 'Model "%s" has no output "%s"; its outputs are: %s' },
  EI_MODEL_NOT_READY: { kind: 'unavailable', message: 'Model "%s" has no active version yet: %s' },
  EI_INFERENCE_FAILED: { kind: 'failed', message: 'Inference failed in model "%s": %s' },
  EI_SCRIPT_FAILED: { kind: 'failed', message: 'The entry script of model "%s" failed in %s(): %s' },
  EI_SCRIPT_TIMEOUT: { kind: 'failed', message: 'The entry script of model "%s" did not finish %s within %s s (setting %s); its worker was stopped' },
  EI_SCRIPT_CRASHED: { kind: 'failed', message: 'The entry script of model "%s" ended its worker %s: %s' },
  EI_SCRIPT_OUT_OF_MEMORY: { kind: 'failed', message: 'The entry script of model "%s" used more than its %s MiB of JavaScript heap (setting --script-memory); its worker was stopped' },
  EI_POSTPROCESS_FAILED: { kind: 'failed', message: 'Postprocessor "%s" cannot read the outputs of model "%s": %s' },
  EI_CONFIG_INVALID: { kind: 'invalid-config', message: 'Invalid setting: %s' },
  EI_PACKAGE_INVALID: { kind: 'invalid-config', message: 'The model package %s cannot be used: %s' },
  EI_MODEL_LOAD_FAILED: { kind: 'failed', message: 'ONNX Runtime could not load %s: %s' },
  EI_TARGET_UNAVAILABLE: { kind: 'failed', message: 'Target "%s" is not available for model "%s" and its fallback is "none" (%s); set fallback to "cpu" or deploy where the target is' },
  EI_WARMUP_FAILED: { kind: 'failed', message: 'The warm-up inference of model "%s" failed: %s' },
  EI_UNPACK_FAILED: { kind: 'failed', message: 'The archive %s cannot be unpacked: %s' },
  EI_OVERLOADED: { kind: 'unavailable', message: 'The model is at its limit (%s scored at once, %s waiting; settings --max-in-flight, --max-waiting); this request was not scored, try again shortly' },
  EI_CLIENT_GONE: { kind: 'unavailable', message: 'The caller went away while the request waited; it was not scored' },
  EI_INTERNAL: { kind: 'failed', message: 'An internal error occurred; the log has its details under request id %s' },
  EI_DOWNLOAD_FAILED: { kind: 'failed', message: 'Downloading %s failed: %s' },
  EI_HASH_MISMATCH: { kind: 'failed', message: 'The content of %s hashes to sha256 %s, not the %s the desired state names; nothing of it was used' },
  EI_STORE_FULL: { kind: 'failed', message: 'The store (%s) has no room for %s: %s; free space on its volume, or give the module a larger one' },
  EI_STORE_UNWRITABLE: { kind: 'failed', message: 'The store (%s) cannot be written: %s; mount its volume read-write, owned by the module\'s user' },
  EI_DOWNLOAD_TOO_LARGE: { kind: 'failed', message: 'Downloading %s stopped: it is larger than %s bytes (%s); nothing of it was used' },
  EI_UNPACK_TOO_LARGE: { kind: 'failed', message: 'The archive %s expands to more than %s bytes (setting --max-unpacked); nothing of it was used' },
  EI_DESIRED_INVALID: { kind: 'invalid-config', message: 'Invalid desired state at %s' },
  EI_VERSION_NOT_STORED: { kind: 'not-found', message: 'Model "%s" has no version "%s" in the store; stored: %s' },
  EI_NO_CANDIDATE: { kind: 'not-found', message: 'Model "%s" has no candidate version loaded to promote; name one in its desired "candidate"' },
  EI_CAMERA_FAILED: { kind: 'failed', message: 'Camera %s: %s' },
  EI_CAMERA_STALLED: { kind: 'failed', message: 'Camera %s sent no frame for %s s' },
  EI_FFMPEG_NOT_FOUND: { kind: 'invalid-config', message: 'ffmpeg ("%s") is not installed; install it (Debian: apt-get install ffmpeg) or name one with --ffmpeg or EDGE_INFER_FFMPEG' },
  EI_CAMERA_NOT_FOUND: { kind: 'not-found', message: 'No camera "%s"; the cameras are: %s' },
  EI_CAMERA_NO_FRAME: { kind: 'unavailable', message: 'Camera "%s" has no scored frame yet' },
  EI_OUTPUT_NOT_SENT: { kind: 'unavailable', message: 'An output message to edgeHub was given up: %s' },
  EI_ACCELERATOR_UNAVAILABLE: { kind: 'unavailable', message: 'The accelerator at %s cannot be used: %s' },
  EI_ACCELERATOR_REFUSED: { kind: 'failed', message: 'The accelerator at %s refused: %s' },
  EI_TOO_MANY_KEY_FAILURES: { kind: 'throttled', message: 'Too many requests from %s were refused for their key; try again in %s s' },
  EI_TLS_CERTIFICATE: { kind: 'failed', message: 'No server certificate from the IoT Edge workload API at %s: %s' },
  EI_ACCELERATOR_MISMATCH: { kind: 'invalid-config', message: 'Model "%s" at %s does not match the package (%s): the server has %s; the package has %s' },
  EI_BATCHING_UNSUPPORTED: { kind: 'invalid-config', message: 'Model "%s" cannot be batched: %s; remove its slot\'s "batching", or export the model with a free first (batch) dimension' },
  EI_COLLECT_UPLOAD_FAILED: { kind: 'failed', message: 'Uploading the collected file %s to %s failed: %s; it stays on disk and is tried again' },
  EI_COLLECT_WRITE_FAILED: { kind: 'failed', message: 'A collected record could not be written to %s: %s' },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERRORS;

export class EdgeInferError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** When the caller may try again, in seconds, where the failure says (a full admission queue, a throttled address). */
  retryAfterSeconds?: number;

  /**
   * @param args fill the `%s` placeholders of the code's message, in order.
   * @param cause the foreign error behind this one (onnxruntime, sharp, a socket), kept for the log.
   */
  constructor(code: ErrorCode, args: readonly unknown[] = [], cause?: unknown) {
    const definition: ErrorDefinition = ERRORS[code];
    let next = 0;
    super(definition.message.replace(/%s/g, () => String(args[next++])), cause === undefined ? undefined : { cause });
    this.name = 'EdgeInferError';
    this.code = code;
    this.kind = definition.kind;
  }

  /** Notes when the caller may try again; a transport that can say so does (HTTP: Retry-After). */
  retryAfter(seconds: number): this {
    this.retryAfterSeconds = seconds;
    return this;
  }
}

/** An error recorded earlier (a model's status) raised again with its code and message as they were. */
export function recordedError(code: string, message: string): EdgeInferError {
  const error = new EdgeInferError(code in ERRORS ? (code as ErrorCode) : 'EI_INTERNAL', []);
  error.message = message;
  return error;
}

const STATUS_OF_KIND: Record<ErrorKind, number> = {
  malformed: 400,
  unauthenticated: 401,
  'not-found': 404,
  'too-large': 413,
  'unsupported-media': 415,
  unprocessable: 422,
  unavailable: 503,
  throttled: 429,
  'invalid-config': 500,
  failed: 500,
};

/** The status code an error answers with, on the REST API and in direct-method responses alike (contract §7). */
export function statusCodeOf(error: EdgeInferError): number {
  return STATUS_OF_KIND[error.kind];
}

export function isEdgeInferError(value: unknown): value is EdgeInferError {
  return value instanceof EdgeInferError;
}

/** The message of any thrown value, for wrapping foreign errors. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
