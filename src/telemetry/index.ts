/**
 * Telemetry: what happens after the response is ready, off the caller's clock — Prometheus
 * metrics (prom-client on a registry passed in) and the batched, bounded prediction log.
 */
export { createMetrics } from './metrics.ts';
export type { WardenMetrics, Outcome } from './metrics.ts';
export { PredictionLog } from './prediction-log.ts';
export type { PredictionLogOptions, PredictionLogStats } from './prediction-log.ts';
