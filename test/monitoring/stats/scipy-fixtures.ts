// Loads test/fixtures/stats/scipy.json (written by make_fixtures.py) and the tolerance checks the
// drift-statistics issue requires: statistics to 1e-6 relative, p-values to 1e-6 absolute.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

const path = new URL('../../fixtures/stats/scipy.json', import.meta.url);

/** JSON numbers, with non-finite values written as strings. */
export type Num = number | 'Infinity' | '-Infinity' | 'NaN';

export function num(x: Num): number {
  return typeof x === 'number' ? x : Number(x);
}

type ArraySpec = number[] | { from: string; scale: number; shift: number };

export interface TwoSampleCase {
  name: string;
  a: string;
  b: string;
  ks2: { statistic: Num; pValue: Num };
  cvm2?: { statistic: Num; pValue: Num };
  andersonKsamp?: { statistic: Num; pValue: Num };
  wasserstein: Num;
  energyDistance: Num;
  wassersteinNormed: Num;
}

export interface HistogramCase {
  p: number[];
  q: number[];
  psi: Num;
  'psi_eps1e-6': Num;
  kl: Record<'e' | '2' | '10', Num>;
  jensenShannon: Record<'e' | '2' | '10', Num>;
  hellinger: Num;
  totalVariation: Num;
}

export interface Fixtures {
  meta: { scipy: string; numpy: string; seed: number };
  arrays: Record<string, ArraySpec>;
  twoSample: { calls: Record<string, string>; cases: TwoSampleCase[] };
  andersonKsamp: { call: string; cases: { samples: string[]; statistic: Num; pValue: Num }[] };
  kstwoSf: { call: string; cases: { n: number; d: number; sf: Num }[] };
  smirnovSf: { call: string; cases: { n: number; d: number; sf: Num }[] };
  cvmInfCdf: { call: string; cases: { x: number; cdf: Num }[] };
  chi2Contingency: { call: string; cases: { table: number[][]; correction: boolean; statistic: Num; pValue: Num; dof: number }[] };
  chisquare: { call: string; cases: { observed: number[]; expected: number[]; statistic: Num; pValue: Num }[] };
  twoProportionZ: { call: string; cases: { args: [number, number, number, number]; statistic: Num; pValue: Num }[] };
  fisherExact: { call: string; cases: { table: [[number, number], [number, number]]; statistic: Num; pValue: Num }[] };
  histograms: { calls: Record<string, string>; cases: HistogramCase[] };
  weighted: { calls: Record<string, string>; cases: { values: number[]; weightsA: number[]; weightsB: number[]; wasserstein: Num; energyDistance: Num }[] };
}

export const fixtures: Fixtures = JSON.parse(readFileSync(path, 'utf8')) as Fixtures;

const cache = new Map<string, Float64Array>();

/** A fixture sample by id, rebuilt as `base * scale + shift` for derived ones (same IEEE ops as NumPy). */
export function sample(id: string): Float64Array {
  const hit = cache.get(id);
  if (hit) return hit;
  const spec = fixtures.arrays[id];
  if (!spec) throw new Error(`no fixture array ${id}`);
  let out: Float64Array;
  if (Array.isArray(spec)) {
    out = Float64Array.from(spec);
  } else {
    const base = sample(spec.from);
    out = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) out[i] = base[i]! * spec.scale + spec.shift;
  }
  cache.set(id, out);
  return out;
}

/** Statistic check: 1e-6 relative (with a 1e-12 absolute floor for values that are 0 up to rounding). */
export function expectStatistic(actual: number, expected: Num, what = 'statistic'): void {
  const e = num(expected);
  if (!Number.isFinite(e)) {
    expect(actual, what).toBe(e);
    return;
  }
  const err = Math.abs(actual - e);
  expect(err <= 1e-6 * Math.abs(e) || err <= 1e-12, `${what}: got ${actual}, SciPy ${e} (rel err ${err / Math.abs(e)})`).toBe(true);
}

/** p-value check: 1e-6 absolute. */
export function expectPValue(actual: number, expected: Num, what = 'p-value'): void {
  const e = num(expected);
  if (Number.isNaN(e)) {
    expect(actual, what).toBeNaN();
    return;
  }
  expect(Math.abs(actual - e) <= 1e-6, `${what}: got ${actual}, SciPy ${e}`).toBe(true);
}
