import { Counter, Gauge, type Registry } from 'prom-client';
import type { DriftReport } from './drift/engine.ts';
import type { QualityReport } from './quality.ts';
import type { EmbeddingDrift, MultivariateDrift } from './vector-drift.ts';
import type { WindowPerformance } from './performance-window.ts';
import { MAX_MONITORED_COLUMNS } from './columns.ts';
import type { WindowImportance } from './importance.ts';

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** Gauges of the latest evaluated window per model version; cardinality is bounded by the reference's columns. */
export interface MonitoringMetrics {
  driftScore: Gauge<'model' | 'version' | 'column' | 'test'>;
  driftDetected: Gauge<'model' | 'version' | 'column'>;
  datasetDrift: Gauge<'model' | 'version'>;
  driftShare: Gauge<'model' | 'version'>;
  quality: Gauge<'model' | 'version' | 'column' | 'metric'>;
  qualityFailed: Gauge<'model' | 'version' | 'column' | 'metric'>;
  windowRows: Gauge<'model' | 'version'>;
  realized: Gauge<'model' | 'version' | 'metric'>;
  estimated: Gauge<'model' | 'version' | 'metric'>;
  offlineGap: Gauge<'model' | 'version' | 'metric'>;
  offlineHealthy: Gauge<'model' | 'version' | 'metric'>;
  labelled: Gauge<'model' | 'version'>;
  concept: Gauge<'model' | 'version' | 'indicator'>;
  conceptAlert: Gauge<'model' | 'version' | 'indicator'>;
  reconstructionError: Gauge<'model' | 'version'>;
  multivariateDrift: Gauge<'model' | 'version'>;
  embeddingAuc: Gauge<'model' | 'version' | 'embedding'>;
  embeddingDrift: Gauge<'model' | 'version' | 'embedding'>;
  featureImportance: Gauge<'model' | 'version' | 'column'>;
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
    featureImportance: new Gauge({ name: 'warden_feature_importance', help: 'Mean |SHAP value| per feature over the sample rows of the latest window that has one (global importance).', labelNames: ['model', 'version', 'column'], registers }),
    realized: new Gauge({ name: 'warden_performance_realized', help: 'Performance measured from joined labels in the latest evaluated window (accuracy, f1, roc_auc … or mae, rmse, r2 …).', labelNames: ['model', 'version', 'metric'], registers }),
    estimated: new Gauge({ name: 'warden_performance_estimated', help: 'Performance estimated without labels (CBPE for binary classifiers, DLE for regression) in the latest window.', labelNames: ['model', 'version', 'metric'], registers }),
    offlineGap: new Gauge({ name: 'warden_performance_offline_gap', help: 'Relative gap between the live and the offline (registered) primary metric.', labelNames: ['model', 'version', 'metric'], registers }),
    offlineHealthy: new Gauge({ name: 'warden_performance_offline_healthy', help: '1 while the live primary metric is within tolerance of the offline one (the SLI).', labelNames: ['model', 'version', 'metric'], registers }),
    labelled: new Gauge({ name: 'warden_performance_labelled_rows', help: 'Predictions of the latest window with a joined label.', labelNames: ['model', 'version'], registers }),
    concept: new Gauge({ name: 'warden_concept_drift', help: 'Concept-drift indicators of the latest window: label_shift, mismatch_rate, machine_label_share.', labelNames: ['model', 'version', 'indicator'], registers }),
    conceptAlert: new Gauge({ name: 'warden_concept_drift_alert', help: '1 when the concept-drift indicator broke its threshold.', labelNames: ['model', 'version', 'indicator'], registers }),
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
  vectors: { embeddings?: EmbeddingDrift[]; multivariate?: MultivariateDrift; performance?: WindowPerformance; importance?: WindowImportance } = {},
): void {
  const v = String(version);
  const p = vectors.performance;
  if (p) {
    m.labelled.set({ model, version: v }, p.labelled);
    const pick = (o: object | undefined, keys: string[]) => keys.map((k) => [k, (o as Record<string, unknown> | undefined)?.[k]] as const).filter((e): e is readonly [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
    const keys = p.task === 'binary' ? ['accuracy', 'precision', 'recall', 'f1', 'rocAuc', 'prAuc', 'logLoss', 'brier', 'ece'] : ['mae', 'rmse', 'mape', 'r2', 'bias'];
    for (const [k, x] of pick(p.realized, keys)) m.realized.set({ model, version: v, metric: snake(k) }, x);
    for (const [k, x] of pick(p.estimated, keys)) m.estimated.set({ model, version: v, metric: snake(k) }, x);
    if (p.offline) {
      m.offlineGap.set({ model, version: v, metric: p.offline.metric }, p.offline.gap);
      m.offlineHealthy.set({ model, version: v, metric: p.offline.metric }, p.offline.healthy ? 1 : 0);
    }
    if (p.concept) {
      const c = p.concept;
      for (const [indicator, value, alert] of [
        ['label_shift', c.labelShift, c.labelShiftAlert],
        ['mismatch_rate', c.mismatchRate, c.mismatchAlert],
        ['machine_label_share', c.machineLabelShare, c.machineLabelAlert],
      ] as const) {
        m.concept.set({ model, version: v, indicator }, value);
        m.conceptAlert.set({ model, version: v, indicator }, alert ? 1 : 0);
      }
    }
  }
  if (vectors.multivariate) {
    m.reconstructionError.set({ model, version: v }, vectors.multivariate.error);
    m.multivariateDrift.set({ model, version: v }, vectors.multivariate.alert ? 1 : 0);
  }
  for (const e of vectors.embeddings ?? []) {
    m.embeddingAuc.set({ model, version: v, embedding: e.name }, e.domainClassifierAuc);
    m.embeddingDrift.set({ model, version: v, embedding: e.name }, e.drift ? 1 : 0);
  }
  if (vectors.importance) {
    // One series per feature of the first input: all monitored columns, so at most MAX_MONITORED_COLUMNS.
    for (const [column, x] of Object.entries(vectors.importance.features).slice(0, MAX_MONITORED_COLUMNS)) m.featureImportance.set({ model, version: v, column }, x);
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
