import { Counter, Gauge, type Registry } from 'prom-client';
import type { DriftReport } from './drift/engine.ts';
import type { QualityReport } from './quality.ts';
import type { EmbeddingDrift, MultivariateDrift } from './vector-drift.ts';

/** Gauges of the latest evaluated window per model version; cardinality is bounded by the reference's columns. */
export interface MonitoringMetrics {
  driftScore: Gauge<'model' | 'version' | 'column' | 'test'>;
  driftDetected: Gauge<'model' | 'version' | 'column'>;
  datasetDrift: Gauge<'model' | 'version'>;
  driftShare: Gauge<'model' | 'version'>;
  quality: Gauge<'model' | 'version' | 'column' | 'metric'>;
  qualityFailed: Gauge<'model' | 'version' | 'column' | 'metric'>;
  windowRows: Gauge<'model' | 'version'>;
  reconstructionError: Gauge<'model' | 'version'>;
  multivariateDrift: Gauge<'model' | 'version'>;
  embeddingAuc: Gauge<'model' | 'version' | 'embedding'>;
  embeddingDrift: Gauge<'model' | 'version' | 'embedding'>;
  windowsEvaluated: Counter<'model' | 'version'>;
}

export function createMonitoringMetrics(registry: Registry): MonitoringMetrics {
  const registers = [registry];
  return {
    driftScore: new Gauge({ name: 'warden_drift_score', help: 'Drift score of the latest window per column: a p-value or a distance (see the test label).', labelNames: ['model', 'version', 'column', 'test'], registers }),
    driftDetected: new Gauge({ name: 'warden_drift_detected', help: '1 when the column drifted in the latest window.', labelNames: ['model', 'version', 'column'], registers }),
    datasetDrift: new Gauge({ name: 'warden_dataset_drift', help: '1 when the share of drifted features reached the dataset threshold in the latest window.', labelNames: ['model', 'version'], registers }),
    driftShare: new Gauge({ name: 'warden_drift_share', help: 'Share of feature columns that drifted in the latest window.', labelNames: ['model', 'version'], registers }),
    quality: new Gauge({ name: 'warden_data_quality', help: 'Data-quality metric of the latest window per column (completeness, non_finite_share, …).', labelNames: ['model', 'version', 'column', 'metric'], registers }),
    qualityFailed: new Gauge({ name: 'warden_data_quality_failed', help: '1 when the data-quality metric broke its threshold in the latest window.', labelNames: ['model', 'version', 'column', 'metric'], registers }),
    reconstructionError: new Gauge({ name: 'warden_multivariate_reconstruction_error', help: 'Mean PCA reconstruction error of the latest window (multivariate drift).', labelNames: ['model', 'version'], registers }),
    multivariateDrift: new Gauge({ name: 'warden_multivariate_drift', help: '1 when the reconstruction error left the band learned from the reference.', labelNames: ['model', 'version'], registers }),
    embeddingAuc: new Gauge({ name: 'warden_embedding_domain_classifier_auc', help: 'ROC AUC of a classifier telling the window from the reference, per embedding.', labelNames: ['model', 'version', 'embedding'], registers }),
    embeddingDrift: new Gauge({ name: 'warden_embedding_drift', help: '1 when the embedding drifted in the latest window.', labelNames: ['model', 'version', 'embedding'], registers }),
    windowRows: new Gauge({ name: 'warden_monitor_window_rows', help: 'Rows in the latest evaluated window.', labelNames: ['model', 'version'], registers }),
    windowsEvaluated: new Counter({ name: 'warden_monitor_windows_evaluated_total', help: 'Windows evaluated for drift and data quality.', labelNames: ['model', 'version'], registers }),
  };
}

/** Publishes one window's verdicts. */
export function publishWindow(
  m: MonitoringMetrics,
  model: string,
  version: number,
  rows: number,
  drift: DriftReport,
  quality: QualityReport,
  vectors: { embeddings?: EmbeddingDrift[]; multivariate?: MultivariateDrift } = {},
): void {
  const v = String(version);
  if (vectors.multivariate) {
    m.reconstructionError.set({ model, version: v }, vectors.multivariate.error);
    m.multivariateDrift.set({ model, version: v }, vectors.multivariate.alert ? 1 : 0);
  }
  for (const e of vectors.embeddings ?? []) {
    m.embeddingAuc.set({ model, version: v, embedding: e.name }, e.domainClassifierAuc);
    m.embeddingDrift.set({ model, version: v, embedding: e.name }, e.drift ? 1 : 0);
  }
  m.windowRows.set({ model, version: v }, rows);
  m.windowsEvaluated.inc({ model, version: v });
  m.datasetDrift.set({ model, version: v }, drift.datasetDrift ? 1 : 0);
  m.driftShare.set({ model, version: v }, drift.driftShare);
  for (const c of drift.columns) {
    if (c.skipped) continue;
    m.driftScore.set({ model, version: v, column: c.column, test: c.test }, c.score);
    m.driftDetected.set({ model, version: v, column: c.column }, c.drift ? 1 : 0);
  }
  for (const q of quality.checks) {
    m.quality.set({ model, version: v, column: q.column, metric: q.metric }, q.value);
    m.qualityFailed.set({ model, version: v, column: q.column, metric: q.metric }, q.failed ? 1 : 0);
  }
}
