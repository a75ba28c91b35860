import { describe, expect, it } from 'vitest';
import {
  calibrate,
  cbpeEstimate,
  classificationMetrics,
  fitCalibration,
} from '../../../src/monitoring/performance/index.ts';
import { uniform } from './random.ts';
import { expectAllClose, expectClose, fixtures } from './sklearn-fixtures.ts';

describe('cbpeEstimate matches the numpy re-implementation in make_fixtures.py', () => {
  it.each(fixtures.cbpe.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const calibrated = calibrate(fitCalibration(c.referenceLabels, c.referenceScores), c.scores);
    expectAllClose(calibrated, c.expected.calibrated, 'calibrated (sklearn IsotonicRegression.predict)');
    const estimate = cbpeEstimate(c.scores, calibrated, c.threshold);
    for (const metric of ['accuracy', 'precision', 'recall', 'f1', 'rocAuc'] as const) {
      expectClose(estimate[metric], c.expected[metric], metric);
    }
    for (const cell of ['tp', 'fp', 'tn', 'fn'] as const) expectClose(estimate.confusion[cell], c.expected.confusion[cell], cell);
  });
});

/** n rows: a true probability p from `draw`, a label ~ Bernoulli(shift(p)), and the model's raw score. */
function synthetic(seed: number, n: number, draw: (u: number) => number, raw: (p: number) => number, shift = (p: number) => p) {
  const random = uniform(seed);
  const p = new Float64Array(n);
  const labels = new Uint8Array(n);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    p[i] = draw(random());
    labels[i] = random() < shift(p[i] as number) ? 1 : 0;
    scores[i] = raw(p[i] as number);
  }
  return { p, labels, scores };
}

const logit = (p: number): number => Math.log(p / (1 - p));
const expit = (x: number): number => 1 / (1 + Math.exp(-x));
const FEW_POINTS = 0.03;

function expectTracks(estimate: ReturnType<typeof cbpeEstimate>, realized: ReturnType<typeof classificationMetrics>): void {
  for (const metric of ['accuracy', 'precision', 'recall', 'f1', 'rocAuc'] as const) {
    expect(Math.abs(estimate[metric] - realized[metric]), metric).toBeLessThan(FEW_POINTS);
  }
  const n = realized.n;
  for (const cell of ['tp', 'fp', 'tn', 'fn'] as const) {
    expect(Math.abs(estimate.confusion[cell] - realized.confusion[cell]) / n, cell).toBeLessThan(FEW_POINTS);
  }
}

describe('CBPE on synthetic data', () => {
  it('estimates accuracy, F1 and ROC AUC within a few points when scores are calibrated (5,000 rows)', () => {
    const { labels, scores } = synthetic(7, 5000, (u) => u ** 1.5, (p) => p);
    expectTracks(cbpeEstimate(scores, scores), classificationMetrics(labels, scores));
  });

  it('recovers from an overconfident model once calibrated on a labelled reference, under covariate shift', () => {
    const overconfident = (p: number): number => expit(3 * logit(p));
    const reference = synthetic(11, 5000, (u) => 0.01 + 0.98 * u, overconfident);
    const cal = fitCalibration(reference.labels, reference.scores);
    // The window sees mostly high-probability rows: P(x) moved, P(label | x) did not.
    const window = synthetic(12, 5000, (u) => 0.01 + 0.98 * Math.sqrt(u), overconfident);
    const realized = classificationMetrics(window.labels, window.scores);
    const naive = cbpeEstimate(window.scores, window.scores);
    expect(Math.abs(naive.accuracy - realized.accuracy)).toBeGreaterThan(0.05); // uncalibrated scores mislead
    expectTracks(cbpeEstimate(window.scores, calibrate(cal, window.scores)), realized);
  });

  it('cannot see concept drift: when P(label | x) moves, the estimate stays where the reference put it', () => {
    const reference = synthetic(21, 5000, (u) => u, (p) => p);
    const cal = fitCalibration(reference.labels, reference.scores);
    const drifted = synthetic(22, 5000, (u) => u, (p) => p, (p) => Math.min(1, p + 0.3));
    const realized = classificationMetrics(drifted.labels, drifted.scores);
    const estimate = cbpeEstimate(drifted.scores, calibrate(cal, drifted.scores));
    // Every row is now 0.3 likelier to be positive: realized precision jumps, the estimate cannot follow.
    expect(realized.precision - estimate.precision).toBeGreaterThan(0.15);
    expect(estimate.recall - realized.recall).toBeGreaterThan(0.05);
  });

  it('is deterministic and independent of row order', () => {
    const { scores } = synthetic(31, 1000, (u) => u, (p) => Math.round(p * 20) / 20);
    const a = cbpeEstimate(scores, scores);
    const reversed = Float64Array.from(scores).reverse();
    const b = cbpeEstimate(reversed, reversed);
    expect(b.rocAuc).toBeCloseTo(a.rocAuc, 12);
    expect(b.accuracy).toBeCloseTo(a.accuracy, 12);
  });
});

describe('cbpeEstimate edge cases', () => {
  it('uses the raw score for the decision and the calibrated one for the expectation', () => {
    const e = cbpeEstimate([0.9, 0.2], [0.6, 0.3]);
    expect(e.confusion).toEqual({ tp: 0.6, fp: 0.4, fn: 0.3, tn: 0.7 });
    expect(e.accuracy).toBeCloseTo(0.65, 15);
  });

  it('is NaN where a ratio is 0/0, as NannyML returns', () => {
    const e = cbpeEstimate([0.1, 0.2], [0.3, 0.4]);
    expect(e.precision).toBeNaN();
    expect(e.recall).toBe(0);
    expect(cbpeEstimate([0.9, 0.8], [1, 1]).rocAuc).toBeNaN(); // no expected negatives
    expect(cbpeEstimate([], []).accuracy).toBeNaN();
  });

  it('rejects calibrated scores outside [0, 1] and mismatched lengths', () => {
    expect(() => cbpeEstimate([0.5], [1.2])).toThrow(/calibratedScores\[0\]/);
    expect(() => cbpeEstimate([0.5, 0.4], [0.5])).toThrow(/rawScores has 2 values/);
  });
});
