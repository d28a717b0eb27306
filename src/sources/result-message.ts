/**
 * The message a scored input or camera frame sends upstream (contract section 6): one JSON envelope for every
 * source, `result` or `error` in it, and the properties that edgeHub routes can filter on.
 */

/** An answer to send: output name, JSON body and application properties. */
export interface OutputMessage {
  output: string;
  body: string;
  correlationId: string | undefined;
  properties: Record<string, string>;
}

export interface ResultFields {
  output: string;
  model: { name: string; version?: string | undefined } | undefined;
  source: { type: 'message' | 'camera' | 'http'; id: string | null };
  /** When scoring of the input began (a message), or when the frame came from the camera. */
  receivedAt: Date;
  latencyMs: number;
  correlationId?: string | undefined;
  /** Exactly one of these. */
  result?: unknown;
  error?: { code: string; message: string };
}

export function resultMessage(fields: ResultFields): OutputMessage {
  const envelope = {
    model: fields.model?.name ?? null,
    version: fields.model?.version ?? null,
    source: fields.source,
    timestamp: fields.receivedAt.toISOString(),
    latencyMs: Math.round(fields.latencyMs * 100) / 100,
    ...(fields.error ? { error: fields.error } : { result: fields.result }),
  };
  return {
    output: fields.output,
    body: JSON.stringify(envelope),
    correlationId: fields.correlationId,
    properties: { model: fields.model?.name ?? '', modelVersion: fields.model?.version ?? '', source: fields.source.type },
  };
}
