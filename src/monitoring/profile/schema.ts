import { WardenError } from '../../errors.ts';
import type { ColumnKind, ColumnSpec, ProfileSchema } from './types.ts';

/** A table held column-wise or row-wise; values as parsed (numbers, strings, null). */
export interface Table {
  names: string[];
  rows: unknown[][];
}

export interface SchemaOptions {
  /** Columns to monitor (default: all). */
  columns?: string[];
  /** Columns that are predictions (outputs) rather than features. */
  predictionColumns?: string[];
  categorical?: string[];
  numeric?: string[];
  /** Numeric bins: reference quantiles cut into this many bins (default 20; ties collapse). */
  bins?: number;
  sampleSize?: number;
  maxNewCategories?: number;
  /** Allowed ranges; default for numeric columns is the reference's own [min, max]. */
  ranges?: Record<string, { min?: number; max?: number }>;
}

/** Integer-valued numeric columns with at most this many distinct values are treated as categorical. */
export const CATEGORICAL_MAX_UNIQUE = 10;

function inferKind(values: unknown[]): ColumnKind {
  const unique = new Set<unknown>();
  let numeric = true;
  let integral = true;
  for (const v of values) {
    if (v === null || v === undefined) continue;
    if (typeof v !== 'number') numeric = false;
    else if (!Number.isInteger(v)) integral = false;
    if (unique.size <= CATEGORICAL_MAX_UNIQUE) unique.add(v);
  }
  if (!numeric) return 'categorical';
  return integral && unique.size <= CATEGORICAL_MAX_UNIQUE ? 'categorical' : 'numeric';
}

/** Quantile bin edges of sorted finite values, deduplicated so heavy ties do not create empty bins. */
export function quantileEdges(sorted: Float64Array, bins: number): number[] {
  if (sorted.length === 0) return [];
  const edges: number[] = [];
  for (let i = 1; i < bins; i++) {
    const q = sorted[Math.min(sorted.length - 1, Math.floor((i * sorted.length) / bins))]!;
    if (edges.length === 0 || q > edges[edges.length - 1]!) edges.push(q);
  }
  // The lowest value opens the first interior bin, so values below the reference land in the underflow bin.
  if (edges.length === 0 || sorted[0]! < edges[0]!) edges.unshift(sorted[0]!);
  return edges;
}

/** Decides each column's kind, bins, categories and allowed range from reference data. */
export function inferSchema(table: Table, opts: SchemaOptions = {}): ProfileSchema {
  const names = opts.columns ?? table.names;
  const predictions = new Set(opts.predictionColumns ?? []);
  for (const n of [...names, ...(opts.categorical ?? []), ...(opts.numeric ?? []), ...predictions]) {
    if (!table.names.includes(n)) {
      throw new WardenError('WARDEN_BAD_REQUEST', `column ${JSON.stringify(n)} is not in the reference data; it has ${table.names.slice(0, 30).join(', ')}`);
    }
  }
  const columns: ColumnSpec[] = names.map((name) => {
    const idx = table.names.indexOf(name);
    const values = table.rows.map((r) => r[idx]);
    const kind: ColumnKind = opts.categorical?.includes(name)
      ? 'categorical'
      : opts.numeric?.includes(name)
        ? 'numeric'
        : inferKind(values);
    const distinct = new Set<unknown>();
    for (const v of values) {
      if (v === null || v === undefined) continue;
      distinct.add(v);
      if (distinct.size >= 1000) break;
    }
    const spec: ColumnSpec = { name, kind, role: predictions.has(name) ? 'prediction' : 'feature', uniqueCount: distinct.size };
    const range = opts.ranges?.[name];
    if (kind === 'numeric') {
      const finite = Float64Array.from(values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v))).sort();
      spec.edges = quantileEdges(finite, opts.bins ?? 20);
      spec.min = range?.min ?? (finite.length ? finite[0] : undefined);
      spec.max = range?.max ?? (finite.length ? finite[finite.length - 1] : undefined);
      if (spec.min === undefined) delete spec.min;
      if (spec.max === undefined) delete spec.max;
    } else {
      const cats = new Set<string>();
      for (const v of values) if (typeof v === 'number' || typeof v === 'string') cats.add(String(v));
      spec.categories = [...cats].sort();
    }
    return spec;
  });
  return { columns, sampleSize: opts.sampleSize ?? 5_000, maxNewCategories: opts.maxNewCategories ?? 50 };
}
