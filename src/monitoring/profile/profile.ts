import { emptyBottomK, mergeBottomK, offer, sortedItems, type BottomK } from './bottom-k.ts';
import { hash52 } from './hash.ts';
import type { Cell, ColumnProfile, ColumnSpec, DatasetProfile, ProfileSchema } from './types.ts';

/** Write-only scratch for rows that are not sampled. */
const NO_CELLS: Cell[] = [];

function emptyColumn(spec: ColumnSpec): ColumnProfile {
  const c: ColumnProfile = { count: 0, missing: 0, nonFinite: 0, typeErrors: 0, outOfRange: 0, min: null, max: null };
  if (spec.kind === 'numeric') c.hist = new Array((spec.edges?.length ?? 0) + 1).fill(0);
  else {
    c.categories = Object.fromEntries((spec.categories ?? []).map((k) => [k, 0]));
    c.newCategories = {};
    c.otherNew = 0;
  }
  return c;
}

/** Index of the bin holding v: the number of edges ≤ v (binary search). */
export function binIndex(edges: readonly number[], v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Category key of a value: numbers print as JavaScript does (1, 2.5), strings as they are. */
export function categoryKey(v: number | string): string {
  return typeof v === 'number' ? String(v) : v;
}

/**
 * Builds a profile row by row. `add` is the hot part of monitoring: a few comparisons and counter
 * increments per column, one hash per row, and a heap operation only for the rare rows the sample keeps.
 */
export class ProfileBuilder {
  readonly columns: ColumnProfile[];
  private readonly sample: BottomK<Cell[]>;
  private readonly newCatHeaps: (BottomK<string> | undefined)[];
  rows = 0;

  constructor(readonly schema: ProfileSchema) {
    this.columns = schema.columns.map(emptyColumn);
    this.sample = emptyBottomK(schema.sampleSize);
    this.newCatHeaps = schema.columns.map((c) => (c.kind === 'categorical' ? emptyBottomK<string>(schema.maxNewCategories) : undefined));
  }

  /**
   * Adds one row. `values[i]` is the raw value of column i (undefined when absent); `key` identifies the
   * row (request id and row index) so that sampling is the same wherever the row is profiled.
   * Only the first `upto` columns are counted.
   */
  add(values: readonly unknown[], key: string, upto = this.schema.columns.length): void {
    this.rows++;
    const { columns: specs } = this.schema;
    const sampling = this.schema.sampleSize > 0;
    // Cells exist only to be offered to the sample; offline full-data profiles skip them.
    const cells: Cell[] = sampling ? new Array(specs.length).fill(null) : NO_CELLS;
    // Columns from `upto` on are not counted (a refused request has inputs but no predictions).
    for (let i = 0; i < upto && i < specs.length; i++) {
      const spec = specs[i]!;
      const col = this.columns[i]!;
      const v = values[i];
      col.count++;
      if (v === null || v === undefined) {
        col.missing++;
        continue;
      }
      if (spec.kind === 'numeric') {
        if (typeof v !== 'number') {
          col.typeErrors++;
          continue;
        }
        if (!Number.isFinite(v)) {
          col.nonFinite++;
          continue;
        }
        if (col.min === null || v < col.min) col.min = v;
        if (col.max === null || v > col.max) col.max = v;
        if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) col.outOfRange++;
        col.hist![binIndex(spec.edges ?? [], v)]!++;
        cells[i] = v;
      } else {
        if (typeof v !== 'number' && typeof v !== 'string') {
          col.typeErrors++;
          continue;
        }
        if (typeof v === 'number' && !Number.isFinite(v)) {
          col.nonFinite++;
          continue;
        }
        if (typeof v === 'number') {
          if (col.min === null || v < col.min) col.min = v;
          if (col.max === null || v > col.max) col.max = v;
        }
        const k = categoryKey(v);
        cells[i] = k;
        const cats = col.categories!;
        if (cats[k] !== undefined) {
          cats[k]++;
          continue;
        }
        col.outOfRange++;
        this.countNew(i, col, k, 1);
      }
    }
    if (sampling) offer(this.sample, hash52(key), cells);
  }

  /** New categories: the `maxNewCategories` with the smallest hash keep their own count (mergeable exactly). */
  private countNew(i: number, col: ColumnProfile, k: string, n: number): void {
    const named = col.newCategories!;
    if (named[k] !== undefined) {
      named[k] += n;
      return;
    }
    const heap = this.newCatHeaps[i]!;
    const h = hash52(k);
    const full = heap.priorities.length >= heap.k;
    if (full && h >= heap.priorities[0]!) {
      col.otherNew! += n;
      return;
    }
    if (full) {
      // The evicted category can never come back: every later bound is smaller still.
      const evicted = heap.items[0]!;
      col.otherNew! += named[evicted]!;
      delete named[evicted];
    }
    offer(heap, h, k);
    named[k] = n;
  }

  /** Folds a finished profile (from another replica or window) into this one. */
  merge(other: DatasetProfile): void {
    this.rows += other.rows;
    for (let i = 0; i < this.columns.length; i++) {
      const a = this.columns[i]!;
      const b = other.columns[i]!;
      a.count += b.count;
      a.missing += b.missing;
      a.nonFinite += b.nonFinite;
      a.typeErrors += b.typeErrors;
      a.outOfRange += b.outOfRange;
      if (b.min !== null && (a.min === null || b.min < a.min)) a.min = b.min;
      if (b.max !== null && (a.max === null || b.max > a.max)) a.max = b.max;
      if (a.hist && b.hist) for (let j = 0; j < a.hist.length; j++) a.hist[j]! += b.hist[j] ?? 0;
      if (a.categories && b.categories) for (const [k, n] of Object.entries(b.categories)) a.categories[k] = (a.categories[k] ?? 0) + n;
      if (a.newCategories && b.newCategories) {
        a.otherNew! += b.otherNew ?? 0;
        for (const [k, n] of Object.entries(b.newCategories)) this.countNew(i, a, k, n);
      }
    }
    const incoming = emptyBottomK<Cell[]>(this.schema.sampleSize);
    for (let j = 0; j < other.samplePriorities.length; j++) offer(incoming, other.samplePriorities[j]!, other.sample[j]!);
    const merged = mergeBottomK(this.sample, incoming);
    this.sample.priorities = merged.priorities;
    this.sample.items = merged.items;
  }

  /** A plain, JSON-ready snapshot in canonical order. */
  finish(): DatasetProfile {
    const { priorities, items } = sortedItems(this.sample);
    return {
      rows: this.rows,
      columns: this.columns.map((c) => structuredClone(c)),
      samplePriorities: priorities,
      sample: items,
    };
  }
}

/** Merges profiles built on separate replicas (or windows) of the same schema. */
export function mergeProfiles(schema: ProfileSchema, profiles: readonly DatasetProfile[]): DatasetProfile {
  const b = new ProfileBuilder(schema);
  for (const p of profiles) b.merge(p);
  return b.finish();
}
