import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { domainClassifierAuc, mannWhitneyAuc } from '../../../src/monitoring/embeddings/index.ts';
import { fitLogistic } from '../../../src/monitoring/embeddings/logistic.ts';
import { gaussianSet, normals } from './synthetic.ts';

// Reference values: test/fixtures/embeddings/make_fixtures.py (scipy.stats.mannwhitneyu).
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/embeddings/reference.json', import.meta.url), 'utf8'));

describe('mannWhitneyAuc', () => {
  it('equals scipy.stats.mannwhitneyu(pos, neg).statistic / (n₊·n₋) on tied scores', () => {
    const { positive, negative, auc } = fixture.auc;
    expect(new Set(positive).size).toBeLessThan(positive.length); // the fixture really has ties
    expect(mannWhitneyAuc(positive, negative)).toBeCloseTo(auc, 14);
  });

  it('counts ties as one half and is 1 / 0 for perfect separation', () => {
    expect(mannWhitneyAuc([1, 1], [1, 1])).toBe(0.5);
    expect(mannWhitneyAuc([2, 3], [0, 1])).toBe(1);
    expect(mannWhitneyAuc([0, 1], [2, 3])).toBe(0);
    expect(mannWhitneyAuc([1], [0, 1, 2])).toBe(0.5);
  });
});

describe('domainClassifierAuc', () => {
  it('is ≈ 0.5 when both sets come from one distribution', () => {
    const r = domainClassifierAuc(gaussianSet(1000, 32, 1), gaussianSet(1000, 32, 2));
    expect(Math.abs(r.auc - 0.5)).toBeLessThan(0.05);
    expect(r.drift).toBe(false);
    expect(r.threshold).toBe(0.55);
  });

  it('is > 0.9 for clearly shifted embeddings (dim 32)', () => {
    const r = domainClassifierAuc(gaussianSet(1000, 32, 1), gaussianSet(1000, 32, 2, () => 0.5));
    expect(r.auc).toBeGreaterThan(0.9);
    expect(r.drift).toBe(true);
  });

  it('comes close to the best possible AUC for a shift confined to 4 of 128 dimensions', () => {
    // Mean shift 0.4 in 4 unit-variance dimensions: Mahalanobis distance 0.8, Bayes-optimal AUC Φ(0.8/√2) ≈ 0.714.
    const r = domainClassifierAuc(gaussianSet(800, 128, 3), gaussianSet(800, 128, 4, (c) => (c < 4 ? 0.4 : 0)));
    expect(r.auc).toBeGreaterThan(0.65);
    expect(r.auc).toBeLessThan(0.75);
  });

  it('is deterministic for a fixed seed and depends on it', () => {
    const a = gaussianSet(300, 16, 5);
    const b = gaussianSet(300, 16, 6, () => 0.1);
    const first = domainClassifierAuc(a, b, { seed: 9 });
    expect(domainClassifierAuc(a, b, { seed: 9 })).toEqual(first);
    expect(domainClassifierAuc(a, b, { seed: 10 }).auc).not.toBe(first.auc);
  });

  it('uses the threshold and fold options', () => {
    const a = gaussianSet(200, 8, 7);
    const b = gaussianSet(200, 8, 8);
    const r = domainClassifierAuc(a, b, { threshold: 0, folds: 3 });
    expect(r.drift).toBe(true);
    expect(r.threshold).toBe(0);
    expect(() => domainClassifierAuc(a, b, { folds: 1 })).toThrow(/folds/);
    expect(() => domainClassifierAuc(gaussianSet(3, 8, 1), b)).toThrow(/at least 5 rows/);
  });

  it('subsamples each side to maxRows', () => {
    const a = gaussianSet(600, 8, 11);
    const b = gaussianSet(600, 8, 12, () => 0.3);
    expect(domainClassifierAuc(a, b, { maxRows: 600 })).toEqual(domainClassifierAuc(a, b));
    expect(domainClassifierAuc(a, b, { maxRows: 100 }).auc).not.toBe(domainClassifierAuc(a, b).auc);
  });
});

describe('fitLogistic', () => {
  it('converges to a stationary point of the penalised mean log-loss', () => {
    const n = 400;
    const d = 6;
    const z = normals(21);
    const x = new Float64Array(n * d).map(() => z());
    const y = new Float64Array(n).map((_, i) => ((x[i * d] as number) + 0.5 * (x[i * d + 1] as number) + z() > 0 ? 1 : 0));
    const l2 = 1e-3;
    const fit = fitLogistic(x, y, n, d, { l2 });
    expect(fit.converged).toBe(true);
    // Gradient recomputed here from the objective's definition.
    const grad = new Float64Array(d + 1);
    for (let i = 0; i < n; i++) {
      let eta = fit.bias;
      for (let j = 0; j < d; j++) eta += (x[i * d + j] as number) * (fit.weights[j] as number);
      const r = 1 / (1 + Math.exp(-eta)) - (y[i] as number);
      for (let j = 0; j < d; j++) grad[j] = (grad[j] as number) + (r * (x[i * d + j] as number)) / n;
      grad[d] = (grad[d] as number) + r / n;
    }
    for (let j = 0; j < d; j++) grad[j] = (grad[j] as number) + l2 * (fit.weights[j] as number);
    for (const g of grad) expect(Math.abs(g)).toBeLessThan(1e-6);
    expect(fit.weights[0]).toBeGreaterThan(fit.weights[1] as number);
  });
});
