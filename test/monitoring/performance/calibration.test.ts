import { describe, expect, it } from 'vitest';
import { calibrate, fitCalibration } from '../../../src/monitoring/performance/index.ts';
import { expectAllClose, fixtures } from './sklearn-fixtures.ts';

describe('fitCalibration / calibrate match sklearn IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)', () => {
  it.each(fixtures.isotonic.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const cal = fitCalibration(c.labels, c.scores);
    expectAllClose(cal.x, c.expected.x, 'X_thresholds_');
    expectAllClose(cal.y, c.expected.y, 'y_thresholds_');
    expectAllClose(calibrate(cal, c.queries), c.expected.predictions, 'predict');
  });

  it('reproduces the knots bit for bit (same pooling arithmetic as sklearn)', () => {
    for (const c of fixtures.isotonic) {
      const cal = fitCalibration(c.labels, c.scores);
      expect(cal.x, c.name).toEqual(c.expected.x);
      expect(cal.y, c.name).toEqual(c.expected.y);
    }
  });
});

describe('isotonic calibration', () => {
  it('is non-decreasing, within [0, 1], and clips outside the fitted range', () => {
    const cal = fitCalibration([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.6, 0.8]);
    for (let i = 1; i < cal.y.length; i++) expect(cal.y[i]).toBeGreaterThanOrEqual(cal.y[i - 1] as number);
    const out = calibrate(cal, [-1, 0.1, 0.35, 0.8, 2]);
    expect(out[0]).toBe(cal.y[0]);
    expect(out[4]).toBe(cal.y[cal.y.length - 1]);
    expect(out[2]).toBe(0.5); // the pooled block {0.3, 0.4} has one positive of two
  });

  it('survives a JSON round trip', () => {
    const cal = fitCalibration([0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.7, 0.9]);
    const copy = JSON.parse(JSON.stringify(cal)) as typeof cal;
    const queries = [0, 0.2, 0.33, 0.5, 1];
    expect(calibrate(copy, queries)).toEqual(calibrate(cal, queries));
  });

  it('passes NaN scores through and rejects bad input', () => {
    const cal = fitCalibration([0, 1], [0.2, 0.8]);
    expect(calibrate(cal, [NaN])[0]).toBeNaN();
    expect(() => fitCalibration([], [])).toThrow(/at least one/);
    expect(() => fitCalibration([0, 3], [0.1, 0.2])).toThrow(/labels\[1\] is 3/);
    expect(() => fitCalibration([0, 1], [0.1, NaN])).toThrow(/scores\[1\]/);
    expect(() => calibrate({ x: [], y: [] }, [0.5])).toThrow(/non-empty/);
  });
});
