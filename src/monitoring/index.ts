/**
 * Monitoring: references profiled once per model version, window profiles built from logged traffic
 * off the request path, data-quality checks and drift tests (SciPy-exact statistics, Evidently's default
 * test selection), embedding and multivariate drift, and the loop that stores and exports the verdicts.
 */
export { MonitoringService, MAX_MONITORED_COLUMNS } from './service.ts';
export type { ActiveReference, MonitoringDefaults, MonitoringServiceDeps, ReferenceSource, WindowResult } from './service.ts';
export { parseMonitoringConfig } from './monitor-config.ts';
export { summarizeWindow, worstFirst } from './summary.ts';
export { backgroundDigest, importanceColumns, importanceRows, meanAbsShap, IMPORTANCE_BACKGROUND_ROWS } from './importance.ts';
export type { ExplainRows, ImportanceColumns, WindowImportance } from './importance.ts';
export type { FeatureDriftSummary, WindowSummary } from './summary.ts';
export type { MonitoringConfig } from './monitor-config.ts';
export { evaluateDrift, checkDriftConfig, alignedCounts } from './drift/engine.ts';
export type { ColumnDrift, DriftConfig, DriftReport, DriftSide } from './drift/engine.ts';
export { DRIFT_TESTS, defaultTest, isDriftTest, SMALL_REFERENCE_ROWS } from './drift/tests.ts';
export type { DriftTestName } from './drift/tests.ts';
export { evaluateQuality, DEFAULT_QUALITY_THRESHOLDS } from './quality.ts';
export type { QualityCheck, QualityReport, QualityThresholds } from './quality.ts';
export { WindowCollector } from './collector.ts';
export type { ClosedWindow, CollectorTarget, WindowSpec } from './collector.ts';
export { columnLayout, eventRows } from './columns.ts';
export type { ColumnLayout } from './columns.ts';
export { readTable, tableFromCsv, tableFromJson, tableFromParquet, formatOf } from './table-io.ts';
export type { TableFormat } from './table-io.ts';
export * from './profile/index.ts';
export { offlineDriftReport, toColumnar } from './offline.ts';
export type { ColumnarTable, OfflineOptions, OfflineReport } from './offline.ts';
export { driftReportHtml } from './report-html.ts';
export * as embeddings from './embeddings/index.ts';
export * as multivariate from './multivariate/index.ts';
export { embeddingDrift, fitMultivariate, multivariateDrift } from './vector-drift.ts';
export type { EmbeddingConfig, EmbeddingDrift, MultivariateConfig, MultivariateDrift, MultivariateModel } from './vector-drift.ts';
export * as performance from './performance/index.ts';
export { fitPerformance, realizedPerformance, estimatePerformance } from './performance-window.ts';
export type { PerformanceConfig, PerformanceModel, WindowPerformance, ConceptDrift } from './performance-window.ts';
export { ksStatisticSorted } from './drift/stats/ks.ts';
