/** The feature store (docs/features.md): definitions, the offline store with point-in-time joins, pushes. */
export type * from './types.ts';
export { KEY_SEPARATOR } from './types.ts';
export {
  CHECKED_ROWS,
  FEATURE_DTYPES,
  checkFileSources,
  featureRepoJson,
  loadFeatureRepoFile,
  parseFeatureRepo,
  parseFeatureRepoText,
  resolveFeatureRefs,
  sourceColumns,
  viewJoinKeys,
} from './definitions.ts';
export type { FeatureSelection, FeatureViewJson, ParseRepoOptions } from './definitions.ts';
export { csvField, keyText, parseTime, parseValue } from './values.ts';
export type { FeatureValue } from './values.ts';
export { JoinDataError, orderViews, runJoin } from './pit-join.ts';
export type { EntityInput, JoinHooks, JoinJob, JoinStats, JoinView } from './pit-join.ts';
export { HISTORICAL_HEAP_MB, planHistorical, startHistorical } from './historical.ts';
export type { HistoricalRequest, HistoricalRun, HistoricalStats } from './historical.ts';
export { MAX_PUSH_ROWS, parsePushRows, pushView } from './push.ts';
export { FeatureService, MAX_CONCURRENT_HISTORICAL } from './service.ts';
export type { FeatureRepoView, FeatureServiceOptions, HistoricalQuery } from './service.ts';
export { OnlineCache, ViewIndex } from './online-cache.ts';
export type { CachedRow, OnlineCacheOptions, OnlineValue } from './online-cache.ts';
export { Enrichment, parseDeploymentFeatures } from './enrich.ts';
export type { DeploymentFeatures, DeploymentFeaturesView, EnrichmentOptions } from './enrich.ts';
export { MATERIALIZE_BATCH, Materializer } from './materialize.ts';
export type { MaterializeRun, MaterializerOptions, ViewMaterialization, ViewRun, ViewRunState } from './materialize.ts';
export { OnlineFeatures } from './online.ts';
export type { OnlineFeaturesOptions, OnlineRead } from './online.ts';
export { FLOAT_TOLERANCE, SKEW_LEASE, SkewMonitor, sameValue } from './skew.ts';
export type { SkewExample, SkewFeature, SkewMonitorOptions, SkewSample, SkewViewReport } from './skew.ts';
