/**
 * A look at a slot's traffic, for work that follows an answer without delaying it: shadow runs of a candidate
 * version, data collection. The registry asks each tap whether it wants a slot before the call; only then is the
 * version wrapped, so a slot nobody watches pays nothing.
 */
import type { Feeds } from '../engine/tensor.js';
import type { ModelVersion, ScoreRequest } from '../engine/loaded-version.js';
import type { ScoreSource } from './registry.js';

/** The input of one call, as the version took it: a request to score, or tensors to infer (OIP). */
export type TapInput = { kind: 'score'; request: ScoreRequest } | { kind: 'infer'; feeds: Feeds; outputNames: readonly string[] | undefined };

export interface TappedCall {
  source: ScoreSource;
  /** The active version that answered. */
  model: ModelVersion;
  input: TapInput;
  /** What score() returned (the caller's result), or infer()'s output tensors. */
  output: unknown;
  /** How long the version took, in ms. */
  ms: number;
}

export interface Tap {
  /** Asked before each call: false costs the call nothing. */
  wants(slot: string): boolean;
  /** Told synchronously when a call succeeded, before its answer is sent: queue the work, never throw or block. */
  seen(call: TappedCall): void;
}

/**
 * The input as a tap may keep it past the call: what the caller reuses once it has its answer is copied (a
 * camera's frame buffer; an OIP body's pooled buffer, which the binary tensors view). Called only for a call a
 * tap keeps, so that the rest pay nothing.
 */
export function keptInput(input: TapInput): TapInput {
  if (input.kind === 'infer') {
    const feeds = Object.fromEntries(Object.entries(input.feeds).map(([name, tensor]) => [name, { ...tensor, data: tensor.data.slice() }]));
    return { ...input, feeds };
  }
  if (input.request.kind === 'pixels') return { kind: 'score', request: { ...input.request, pixels: input.request.pixels.slice() } };
  return input;
}

/** `model` as a call from `source` sees it: each score() or infer() that succeeds is told to every one of `taps`. */
export function tapped(model: ModelVersion, source: ScoreSource, taps: readonly Tap[]): ModelVersion {
  const tell = (input: TapInput, output: unknown, started: number) => {
    const call: TappedCall = { source, model, input, output, ms: performance.now() - started };
    for (const tap of taps) tap.seen(call);
  };
  const view = Object.create(model) as { -readonly [K in keyof ModelVersion]: ModelVersion[K] };
  view.score = async (request, decoded) => {
    const started = performance.now();
    const output = await model.score(request, decoded);
    tell({ kind: 'score', request }, output, started);
    return output;
  };
  view.infer = async (feeds, outputNames) => {
    const started = performance.now();
    const output = await model.infer(feeds, outputNames);
    tell({ kind: 'infer', feeds, outputNames }, output, started);
    return output;
  };
  return view;
}
