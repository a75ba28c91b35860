import { describe, expect, it } from 'vitest';
import { dleEstimate, fitDle, regressionMetrics } from '../../../src/monitoring/performance/index.ts';
import { normal, uniform } from './random.ts';

const K = 2;

/**
 * Heteroscedastic rows: y = 2·x1 + x2 + (0.2 + 0.5·x1)·ε with ε ~ N(0, 1), and a model that predicts the mean
 * 2·x1 + x2 exactly, so its error is pure noise whose size grows with x1 and does not depend on x2.
 */
function window(seed: number, n: number, x1: (u: number) => number, x2Mean = 0) {
  const random = uniform(seed);
  const gauss = normal(random);
  const features = new Float64Array(n * K);
  const predictions = new Float64Array(n);
  const labels = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = x1(random());
    const b = x2Mean + gauss();
    features[i * K] = a;
    features[i * K + 1] = b;
    predictions[i] = 2 * a + b;
    labels[i] = 2 * a + b + (0.2 + 0.5 * a) * gauss();
  }
  return { features, predictions, labels };
}

const reference = window(1, 5000, (u) => 4 * u);
const model = fitDle(reference.features, K, reference.predictions, reference.labels);

const windows = [
  { name: 'same distribution as the reference', data: window(2, 1000, (u) => 4 * u) },
  { name: 'low x1 (small errors)', data: window(3, 1000, (u) => u) },
  { name: 'high x1 (large errors)', data: window(4, 1000, (u) => 3 + u) },
  { name: 'x2 shifted (errors unchanged)', data: window(5, 1000, (u) => 4 * u, 2) },
];

describe('DLE on synthetic heteroscedastic data', () => {
  it.each(windows.map((w) => [w.name, w.data] as const))('estimated MAE and RMSE track the realized ones: %s', (_name, w) => {
    const realized = regressionMetrics(w.labels, w.predictions);
    const estimate = dleEstimate(model, w.features, K, w.predictions);
    expect(Math.abs(estimate.mae - realized.mae) / realized.mae).toBeLessThan(0.15);
    expect(Math.abs(estimate.rmse - realized.rmse) / realized.rmse).toBeLessThan(0.15);
  });

  it('follows the error level across windows, where the reference MAE would not', () => {
    const referenceMae = regressionMetrics(reference.labels, reference.predictions).mae;
    const [, low, high] = windows.map((w) => dleEstimate(model, w.data.features, K, w.data.predictions).mae);
    expect(low).toBeLessThan(0.5 * referenceMae);
    expect(high).toBeGreaterThan(1.4 * referenceMae);
  });

  it('is deterministic and survives a JSON round trip', () => {
    const again = fitDle(reference.features, K, reference.predictions, reference.labels);
    expect(again).toEqual(model);
    const copy = JSON.parse(JSON.stringify(model)) as typeof model;
    const w = windows[1]?.data ?? reference;
    expect(dleEstimate(copy, w.features, K, w.predictions)).toEqual(dleEstimate(model, w.features, K, w.predictions));
  });

  it('fits a linear-only model when quadratic is off', () => {
    const linear = fitDle(reference.features, K, reference.predictions, reference.labels, { quadratic: false, l2: 0 });
    expect(linear.absoluteError.weights).toHaveLength(K + 1);
    expect(model.absoluteError.weights).toHaveLength(2 * (K + 1));
  });
});

describe('DLE input checks', () => {
  it('rejects a feature matrix of the wrong shape, a different k, and bad options', () => {
    expect(() => fitDle(new Float64Array(5), K, [1, 2, 3], [1, 2, 3])).toThrow(/expected 3 rows × 2 = 6/);
    expect(() => fitDle(new Float64Array(2), K, [1], [1])).toThrow(/at least two/);
    expect(() => fitDle(reference.features, K, reference.predictions, reference.labels, { l2: -1 })).toThrow(/l2/);
    expect(() => dleEstimate(model, new Float64Array(3), 3, [1])).toThrow(/fitted on 2 features/);
  });

  it('gives NaN for an empty window', () => {
    const e = dleEstimate(model, new Float64Array(0), K, []);
    expect(e.mae).toBeNaN();
    expect(e.rmse).toBeNaN();
  });
});
