/**
 * Prometheus metrics, in a registry of their own per service instance (tests run several side by side).
 * Counters of requests and histograms of latency are written on the hot path; model state is read from
 * the status store when scraped, so no second copy of it is kept here.
 */
import client from 'prom-client';
import type { AdmissionCounts } from '../models/admission.js';
import type { StatusStore } from './store.js';

export interface Metrics {
  readonly registry: client.Registry;
  readonly requests: client.Counter<'route' | 'model' | 'code'>;
  readonly requestSeconds: client.Histogram<'route' | 'model'>;
  readonly inferenceSeconds: client.Histogram<'model' | 'version'>;
  readonly swaps: client.Counter<'model'>;
  readonly downloads: client.Counter<'result'>;
  readonly messages: client.Counter<'output' | 'code'>;
  readonly cameraFrames: client.Counter<'camera' | 'outcome'>;
  readonly authFailures: client.Counter;
  readonly collectRecords: client.Counter<'model' | 'outcome'>;
  readonly collectFiles: client.Counter<'outcome'>;
  readonly hubReconnects: client.Counter<'cause'>;
  readonly outputsDropped: client.Counter<'output'>;
  readonly batchSize: client.Histogram<'model'>;
  readonly batchPadding: client.Counter<'model'>;
  readonly shadowRuns: client.Counter<'model' | 'outcome'>;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Powers of two up to the largest `maxBatch` a slot may set. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** @param admission the admission figures of each served slot, read when scraped (labels only for slots that exist). */
export function createMetrics(status: StatusStore, admission: () => Map<string, AdmissionCounts> = () => new Map()): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'edge_infer_' });
  const metrics: Metrics = {
    registry,
    requests: new client.Counter({
      name: 'edge_infer_requests_total',
      help: 'Scoring requests answered, by route, model and HTTP status code',
      labelNames: ['route', 'model', 'code'],
      registers: [registry],
    }),
    requestSeconds: new client.Histogram({
      name: 'edge_infer_request_duration_seconds',
      help: 'Scoring request latency from arrival to response, by route and model',
      labelNames: ['route', 'model'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    inferenceSeconds: new client.Histogram({
      name: 'edge_infer_inference_duration_seconds',
      help: 'Time spent scoring (preprocessing, inference, postprocessing), by model and version',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    swaps: new client.Counter({
      name: 'edge_infer_model_swaps_total',
      help: 'Versions made active, by model',
      labelNames: ['model'],
      registers: [registry],
    }),
    messages: new client.Counter({
      name: 'edge_infer_messages_total',
      help: 'edgeHub input messages answered, by output (results or errors) and error code (EI_OVERLOADED: refused at the queue bound)',
      labelNames: ['output', 'code'],
      registers: [registry],
    }),
    cameraFrames: new client.Counter({
      name: 'edge_infer_camera_frames_total',
      help: 'Camera frames by outcome: scored, dropped (replaced by a newer frame before scoring), failed (not scored), unsent (scored, not delivered upstream)',
      labelNames: ['camera', 'outcome'],
      registers: [registry],
    }),
    hubReconnects: new client.Counter({
      name: 'edge_infer_hub_reconnects_total',
      help: 'IoT Hub sessions replaced by a new one, by why the old one ended: disconnected, error, reconnected (by the SDK itself), timeout (an operation got no answer), missed-patch (the periodic twin read found a newer desired version)',
      labelNames: ['cause'],
      registers: [registry],
    }),
    outputsDropped: new client.Counter({
      name: 'edge_infer_outputs_dropped_total',
      help: 'Output messages given up while edgeHub was out of reach (the outbox bound was reached, or the module stopped), by output',
      labelNames: ['output'],
      registers: [registry],
    }),
    authFailures: new client.Counter({
      name: 'edge_infer_auth_failures_total',
      help: 'Requests refused for a missing or wrong scoring key',
      registers: [registry],
    }),
    collectRecords: new client.Counter({
      name: 'edge_infer_collect_records_total',
      help: 'Calls chosen for data collection, by model and outcome: kept (written), hourly_cap (skipped past maxPerHour), queue_full (dropped, the writer was behind), failed (not written)',
      labelNames: ['model', 'outcome'],
      registers: [registry],
    }),
    collectFiles: new client.Counter({
      name: 'edge_infer_collect_files_total',
      help: 'Collected files leaving the local folder, by outcome: uploaded, deleted_cap (deleted unsent, oldest first, to hold maxDiskMB)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    batchSize: new client.Histogram({
      name: 'edge_infer_batch_size',
      help: 'Rows stacked into each inference by dynamic batching, by model (slots with "batching" only; _count is the runs, _sum the requests\' rows)',
      labelNames: ['model'],
      buckets: BATCH_BUCKETS,
      registers: [registry],
    }),
    batchPadding: new client.Counter({
      name: 'edge_infer_batch_padding_rows_total',
      help: 'Zero rows added to batches to bring them up to maxBatch rows, by model (slots with "batching" and padBatches: the GPU by default)',
      labelNames: ['model'],
      registers: [registry],
    }),
    shadowRuns: new client.Counter({
      name: 'edge_infer_shadow_runs_total',
      help: 'Inputs shared with a candidate version, by model and outcome: agreed, disagreed (with the active version), failed (on the candidate), dropped (under load, never run)',
      labelNames: ['model', 'outcome'],
      registers: [registry],
    }),
    downloads: new client.Counter({
      name: 'edge_infer_downloads_total',
      help: 'Model downloads that ended, by result: verified, or failed (after its retries)',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
  new client.Gauge({
    name: 'edge_infer_collect_pending_bytes',
    help: 'Bytes of collected files waiting in the local folder for upload',
    registers: [registry],
    collect() {
      this.set(status.snapshot().runtime.collect?.pendingBytes ?? 0);
    },
  });
  new client.Gauge({
    name: 'edge_infer_model_active',
    help: '1 for the version each model serves, with its status',
    labelNames: ['model', 'version', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [model, s] of Object.entries(status.snapshot().models)) {
        this.set({ model, version: s.version ?? '', status: s.status }, s.version ? 1 : 0);
      }
    },
  });
  new client.Gauge({
    name: 'edge_infer_candidate_agreement',
    help: 'Share of compared inputs on which the candidate agreed with the active version, by model and candidate version (slots shadowing one, after its first sample)',
    labelNames: ['model', 'candidate'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [model, s] of Object.entries(status.snapshot().models)) {
        const agreement = s.candidate?.shadow?.agreement;
        if (agreement !== undefined && agreement !== null) this.set({ model, candidate: s.candidate!.version }, agreement);
      }
    },
  });
  admissionMetrics(registry, admission);
  // The metrics written on the hot path keep a removed slot's series until told; those read at scrape follow the
  // status by themselves. Without this, every slot a device ever served would stay in /metrics.
  const perModel: PerModelMetric[] = [metrics.requests, metrics.requestSeconds, metrics.inferenceSeconds, metrics.swaps, metrics.collectRecords, metrics.batchSize, metrics.batchPadding, metrics.shadowRuns];
  status.on('model-removed', (name: string) => {
    for (const metric of perModel) void forgetSeries(metric, name);
  });
  return metrics;
}

/** A metric with a `model` label, as `forgetSeries` reads and removes its series. */
type PerModelMetric = Pick<client.Counter<string>, 'get' | 'remove'>;

/** Removes each series labelled `model=name`; a histogram's buckets (`le`) go with their series. */
async function forgetSeries(metric: PerModelMetric, name: string): Promise<void> {
  const seen = new Set<string>();
  for (const { labels } of (await metric.get()).values) {
    if (labels.model !== name) continue;
    const { le: _bucket, ...series } = labels;
    const key = JSON.stringify(series);
    if (seen.has(key)) continue;
    seen.add(key);
    metric.remove(series);
  }
}

/** In flight and waiting (gauges), shed and abandoned (counters since the slot was first served), per model. */
function admissionMetrics(registry: client.Registry, admission: () => Map<string, AdmissionCounts>): void {
  const gauge = (name: string, help: string, figure: keyof AdmissionCounts) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [model, counts] of admission()) this.set({ model }, counts[figure]);
      },
    });
  const counter = (name: string, help: string, figure: keyof AdmissionCounts) =>
    new client.Counter({
      name,
      help,
      labelNames: ['model'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [model, counts] of admission()) this.inc({ model }, counts[figure]);
      },
    });
  gauge('edge_infer_admission_in_flight', 'Requests being scored now, by model (every source: REST, OIP, messages, frames)', 'inFlight');
  gauge('edge_infer_admission_waiting', 'Requests waiting for a turn, by model', 'waiting');
  counter('edge_infer_admission_shed_total', 'Requests refused at the admission bound (503 EI_OVERLOADED, an errors message, a dropped frame), by model', 'shed');
  counter('edge_infer_admission_abandoned_total', 'Requests that left the wait because their client went away (never scored), by model', 'abandoned');
}
