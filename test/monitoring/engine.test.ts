// The drift engine: default test selection (Evidently's documented rule), overrides, decision
// direction, dataset and prediction drift, config validation, data-quality checks — and that each
// score is the statistic of drift/stats on the same data, so the engine adds choice, not arithmetic.
import { describe, expect, it } from 'vitest';
import {
  DRIFT_TESTS,
  ProfileBuilder,
  SMALL_REFERENCE_ROWS,
  alignedCounts,
  checkDriftConfig,
  defaultTest,
  evaluateDrift,
  evaluateQuality,
  inferSchema,
  type DatasetProfile,
  type DriftConfig,
  type DriftTestName,
  type ProfileSchema,
  type Table,
} from '../../src/monitoring/index.ts';
import * as stats from '../../src/monitoring/drift/stats/index.ts';
import { mulberry32 as rng } from '../../src/random.ts';


function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function profileOf(schema: ProfileSchema, rows: readonly unknown[][], prefix: string): DatasetProfile {
  const b = new ProfileBuilder(schema);
  rows.forEach((r, i) => b.add(r, `${prefix}:${i}`));
  return b.finish();
}

/** Columns with a chosen number of distinct values; all cycle through their values. */
function selectionTable(n: number): Table {
  return {
    names: ['num6', 'num5', 'num3', 'num2', 'cat3', 'cat2', 'cat1', 'str3'],
    rows: Array.from({ length: n }, (_, i) => [(i % 6) + 0.5, (i % 5) + 0.5, (i % 3) + 0.5, (i % 2) + 0.5, i % 3, i % 2, 7, `s${i % 3}`]),
  };
}

function selected(n: number): Record<string, DriftTestName> {
  const t = selectionTable(n);
  const schema = inferSchema(t, { sampleSize: 2000 });
  const p = profileOf(schema, t.rows, 'r');
  const report = evaluateDrift(schema, p, p);
  return Object.fromEntries(report.columns.map((c) => [c.column, c.test]));
}

describe('default test selection (Evidently)', () => {
  it('with at most 1,000 reference rows: ks for numeric > 5 unique, chisquare for > 2 values, else z', () => {
    expect(SMALL_REFERENCE_ROWS).toBe(1000);
    expect(selected(1000)).toEqual({
      num6: 'ks',
      num5: 'chisquare',
      num3: 'chisquare',
      num2: 'z',
      cat3: 'chisquare',
      cat2: 'z',
      cat1: 'z',
      str3: 'chisquare',
    });
  });

  it('with more than 1,000 reference rows: normed Wasserstein for numeric > 5 unique, else Jensen–Shannon', () => {
    expect(selected(1001)).toEqual({
      num6: 'wasserstein',
      num5: 'jensenshannon',
      num3: 'jensenshannon',
      num2: 'jensenshannon',
      cat3: 'jensenshannon',
      cat2: 'jensenshannon',
      cat1: 'jensenshannon',
      str3: 'jensenshannon',
    });
  });

  it('follows the rule at its boundaries', () => {
    expect(defaultTest('numeric', 6, 1000)).toBe('ks');
    expect(defaultTest('numeric', 6, 1001)).toBe('wasserstein');
    expect(defaultTest('numeric', 5, 1000)).toBe('chisquare');
    expect(defaultTest('numeric', 3, 1000)).toBe('chisquare');
    expect(defaultTest('numeric', 2, 1000)).toBe('z');
    expect(defaultTest('categorical', 1000, 1000)).toBe('chisquare');
    expect(defaultTest('categorical', 3, 1)).toBe('chisquare');
    expect(defaultTest('categorical', 2, 0)).toBe('z');
    expect(defaultTest('categorical', 1000, 1001)).toBe('jensenshannon');
    expect(defaultTest('numeric', 5, 1e6)).toBe('jensenshannon');
  });

  it('uses the categories, then "many", when a hand-written schema has no unique count', () => {
    const schema: ProfileSchema = {
      columns: [
        { name: 'x', kind: 'numeric', role: 'feature', edges: [0, 1] },
        { name: 'c', kind: 'categorical', role: 'feature', categories: ['a', 'b'] },
      ],
      sampleSize: 100,
      maxNewCategories: 5,
    };
    const p = profileOf(schema, [[0.5, 'a'], [0.7, 'b'], [0.2, 'a']], 'r');
    expect(evaluateDrift(schema, p, p).columns.map((c) => c.test)).toEqual(['ks', 'z']);
  });
});

// Four numeric features (a and b shift in the current window), a categorical feature, and a prediction.
const rand = rng(11);
const N_REF = 600;
const N_CUR = 400;
const refRows = Array.from({ length: N_REF }, () => [normal(rand), normal(rand), normal(rand), normal(rand), ['x', 'y', 'z'][Math.floor(rand() * 3)], 10 + normal(rand)]);
const curRows = Array.from({ length: N_CUR }, () => [normal(rand) + 1.5, normal(rand) * 3, normal(rand), normal(rand), ['x', 'y', 'z'][Math.floor(rand() * 3)], 12 + normal(rand)]);
const table: Table = { names: ['a', 'b', 'c', 'd', 'k', 'pred'], rows: refRows };
const schema = inferSchema(table, { predictionColumns: ['pred'], sampleSize: 1000, bins: 10 });
const ref = profileOf(schema, refRows, 'ref');
const cur = profileOf(schema, curRows, 'cur');
const column = (r: ReturnType<typeof evaluateDrift>, name: string) => r.columns.find((c) => c.column === name)!;

describe('evaluateDrift', () => {
  const report = evaluateDrift(schema, ref, cur);

  it('flags the shifted features and the prediction', () => {
    expect(report.columns.map((c) => [c.column, c.test, c.drift])).toEqual([
      ['a', 'ks', true],
      ['b', 'ks', true],
      ['c', 'ks', false],
      ['d', 'ks', false],
      ['k', 'chisquare', false],
      ['pred', 'ks', true],
    ]);
    expect(column(report, 'pred').role).toBe('prediction');
    expect(report.predictionDrift).toBe(true);
    for (const c of report.columns) expect([c.referenceRows, c.currentRows]).toEqual([N_REF, N_CUR]);
  });

  it('decides dataset drift from the share of drifted features only (predictions do not count)', () => {
    // 2 of 5 features drifted; the drifted prediction is not in the share.
    expect(report.driftShare).toBeCloseTo(2 / 5, 12);
    expect(report.datasetDriftShare).toBe(0.5);
    expect(report.datasetDrift).toBe(false);
    expect(evaluateDrift(schema, ref, cur, { datasetDriftShare: 0.4 }).datasetDrift).toBe(true);
    // Turning one more feature's test into a sure drift reaches exactly 3/5 ≥ 0.5 … and 0.6.
    const more: DriftConfig = { columns: { c: { threshold: 1.01 } }, datasetDriftShare: 0.6 };
    const r = evaluateDrift(schema, ref, cur, more);
    expect(r.driftShare).toBeCloseTo(0.6, 12);
    expect(r.datasetDrift).toBe(true);
    // The prediction drifting alone never makes dataset drift.
    const same = evaluateDrift(schema, ref, profileOf(schema, refRows.map((row) => [...row.slice(0, 5), 50]), 'p'));
    expect(same.predictionDrift).toBe(true);
    expect(same.driftShare).toBe(0);
    expect(same.datasetDrift).toBe(false);
  });

  it('compares p-values below the threshold and distances at or above it', () => {
    const a = column(report, 'a');
    expect(a.scoreKind).toBe('p_value');
    expect(a.threshold).toBe(0.05);
    const p = column(report, 'c').score;
    const pv = (threshold: number) => column(evaluateDrift(schema, ref, cur, { columns: { c: { threshold } } }), 'c').drift;
    expect(pv(p)).toBe(false);
    expect(pv(p * 1.000001)).toBe(true);
    const w = column(evaluateDrift(schema, ref, cur, { columns: { a: { test: 'wasserstein' } } }), 'a');
    expect(w).toMatchObject({ scoreKind: 'distance', threshold: 0.1, drift: true });
    const dist = (threshold: number) => column(evaluateDrift(schema, ref, cur, { columns: { a: { test: 'wasserstein', threshold } } }), 'a').drift;
    expect(dist(w.score)).toBe(true);
    expect(dist(w.score * 1.000001)).toBe(false);
  });

  it('applies per-column test and threshold overrides', () => {
    const config: DriftConfig = {
      columns: { a: { test: 'psi', threshold: 0.3 }, b: { test: 'anderson' }, k: { test: 'tv', threshold: 0.5 }, pred: { threshold: 0 } },
    };
    const r = evaluateDrift(schema, ref, cur, config);
    expect(column(r, 'a')).toMatchObject({ test: 'psi', threshold: 0.3, scoreKind: 'distance' });
    expect(column(r, 'b')).toMatchObject({ test: 'anderson', threshold: DRIFT_TESTS.anderson.threshold, scoreKind: 'p_value' });
    expect(column(r, 'k')).toMatchObject({ test: 'tv', threshold: 0.5, drift: false });
    expect(column(r, 'pred')).toMatchObject({ test: 'ks', threshold: 0, drift: false });
    expect(r.predictionDrift).toBe(false);
    expect(column(r, 'c')).toMatchObject({ test: 'ks', threshold: 0.05 });
  });

  it('is pure: the same inputs give the same report', () => {
    expect(evaluateDrift(schema, ref, cur)).toEqual(report);
    expect(evaluateDrift(schema, { profile: ref }, { profile: cur })).toEqual(report);
  });

  it('skips columns without valid values and leaves them out of the share', () => {
    const blank = curRows.map((r) => [r[0], r[1], r[2], null, null, r[5]]);
    const r = evaluateDrift(schema, ref, profileOf(schema, blank, 'blank'));
    expect(column(r, 'd')).toMatchObject({ drift: false, skipped: 'fewer than 2 valid values on one side' });
    expect(column(r, 'd').score).toBeNaN();
    expect(column(r, 'k')).toMatchObject({ drift: false, skipped: 'no valid values on one side' });
    expect(r.driftShare).toBeCloseTo(2 / 3, 12);
    expect(r.datasetDrift).toBe(true);
    const nothing = profileOf(schema, [], 'none');
    const empty = evaluateDrift(schema, ref, nothing);
    expect(empty.columns.every((c) => c.skipped !== undefined && !c.drift)).toBe(true);
    expect(empty).toMatchObject({ driftShare: 0, datasetDrift: false, predictionDrift: false });
  });
});

describe('scores equal the statistics called directly', () => {
  const sampleValues = (p: DatasetProfile, i: number) => Float64Array.from(p.sample.map((r) => r[i]).filter((v): v is number => typeof v === 'number'));
  const run = (name: string, test: DriftTestName) => column(evaluateDrift(schema, ref, cur, { columns: { [name]: { test } } }), name);

  it('runs sample tests on the profiles’ samples (here every row: sample size ≥ rows)', () => {
    const a = sampleValues(ref, 0);
    const b = sampleValues(cur, 0);
    expect(a.length).toBe(N_REF);
    expect(b.length).toBe(N_CUR);
    const ks = stats.ks2(a, b);
    expect(run('a', 'ks')).toMatchObject({ score: ks.pValue, statistic: ks.statistic });
    const cvm = stats.cvm2(a, b);
    expect(run('a', 'cramer_von_mises')).toMatchObject({ score: cvm.pValue, statistic: cvm.statistic });
    const ad = stats.andersonKsamp([a, b]);
    expect(run('a', 'anderson')).toMatchObject({ score: ad.pValue, statistic: ad.statistic });
    expect(run('a', 'wasserstein').score).toBe(stats.wassersteinNormed(a, b));
    expect(run('a', 'energy').score).toBe(stats.energyDistance(a, b));
  });

  it('runs sample tests on the values a side supplies (offline: every value)', () => {
    const all = (rows: unknown[][]) => (i: number) => Float64Array.from(rows.map((r) => r[i] as number));
    const small: ProfileSchema = { ...schema, sampleSize: 50 };
    const refP = profileOf(small, refRows, 'ref');
    const curP = profileOf(small, curRows, 'cur');
    const r = evaluateDrift(small, { profile: refP, values: all(refRows) }, { profile: curP, values: all(curRows) });
    const ks = stats.ks2(all(refRows)(1), all(curRows)(1));
    expect(column(r, 'b')).toMatchObject({ score: ks.pValue, statistic: ks.statistic });
    // Without values, the bounded sample is used.
    const fromSample = evaluateDrift(small, refP, curP);
    expect(column(fromSample, 'b').score).toBe(stats.ks2(sampleValues(refP, 1), sampleValues(curP, 1)).pValue);
  });

  it('runs count tests on the aligned histogram or category counts', () => {
    const hist = alignedCounts(schema.columns[0]!, ref.columns[0]!, cur.columns[0]!);
    expect(hist.ref).toEqual(ref.columns[0]!.hist);
    expect(hist.cur).toEqual(cur.columns[0]!.hist);
    expect(run('a', 'psi').score).toBe(stats.psi(hist.ref, hist.cur));
    expect(run('a', 'kl').score).toBe(stats.kl(hist.cur, hist.ref));
    expect(run('a', 'jensenshannon').score).toBe(stats.jensenShannon(hist.ref, hist.cur));
    expect(run('a', 'hellinger').score).toBe(stats.hellinger(hist.ref, hist.cur));
    expect(run('a', 'tv').score).toBe(stats.totalVariation(hist.ref, hist.cur));
    const cats = alignedCounts(schema.columns[4]!, ref.columns[4]!, cur.columns[4]!);
    expect(cats.labels).toEqual(['x', 'y', 'z']);
    const chi = stats.chi2Contingency([cats.ref, cats.cur]);
    expect(run('k', 'chisquare')).toMatchObject({ score: chi.pValue, statistic: chi.statistic });
  });

  it('runs chisquare over new categories too, and z / fisher on the first reference category', () => {
    const bin: ProfileSchema = inferSchema({ names: ['flag'], rows: [['no'], ['yes'], ['no']] }, { sampleSize: 10 });
    const refP = profileOf(bin, Array.from({ length: 300 }, (_, i) => [i % 3 === 0 ? 'yes' : 'no']), 'r');
    const curP = profileOf(bin, Array.from({ length: 200 }, (_, i) => [i % 2 === 0 ? 'yes' : i % 5 === 0 ? 'maybe' : 'no']), 'c');
    const counts = alignedCounts(bin.columns[0]!, refP.columns[0]!, curP.columns[0]!);
    expect(counts).toEqual({ labels: ['no', 'yes', 'maybe'], ref: [200, 100, 0], cur: [80, 100, 20] });
    const z = stats.twoProportionZ(200, 300, 80, 200);
    const fisher = stats.fisherExact([
      [200, 100],
      [80, 120],
    ]);
    const r = evaluateDrift(bin, refP, curP);
    expect(r.columns[0]).toMatchObject({ test: 'z', score: z.pValue, statistic: z.statistic, drift: true });
    const f = evaluateDrift(bin, refP, curP, { columns: { flag: { test: 'fisher' } } }).columns[0]!;
    expect(f).toMatchObject({ score: fisher.pValue, statistic: fisher.statistic });
    const chi = stats.chi2Contingency([counts.ref, counts.cur]);
    expect(evaluateDrift(bin, refP, curP, { columns: { flag: { test: 'chisquare' } } }).columns[0]).toMatchObject({ score: chi.pValue, statistic: chi.statistic });
  });

  it('runs the default z-test of a two-valued numeric column on the share of its lower value', () => {
    const two = inferSchema({ names: ['v'], rows: Array.from({ length: 200 }, (_, i) => [(i % 2) + 0.5]) }, { sampleSize: 10 });
    expect(two.columns[0]).toMatchObject({ kind: 'numeric', uniqueCount: 2 });
    const refP = profileOf(two, Array.from({ length: 200 }, (_, i) => [(i % 2) + 0.5]), 'r');
    const curP = profileOf(two, Array.from({ length: 200 }, (_, i) => [i % 10 === 0 ? 0.5 : 1.5]), 'c');
    const r = evaluateDrift(two, refP, curP).columns[0]!;
    const z = stats.twoProportionZ(100, 200, 20, 200);
    expect(r).toMatchObject({ test: 'z', score: z.pValue, statistic: z.statistic, drift: true });
  });
});

describe('checkDriftConfig', () => {
  const bad = (config: DriftConfig, message: RegExp) =>
    expect(() => checkDriftConfig(schema, config)).toThrow(expect.objectContaining({ code: 'WARDEN_BAD_REQUEST', message: expect.stringMatching(message) }));

  it('accepts a valid config', () => {
    expect(() => checkDriftConfig(schema, { columns: { a: { test: 'energy', threshold: 0.2 }, k: { test: 'jensenshannon' } }, datasetDriftShare: 1 })).not.toThrow();
    expect(() => checkDriftConfig(schema, {})).not.toThrow();
  });

  it('names an unknown column', () => bad({ columns: { nope: { test: 'ks' } } }, /"nope", which the reference does not have/));

  it('names an unknown test and lists the known ones', () => bad({ columns: { a: { test: 't_test' as DriftTestName } } }, /unknown drift test "t_test" for a; use one of ks, .*tv/));

  it('refuses a sample test on a categorical column', () => {
    bad({ columns: { k: { test: 'ks' } } }, /test ks needs a numeric column; k is categorical/);
    bad({ columns: { k: { test: 'wasserstein' } } }, /wasserstein needs a numeric column/);
  });

  it('refuses z and fisher on columns that are not binary categorical', () => {
    bad({ columns: { k: { test: 'z' } } }, /test z needs a binary categorical column; k is not/);
    bad({ columns: { a: { test: 'fisher' } } }, /test fisher needs a binary categorical column; a is not/);
  });

  it('refuses bad thresholds and dataset drift shares', () => {
    bad({ columns: { a: { threshold: -1 } } }, /threshold for a must be a non-negative number/);
    bad({ columns: { a: { threshold: NaN } } }, /threshold for a/);
    bad({ datasetDriftShare: 0 }, /datasetDriftShare must be in \(0, 1\]/);
    bad({ datasetDriftShare: 1.5 }, /datasetDriftShare/);
  });
});

describe('evaluateQuality', () => {
  const q: ProfileSchema = {
    columns: [
      { name: 'x', kind: 'numeric', role: 'feature', edges: [0], min: 0, max: 10 },
      { name: 'c', kind: 'categorical', role: 'feature', categories: ['a', 'b'] },
      { name: 'y', kind: 'numeric', role: 'prediction', edges: [0] },
    ],
    sampleSize: 10,
    maxNewCategories: 5,
  };
  // 100 rows: x has 10 missing, 1 NaN, 1 out of range; c has 2 new categories and 1 mistyped value.
  const rows = Array.from({ length: 100 }, (_, i) => [i < 10 ? null : i === 10 ? NaN : i === 11 ? 11 : 5, i < 2 ? 'new' : i === 2 ? {} : 'a']);
  const b = new ProfileBuilder(q);
  rows.forEach((r, i) => b.add(r, `q${i}`, 2)); // the prediction column is not counted (count 0)
  const p = b.finish();
  const check = (r: ReturnType<typeof evaluateQuality>, column: string, metric: string) => r.checks.find((c) => c.column === column && c.metric === metric)!;

  it('checks each column against the default thresholds', () => {
    const r = evaluateQuality(q, p);
    expect(r.rows).toBe(100);
    expect(check(r, 'x', 'completeness')).toEqual({ column: 'x', metric: 'completeness', value: 0.9, threshold: 0.95, failed: true });
    expect(check(r, 'x', 'non_finite_share')).toMatchObject({ value: 0.01, threshold: 0, failed: true });
    expect(check(r, 'x', 'type_error_share')).toMatchObject({ value: 0, failed: false });
    // 0.01 is not above the 0.01 default.
    expect(check(r, 'x', 'out_of_range_share')).toMatchObject({ value: 0.01, threshold: 0.01, failed: false });
    expect(check(r, 'c', 'new_category_share')).toMatchObject({ value: 0.02, threshold: 0, failed: true });
    expect(check(r, 'c', 'type_error_share')).toMatchObject({ value: 0.01, failed: true });
    expect(check(r, 'c', 'completeness')).toMatchObject({ value: 1, failed: false });
    expect(r.checks.filter((c) => c.column === 'c').map((c) => c.metric)).not.toContain('out_of_range_share');
    expect(r.checks.filter((c) => c.column === 'x').map((c) => c.metric)).not.toContain('new_category_share');
    expect(r.failed).toBe(4);
  });

  it('never fails a column that was not counted', () => {
    const r = evaluateQuality(q, p, { completeness: 1.1 });
    expect(r.checks.filter((c) => c.column === 'y').every((c) => !c.failed)).toBe(true);
    expect(check(r, 'y', 'completeness').value).toBe(1);
  });

  it('applies overridden thresholds', () => {
    const r = evaluateQuality(q, p, { completeness: 0.9, nonFinite: 0.01, typeErrors: 0.05, outOfRange: 0, newCategories: 0.5 });
    expect(r.checks.filter((c) => c.failed).map((c) => [c.column, c.metric])).toEqual([['x', 'out_of_range_share']]);
    expect(r.failed).toBe(1);
  });
});
