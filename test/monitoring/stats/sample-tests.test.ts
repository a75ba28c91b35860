// Two-sample tests and distances against SciPy fixtures (test/fixtures/stats/scipy.json).
import { describe, expect, it } from 'vitest';
import { andersonKsamp, cvm2, energyDistance, ks2, wasserstein, wassersteinNormed } from '../../../src/monitoring/drift/stats/index.ts';
import { kstwoSf, smirnovSf } from '../../../src/monitoring/drift/stats/kolmogorov.ts';
import { cvmInfCdf } from '../../../src/monitoring/drift/stats/cramer-von-mises.ts';
import { expectPValue, expectStatistic, fixtures, sample } from './scipy-fixtures.ts';

const cases = fixtures.twoSample.cases;

describe('ks2 = scipy.stats.ks_2samp(a, b)', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = ks2(sample(c.a), sample(c.b));
    expectStatistic(r.statistic, c.ks2.statistic);
    expectPValue(r.pValue, c.ks2.pValue);
  });
});

describe('cvm2 = scipy.stats.cramervonmises_2samp(a, b)', () => {
  it.each(cases.filter((c) => c.cvm2).map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = cvm2(sample(c.a), sample(c.b));
    expectStatistic(r.statistic, c.cvm2!.statistic);
    expectPValue(r.pValue, c.cvm2!.pValue);
  });
});

describe('andersonKsamp = scipy.stats.anderson_ksamp(samples)', () => {
  it.each(cases.filter((c) => c.andersonKsamp).map((c) => [c.name, c] as const))('2 samples: %s', (_name, c) => {
    const r = andersonKsamp([sample(c.a), sample(c.b)]);
    expectStatistic(r.statistic, c.andersonKsamp!.statistic);
    expectPValue(r.pValue, c.andersonKsamp!.pValue);
  });
  it.each(fixtures.andersonKsamp.cases.map((c) => [c.samples.join(', '), c] as const))('%s', (_name, c) => {
    const r = andersonKsamp(c.samples.map(sample));
    expectStatistic(r.statistic, c.statistic);
    expectPValue(r.pValue, c.pValue);
  });
});

describe('wasserstein, energyDistance, wassersteinNormed = scipy.stats.wasserstein_distance, energy_distance', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const a = sample(c.a);
    const b = sample(c.b);
    expectStatistic(wasserstein(a, b), c.wasserstein, 'wasserstein');
    expectStatistic(energyDistance(a, b), c.energyDistance, 'energy');
    expectStatistic(wassersteinNormed(a, b), c.wassersteinNormed, 'wasserstein normed');
  });
});

describe('distribution functions behind the p-values', () => {
  it.each(fixtures.kstwoSf.cases.map((c) => [c.n, c.d, c] as const))('kstwo.sf(d, n): n=%i d=%f', (_n, _d, c) => {
    expectPValue(kstwoSf(c.n, c.d), c.sf);
  });
  it.each(fixtures.smirnovSf.cases.map((c) => [c.n, c.d, c] as const))('scipy.special.smirnov(n, d): n=%i d=%f', (_n, _d, c) => {
    expectPValue(smirnovSf(c.n, c.d), c.sf);
  });
  it.each(fixtures.cvmInfCdf.cases.map((c) => [c.x, c] as const))('_cdf_cvm_inf(%f)', (_x, c) => {
    expectPValue(cvmInfCdf(c.x), c.cdf);
  });
});

describe('scipy behaviour at the edges', () => {
  it('NaN propagates like nan_policy="propagate"', () => {
    const a = Float64Array.of(1, 2, NaN, 4);
    const b = Float64Array.of(1, 2, 3);
    expect(ks2(a, b).pValue).toBeNaN();
    expect(cvm2(a, b).statistic).toBeNaN();
    expect(wasserstein(a, b)).toBeNaN();
    expect(andersonKsamp([a, b]).pValue).toBeNaN();
  });
  it('throws where SciPy raises', () => {
    expect(() => ks2(new Float64Array(0), Float64Array.of(1))).toThrow(RangeError);
    expect(() => cvm2(Float64Array.of(1), Float64Array.of(1, 2))).toThrow(RangeError);
    expect(() => andersonKsamp([Float64Array.of(1, 2)])).toThrow(RangeError);
    expect(() => andersonKsamp([Float64Array.of(3, 3), Float64Array.of(3)])).toThrow(RangeError);
  });
  it('leaves its inputs unsorted', () => {
    const a = Float64Array.of(3, 1, 2);
    ks2(a, Float64Array.of(0, 5));
    expect(Array.from(a)).toEqual([3, 1, 2]);
  });
});
