// Tests on counts against SciPy fixtures (test/fixtures/stats/scipy.json).
import { describe, expect, it } from 'vitest';
import { chi2Contingency, chisquare, fisherExact, twoProportionZ } from '../../../src/monitoring/drift/stats/index.ts';
import { expectPValue, expectStatistic, fixtures } from './scipy-fixtures.ts';

describe('chi2Contingency = scipy.stats.chi2_contingency(table, correction)', () => {
  it.each(fixtures.chi2Contingency.cases.map((c) => [JSON.stringify(c.table), c.correction, c] as const))('%s correction=%s', (_t, _c, c) => {
    const r = chi2Contingency(c.table, c.correction);
    expect(r.dof).toBe(c.dof);
    expectStatistic(r.statistic, c.statistic);
    expectPValue(r.pValue, c.pValue);
  });
  it('defaults to Yates correction like SciPy', () => {
    expect(chi2Contingency([[10, 20], [30, 40]])).toEqual(chi2Contingency([[10, 20], [30, 40]], true));
  });
  it('throws where SciPy raises', () => {
    expect(() => chi2Contingency([[0, 0], [1, 2]])).toThrow(/zero element/);
    expect(() => chi2Contingency([[1, -1], [1, 2]])).toThrow(RangeError);
    expect(() => chi2Contingency([])).toThrow(RangeError);
  });
});

describe('chisquare = scipy.stats.chisquare(observed, expected rescaled to the observed total)', () => {
  it.each(fixtures.chisquare.cases.map((c) => [JSON.stringify(c.observed), c] as const))('%s', (_o, c) => {
    const r = chisquare(c.observed, c.expected);
    expectStatistic(r.statistic, c.statistic);
    expectPValue(r.pValue, c.pValue);
  });
  it('rescaling makes it invariant to the scale of expected', () => {
    const a = chisquare([5, 10, 15], [1, 2, 3.5]);
    const b = chisquare([5, 10, 15], [10, 20, 35]);
    expect(a.statistic).toBeCloseTo(b.statistic, 12);
    expect(a.pValue).toBeCloseTo(b.pValue, 12);
  });
});

describe('twoProportionZ = pooled z-test, p from scipy.stats.norm.sf', () => {
  it.each(fixtures.twoProportionZ.cases.map((c) => [c.args.join(', '), c] as const))('(%s)', (_a, c) => {
    const r = twoProportionZ(...c.args);
    expectStatistic(r.statistic, c.statistic);
    expectPValue(r.pValue, c.pValue);
  });
  it('a pooled share of 0 or 1 (zero variance) gives statistic 0 and p-value 1', () => {
    expect(twoProportionZ(0, 10, 0, 20)).toEqual({ statistic: 0, pValue: 1 });
    expect(twoProportionZ(10, 10, 20, 20)).toEqual({ statistic: 0, pValue: 1 });
  });
  it('is antisymmetric in the statistic and symmetric in the p-value', () => {
    const ab = twoProportionZ(12, 40, 30, 50);
    const ba = twoProportionZ(30, 50, 12, 40);
    expect(ba.statistic).toBeCloseTo(-ab.statistic, 14);
    expect(ba.pValue).toBeCloseTo(ab.pValue, 14);
  });
});

describe('fisherExact = scipy.stats.fisher_exact(table)', () => {
  it.each(fixtures.fisherExact.cases.map((c) => [JSON.stringify(c.table), c] as const))('%s', (_t, c) => {
    const r = fisherExact(c.table);
    expectStatistic(r.statistic, c.statistic, 'odds ratio');
    expectPValue(r.pValue, c.pValue);
  });
  it('a table at the mode has p-value 1', () => {
    expect(fisherExact([[500, 500], [500, 500]]).pValue).toBe(1);
  });
  it('rejects non-integer or negative counts', () => {
    expect(() => fisherExact([[1.5, 2], [3, 4]])).toThrow(RangeError);
    expect(() => fisherExact([[-1, 2], [3, 4]])).toThrow(RangeError);
  });
});
