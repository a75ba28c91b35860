import { emptyBottomK, mergeBottomK, offer, sortedItems, type BottomK } from './bottom-k.ts';
import { hash52 } from './hash.ts';
import type { Cell, ColumnProfile, ColumnSpec, DatasetProfile, ProfileSchema } from './types.ts';

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
    const n = Math.min(upto, this.schema.columns.length);
    if (this.schema.sampleSize <= 0) {
      // Offline full-data profiles keep no sample, so no cells either.
      for (let i = 0; i < n; i++) this.count(i, values[i]);
      return;
    }
    // Cells exist only to be offered to the sample. Columns from `upto` on are not counted (a refused
    // request has inputs but no predictions) and stay null.
    const cells: Cell[] = new Array(this.schema.columns.length).fill(null);
    for (let i = 0; i < n; i++) cells[i] = this.count(i, values[i]);
    offer(this.sample, hash52(key), cells);
  }

  /**
   * Adds rows [start, end) of a table held column by column (`columns[i]` is schema column i): the same
   * counts as `add` row by row, without a row array per row, and a tight loop for numeric Float64Array
   * columns — the offline report over whole tables. A NaN in a Float64Array column is a missing cell,
   * as in a ColumnarTable. Only for schemas without a sample, which needs each row's key.
   */
  addColumns(columns: readonly (Float64Array | readonly unknown[])[], start: number, end: number): void {
    const specs = this.schema.columns;
    if (this.schema.sampleSize > 0) throw new RangeError('addColumns: a profile with a row sample needs each row\'s key; use add');
    if (columns.length !== specs.length) throw new RangeError(`addColumns: ${columns.length} columns for a schema of ${specs.length}`);
    for (let i = 0; i < specs.length; i++) {
      const values = columns[i]!;
      if (values instanceof Float64Array) {
        if (specs[i]!.kind === 'numeric') this.countNumbers(i, values, start, end);
        else this.countCodes(i, values, start, end);
      } else for (let r = start; r < end; r++) this.count(i, values[r]);
    }
    this.rows += end - start;
  }

  /** Counts one cell of column i and returns what the row sample keeps of it. */
  private count(i: number, v: unknown): Cell {
    const spec = this.schema.columns[i]!;
    const col = this.columns[i]!;
    col.count++;
    if (v === null || v === undefined) {
      col.missing++;
      return null;
    }
    if (spec.kind === 'numeric') {
      if (typeof v !== 'number') {
        col.typeErrors++;
        return null;
      }
      if (!Number.isFinite(v)) {
        col.nonFinite++;
        return null;
      }
      if (col.min === null || v < col.min) col.min = v;
      if (col.max === null || v > col.max) col.max = v;
      if ((spec.min !== undefined && v < spec.min) || (spec.max !== undefined && v > spec.max)) col.outOfRange++;
      col.hist![binIndex(spec.edges ?? [], v)]!++;
      return v;
    }
    if (typeof v !== 'number' && typeof v !== 'string') {
      col.typeErrors++;
      return null;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      col.nonFinite++;
      return null;
    }
    if (typeof v === 'number') {
      if (col.min === null || v < col.min) col.min = v;
      if (col.max === null || v > col.max) col.max = v;
    }
    const k = categoryKey(v);
    const cats = col.categories!;
    if (cats[k] !== undefined) cats[k]++;
    else {
      col.outOfRange++;
      this.countNew(i, col, k, 1);
    }
    return k;
  }

  /** `count` over rows [start, end) of a numeric Float64Array column (NaN = missing), with the counters in locals. */
  private countNumbers(i: number, values: Float64Array, start: number, end: number): void {
    const spec = this.schema.columns[i]!;
    const col = this.columns[i]!;
    const edges = spec.edges ?? [];
    const hist = col.hist!;
    const lo = spec.min;
    const hi = spec.max;
    // Finite values never reach ±Infinity, so these stand for "none yet" exactly like null.
    let min = col.min ?? Infinity;
    let max = col.max ?? -Infinity;
    let missing = 0;
    let nonFinite = 0;
    let outOfRange = 0;
    for (let r = start; r < end; r++) {
      const v = values[r]!;
      if (v !== v) {
        missing++;
        continue;
      }
      if (v === Infinity || v === -Infinity) {
        nonFinite++;
        continue;
      }
      if (v < min) min = v;
      if (v > max) max = v;
      if ((lo !== undefined && v < lo) || (hi !== undefined && v > hi)) outOfRange++;
      hist[binIndex(edges, v)]!++;
    }
    col.count += end - start;
    col.missing += missing;
    col.nonFinite += nonFinite;
    col.outOfRange += outOfRange;
    if (min !== Infinity) col.min = min;
    if (max !== -Infinity) col.max = max;
  }

  /**
   * `count` over rows [start, end) of a categorical Float64Array column (NaN = missing): tallies each
   * distinct value, then files each tally once under its category key. Exact, because where a new
   * category's occurrences end up (its own count or `otherNew`) depends only on its hash and the final
   * heap bound, not on the order of rows; distinct values are filed in first-seen order, so the
   * profile's key order is the row-by-row one too.
   */
  private countCodes(i: number, values: Float64Array, start: number, end: number): void {
    const col = this.columns[i]!;
    let min = col.min ?? Infinity;
    let max = col.max ?? -Infinity;
    let missing = 0;
    let nonFinite = 0;
    const tally = new Map<number, number>();
    for (let r = start; r < end; r++) {
      const v = values[r]!;
      if (v !== v) {
        missing++;
        continue;
      }
      if (v === Infinity || v === -Infinity) {
        nonFinite++;
        continue;
      }
      if (v < min) min = v;
      if (v > max) max = v;
      // Map keys compare by SameValueZero, so −0 tallies with 0: both have the key "0".
      tally.set(v, (tally.get(v) ?? 0) + 1);
    }
    col.count += end - start;
    col.missing += missing;
    col.nonFinite += nonFinite;
    if (min !== Infinity) col.min = min;
    if (max !== -Infinity) col.max = max;
    const cats = col.categories!;
    for (const [v, n] of tally) {
      const k = categoryKey(v);
      if (cats[k] !== undefined) cats[k] += n;
      else {
        col.outOfRange += n;
        this.countNew(i, col, k, n);
      }
    }
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
    // With a bound of 0 the heap stays empty: every new category is counted together.
    if (full && (heap.k === 0 || h >= heap.priorities[0]!)) {
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
      columns: this.columns.map(canonicalColumn),
      samplePriorities: priorities,
      sample: items,
    };
  }
}

/** A copy with new categories in key order, so equal profiles serialize identically whatever order rows came in. */
function canonicalColumn(c: ColumnProfile): ColumnProfile {
  const out = structuredClone(c);
  if (out.newCategories) out.newCategories = Object.fromEntries(Object.entries(out.newCategories).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return out;
}

/** Merges profiles built on separate replicas (or windows) of the same schema. */
export function mergeProfiles(schema: ProfileSchema, profiles: readonly DatasetProfile[]): DatasetProfile {
  const b = new ProfileBuilder(schema);
  for (const p of profiles) b.merge(p);
  return b.finish();
}
