import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mmd } from '../../../src/monitoring/embeddings/index.ts';
import { medianOf } from '../../../src/monitoring/embeddings/mmd.ts';
import { fromJson, gaussianSet, relativeError } from './synthetic.ts';

// Reference values: test/fixtures/embeddings/make_fixtures.py (scipy.spatial.distance.pdist "sqeuclidean",
// numpy.median, Gretton et al. 2012 eq. 3 on the full numpy kernel matrix).
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/embeddings/reference.json', import.meta.url), 'utf8'));
const ref = fromJson(fixture.mmd.ref);
const cur = fromJson(fixture.mmd.cur);

describe('mmd', () => {
  it('matches the numpy MMD²ᵤ and median-heuristic bandwidth on fixed data', () => {
    const r = mmd(ref, cur, { permutations: 0 });
    expect(relativeError(r.mmd2, fixture.mmd.mmd2)).toBeLessThan(1e-9);
    expect(relativeError(r.bandwidth, fixture.mmd.bandwidth)).toBeLessThan(1e-9);
    expect(r.pValue).toBe(1); // (1 + 0) / (1 + 0) with no permutations
  });

  it('gives a small p-value for a shift', () => {
    const r = mmd(ref, cur, { permutations: 200, seed: 1 });
    expect(r.pValue).toBeLessThan(0.01);
    expect(r.pValue).toBeGreaterThanOrEqual(1 / 201); // never 0: the observed labelling counts as one permutation
  });

  it('gives a large p-value and MMD² ≈ 0 when nothing changed', () => {
    const r = mmd(gaussianSet(300, 16, 1), gaussianSet(300, 16, 2), { permutations: 200, seed: 1 });
    expect(r.pValue).toBeGreaterThan(0.05);
    expect(Math.abs(r.mmd2)).toBeLessThan(0.01);
  });

  it('is deterministic for a seed and uses the seed', () => {
    const a = gaussianSet(200, 8, 3);
    const b = gaussianSet(200, 8, 4, (c) => (c === 0 ? 0.15 : 0));
    const first = mmd(a, b, { seed: 5 });
    expect(mmd(a, b, { seed: 5 })).toEqual(first);
    const others = [6, 7, 8, 9].map((seed) => mmd(a, b, { seed }).pValue);
    expect(others.some((p) => p !== first.pValue)).toBe(true);
  });

  it('subsamples each side to maxRows', () => {
    const a = gaussianSet(400, 4, 10);
    const b = gaussianSet(400, 4, 11, () => 1);
    const full = mmd(a, b, { permutations: 0 });
    const sub = mmd(a, b, { permutations: 0, maxRows: 100 });
    expect(sub.mmd2).not.toBe(full.mmd2);
    expect(sub.mmd2).toBeGreaterThan(0.1);
    // maxRows ≥ rows keeps every row: the same as no limit.
    expect(mmd(a, b, { permutations: 0, maxRows: 400 })).toEqual(full);
  });

  it('rejects sets of different dimension and too few rows', () => {
    expect(() => mmd(gaussianSet(10, 3, 1), gaussianSet(10, 4, 2))).toThrow(/dim/);
    expect(() => mmd(gaussianSet(1, 3, 1), gaussianSet(10, 3, 2))).toThrow(/at least 2 rows/);
  });
});

describe('medianOf', () => {
  it('equals the sorted-array median (numpy convention for even lengths), ties included', () => {
    const z = gaussianSet(1, 1001, 12).data.map((x) => Math.round(x * 4) / 4);
    for (const n of [1, 2, 3, 10, 11, 1000, 1001]) {
      const values = z.slice(0, n);
      const sorted = Float64Array.from(values).sort();
      const expected = n % 2 ? sorted[(n - 1) / 2] : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
      expect(medianOf(values.slice())).toBe(expected);
    }
  });
});
