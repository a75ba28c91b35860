// Sample ratio mismatch: χ² against scipy.stats.chisquare (and Warden's drift chisquare), the
// Dirichlet-multinomial Bayes factor against math.lgamma / Pólya-urn values from Python, the carried
// p-value, edge cases, and a seeded Monte Carlo check of anytime validity under peeking.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chisquare } from '../../../src/monitoring/drift/stats/index.ts';
import { mulberry32 } from '../../../src/random.ts';
import { DEFAULT_SRM_CONCENTRATION, sampleRatioMismatch } from '../../../src/rollouts/stats/index.ts';

type Num = number | 'Infinity' | '-Infinity' | 'NaN';
const num = (x: Num): number => (typeof x === 'number' ? x : Number(x));

interface SrmCase {
  observed: number[];
  expectedShares: number[];
  concentration?: number;
  previousP?: number;
  logBayesFactor: Num;
  pValue: Num;
  chi2: Num;
  chi2PValue: Num;
}
const ref = JSON.parse(readFileSync(new URL('../../fixtures/rollouts/reference.json', import.meta.url), 'utf8')) as {
  meta: { defaults: { srmConcentration: number } };
  srm: { cases: SrmCase[]; looks: SrmCase[] };
};

function expectMatches(c: SrmCase, previousP = c.previousP): number {
  const r = sampleRatioMismatch(c.observed, c.expectedShares, { previousP, concentration: c.concentration });
  const what = JSON.stringify(c.observed);
  const lb = num(c.logBayesFactor);
  // ln BF differences of lgamma values near ln Γ(c + n): 1e-9 relative to the larger of 1 and |ln BF|
  expect(Math.abs(Math.log(r.bayesFactor) - lb), `${what} ln BF ${Math.log(r.bayesFactor)} vs ${lb}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(lb)));
  expect(Math.abs(r.pValue - num(c.pValue)), `${what} p`).toBeLessThanOrEqual(1e-9);
  expect(Math.abs(r.chi2 - num(c.chi2)), `${what} chi2`).toBeLessThanOrEqual(1e-9 * Math.max(1, num(c.chi2)));
  expect(Math.abs(r.chi2PValue - num(c.chi2PValue)), `${what} chi2 p`).toBeLessThanOrEqual(1e-12);
  const n = c.observed.reduce((s, x) => s + x, 0);
  expect(r.n).toBe(n);
  r.observedShares.forEach((s, i) => expect(s).toBeCloseTo(c.observed[i]! / n, 15));
  return r.pValue;
}

describe('sampleRatioMismatch against the Python reference', () => {
  it('uses the same default concentration as the fixture script (Optimizely ssrm: 10,000)', () => {
    expect(DEFAULT_SRM_CONCENTRATION).toBe(ref.meta.defaults.srmConcentration);
  });
  it.each(ref.srm.cases.map((c) => [`${JSON.stringify(c.observed)} vs ${JSON.stringify(c.expectedShares.map((s) => +s.toFixed(3)))} c=${c.concentration ?? 'default'}${c.previousP ? ` previousP=${c.previousP}` : ''}`, c] as const))(
    '%s',
    (_name, c) => {
      expectMatches(c);
    },
  );
  it('the χ² part equals Warden’s drift chisquare (= scipy.stats.chisquare)', () => {
    for (const c of ref.srm.cases) {
      const r = sampleRatioMismatch(c.observed, c.expectedShares);
      const d = chisquare(c.observed, c.expectedShares);
      expect(r.chi2).toBeCloseTo(d.statistic, 9);
      expect(r.chi2PValue).toBeCloseTo(d.pValue, 14);
    }
  });
  it('a monitored 10% canary that really gets 11%: each look matches and the carried p-value never increases', () => {
    let previousP = 1;
    let chi2Below = 0;
    for (const c of ref.srm.looks) {
      const p = expectMatches(c, previousP);
      expect(p).toBeLessThanOrEqual(previousP);
      previousP = p;
      if (c.chi2PValue !== 'NaN' && num(c.chi2PValue) < 0.05) chi2Below++;
    }
    expect(chi2Below).toBeGreaterThan(0); // the fixed-sample χ² dips below 0.05 along the way
  });
  it('edge cases: no traffic yet gives p = previousP, BF 1, χ² 0, no NaN; shares are normalised', () => {
    expect(sampleRatioMismatch([0, 0], [0.5, 0.5])).toEqual({ pValue: 1, bayesFactor: 1, chi2: 0, chi2PValue: 1, observedShares: [0, 0], expectedShares: [0.5, 0.5], n: 0 });
    expect(sampleRatioMismatch([0, 0, 0], [0.2, 0.3, 0.5], { previousP: 0.4 }).pValue).toBe(0.4);
    const r = sampleRatioMismatch([30, 70], [0.3000001, 0.7]);
    expect(r.expectedShares[0]! + r.expectedShares[1]!).toBe(1);
    expect(Object.values(r).flat().some((v) => Number.isNaN(v))).toBe(false);
    const one = sampleRatioMismatch([1, 0], [0.5, 0.5]);
    expect(one.pValue).toBeLessThanOrEqual(1);
    expect(one.chi2PValue).toBeCloseTo(0.31731050786291115, 14);
  });
  it('refuses invalid input with a RangeError naming the problem', () => {
    expect(() => sampleRatioMismatch([10, 10], [0.6, 0.6])).toThrow(new RangeError('sampleRatioMismatch: expectedShares must sum to 1, got 1.2'));
    expect(() => sampleRatioMismatch([10, 10], [0.5, 0.4])).toThrow(/must sum to 1, got 0\.9/);
    expect(() => sampleRatioMismatch([10, 10], [1, 0])).toThrow(/expectedShares\[0\] must be in \(0, 1\), got 1/);
    expect(() => sampleRatioMismatch([10, 10], [1.5, -0.5])).toThrow(RangeError);
    expect(() => sampleRatioMismatch([10, -1], [0.5, 0.5])).toThrow(/observed\[1\] must be a non-negative integer, got -1/);
    expect(() => sampleRatioMismatch([10, 2.5], [0.5, 0.5])).toThrow(/observed\[1\] must be a non-negative integer/);
    expect(() => sampleRatioMismatch([10, 10, 5], [0.5, 0.5])).toThrow(/observed has 3 arms but expectedShares has 2/);
    expect(() => sampleRatioMismatch([10], [1])).toThrow(/at least 2 arms/);
    expect(() => sampleRatioMismatch([10, 10], [0.5, 0.5], { previousP: 2 })).toThrow(/previousP must be in \[0, 1\]/);
    expect(() => sampleRatioMismatch([10, 10], [0.5, 0.5], { concentration: 0 })).toThrow(/concentration must be a positive finite number/);
  });
});

// ---------------------------------------------------------------------------------------------
// Monte Carlo: a look after every 100 requests up to 20,000, 1,000 runs per configuration.

const RUNS = 1000;
const REQUESTS = 20000;
const BATCH = 100;
const ALPHA = 0.05;
/** Allowed excess over α for a rate estimated from 1,000 runs (~3 binomial standard errors at 0.05). */
const MARGIN = 0.02;

/** Fraction of runs in which the sequential p-value, and a χ² read at every look, reach α. */
function srmRuns(seed: number, shares: number[], trueShares: number[]): { sequential: number; naive: number } {
  const random = mulberry32(seed);
  const cumulative = trueShares.map((_, i) => trueShares.slice(0, i + 1).reduce((s, x) => s + x, 0));
  let sequential = 0;
  let naive = 0;
  for (let run = 0; run < RUNS; run++) {
    const counts = shares.map(() => 0);
    let previousP = 1;
    let chi2Rejected = false;
    for (let t = 1; t <= REQUESTS; t++) {
      const u = random();
      let arm = 0;
      while (arm < cumulative.length - 1 && u >= cumulative[arm]!) arm++;
      counts[arm]!++;
      if (t % BATCH === 0) {
        const r = sampleRatioMismatch(counts, shares, { previousP });
        if (r.pValue > previousP) throw new Error(`p-value rose from ${previousP} to ${r.pValue}`);
        previousP = r.pValue;
        if (r.chi2PValue <= ALPHA) chi2Rejected = true;
      }
    }
    if (previousP <= ALPHA) sequential++;
    if (chi2Rejected) naive++;
  }
  return { sequential: sequential / RUNS, naive: naive / RUNS };
}

describe('Monte Carlo (seeded): SRM checked after every 100 requests up to 20,000', () => {
  it(`50/50 with no mismatch: the Bayes-factor test rejects in ≤ ${ALPHA} + ${MARGIN} of runs, a peeked χ² in far more`, () => {
    const r = srmRuns(11, [0.5, 0.5], [0.5, 0.5]);
    expect(r.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.006
    expect(r.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.413: reading a 5% χ² 200 times rejects in 41% of runs
  });
  it('a 10% canary and a three-way 20/40/40 split with no mismatch stay within α too', () => {
    const canary = srmRuns(12, [0.9, 0.1], [0.9, 0.1]);
    expect(canary.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.002
    expect(canary.naive).toBeGreaterThan(ALPHA + MARGIN); // measured 0.403
    const three = srmRuns(13, [0.2, 0.4, 0.4], [0.2, 0.4, 0.4]);
    expect(three.sequential).toBeLessThanOrEqual(ALPHA + MARGIN); // measured 0.011
  });
  it('a canary configured at 10% that gets 11% is flagged in most runs', () => {
    const r = srmRuns(14, [0.9, 0.1], [0.89, 0.11]);
    expect(r.sequential).toBeGreaterThanOrEqual(0.9); // measured 0.952 (a χ² read once at 20,000 has z ≈ 4.7)
  });
});
