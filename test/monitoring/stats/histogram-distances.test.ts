// Distances between distributions over shared bins against SciPy/NumPy fixtures, plus the weighted
// (histogram) Wasserstein and energy distances.
import { describe, expect, it } from 'vitest';
import {
  energyDistanceFromWeights,
  hellinger,
  jensenShannon,
  kl,
  psi,
  totalVariation,
  wassersteinFromWeights,
} from '../../../src/monitoring/drift/stats/index.ts';
import { expectStatistic, fixtures } from './scipy-fixtures.ts';

const cases = fixtures.histograms.cases.map((c) => [`${JSON.stringify(c.p)} vs ${JSON.stringify(c.q)}`, c] as const);
const bases = [
  ['e', undefined],
  ['2', 2],
  ['10', 10],
] as const;

describe('psi (numpy formula, empty-bin proportions replaced by eps)', () => {
  it.each(cases)('%s', (_n, c) => {
    expectStatistic(psi(c.p, c.q), c.psi, 'psi eps=1e-4');
    expectStatistic(psi(c.p, c.q, 1e-6), c['psi_eps1e-6'], 'psi eps=1e-6');
  });
});

describe('kl = scipy.stats.entropy(p, q, base)', () => {
  it.each(cases)('%s', (_n, c) => {
    for (const [key, base] of bases) expectStatistic(kl(c.p, c.q, base), c.kl[key], `kl base ${key}`);
  });
});

describe('jensenShannon = scipy.spatial.distance.jensenshannon(p, q, base)', () => {
  it.each(cases)('%s', (_n, c) => {
    for (const [key, base] of bases) expectStatistic(jensenShannon(c.p, c.q, base), c.jensenShannon[key], `js base ${key}`);
  });
});

describe('hellinger and totalVariation (numpy/mpmath formulas)', () => {
  it.each(cases)('%s', (_n, c) => {
    expectStatistic(hellinger(c.p, c.q), c.hellinger, 'hellinger');
    expectStatistic(totalVariation(c.p, c.q), c.totalVariation, 'total variation');
  });
});

describe('wassersteinFromWeights / energyDistanceFromWeights = scipy.stats.*(values, values, wA, wB)', () => {
  it.each(fixtures.weighted.cases.map((c) => [JSON.stringify(c.values), c] as const))('%s', (_n, c) => {
    expectStatistic(wassersteinFromWeights(c.values, c.weightsA, c.weightsB), c.wasserstein, 'wasserstein');
    expectStatistic(energyDistanceFromWeights(c.values, c.weightsA, c.weightsB), c.energyDistance, 'energy');
  });
  it('rejects negative weights and zero totals like SciPy', () => {
    expect(() => wassersteinFromWeights([1, 2], [1, -1], [1, 1])).toThrow(RangeError);
    expect(() => wassersteinFromWeights([1, 2], [0, 0], [1, 1])).toThrow(RangeError);
  });
});

describe('input validation', () => {
  it('throws on mismatched lengths, negative counts and empty totals', () => {
    expect(() => psi([1, 2], [1, 2, 3])).toThrow(RangeError);
    expect(() => kl([1, -2], [1, 2])).toThrow(RangeError);
    expect(() => jensenShannon([0, 0], [1, 2])).toThrow(RangeError);
    expect(() => hellinger([], [])).toThrow(RangeError);
  });
});
