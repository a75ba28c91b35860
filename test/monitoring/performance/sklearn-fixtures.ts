// Loads test/fixtures/performance/sklearn.json (written by make_fixtures.py with scikit-learn 1.2.1) and the
// tolerance the performance functions are held to: 1e-9 relative, since sklearn computes in float64 too.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** JSON numbers, with non-finite values written as strings. */
export type Num = number | 'NaN' | 'Infinity' | '-Infinity';

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ClassificationCase {
  name: string;
  labels: number[];
  scores: number[];
  threshold: number;
  expected: Record<
    'n' | 'accuracy' | 'precision' | 'recall' | 'f1' | 'rocAuc' | 'prAuc' | 'logLoss' | 'brier' | 'ece' | 'positiveRate' | 'predictedPositiveRate',
    Num
  > & { confusion: Confusion };
}

export interface RegressionCase {
  name: string;
  labels: number[];
  predictions: number[];
  expected: Record<'n' | 'mae' | 'rmse' | 'mape' | 'r2' | 'bias', Num>;
}

export interface IsotonicCase {
  name: string;
  labels: number[];
  scores: number[];
  queries: number[];
  expected: { x: number[]; y: number[]; predictions: number[] };
}

export interface CbpeCase {
  name: string;
  referenceLabels: number[];
  referenceScores: number[];
  scores: number[];
  threshold: number;
  expected: Record<'accuracy' | 'precision' | 'recall' | 'f1' | 'rocAuc', Num> & {
    calibrated: number[];
    confusion: Confusion;
  };
}

export interface Fixtures {
  versions: Record<string, string>;
  classification: ClassificationCase[];
  regression: RegressionCase[];
  isotonic: IsotonicCase[];
  cbpe: CbpeCase[];
}

export const fixtures = JSON.parse(
  readFileSync(new URL('../../fixtures/performance/sklearn.json', import.meta.url), 'utf8'),
) as Fixtures;

export const RELATIVE_TOLERANCE = 1e-9;

/** Passes when actual equals expected to 1e-9 relative (1e-15 absolute around 0), NaN matching NaN. */
export function expectClose(actual: number, expected: Num, label: string): void {
  const e = Number(expected);
  if (Number.isNaN(e)) {
    expect(actual, label).toBeNaN();
    return;
  }
  const tolerance = RELATIVE_TOLERANCE * Math.abs(e) + 1e-15;
  if (!(Math.abs(actual - e) <= tolerance)) {
    expect.fail(`${label}: got ${actual}, sklearn gives ${e} (|diff| ${Math.abs(actual - e)} > ${tolerance})`);
  }
}

/** expectClose over two arrays of the same length. */
export function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expectClose(actual[i] as number, expected[i] as number, `${label}[${i}]`);
}
