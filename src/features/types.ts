/**
 * The feature store's vocabulary (docs/features.md), shared by its parts: definitions, the offline store (sources and
 * pushed rows), the online store (latest value per entity, with TTL), materialization and serving-time enrichment.
 */

/** A feature's type: what its values are stored and served as. */
export type FeatureDtype = 'float' | 'int' | 'string' | 'bool';

/** The thing features describe (a station, a customer, a day), named by one or more join keys. */
export interface EntityDef {
  name: string;
  joinKeys: string[];
  description?: string;
}

export interface FeatureField {
  name: string;
  dtype: FeatureDtype;
  description?: string;
}

/** Where a view's rows come from: a file on the server (CSV or Parquet), or rows pushed through the API. */
export type FeatureSource = { kind: 'file'; path: string; format: 'csv' | 'parquet' } | { kind: 'push' };

/** A set of features of one entity, from one source, with the columns that say when each value became true. */
export interface FeatureViewDef {
  name: string;
  /** Entity names; the view's rows carry every join key of these entities. */
  entities: string[];
  source: FeatureSource;
  /** When the value became true in the world (event time), a column of the source. */
  timestampField: string;
  /**
   * When the row was written (created time), a column of the source; a row is visible at time t only if it was
   * created at or before t, so a late backfill never leaks into a point-in-time join. Unset: the event time.
   */
  createdTimestampField?: string;
  /** A value older than this (by event time) is expired: not joined, not served as present. 0 = never expires. */
  ttlMs: number;
  schema: FeatureField[];
  owner?: string;
  tags: Record<string, string>;
  description?: string;
}

/** A validated feature repository: what `features.yaml` (or PUT /api/v1/features) declares. */
export interface FeatureRepo {
  entities: EntityDef[];
  featureViews: FeatureViewDef[];
}

/** One row of a view: its entity key (the join keys' values, joined by KEY_SEPARATOR in join-key order), times and values. */
export interface FeatureRow {
  entityKey: string;
  /** Epoch ms. */
  eventTs: number;
  /** Epoch ms; the event time when the source has no created-time column. */
  createdTs: number;
  /** By feature name, in the view's schema; null where the source has no value. */
  values: Record<string, number | string | boolean | null>;
}

/** Between the values of a composite entity key. */
export const KEY_SEPARATOR = '\u001f';

/** What a read of the online store says of each value. */
export type ValueStatus = 'present' | 'expired' | 'missing';

/** How far a view has been materialized into the online store. */
export interface MaterializationState {
  view: string;
  /** The newest created time copied so far (epoch ms): the next run reads rows created after it. */
  watermark: number;
  rows: number;
  updatedAt: number;
}
