// The always-valid mean / proportion comparisons: values against test/fixtures/rollouts/reference.json
// (mixture integral and its inversion computed in Python by quadrature and root finding), invariants,
// edge cases, and seeded Monte Carlo runs showing the error rate holds under continuous peeking where
// a repeatedly-read fixed z-test's does not.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../src/random.ts';
import {
  DEFAULT_TAU_SCALE,
  sequentialMeanDifference,
  sequentialProportionDifference,
  type ArmCounts,
  type ArmMoments,
  type SequentialResult,
} from '../../../src/rollouts/stats/index.ts';

type Num = number | 'Infinity' | '-Infinity' | 'NaN';
const num = (x: Num): number => (typeof x === 'number' ? x : Number(x));

interface Expected {
  alpha: number;
  optTau?: number;
  previousP?: number;
  estimate: Num;
  logLambda: Num;
  lower: Num;
  upper: Num;
  pValue: Num;
  tau: Num;
}
interface MeanCase extends Expected {
  a: ArmMoments;
  b: ArmMoments;
}
interface PropCase extends Expected {
  a: ArmCounts;
  b: ArmCounts;
}
const ref = JSON.parse(readFileSync(new URL('../../fixtures/rollouts/reference.json', import.meta.url), 'utf8')) as {
  meta: { defaults: { tauScale: number } };
  sequentialMean: { cases: MeanCase[]; looks: MeanCase[] };
  sequentialProportion: { cases: PropCase[]; looks: PropCase[] };
};

const opts = (c: Expected) => ({ alpha: c.alpha, tau: c.optTau, previousP: c.previousP });

/** ln Λ to 1e-9 (relative above 1; Λ = Infinity only where ln Λ is beyond the largest double), CS ends to 1e-9 of the half-width, p-value to 1e-9 absolute. */
function expectMatches(r: SequentialResult, c: Expected): void {
  const what = JSON.stringify({ ...c, logLambda: undefined, lower: undefined, upper: undefined });
  expect(r.estimate, what).toBeCloseTo(num(c.estimate), 14);
  const ll = num(c.logLambda);
  if (r.lambda === Infinity) expect(ll, `${what} Λ overflowed`).toBeGreaterThan(Math.log(Number.MAX_VALUE));
  else expect(Math.abs(Math.log(r.lambda) - ll), `${what} ln Λ ${Math.log(r.lambda)} vs ${ll}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(ll)));
  const half = (num(c.upper) - num(c.lower)) / 2;
  expect(Math.abs(r.lower - num(c.lower)), `${what} lower ${r.lower} vs ${c.lower}`).toBeLessThanOrEqual(1e-9 * half);
  expect(Math.abs(r.upper - num(c.upper)), `${what} upper ${r.upper} vs ${c.upper}`).toBeLessThanOrEqual(1e-9 * half);
  expect(Math.abs(r.pValue - num(c.pValue)), `${what} p ${r.pValue} vs ${c.pValue}`).toBeLessThanOrEqual(1e-9);
}

describe('sequentialMeanDifference = mixture integral of the mSPRT (quadrature in Python)', () => {
  it('uses the same default tau scale as the fixture script', () => {
    expect(DEFAULT_TAU_SCALE).toBe(ref.meta.defaults.tauScale);
  });
  it.each(ref.sequentialMean.cases.map((c) => [`n=${c.a.n}/${c.b.n} Δ=${num(c.estimate).toPrecision(3)} α=${c.alpha} τ=${c.optTau ?? 'default'}`, c] as const))(
    '%s',
    (_name, c) => {
      const r = sequentialMeanDifference(c.a, c.b, opts(c));
      expectMatches(r, c);
      expect(r.n).toEqual([c.a.n, c.b.n]);
    },
  );
  it('a monitored comparison: each look matches, and the carried p-value never increases', () => {
    let previousP = 1;
    for (const c of ref.sequentialMean.looks) {
      const r = sequentialMeanDifference(c.a, c.b, { alpha: c.alpha, previousP });
      expectMatches(r, c);
      expect(r.pValue).toBeLessThanOrEqual(previousP);
      previousP = r.pValue;
    }
    expect(previousP).toBeLessThan(0.05);
  });
  it('the default tau is 0.1 pooled standard deviations: passing that tau explicitly changes nothing', () => {
    const a = { n: 300, mean: 5, variance: 4 };
    const b = { n: 500, mean: 5.3, variance: 2.25 };
    const pooled = Math.sqrt((299 * 4 + 499 * 2.25) / 798);
    expect(sequentialMeanDifference(a, b, { alpha: 0.05 })).toEqual(sequentialMeanDifference(a, b, { alpha: 0.05, tau: 0.1 * pooled }));
  });
  it('is equivariant: swapping the arms negates the estimate and mirrors the CS; rescaling the data rescales it', () => {
    const a = { n: 120, mean: 1.2, variance: 0.8 };
    const b = { n: 150, mean: 1.5, variance: 1.1 };
    const ab = sequentialMeanDifference(a, b, { alpha: 0.05 });
    const ba = sequentialMeanDifference(b, a, { alpha: 0.05 });
    expect(ba.estimate).toBeCloseTo(-ab.estimate, 14);
    expect(ba.lower).toBeCloseTo(-ab.upper, 14);
    expect(ba.upper).toBeCloseTo(-ab.lower, 14);
    expect(ba.pValue).toBeCloseTo(ab.pValue, 14);
    const scaled = sequentialMeanDifference({ ...a, mean: 1000 * a.mean, variance: 1e6 * a.variance }, { ...b, mean: 1000 * b.mean, variance: 1e6 * b.variance }, { alpha: 0.05 });
    expect(scaled.pValue).toBeCloseTo(ab.pValue, 12);
    expect(scaled.upper / 1000).toBeCloseTo(ab.upper, 12);
  });
});

describe('sequentialProportionDifference = mixture integral with the unpooled Bernoulli variance', () => {
  it.each(ref.sequentialProportion.cases.map((c) => [`${c.a.successes}/${c.a.n} vs ${c.b.successes}/${c.b.n} α=${c.alpha} τ=${c.optTau ?? 'default'}`, c] as const))(
    '%s',
    (_name, c) => {
      expectMatches(sequentialProportionDifference(c.a, c.b, opts(c)), c);
    },
  );
  it('a monitored comparison: each look matches, and the carried p-value never increases', () => {
    let previousP = 1;
    for (const c of ref.sequentialProportion.looks) {
      const r = sequentialProportionDifference(c.a, c.b, { alpha: c.alpha, previousP });
      expectMatches(r, c);
      expect(r.pValue).toBeLessThanOrEqual(previousP);
      previousP = r.pValue;
    }
  });
  it('an arm with no successes (or only successes) gets the half-observation floor, not a zero variance', () => {
    const r = sequentialProportionDifference({ n: 1000, successes: 0 }, { n: 1000, successes: 0 }, { alpha: 0.05 });
    expect(r.estimate).toBe(0);
    expect(Number.isFinite(r.lower) && Number.isFinite(r.upper) && r.lower < 0 && r.upper > 0).toBe(true);
    expect(r.pValue).toBe(1);
    const all = sequentialProportionDifference({ n: 50, successes: 50 }, { n: 50, successes: 40 }, { alpha: 0.05 });
    expect(Number.isFinite(all.lambda) && all.lambda > 0).toBe(true);
  });
});

describe('the p-value and the confidence sequence agree', () => {
  it('p ≤ α exactly when the CS excludes 0 (no previous look)', () => {
    const cases = [...ref.sequentialMean.cases.map((c) => sequentialMeanDifference(c.a, c.b, { alpha: c.alpha, tau: c.optTau })), ...ref.sequentialProportion.cases.map((c) => sequentialProportionDifference(c.a, c.b, { alpha: c.alpha, tau: c.optTau }))];
    const alphas = [...ref.sequentialMean.cases, ...ref.sequentialProportion.cases].map((c) => c.alpha);
    let rejected = 0;
    cases.forEach((r, i) => {
      const excludes = r.lower > 0 || r.upper < 0;
      expect(r.pValue <= alphas[i]!, JSON.stringify(r)).toBe(excludes);
      if (excludes) rejected++;
    });
    expect(rejected).toBeGreaterThan(3); // both outcomes occur among the fixtures
    expect(rejected).toBeLessThan(cases.length - 3);
  });
});

describe('edge cases', () => {
  const empty = { n: 0, mean: NaN, variance: NaN };
  const one = { n: 1, mean: 3, variance: NaN };
  const some = { n: 40, mean: 2, variance: 1 };
  it('fewer than 2 observations in an arm: infinite CS, p-value 1 or the previous one, no NaN', () => {
    for (const [a, b] of [[empty, empty], [empty, some], [some, one], [one, one]] as const) {
      const r = sequentialMeanDifference(a, b, { alpha: 0.05 });
      expect(r).toEqual({ estimate: r.estimate, lower: -Infinity, upper: Infinity, pValue: 1, lambda: 1, n: [a.n, b.n] });
      expect(Number.isNaN(r.estimate)).toBe(false);
      expect(sequentialMeanDifference(a, b, { alpha: 0.05, previousP: 0.2 }).pValue).toBe(0.2);
    }
    expect(sequentialMeanDifference(one, some, { alpha: 0.05 }).estimate).toBe(-1);
    expect(sequentialMeanDifference(empty, some, { alpha: 0.05 }).estimate).toBe(0);
    for (const [a, b] of [[{ n: 0, successes: 0 }, { n: 0, successes: 0 }], [{ n: 1, successes: 1 }, { n: 500, successes: 3 }], [{ n: 10, successes: 2 }, { n: 1, successes: 0 }]] as const) {
      const r = sequentialProportionDifference(a, b, { alpha: 0.05, previousP: 0.5 });
      expect(r.lower).toBe(-Infinity);
      expect(r.upper).toBe(Infinity);
      expect(r.pValue).toBe(0.5);
      expect(Number.isNaN(r.estimate)).toBe(false);
    }
  });
  it('two constant arms: the V → 0 limit (zero-width CS; p 1 when equal, 0 when not), no NaN', () => {
    const same = sequentialMeanDifference({ n: 10, mean: 4, variance: 0 }, { n: 12, mean: 4, variance: 0 }, { alpha: 0.05 });
    expect(same).toEqual({ estimate: 0, lower: 0, upper: 0, pValue: 1, lambda: 0, n: [10, 12] });
    const apart = sequentialMeanDifference({ n: 10, mean: 0, variance: 0 }, { n: 12, mean: 1, variance: 0 }, { alpha: 0.05 });
    expect(apart).toEqual({ estimate: 1, lower: 1, upper: 1, pValue: 0, lambda: Infinity, n: [10, 12] });
  });
  it('overwhelming evidence: Λ overflows to Infinity, p-value 0, finite CS', () => {
    const r = sequentialMeanDifference({ n: 1e6, mean: 0, variance: 1 }, { n: 1e6, mean: 1, variance: 1 }, { alpha: 0.05 });
    expect(r.lambda).toBe(Infinity);
    expect(r.pValue).toBe(0);
    expect(r.lower).toBeGreaterThan(0.99);
    expect(r.upper).toBeLessThan(1.01);
  });
  it('refuses invalid input with a RangeError naming the problem', () => {
    const ok = { n: 10, mean: 0, variance: 1 };
    const m = (a: ArmMoments, b: ArmMoments, o: object) => () => sequentialMeanDifference(a, b, { alpha: 0.05, ...o });
    expect(m({ ...ok, n: -1 }, ok, {})).toThrow(new RangeError('sequentialMeanDifference: a.n must be a non-negative integer, got -1'));
    expect(m(ok, { ...ok, n: 2.5 }, {})).toThrow(/b\.n must be a non-negative integer/);
    expect(m(ok, { ...ok, variance: -1 }, {})).toThrow(/b\.variance must be finite and non-negative/);
    expect(m({ ...ok, mean: NaN }, ok, {})).toThrow(/a\.mean must be finite/);
    for (const alpha of [0, 1, -0.1, 1.5, NaN]) expect(m(ok, ok, { alpha })).toThrow(new RangeError(`sequentialMeanDifference: alpha must be in (0, 1), got ${alpha}`));
    for (const tau of [0, -1, Infinity, NaN]) expect(m(ok, ok, { tau })).toThrow(/tau must be a positive finite number/);
    for (const previousP of [-0.1, 1.1, NaN]) expect(m(ok, ok, { previousP })).toThrow(/previousP must be in \[0, 1\]/);
    const p = (a: ArmCounts, b: ArmCounts, o: object = {}) => () => sequentialProportionDifference(a, b, { alpha: 0.05, ...o });
    expect(p({ n: 10, successes: 11 }, { n: 10, successes: 1 })).toThrow(new RangeError('sequentialProportionDifference: a.successes (11) exceeds a.n (10)'));
    expect(p({ n: 10, successes: 1 }, { n: -3, successes: 0 })).toThrow(/b\.n must be a non-negative integer/);
    expect(p({ n: 10, successes: -1 }, { n: 10, successes: 0 })).toThrow(/a\.successes must be a non-negative integer/);
    expect(p({ n: 10, successes: 1 }, { n: 10, successes: 1 }, { alpha: 1 })).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Monte Carlo: peeking after every batch of 50 observations per arm, 2,000 per arm, 1,000 runs.

const RUNS = 1000;
const PER_ARM = 2000;
const BATCH = 50;
const ALPHA = 0.05;
/** Allowed excess over α for a rate estimated from 1,000 runs: ~3 binomial standard errors at 0.05 (0.0069). */
const MARGIN = 0.02;

/** Standard normal draws (Box–Muller) from a seeded uniform generator. */
function standardNormal(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** 1.959963984540054 = Φ⁻¹(0.975): the naive fixed-sample z-test rejects when |z| > this. */
const Z_975 = 1.959963984540054;

interface Peeking {
  /** Runs where the always-valid p-value reached α at some look. */
  sequential: number;
  /** Runs where a fixed-sample z-test read at every look rejected at some look. */
  naive: number;
  /** Runs where the CS excluded the true difference at some look. */
  miscovered: number;
}

/**
 * Monitors `runs` comparisons of PER_ARM / BATCH looks each: `step(previousP)` adds a batch to both arms and returns the
 * always-valid result (given the previous look's p-value) and the fixed-sample z statistic at this look.
 */
function peek(runs: number, trueDiff: number, start: () => void, step: (previousP: number) => { r: SequentialResult; z: number }): Peeking {
  let sequential = 0;
  let naive = 0;
  let miscovered = 0;
  for (let run = 0; run < runs; run++) {
    start();
    let previousP = 1;
    let naiveRejected = false;
    let missed = false;
    for (let k = 0; k < PER_ARM / BATCH; k++) {
      const { r, z } = step(previousP);
      if (r.pValue > previousP) throw new Error(`p-value rose from ${previousP} to ${r.pValue}`);
      previousP = r.pValue;
      if (Math.abs(z) > Z_975) naiveRejected = true;
      if (r.lower > trueDiff || r.upper < trueDiff) missed = true;
    }
    if (previousP <= ALPHA) sequential++;
    if (naiveRejected) naive++;
    if (missed) miscovered++;
  }
  return { sequential: sequential / runs, naive: naive / runs, miscovered: miscovered / runs };
}

/** Normal data, N(0, 1) for a and N(delta, 1) for b, batches of batchA and batchB per look, Welford moments. */
function meansRun(seed: number, delta: number, batchA = BATCH, batchB = BATCH): Peeking {
  const random = mulberry32(seed);
  const z = standardNormal(random);
  const arm = () => ({ n: 0, mean: 0, m2: 0 });
  let a = arm();
  let b = arm();
  const add = (s: { n: number; mean: number; m2: number }, x: number) => {
    s.n++;
    const d = x - s.mean;
    s.mean += d / s.n;
    s.m2 += d * (x - s.mean);
  };
  const moments = (s: { n: number; mean: number; m2: number }) => ({ n: s.n, mean: s.mean, variance: s.m2 / (s.n - 1) });
  return peek(
    RUNS,
    delta,
    () => {
      a = arm();
      b = arm();
    },
    (previousP) => {
      for (let i = 0; i < batchA; i++) add(a, z());
      for (let i = 0; i < batchB; i++) add(b, delta + z());
      const ma = moments(a);
      const mb = moments(b);
      const r = sequentialMeanDifference(ma, mb, { alpha: ALPHA, previousP });
      return { r, z: (mb.mean - ma.mean) / Math.sqrt(ma.variance / ma.n + mb.variance / mb.n) };
    },
  );
}

/** Bernoulli(pa) and Bernoulli(pb) data. */
function proportionsRun(seed: number, pa: number, pb: number): Peeking {
  const random = mulberry32(seed);
  let a = { n: 0, successes: 0 };
  let b = { n: 0, successes: 0 };
  return peek(
    RUNS,
    pb - pa,
    () => {
      a = { n: 0, successes: 0 };
      b = { n: 0, successes: 0 };
    },
    (previousP) => {
      for (let i = 0; i < BATCH; i++) {
        a.n++;
        b.n++;
        if (random() < pa) a.successes++;
        if (random() < pb) b.successes++;
      }
      const r = sequentialProportionDifference(a, b, { alpha: ALPHA, previousP });
      const qa = a.successes / a.n;
      const qb = b.successes / b.n;
      const se = Math.sqrt((qa * (1 - qa)) / a.n + (qb * (1 - qb)) / b.n);
      return { r, z: se > 0 ? (qb - qa) / se : 0 };
    },
  );
}

describe('Monte Carlo (seeded): 1,000 runs peeking after every 50 per arm up to 2,000 per arm', () => {
  it(`means under the null: the always-valid test rejects in ≤ ${ALPHA} + ${MARGIN} of runs, the peeked z-test in far more`, () => {
    const r = meansRun(20250311, 0);
    expect(r.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.021
    expect(r.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.311: reading a 5% test 40 times rejects in 31% of runs
    expect(r.miscovered).toBe(r.sequential); // under the null, missing 0 is rejecting
  });
  it(`proportions (rate 0.1) under the null: ≤ ${ALPHA} + ${MARGIN}, the peeked z-test far more`, () => {
    const r = proportionsRun(7, 0.1, 0.1);
    expect(r.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.013
    expect(r.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.303
  });
  it('rare events (rate 0.01, the zero-variance guard in play early on) stay within α too', () => {
    const r = proportionsRun(8, 0.01, 0.01);
    expect(r.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.013
    expect(r.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.253
  });
  it('a 10% canary (90 stable, 10 candidate per look; 3,600 and 400 at the end) under the null stays within α too', () => {
    const r = meansRun(31, 0, 90, 10);
    expect(r.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.007
    expect(r.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.364
  });
  it('under a real difference it rejects in most runs, and the CS still covers the true difference at every look', () => {
    const m = meansRun(99, 0.15); // 0.15 sd: a fixed z-test at 2,000 per arm has z ≈ 4.7
    expect(m.sequential).toBeGreaterThanOrEqual(0.9); // measured 0.976
    expect(m.miscovered).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.014
    const p = proportionsRun(100, 0.1, 0.145);
    expect(p.sequential).toBeGreaterThanOrEqual(0.9); // measured 0.947
    expect(p.miscovered).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.013
  });
});
