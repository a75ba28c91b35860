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
export { planHistorical, startHistorical } from './historical.ts';
export type { HistoricalRequest, HistoricalRun, HistoricalStats } from './historical.ts';
