/** How a column is profiled and tested. */
export type ColumnKind = 'numeric' | 'categorical';

/** A column of the monitored table: an input feature or a prediction output. */
export interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  /** 'feature' for model inputs, 'prediction' for outputs. */
  role: 'feature' | 'prediction';
  /** Numeric: ascending bin edges fixed by the reference; bins are (-∞,e0), [e0,e1), …, [e_last,+∞). */
  edges?: number[];
  /** Categorical: the categories the reference holds. */
  categories?: string[];
  /** Distinct values in the reference, counted up to 1,000 (drift-test selection uses it). */
  uniqueCount?: number;
  /** Allowed range (from the signature, else the reference's min and max); values outside count as out of range. */
  min?: number;
  max?: number;
}

/** The layout every profile of one monitored model version shares. */
export interface ProfileSchema {
  columns: ColumnSpec[];
  /** Rows kept in the bounded sample used by exact tests. */
  sampleSize: number;
  /** Distinct categories not in the reference that are tracked by name per column; the rest are counted together. */
  maxNewCategories: number;
}

/** Counts of one column over a set of rows. Every field merges exactly by addition or min/max. */
export interface ColumnProfile {
  /** Rows in which the column was expected. */
  count: number;
  /** null, undefined or absent. */
  missing: number;
  /** NaN or ±Infinity. */
  nonFinite: number;
  /** A value of the wrong type (a string for a numeric column, an object anywhere). */
  typeErrors: number;
  /** Numeric values outside the allowed range; categorical values not in the reference. */
  outOfRange: number;
  min: number | null;
  max: number | null;
  /** Numeric: counts per bin (edges.length + 1 bins). */
  hist?: number[];
  /** Categorical: counts per reference category. */
  categories?: Record<string, number>;
  /** Categorical: counts of new categories kept by name (the ones with the smallest hashes). */
  newCategories?: Record<string, number>;
  /** Categorical: occurrences of new categories beyond `maxNewCategories`. */
  otherNew?: number;
}

/** A cell of a sampled row: finite number, category key, or null for anything missing or invalid. */
export type Cell = number | string | null;

/** A profile of a set of rows: per-column counts plus a bounded uniform sample of whole rows. */
export interface DatasetProfile {
  rows: number;
  columns: ColumnProfile[];
  /** Bottom-k sample in ascending priority: `priorities[i]` belongs to `sample[i]` (cells in schema column order). */
  samplePriorities: number[];
  sample: Cell[][];
}
