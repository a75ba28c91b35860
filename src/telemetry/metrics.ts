import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreHealth, StoreName } from '../storage/index.ts';

/** Request outcome label: bounded to these values so a flood of bad input cannot grow cardinality. */
export type Outcome = 'ok' | 'client_error' | 'server_error';
export const OUTCOMES: readonly Outcome[] = ['ok', 'client_error', 'server_error'];
/** Request protocol label: the Open Inference Protocol routes, or the `:predict` form. */
export const PROTOCOLS = ['oip', 'predict'] as const;
/** The version label of failures that never reached a loaded version (it could not be resolved or loaded). */
export const UNRESOLVED_VERSION = '_unresolved';

/**
 * Latency buckets in seconds, dense under 10 ms where in-process ONNX inference lives, so p99
 * estimates at the SLO thresholds people actually set (5, 10, 25 ms) are not bucket-bound.
 */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface WardenMetrics {
  registry: Registry;
  inferenceRequests: Counter<'model' | 'version' | 'outcome' | 'protocol'>;
  inferenceDuration: Histogram<'model' | 'version' | 'outcome'>;
  inferenceRows: Counter<'model' | 'version'>;
  inferenceErrors: Counter<'model' | 'version' | 'code'>;
  modelLoadDuration: Histogram<'model' | 'version'>;
  /** Requests answered with explanations (parameters.explain on inference, or the explain API), and their rows. */
  explanations: Counter<'model' | 'version' | 'protocol'>;
  explainedRows: Counter<'model' | 'version' | 'protocol'>;
  predictionLogQueueDepth: Gauge;
  predictionLogQueueCapacity: Gauge;
  predictionLogDropped: Counter<'reason'>;
  predictionLogWritten: Counter;
  predictionLogFlushDuration: Histogram;
  /**
   * Registers a function run before the request counters are read (a scrape, or `get()`): the request path
   * keeps its counts as plain additions and folds them in there, instead of a prom-client label lookup and
   * label validation per request. Returns the unregister function.
   */
  beforeCollect(fold: () => void): () => void;
  /**
   * Creates, at 0, every request series of a model version that the exported SLO rules read (`warden slo export`):
   * `warden_inference_requests_total` for each outcome and protocol (and the model's `_unresolved` failures), and
   * the `warden_inference_duration_seconds` histogram for each outcome. Prometheus' rate() and increase() need a
   * sample before the first increment; a series born at its first error hides that error. Call on every load:
   * counters add 0 and a histogram is zeroed only once, so a reload never resets counts.
   */
  zeroVersionSeries(model: string, version: string): void;
}

/** Creates Warden's metrics on a registry of the caller's (never the global one: tests create many servers). */
export function createMetrics(registry = new Registry(), opts: { defaultMetrics?: boolean } = {}): WardenMetrics {
  if (opts.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // prom-client names these gauges `_total`, which Prometheus reserves for counters and
    // `promtool check metrics` rejects; the handle/request counts are noise for model serving anyway.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(name);
    }
  }
  const registers = [registry];
  const folds = new Set<() => void>();
  const collect = () => {
    for (const fold of folds) fold();
  };
  const zeroedHistograms = new Set<string>();
  const m: WardenMetrics = {
    registry,
    beforeCollect(fold) {
      folds.add(fold);
      return () => folds.delete(fold);
    },
    zeroVersionSeries(model, version) {
      for (const protocol of PROTOCOLS) {
        for (const outcome of OUTCOMES) m.inferenceRequests.inc({ model, version, outcome, protocol }, 0);
        // Failures before a version is resolved carry this label; the availability rules count them too.
        for (const outcome of ['client_error', 'server_error'] as const) m.inferenceRequests.inc({ model, version: UNRESOLVED_VERSION, outcome, protocol }, 0);
        // The explained share of requests (explanations / requests) needs its numerator from 0 as well.
        m.explanations.inc({ model, version, protocol }, 0);
      }
      // prom-client's zero() overwrites a histogram's counts, so each is zeroed only the first time (the version's
      // first load, before it can serve); later loads of an evicted version keep what it measured.
      const key = `${model}\u0000${version}`;
      if (zeroedHistograms.has(key)) return;
      zeroedHistograms.add(key);
      for (const outcome of OUTCOMES) m.inferenceDuration.zero({ model, version, outcome });
    },
    inferenceRequests: new Counter({
      name: 'warden_inference_requests_total',
      help: 'Inference requests by model, version, outcome and protocol (oip or predict).',
      labelNames: ['model', 'version', 'outcome', 'protocol'],
      registers,
      collect,
    }),
    inferenceDuration: new Histogram({
      name: 'warden_inference_duration_seconds',
      help: 'Time from request parsed to response ready, by model, version and outcome.',
      labelNames: ['model', 'version', 'outcome'],
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    inferenceRows: new Counter({
      name: 'warden_inference_rows_total',
      help: 'Rows (batch entries) predicted, by model and version.',
      labelNames: ['model', 'version'],
      registers,
      collect,
    }),
    inferenceErrors: new Counter({
      name: 'warden_inference_errors_total',
      help: 'Failed inference requests by model, version and Warden error code.',
      labelNames: ['model', 'version', 'code'],
      registers,
    }),
    modelLoadDuration: new Histogram({
      name: 'warden_model_load_duration_seconds',
      help: 'Time to read, verify and load a model version into the runtime.',
      labelNames: ['model', 'version'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    explanations: new Counter({
      name: 'warden_explanations_total',
      help: 'Requests answered with explanations, by model, version and protocol (oip, predict: parameters.explain on inference; api: POST /api/v1/models/{name}/explain; monitoring: a window\'s feature importance).',
      labelNames: ['model', 'version', 'protocol'],
      registers,
    }),
    explainedRows: new Counter({
      name: 'warden_explained_rows_total',
      help: 'Rows explained, by model, version and protocol (as warden_explanations_total).',
      labelNames: ['model', 'version', 'protocol'],
      registers,
    }),
    predictionLogQueueDepth: new Gauge({
      name: 'warden_prediction_log_queue_depth',
      help: 'Prediction events waiting to be written to the event store.',
      registers,
    }),
    predictionLogQueueCapacity: new Gauge({
      name: 'warden_prediction_log_queue_capacity',
      help: 'Bound of the prediction log queue; events beyond it are dropped and counted.',
      registers,
    }),
    predictionLogDropped: new Counter({
      name: 'warden_prediction_log_dropped_total',
      help: 'Prediction events dropped, by reason (queue_full, store_error, pack_error).',
      labelNames: ['reason'],
      registers,
    }),
    predictionLogWritten: new Counter({
      name: 'warden_prediction_log_written_total',
      help: 'Prediction events written to the event store.',
      registers,
    }),
    predictionLogFlushDuration: new Histogram({
      name: 'warden_prediction_log_flush_duration_seconds',
      help: 'Time to write one batch of prediction events.',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers,
    }),
  };
  return m;
}

/**
 * `warden_store_degraded{store}`: 1 while a store refuses writes (disk full, read-only, I/O error), per the
 * replica's {@link StoreHealth}; every store is exported, at 0 when healthy, so an alert sees the change.
 */
export function registerStoreHealthGauge(registry: Registry, health: StoreHealth): void {
  new Gauge({
    name: 'warden_store_degraded',
    help: 'Whether writes to a store are failing (1) or not (0): disk full, read-only data directory, I/O error',
    labelNames: ['store'],
    registers: [registry],
    collect() {
      const degraded = new Set(health.degraded().map((s) => s.store));
      for (const store of STORE_NAMES) this.set({ store }, degraded.has(store) ? 1 : 0);
    },
  });
}

const STORE_NAMES: readonly StoreName[] = ['metadata', 'events', 'artifacts'];
