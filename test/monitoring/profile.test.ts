// Profiles must merge exactly: the profiles replicas build on disjoint shares of the traffic, merged,
// are the profile one process would have built over all of it (counts, histograms, categories, the
// bounded new-category table and the bottom-k sample alike). Data: the UCI bike-sharing table plus
// injected faults, split across replicas by a seeded generator so failures reproduce.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CATEGORICAL_MAX_UNIQUE,
  ProfileBuilder,
  binIndex,
  hash52,
  inferSchema,
  mergeProfiles,
  quantileEdges,
  tableFromCsv,
  type DatasetProfile,
  type ProfileSchema,
} from '../../src/monitoring/index.ts';
import { mulberry32 as rng } from '../../src/random.ts';


function shuffle<T>(xs: T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const bikes = tableFromCsv(readFileSync(new URL('../../data/bike-sharing/hour.csv', import.meta.url)));
const COLUMNS = ['dteday', 'season', 'yr', 'hr', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', 'cnt'];
const col = (name: string) => bikes.names.indexOf(name);
const pick = (row: unknown[]) => COLUMNS.map((c) => row[col(c)]);
const yr = col('yr');
const reference = { names: COLUMNS, rows: bikes.rows.filter((r) => r[yr] === 0).map(pick) };

const SAMPLE = 400;
const MAX_NEW = 7;
const schema: ProfileSchema = inferSchema(reference, { predictionColumns: ['cnt'], bins: 12, sampleSize: SAMPLE, maxNewCategories: MAX_NEW });
const at = (name: string) => COLUMNS.indexOf(name);

/** 2012 rows (every date a new category) with faults injected into about one cell in ten. */
function currentRows(seed: number): unknown[][] {
  const rand = rng(seed);
  const faults: unknown[] = [null, undefined, NaN, Infinity, -Infinity, 'n/a', '0.5', { v: 1 }, true, 1e9, -5];
  return bikes.rows
    .filter((r) => r[yr] === 1)
    .map(pick)
    .map((row) => {
      for (let j = 0; j < row.length; j++) if (rand() < 0.1) row[j] = faults[Math.floor(rand() * faults.length)];
      // Unseen categories of a column whose reference categories are numbers: 5 and 7 are not seasons.
      if (rand() < 0.02) row[at('season')] = rand() < 0.5 ? 5 : 7;
      if (rand() < 0.01) row[at('weathersit')] = `storm-${Math.floor(rand() * 30)}`;
      return row;
    });
}

const rows = currentRows(7);
const keyOf = (i: number) => `req-${i}:0`;

function build(indices: readonly number[]): DatasetProfile {
  const b = new ProfileBuilder(schema);
  for (const i of indices) b.add(rows[i]!, keyOf(i));
  return b.finish();
}

const all = rows.map((_, i) => i);
const single = build(all);

/** Splits row indices at random across `n` replicas; each replica sees its share in shuffled order. */
function replicas(n: number, seed: number): number[][] {
  const rand = rng(seed);
  const parts: number[][] = Array.from({ length: n }, () => []);
  for (const i of all) parts[Math.floor(rand() * n)]!.push(i);
  return parts.map((p) => shuffle(p, rand));
}

describe('the dataset the merge property runs on', () => {
  it('exercises every part of the profile', () => {
    expect(rows.length).toBeGreaterThan(SAMPLE * 10);
    expect(single.rows).toBe(rows.length);
    expect(single.sample).toHaveLength(SAMPLE);
    const date = single.columns[at('dteday')]!;
    // 366 dates of 2012 are new, far beyond the named-category bound.
    expect(Object.keys(date.newCategories!)).toHaveLength(MAX_NEW);
    expect(date.otherNew).toBeGreaterThan(0);
    const season = single.columns[at('season')]!;
    expect(season.newCategories!['5']! + season.newCategories!['7']!).toBeGreaterThan(0);
    const temp = single.columns[at('temp')]!;
    expect(temp.missing).toBeGreaterThan(0);
    expect(temp.nonFinite).toBeGreaterThan(0);
    expect(temp.typeErrors).toBeGreaterThan(0);
    expect(temp.outOfRange).toBeGreaterThan(0);
    expect(temp.max).toBe(1e9);
    expect(temp.min).toBe(-5);
  });
});

describe('mergeProfiles', () => {
  it.each([
    [2, 11],
    [2, 12],
    [3, 13],
    [3, 14],
  ])('merges %i replicas into exactly the single-process profile (seed %i)', (n, seed) => {
    const parts = replicas(n, seed).map(build);
    expect(parts.every((p) => p.rows > 0)).toBe(true);
    expect(mergeProfiles(schema, parts)).toEqual(single);
    // Merge order does not matter either.
    expect(mergeProfiles(schema, [...parts].reverse())).toEqual(single);
  });

  it('is associative: merging merged profiles gives the same profile', () => {
    const [a, b, c] = replicas(3, 21).map(build) as [DatasetProfile, DatasetProfile, DatasetProfile];
    expect(mergeProfiles(schema, [mergeProfiles(schema, [a, b]), c])).toEqual(single);
    expect(mergeProfiles(schema, [a, mergeProfiles(schema, [c, b])])).toEqual(single);
  });

  it('merges profiles that went through JSON (as stored) into the same profile', () => {
    const parts = replicas(3, 31)
      .map(build)
      .map((p) => JSON.parse(JSON.stringify(p)) as DatasetProfile);
    expect(mergeProfiles(schema, parts)).toEqual(single);
  });

  it('serializes the merged profile exactly like the single-process one (canonical key order)', () => {
    const parts = replicas(3, 41).map(build);
    expect(JSON.stringify(mergeProfiles(schema, parts))).toBe(JSON.stringify(single));
  });

  it('folds a finished profile into a builder that already holds rows', () => {
    const [mine, theirs] = replicas(2, 51) as [number[], number[]];
    const b = new ProfileBuilder(schema);
    for (const i of mine) b.add(rows[i]!, keyOf(i));
    b.merge(build(theirs));
    expect(b.finish()).toEqual(single);
  });

  it('keeps one copy of a row profiled on two replicas (same key)', () => {
    const b = new ProfileBuilder(schema);
    b.add(rows[0]!, keyOf(0));
    b.add(rows[0]!, keyOf(0));
    expect(b.finish().sample).toHaveLength(1);
    const merged = mergeProfiles(schema, [build([0]), build([0])]);
    expect(merged.sample).toEqual(build([0]).sample);
  });

  it('merges into an empty profile when given none', () => {
    const empty = mergeProfiles(schema, []);
    expect(empty.rows).toBe(0);
    expect(empty.sample).toEqual([]);
    expect(empty).toEqual(new ProfileBuilder(schema).finish());
  });
});

describe('bins', () => {
  it('cuts sorted values at quantiles, collapsing ties, with the minimum as first edge', () => {
    const one2ten = Float64Array.from({ length: 10 }, (_, i) => i + 1);
    expect(quantileEdges(one2ten, 5)).toEqual([1, 3, 5, 7, 9]);
    expect(quantileEdges(one2ten, 2)).toEqual([1, 6]);
    expect(quantileEdges(Float64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 2, 3]), 5)).toEqual([1, 2]);
    expect(quantileEdges(Float64Array.from([4, 4, 4]), 20)).toEqual([4]);
    expect(quantileEdges(new Float64Array(0), 20)).toEqual([]);
  });

  it('binIndex counts the edges ≤ v: bins (-∞,e0), [e0,e1), …, [e_last,+∞)', () => {
    const edges = [1, 3, 5];
    expect(binIndex(edges, -Infinity)).toBe(0);
    expect(binIndex(edges, 0.999)).toBe(0);
    expect(binIndex(edges, 1)).toBe(1);
    expect(binIndex(edges, 2.99)).toBe(1);
    expect(binIndex(edges, 3)).toBe(2);
    expect(binIndex(edges, 4.99)).toBe(2);
    expect(binIndex(edges, 5)).toBe(3);
    expect(binIndex(edges, 1e300)).toBe(3);
    expect(binIndex([], 42)).toBe(0);
  });

  it('inferSchema bins numeric columns at reference quantiles; the reference never lands in the underflow bin', () => {
    const temps = reference.rows.map((r) => r[at('temp')] as number);
    const spec = schema.columns[at('temp')]!;
    expect(spec.kind).toBe('numeric');
    expect(spec.edges).toEqual(quantileEdges(Float64Array.from(temps).sort(), 12));
    expect(spec.edges![0]).toBe(Math.min(...temps));
    expect(spec.min).toBe(Math.min(...temps));
    expect(spec.max).toBe(Math.max(...temps));
    const ref = new ProfileBuilder(schema);
    reference.rows.forEach((r, i) => ref.add(r, `ref:${i}`));
    const hist = ref.finish().columns[at('temp')]!.hist!;
    expect(hist).toHaveLength(spec.edges!.length + 1);
    expect(hist[0]).toBe(0);
    expect(hist.reduce((a, b) => a + b, 0)).toBe(reference.rows.length);
    // Each bin holds what binIndex says.
    const expected = new Array(hist.length).fill(0);
    for (const t of temps) expected[binIndex(spec.edges!, t)]++;
    expect(hist).toEqual(expected);
  });
});

describe('kind inference', () => {
  const table = {
    names: ['int10', 'int11', 'floats', 'strings', 'mixed', 'bools', 'empty'],
    rows: Array.from({ length: 200 }, (_, i) => [i % CATEGORICAL_MAX_UNIQUE, i % 11, (i % 2) + 0.5, `s${i % 3}`, i % 2 ? 'x' : 1, i % 2 === 0, null]),
  };
  const s = inferSchema(table);
  const spec = (name: string) => s.columns.find((c) => c.name === name)!;

  it('treats integers with at most 10 distinct values as categorical, more as numeric', () => {
    expect(spec('int10').kind).toBe('categorical');
    expect(spec('int10').categories).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(spec('int10').uniqueCount).toBe(10);
    expect(spec('int11').kind).toBe('numeric');
    expect(spec('int11').uniqueCount).toBe(11);
  });

  it('treats non-integer numbers as numeric, even with two values', () => {
    expect(spec('floats').kind).toBe('numeric');
    expect(spec('floats').uniqueCount).toBe(2);
    expect(spec('floats').edges).toEqual([0.5, 1.5]);
  });

  it('treats strings and mixed values as categorical', () => {
    expect(spec('strings').kind).toBe('categorical');
    expect(spec('strings').categories).toEqual(['s0', 's1', 's2']);
    expect(spec('mixed').kind).toBe('categorical');
    expect(spec('mixed').categories).toEqual(['1', 'x']);
    expect(spec('bools').kind).toBe('categorical');
  });

  it('honours explicit kinds, roles, ranges and defaults', () => {
    const t = inferSchema(table, {
      columns: ['int10', 'int11'],
      numeric: ['int10'],
      categorical: ['int11'],
      predictionColumns: ['int11'],
      ranges: { int10: { min: -1 } },
    });
    expect(t.columns.map((c) => [c.name, c.kind, c.role])).toEqual([
      ['int10', 'numeric', 'feature'],
      ['int11', 'categorical', 'prediction'],
    ]);
    expect([t.columns[0]!.min, t.columns[0]!.max]).toEqual([-1, 9]);
    expect(t.sampleSize).toBe(5000);
    expect(t.maxNewCategories).toBe(50);
  });

  it('refuses a column the reference does not have', () => {
    expect(() => inferSchema(table, { columns: ['int10', 'nope'] })).toThrow(/"nope" is not in the reference/);
    expect(() => inferSchema(table, { categorical: ['nope'] })).toThrow(/nope/);
  });
});

describe('counts', () => {
  const s: ProfileSchema = {
    columns: [
      { name: 'x', kind: 'numeric', role: 'feature', edges: [0, 5], min: 0, max: 10 },
      { name: 'c', kind: 'categorical', role: 'feature', categories: ['a', 'b'] },
    ],
    sampleSize: 100,
    maxNewCategories: 2,
  };
  const values: [unknown, unknown][] = [
    [1, 'a'],
    [6, 'b'],
    [null, 'a'],
    [undefined, null],
    [NaN, NaN],
    [Infinity, -Infinity],
    ['5', { a: 1 }],
    [{}, true],
    [11, 'z'],
    [-1, 3],
    [10, 'y'],
    [0, 'w'],
    [5, 'z'],
  ];
  const b = new ProfileBuilder(s);
  values.forEach((r, i) => b.add(r, `k${i}`));
  b.add([], 'absent');
  const p = b.finish();

  it('counts missing, non-finite, mistyped and out-of-range numeric values', () => {
    const x = p.columns[0]!;
    expect(p.rows).toBe(14);
    expect(x.count).toBe(14);
    expect(x.missing).toBe(3);
    expect(x.nonFinite).toBe(2);
    expect(x.typeErrors).toBe(2);
    expect(x.outOfRange).toBe(2);
    expect([x.min, x.max]).toEqual([-1, 11]);
    // -1 underflows; 0, 1 in [0,5); 5, 6, 10, 11 in [5,∞).
    expect(x.hist).toEqual([1, 2, 4]);
  });

  it('counts categorical faults and unseen categories, keeping the bound on named ones', () => {
    const c = p.columns[1]!;
    expect(c.count).toBe(14);
    expect(c.missing).toBe(2);
    expect(c.nonFinite).toBe(2);
    expect(c.typeErrors).toBe(2);
    expect(c.categories).toEqual({ a: 2, b: 1 });
    // New: z twice, 3, y, w — five occurrences of four categories; two kept by name (smallest hashes).
    expect(c.outOfRange).toBe(5);
    const news = ['z', '3', 'y', 'w'].sort((u, v) => hash52(u) - hash52(v));
    const counts: Record<string, number> = { z: 2, 3: 1, y: 1, w: 1 };
    expect(c.newCategories).toEqual({ [news[0]!]: counts[news[0]!], [news[1]!]: counts[news[1]!] });
    expect(c.otherNew).toBe(counts[news[2]!]! + counts[news[3]!]!);
    expect([c.min, c.max]).toEqual([3, 3]);
  });

  it('counts every new category together when the named bound is 0', () => {
    const z = new ProfileBuilder({ ...s, maxNewCategories: 0 });
    for (const c of ['x', 'y', 'x', 'a']) z.add([1, c], c);
    const c = z.finish().columns[1]!;
    expect(c.newCategories).toEqual({});
    expect(c.otherNew).toBe(3);
    expect(c.outOfRange).toBe(3);
  });

  it('samples valid cells only: invalid values become null', () => {
    const byKey = new Map(values.map((_, i) => [hash52(`k${i}`), i]));
    p.sample.forEach((cells, j) => {
      const i = byKey.get(p.samplePriorities[j]!);
      if (i === undefined) return expect(cells).toEqual([null, null]);
      const [x, c] = values[i]!;
      expect(cells[0]).toBe(typeof x === 'number' && Number.isFinite(x) ? x : null);
      expect(cells[1]).toBe(typeof c === 'string' ? c : typeof c === 'number' && Number.isFinite(c) ? String(c) : null);
    });
  });

  it('counts only the leading `upto` columns', () => {
    const u = new ProfileBuilder(s);
    u.add([1, 'a'], 'r1', 1);
    u.add([null, 'zz'], 'r2', 1);
    u.add([2, 'b'], 'r3');
    const q = u.finish();
    expect(q.rows).toBe(3);
    expect(q.columns[0]!.count).toBe(3);
    expect(q.columns[0]!.missing).toBe(1);
    expect(q.columns[1]!.count).toBe(1);
    expect(q.columns[1]!.categories).toEqual({ a: 0, b: 1 });
    expect(q.columns[1]!.outOfRange).toBe(0);
    const sampled = new Map(q.samplePriorities.map((h, j) => [h, q.sample[j]]));
    expect(sampled.get(hash52('r1'))).toEqual([1, null]);
    expect(sampled.get(hash52('r3'))).toEqual([2, 'b']);
  });
});

describe('the sample', () => {
  const N = 20_000;
  const K = 1000;
  const s: ProfileSchema = { columns: [{ name: 'i', kind: 'numeric', role: 'feature', edges: [] }], sampleSize: K, maxNewCategories: 0 };
  const sampleOf = (order: number[], prefix = 'req') => {
    const b = new ProfileBuilder(s);
    for (const i of order) b.add([i], `${prefix}-${i}`);
    return b.finish();
  };
  const order = Array.from({ length: N }, (_, i) => i);
  const p = sampleOf(order);

  it('holds exactly the k rows whose keys hash lowest, in ascending priority', () => {
    expect(p.sample).toHaveLength(K);
    const lowest = order.map((i) => [hash52(`req-${i}`), i] as const).sort((a, b) => a[0] - b[0]).slice(0, K);
    expect(p.samplePriorities).toEqual(lowest.map(([h]) => h));
    expect(p.sample).toEqual(lowest.map(([, i]) => [i]));
  });

  it('looks uniform over the rows', () => {
    const values = p.sample.map((r) => r[0] as number);
    expect(new Set(values).size).toBe(K);
    // Ten deciles of 100 expected rows each (sd ≈ 9.5): every one within 5 sd.
    const deciles = new Array(10).fill(0);
    for (const v of values) deciles[Math.floor((v / N) * 10)]++;
    for (const d of deciles) expect(Math.abs(d - K / 10)).toBeLessThan(48);
    const mean = values.reduce((a, b) => a + b, 0) / K;
    expect(Math.abs(mean - N / 2)).toBeLessThan(0.05 * N);
  });

  it('depends on the keys only, not on the order rows arrive in', () => {
    expect(sampleOf([...order].reverse())).toEqual(p);
    expect(sampleOf(shuffle(order, rng(3)))).toEqual(p);
    const other = sampleOf(order, 'other');
    const overlap = other.sample.filter((r) => p.samplePriorities.includes(hash52(`req-${r[0] as number}`))).length;
    expect(overlap).toBeLessThan(K / 2);
  });

  it('is empty when the sample size is 0 (offline full-data profiles)', () => {
    const b = new ProfileBuilder({ ...s, sampleSize: 0 });
    for (let i = 0; i < 100; i++) b.add([i], `r${i}`);
    const q = b.finish();
    expect(q.sample).toEqual([]);
    expect(q.columns[0]!.count).toBe(100);
    // Merging a sampled profile into a schema without a sample keeps none of it.
    expect(mergeProfiles({ ...s, sampleSize: 0 }, [p]).sample).toEqual([]);
  });
});
