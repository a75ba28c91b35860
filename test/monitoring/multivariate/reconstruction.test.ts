import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fitReconstruction, reconstructionError, type FeatureMatrix } from '../../../src/monitoring/multivariate/index.ts';
import { symmetricEigen } from '../../../src/monitoring/multivariate/eigen.ts';
import { mulberry32, shuffleInPlace } from '../../../src/monitoring/embeddings/random.ts';

// Reference values: test/fixtures/embeddings/make_fixtures.py — the same steps in numpy (nanmean imputation,
// population std, numpy.cov, numpy.linalg.eigh, sklearn's n_components=float rule, leave-chunk-out thresholds).
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/embeddings/reconstruction.json', import.meta.url), 'utf8'));

const matrix = (rows: number, dim: number, data: (number | null)[]): FeatureMatrix => ({
  rows,
  dim,
  data: Float64Array.from(data, (v) => (v === null ? Number.NaN : v)),
});
const reference = matrix(fixture.reference.rows, fixture.reference.dim, fixture.reference.data);
const dim = reference.dim;

function expectRelative(actual: number, expected: number, tol: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tol * Math.abs(expected));
}

/** Compares eigenvectors up to sign: flips `actual` to agree with `expected` on their largest entry. */
function expectSameAxis(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  let dot = 0;
  for (let j = 0; j < expected.length; j++) dot += (actual[j] as number) * (expected[j] as number);
  const sign = dot < 0 ? -1 : 1;
  for (let j = 0; j < expected.length; j++) expect(Math.abs(sign * (actual[j] as number) - (expected[j] as number))).toBeLessThan(tol);
}

describe('symmetricEigen (Jacobi)', () => {
  it('matches numpy.linalg.eigh on the fixture covariance (up to sign)', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from(fixture.covariance), dim);
    for (let c = 0; c < dim; c++) {
      expectRelative(values[c] as number, fixture.eigenvalues[c], 1e-10);
      const column = Array.from({ length: dim }, (_, j) => vectors[j * dim + c] as number);
      expectSameAxis(column, fixture.eigenvectors[c], 1e-8);
    }
  });

  it('returns orthonormal eigenvectors that diagonalise the matrix', () => {
    const n = 30;
    const random = mulberry32(3);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = random() - 0.5;
    const { values, vectors } = symmetricEigen(a, n);
    for (let p = 0; p < n; p++) {
      for (let q = 0; q < n; q++) {
        let vtv = 0;
        let vtav = 0;
        for (let i = 0; i < n; i++) {
          vtv += (vectors[i * n + p] as number) * (vectors[i * n + q] as number);
          let av = 0;
          for (let j = 0; j < n; j++) av += (a[i * n + j] as number) * (vectors[j * n + q] as number);
          vtav += (vectors[i * n + p] as number) * av;
        }
        expect(Math.abs(vtv - (p === q ? 1 : 0))).toBeLessThan(1e-12);
        expect(Math.abs(vtav - (p === q ? (values[p] as number) : 0))).toBeLessThan(1e-12);
      }
    }
    for (let p = 1; p < n; p++) expect(values[p] as number).toBeLessThanOrEqual(values[p - 1] as number);
  });
});

describe('fitReconstruction', () => {
  const model = fitReconstruction(reference);
  const expected = fixture.model;

  it('standardises and fits PCA like numpy (means, stds, components up to sign, explained variance)', () => {
    expect(model.dim).toBe(dim);
    expect(model.varianceRatio).toBe(0.65);
    expect(model.components).toHaveLength(expected.k);
    for (let j = 0; j < dim; j++) {
      expectRelative(model.means[j] as number, expected.means[j], 1e-12);
      expectRelative(model.stds[j] as number, expected.stds[j], 1e-12);
    }
    for (let c = 0; c < expected.k; c++) {
      expectSameAxis(model.components[c] as number[], expected.components[c], 1e-8);
      expectRelative(model.explainedVariance[c] as number, expected.explainedVariance[c], 1e-10);
      expectRelative(model.explainedVarianceRatio[c] as number, expected.explainedVarianceRatio[c], 1e-10);
    }
  });

  it('keeps every component at varianceRatio 1, with numpy.linalg.eigh eigenvalues', () => {
    const all = fitReconstruction(reference, { varianceRatio: 1 });
    expect(all.components).toHaveLength(dim);
    all.explainedVariance.forEach((v, c) => expectRelative(v, fixture.eigenvalues[c], 1e-10));
    all.components.forEach((v, c) => expectSameAxis(v, fixture.eigenvectors[c], 1e-8));
    expect(reconstructionError(all, reference).error).toBeLessThan(1e-12); // nothing left to lose
  });

  it('learns the numpy leave-chunk-out errors and thresholds', () => {
    expect(model.referenceChunkErrors).toHaveLength(expected.chunks);
    model.referenceChunkErrors.forEach((e, i) => expectRelative(e, expected.referenceChunkErrors[i], 1e-8));
    expectRelative(model.thresholds.lower, expected.lower, 1e-8);
    expectRelative(model.thresholds.upper, expected.upper, 1e-8);
  });

  it('scores chunks like numpy: a similar chunk (with a missing value) passes, a decorrelated one alerts', () => {
    const same = reconstructionError(model, matrix(50, dim, fixture.chunks.same.data));
    expectRelative(same.error, fixture.chunks.same.error, 1e-8);
    expect(same.alert).toBe(false);
    const broken = reconstructionError(model, matrix(50, dim, fixture.chunks.broken.data));
    expectRelative(broken.error, fixture.chunks.broken.error, 1e-8);
    expect(broken.alert).toBe(true);
    expect(broken).toMatchObject({ lower: model.thresholds.lower, upper: model.thresholds.upper });
  });

  it('imputes a missing value with the reference mean', () => {
    const row = Array.from({ length: dim }, (_, j) => (j === 2 ? Number.NaN : (model.means[j] as number) + j));
    const filled = row.map((v, j) => (Number.isNaN(v) ? (model.means[j] as number) : v));
    expect(reconstructionError(model, matrix(1, dim, row)).error).toBe(reconstructionError(model, matrix(1, dim, filled)).error);
  });

  it('survives a JSON round trip', () => {
    const revived = JSON.parse(JSON.stringify(model));
    expect(revived).toEqual(model);
    const chunk = matrix(50, dim, fixture.chunks.broken.data);
    expect(reconstructionError(revived, chunk)).toEqual(reconstructionError(model, chunk));
  });

  it('never lets a chunk into its own baseline', () => {
    // Nine chunks of 2-d structure in 5 features (feature 4 nearly constant), and one chunk whose feature 4 varies
    // 80× more. A model fitted with that chunk learned feature 4's spread from it, so the chunk's values standardise
    // to a few units (small in-sample error); a model fitted on the other chunks scales feature 4 by their tiny
    // spread, and the chunk lands ~80σ off the learned subspace.
    const rows = 1000;
    const d = 5;
    const random = mulberry32(11);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const data = new Float64Array(rows * d);
    for (let r = 0; r < rows; r++) {
      const [u, v] = [gauss(), gauss()];
      const outlier = r >= 300 && r < 400;
      data.set([u, u + 0.1 * gauss(), v, v + 0.1 * gauss(), (outlier ? 8 : 0.1) * gauss()], r * d);
    }
    const ref = { rows, dim: d, data };
    const fitted = fitReconstruction(ref, { varianceRatio: 0.7, chunks: 10 });
    const outlierChunk = { rows: 100, dim: d, data: data.slice(300 * d, 400 * d) };

    // Its baseline error is exactly what a model fitted on the other nine chunks gives it …
    const others = { rows: 900, dim: d, data: Float64Array.from([...data.subarray(0, 300 * d), ...data.subarray(400 * d)]) };
    const outOfSample = reconstructionError(fitReconstruction(others, { varianceRatio: 0.7, chunks: 9 }), outlierChunk).error;
    expect(fitted.referenceChunkErrors[3]).toBe(outOfSample);
    // … and far above its in-sample error under the model that saw it.
    const inSample = reconstructionError(fitted, outlierChunk).error;
    expect(inSample).toBeLessThan(0.1 * outOfSample);
  });

  it('rejects bad input', () => {
    expect(() => fitReconstruction(reference, { varianceRatio: 0 })).toThrow(/varianceRatio/);
    expect(() => fitReconstruction(reference, { chunks: 1 })).toThrow(/chunks/);
    expect(() => fitReconstruction(matrix(5, 2, new Array(10).fill(1)))).toThrow(/at least 2 rows per chunk/);
    expect(() => reconstructionError(model, matrix(1, dim - 1, new Array(dim - 1).fill(0)))).toThrow(/dim/);
    expect(() => fitReconstruction(matrix(20, 2, Array.from({ length: 40 }, (_, i) => (i % 2 ? null : i))))).toThrow(/no non-missing/);
  });
});

describe('bike-sharing: a broken correlation alerts, an ordinary 2011 month does not', () => {
  const features = ['temp', 'atemp', 'hum', 'windspeed', 'hr', 'weekday', 'mnth'];
  const csv = readFileSync(new URL('../../../data/bike-sharing/hour.csv', import.meta.url), 'utf8').trim().split('\n');
  const header = (csv[0] as string).split(',');
  const at = (name: string) => header.indexOf(name);
  const rows2011 = csv.slice(1).map((line) => line.split(',')).filter((cells) => cells[at('yr')] === '0');
  const toMatrix = (rows: string[][]): FeatureMatrix => ({
    rows: rows.length,
    dim: features.length,
    data: Float64Array.from(rows.flatMap((cells) => features.map((f) => Number(cells[at(f)])))),
  });
  const bike = fixture.bike;
  // With only 7 features, the default 0.65 keeps 3 components and leaves 4 large directions to the error, whose
  // seasonal swings widen the band past what a broken temp/atemp link adds (docs/embedding-drift.md). 0.95 keeps
  // 6 and leaves the one direction that the temp/atemp correlation makes nearly empty.
  const model = fitReconstruction(toMatrix(rows2011), { varianceRatio: bike.varianceRatio, chunks: bike.chunks });
  const march = toMatrix(rows2011.filter((cells) => cells[at('mnth')] === '3'));

  it('fits the same thresholds as numpy', () => {
    expect(model.components).toHaveLength(bike.k);
    model.referenceChunkErrors.forEach((e, i) => expectRelative(e, bike.referenceChunkErrors[i], 1e-8));
    expectRelative(model.thresholds.lower, bike.lower, 1e-8);
    expectRelative(model.thresholds.upper, bike.upper, 1e-8);
  });

  it('does not alert on March 2011', () => {
    expect(march.rows).toBe(bike.march2011.rows);
    const r = reconstructionError(model, march);
    expectRelative(r.error, bike.march2011.error, 1e-8);
    expect(r.alert).toBe(false);
  });

  /** `chunk` with the atemp column shuffled by mulberry32(seed): same values, so the same distribution. */
  function shuffleAtemp(chunk: FeatureMatrix, seed: number): FeatureMatrix {
    const col = features.indexOf('atemp');
    const values = Float64Array.from({ length: chunk.rows }, (_, r) => chunk.data[r * chunk.dim + col] as number);
    const shuffled = shuffleInPlace(values.slice(), mulberry32(seed));
    expect(Float64Array.from(shuffled).sort()).toEqual(Float64Array.from(values).sort());
    const data = chunk.data.slice();
    shuffled.forEach((v, r) => (data[r * chunk.dim + col] = v));
    return { ...chunk, data };
  }

  it('alerts on March 2011 with atemp shuffled within the chunk (its distribution unchanged)', () => {
    const r = reconstructionError(model, shuffleAtemp(march, bike.march2011AtempShuffled.seed));
    expectRelative(r.error, bike.march2011AtempShuffled.error, 1e-8);
    expect(r.alert).toBe(true);
    expect(r.error).toBeGreaterThan(2 * r.upper);
  });

  it('behaves the same in summer and autumn 2011, and passes 2012 months it never saw', () => {
    for (const month of ['7', '11']) {
      const chunk = toMatrix(rows2011.filter((cells) => cells[at('mnth')] === month));
      expect(reconstructionError(model, chunk).alert).toBe(false);
      expect(reconstructionError(model, shuffleAtemp(chunk, 7)).alert).toBe(true);
    }
    const all = csv.slice(1).map((line) => line.split(','));
    for (const month of ['1', '7']) {
      const chunk = toMatrix(all.filter((cells) => cells[at('yr')] === '1' && cells[at('mnth')] === month));
      expect(reconstructionError(model, chunk).alert).toBe(false);
    }
  });
});
