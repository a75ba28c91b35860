import { describe, expect, it } from 'vitest';
import { regressionMetrics } from '../../../src/monitoring/performance/index.ts';
import { expectClose, fixtures } from './sklearn-fixtures.ts';

const METRICS = ['n', 'mae', 'rmse', 'mape', 'r2', 'bias'] as const;

describe('regressionMetrics matches scikit-learn 1.2.1', () => {
  it('covers zeros in the labels and a negative R²', () => {
    const zeros = fixtures.regression.find((c) => c.name === 'zeros in labels (MAPE eps)');
    expect(zeros?.labels).toContain(0);
    expect(Number(fixtures.regression.find((c) => c.name === 'negative R2')?.expected.r2)).toBeLessThan(0);
  });

  it.each(fixtures.regression.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const actual = regressionMetrics(c.labels, c.predictions);
    for (const metric of METRICS) expectClose(actual[metric], c.expected[metric], metric);
  });
});

describe('regressionMetrics edge cases', () => {
  it('divides by 2.2e-16 for a zero label, as sklearn MAPE does', () => {
    expect(regressionMetrics([0], [1]).mape).toBe(2 ** 52);
  });

  it('follows r2_score(force_finite=True) for constant labels and is NaN for one row', () => {
    expect(regressionMetrics([2, 2, 2], [2, 2, 2]).r2).toBe(1);
    expect(regressionMetrics([2, 2, 2], [2, 3, 2]).r2).toBe(0);
    expect(regressionMetrics([2], [3]).r2).toBeNaN();
  });

  it('gives NaN for an empty window', () => {
    const m = regressionMetrics([], []);
    expect(m).toEqual({ n: 0, mae: NaN, rmse: NaN, mape: NaN, r2: NaN, bias: NaN });
  });

  it('rejects mismatched lengths and non-finite values', () => {
    expect(() => regressionMetrics([1, 2], [1])).toThrow(/labels has 2 values but predictions has 1/);
    expect(() => regressionMetrics([1, NaN], [1, 2])).toThrow(/labels\[1\] is NaN/);
    expect(() => regressionMetrics([1, 2], [1, Infinity])).toThrow(/predictions\[1\]/);
  });
});
