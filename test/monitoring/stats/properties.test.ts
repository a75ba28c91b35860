// Properties every drift statistic must have whatever SciPy says: symmetry where it holds, zero for
// identical inputs, bounds. Inputs come from a seeded generator so failures reproduce.
import { describe, expect, it } from 'vitest';
import {
  andersonKsamp,
  chi2Contingency,
  cvm2,
  energyDistance,
  fisherExact,
  hellinger,
  jensenShannon,
  kl,
  ks2,
  psi,
  totalVariation,
  wasserstein,
  wassersteinFromWeights,
  wassersteinNormed,
} from '../../../src/monitoring/drift/stats/index.ts';
import { mulberry32 as rng } from '../../../src/random.ts';


function normals(r: () => number, n: number, mean = 0, sd = 1, decimals?: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    out[i] = decimals === undefined ? v : Math.round(v * 10 ** decimals) / 10 ** decimals;
  }
  return out;
}

function counts(r: () => number, bins: number, total: number, zeroShare = 0.2): number[] {
  return Array.from({ length: bins }, () => (r() < zeroShare ? 0 : Math.floor(r() * total)));
}

const SIZES = [5, 8, 13, 20, 21, 50, 300];
const samplePairs = SIZES.flatMap((n, i) =>
  [0, 1].map((rounded) => {
    const r = rng(1000 + i * 2 + rounded);
    const m = SIZES[(i + 3) % SIZES.length]!;
    const dec = rounded ? 1 : undefined;
    return [`n=${n} m=${m}${rounded ? ' ties' : ''}`, normals(r, n, 0, 1, dec), normals(r, m, 0.3, 1.2, dec)] as const;
  }),
);

describe('sample statistics', () => {
  it.each(samplePairs)('symmetric in the two samples: %s', (_name, a, b) => {
    const ab = ks2(a, b);
    const ba = ks2(b, a);
    expect(ba.statistic).toBe(ab.statistic);
    expect(ba.pValue).toBeCloseTo(ab.pValue, 12);
    expect(cvm2(b, a).statistic).toBeCloseTo(cvm2(a, b).statistic, 12);
    expect(cvm2(b, a).pValue).toBeCloseTo(cvm2(a, b).pValue, 12);
    expect(andersonKsamp([b, a]).statistic).toBeCloseTo(andersonKsamp([a, b]).statistic, 12);
    expect(wasserstein(b, a)).toBeCloseTo(wasserstein(a, b), 12);
    expect(energyDistance(b, a)).toBeCloseTo(energyDistance(a, b), 12);
  });

  it.each(samplePairs)('zero distance and no evidence for identical samples: %s', (_name, a) => {
    expect(ks2(a, a)).toEqual({ statistic: 0, pValue: 1 });
    expect(cvm2(a, a).pValue).toBeGreaterThan(0.9);
    expect(andersonKsamp([a, a]).pValue).toBe(0.25);
    expect(wasserstein(a, a)).toBe(0);
    expect(energyDistance(a, a)).toBe(0);
    expect(wassersteinNormed(a, a)).toBe(0);
  });

  it.each(samplePairs)('p-values in [0, 1], KS statistic in [0, 1]: %s', (_name, a, b) => {
    for (const r of [ks2(a, b), cvm2(a, b), andersonKsamp([a, b])]) {
      expect(r.pValue).toBeGreaterThanOrEqual(0);
      expect(r.pValue).toBeLessThanOrEqual(1);
    }
    const d = ks2(a, b).statistic;
    expect(d).toBeGreaterThanOrEqual(0);
    expect(d).toBeLessThanOrEqual(1);
  });

  it('wasserstein of a sample and its shift is the shift; normed is scale-free', () => {
    const a = normals(rng(7), 400);
    const shifted = a.map((v) => v + 0.25);
    expect(wasserstein(a, shifted)).toBeCloseTo(0.25, 12);
    const scaled = a.map((v) => v * 40);
    const b = normals(rng(8), 300, 0.5);
    expect(wassersteinNormed(scaled, b.map((v) => v * 40))).toBeCloseTo(wassersteinNormed(a, b), 10);
  });

  it('wassersteinNormed floors the reference std at 0.001 (Evidently)', () => {
    const constant = new Float64Array(10).fill(3);
    expect(wassersteinNormed(constant, constant)).toBe(0);
    expect(wassersteinNormed(constant, constant.map((v) => v + 0.002))).toBeCloseTo(2, 9);
  });

  it('wassersteinFromWeights equals wasserstein on the expanded samples', () => {
    const values = [0.5, 1.5, 2.5, 3.5];
    const wa = [1, 2, 3, 4];
    const wb = [4, 3, 2, 1];
    const expand = (w: number[]): Float64Array => Float64Array.from(values.flatMap((v, i) => Array<number>(w[i]!).fill(v)));
    expect(wassersteinFromWeights(values, wa, wb)).toBeCloseTo(wasserstein(expand(wa), expand(wb)), 12);
  });

  it('anderson p-value is capped to [0.001, 0.25] like SciPy', () => {
    const a = normals(rng(3), 200);
    expect(andersonKsamp([a, a.map((v) => v + 5)]).pValue).toBe(0.001);
  });
});

const histPairs = Array.from({ length: 12 }, (_, i) => {
  const r = rng(5000 + i);
  const bins = 2 + Math.floor(r() * 25);
  const p = counts(r, bins, 100);
  const q = counts(r, bins, 1000);
  p[0] = (p[0] ?? 0) + 1; // each side needs a positive total
  q[bins - 1] = (q[bins - 1] ?? 0) + 1;
  return [`${bins} bins #${i}`, p, q] as const;
});

describe('distribution distances', () => {
  it.each(histPairs)('symmetric where the measure is: %s', (_name, p, q) => {
    expect(jensenShannon(q, p)).toBeCloseTo(jensenShannon(p, q), 12);
    expect(hellinger(q, p)).toBeCloseTo(hellinger(p, q), 12);
    expect(totalVariation(q, p)).toBeCloseTo(totalVariation(p, q), 12);
    expect(psi(q, p)).toBeCloseTo(psi(p, q), 12);
  });

  it.each(histPairs)('zero for identical inputs, also after rescaling: %s', (_name, p) => {
    const scaled = p.map((v) => v * 3);
    expect(jensenShannon(p, scaled)).toBeLessThan(1e-7);
    expect(kl(p, scaled)).toBeLessThan(1e-12);
    expect(hellinger(p, scaled)).toBeLessThan(1e-7);
    expect(totalVariation(p, scaled)).toBeLessThan(1e-12);
    expect(psi(p, scaled)).toBeLessThan(1e-12);
    expect(jensenShannon(p, p)).toBe(0);
    expect(hellinger(p, p)).toBe(0);
  });

  it.each(histPairs)('bounds: JS ≤ √ln 2 (base e) and ≤ 1 (base 2), TV and Hellinger in [0, 1], KL and PSI ≥ 0: %s', (_name, p, q) => {
    expect(jensenShannon(p, q)).toBeLessThanOrEqual(Math.sqrt(Math.LN2) + 1e-15);
    expect(jensenShannon(p, q, 2)).toBeLessThanOrEqual(1 + 1e-15);
    for (const d of [totalVariation(p, q), hellinger(p, q)]) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(1);
    }
    expect(kl(p, q)).toBeGreaterThanOrEqual(0);
    expect(psi(p, q)).toBeGreaterThanOrEqual(0);
  });

  it('disjoint supports reach the bounds', () => {
    expect(jensenShannon([1, 0], [0, 1])).toBeCloseTo(Math.sqrt(Math.LN2), 15);
    expect(jensenShannon([1, 0], [0, 1], 2)).toBeCloseTo(1, 15);
    expect(totalVariation([1, 0], [0, 1])).toBe(1);
    expect(hellinger([1, 0], [0, 1])).toBe(1);
    expect(kl([1, 0], [0, 1])).toBe(Infinity);
  });
});

describe('count tests', () => {
  it('chi2Contingency is invariant to transposing the table', () => {
    const t = [
      [12, 30, 7],
      [20, 18, 11],
    ];
    const tt = [0, 1, 2].map((j) => t.map((row) => row[j]!));
    const a = chi2Contingency(t);
    const b = chi2Contingency(tt);
    expect(b.statistic).toBeCloseTo(a.statistic, 12);
    expect(b.pValue).toBeCloseTo(a.pValue, 12);
    expect(b.dof).toBe(a.dof);
  });

  it('fisherExact p-value is invariant to transposing and to swapping rows (odds ratio inverts)', () => {
    const r = fisherExact([[3, 9], [12, 4]]);
    expect(fisherExact([[3, 12], [9, 4]]).pValue).toBeCloseTo(r.pValue, 14);
    const swapped = fisherExact([[12, 4], [3, 9]]);
    expect(swapped.pValue).toBeCloseTo(r.pValue, 14);
    expect(swapped.statistic).toBeCloseTo(1 / r.statistic, 14);
  });

  it('identical rows give no evidence', () => {
    expect(chi2Contingency([[10, 20, 30], [10, 20, 30]]).pValue).toBeCloseTo(1, 12);
    expect(fisherExact([[10, 20], [10, 20]]).pValue).toBe(1);
  });
});
