import { describe, expect, it } from 'vitest';
import { classificationMetrics } from '../../../src/monitoring/performance/index.ts';
import { expectClose, fixtures } from './sklearn-fixtures.ts';

const METRICS = [
  'n',
  'accuracy',
  'precision',
  'recall',
  'f1',
  'rocAuc',
  'prAuc',
  'logLoss',
  'brier',
  'ece',
  'positiveRate',
  'predictedPositiveRate',
] as const;

describe('classificationMetrics matches scikit-learn 1.2.1', () => {
  it('has a fixture for every documented edge case', () => {
    const names = fixtures.classification.map((c) => c.name);
    for (const name of ['imbalanced 1:9', 'ties (scores on a 0.1 grid)', 'perfect', 'worst', 'all negative', 'all positive']) {
      expect(names).toContain(name);
    }
    expect(fixtures.versions.sklearn).toBe('1.2.1');
  });

  it.each(fixtures.classification.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const actual = classificationMetrics(c.labels, c.scores, c.threshold);
    for (const metric of METRICS) expectClose(actual[metric], c.expected[metric], metric);
    expect(actual.confusion).toEqual(c.expected.confusion);
  });
});

describe('classificationMetrics edge cases', () => {
  it('is NaN where sklearn raises: ROC AUC and log loss with one class', () => {
    const m = classificationMetrics([1, 1, 1], [0.2, 0.6, 0.9]);
    expect(m.rocAuc).toBeNaN();
    expect(m.logLoss).toBeNaN();
    expect(m.accuracy).toBeCloseTo(2 / 3, 15);
    expect(m.prAuc).toBe(1);
  });

  it('reports precision 0 with no predicted positives, as sklearn zero_division does', () => {
    const m = classificationMetrics([0, 1], [0.1, 0.2]);
    expect(m.precision).toBe(0);
    expect(m.f1).toBe(0);
    expect(m.predictedPositiveRate).toBe(0);
  });

  it('gives NaN rates for an empty window', () => {
    const m = classificationMetrics([], []);
    expect(m.n).toBe(0);
    for (const metric of METRICS.slice(1)) expect(m[metric], metric).toBeNaN();
    expect(m.confusion).toEqual({ tp: 0, fp: 0, tn: 0, fn: 0 });
  });

  it('does not depend on row order', () => {
    const labels = [1, 0, 1, 1, 0, 0, 1, 0];
    const scores = [0.9, 0.4, 0.4, 0.7, 0.1, 0.4, 0.55, 0.6];
    const a = classificationMetrics(labels, scores);
    const b = classificationMetrics([...labels].reverse(), [...scores].reverse());
    expect(b).toEqual(a);
  });

  it('accepts typed arrays', () => {
    const m = classificationMetrics(Uint8Array.from([0, 1, 1]), Float32Array.from([0.25, 0.75, 0.5]));
    expect(m.accuracy).toBe(1);
    expect(m.rocAuc).toBe(1);
  });

  it('rejects mismatched lengths, labels other than 0/1 and scores outside [0, 1]', () => {
    expect(() => classificationMetrics([0, 1], [0.5])).toThrow(/labels has 2 values but scores has 1/);
    expect(() => classificationMetrics([0, 2], [0.5, 0.5])).toThrow(/labels\[1\] is 2/);
    expect(() => classificationMetrics([0, 1], [0.5, 1.5])).toThrow(/scores\[1\] is 1.5/);
    expect(() => classificationMetrics([0, 1], [0.5, NaN])).toThrow(RangeError);
    expect(() => classificationMetrics([0, 1], [0.5, 0.5], NaN)).toThrow(/threshold/);
  });
});
