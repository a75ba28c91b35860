/**
 * Telemetry: what happens after the response is ready, off the caller's clock — Prometheus
 * metrics (prom-client on a registry passed in), the batched, bounded prediction log, and
 * OpenTelemetry traces (off by default; one TracerProvider per instance, exported over OTLP/HTTP), and the
 * per-deployment traffic series (minute and hour buckets in the event store).
 */
export { createMetrics, LATENCY_BUCKETS, registerStoreHealthGauge } from './metrics.ts';
export type { WardenMetrics, Outcome } from './metrics.ts';
export { PredictionLog } from './prediction-log.ts';
export { PredictionRetention } from './prediction-retention.ts';
export type { PredictionLogOptions, PredictionLogStats } from './prediction-log.ts';
export { Tracing, RequestTrace, WardenAttr } from './tracing.ts';
export {
  TrafficAggregator,
  trafficReport,
  histogramQuantile,
  latencyBin,
  HISTOGRAM_LENGTH,
  LATENCY_BIN_RATIO,
  LATENCY_BINS,
  LATENCY_MAX_MS,
  LATENCY_MIN_MS,
  MAX_ERROR_CODES,
  STEP_MS,
} from './traffic.ts';
export type { TrafficAggregatorOptions, TrafficPoint, TrafficReport, TrafficTotals } from './traffic.ts';
export type { TracingOptions } from './tracing.ts';
