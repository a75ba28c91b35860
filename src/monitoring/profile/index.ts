/**
 * Profiles: mergeable summaries of a set of rows — per-column counts (missing, non-finite, type errors,
 * out of range), histograms on bins fixed by the reference, category counts, and a bounded bottom-k
 * sample of whole rows for exact tests. Every part merges exactly, so replicas' profiles add up to the
 * profile one process would have built.
 */
export { ProfileBuilder, mergeProfiles, binIndex, categoryKey } from './profile.ts';
export { inferSchema, quantileEdges, CATEGORICAL_MAX_UNIQUE } from './schema.ts';
export type { Table, SchemaOptions } from './schema.ts';
export { hash52 } from './hash.ts';
export type { Cell, ColumnKind, ColumnProfile, ColumnSpec, DatasetProfile, ProfileSchema } from './types.ts';
