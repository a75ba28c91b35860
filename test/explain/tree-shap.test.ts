/**
 * Exact interventional TreeSHAP on the 60-tree bike-sharing GradientBoostingRegressor (test/fixtures/models).
 * The trees read from the ONNX file must predict what scikit-learn and onnxruntime predict; the Shapley values must
 * equal a brute-force enumeration of all 2^12 coalitions of the interventional value function
 * v(S) = mean_z f(x_S, z_rest), and add up to f(x) − E[f(z)] to 1e-9.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readTreeEnsemble, treeShap, type TreeEnsemble } from '../../src/explain/index.ts';
import { fixturesDir } from '../helpers/server.ts';
import { bikeBackground, bruteForceShapley } from '../helpers/shapley.ts';

const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as { features: string[]; input: number[][]; output: number[] };
const f32 = (row: number[]) => Float32Array.from(row);

const background = (n: number) => bikeBackground(expected.features, n);

const bruteForce = (model: TreeEnsemble, x: Float32Array, bg: Float32Array[]) => bruteForceShapley((r) => model.predict(r), x, bg);

describe('tree ensembles read from ONNX', () => {
  const model = readTreeEnsemble(GBR);

  it('reads 60 trees that predict what scikit-learn and onnxruntime predict', async () => {
    expect(model.trees).toHaveLength(60);
    const session = await ort.InferenceSession.create(GBR);
    const flat = Float32Array.from(expected.input.flat());
    const out = (await session.run({ input: new ort.Tensor('float32', flat, [expected.input.length, 12]) })).variable!.data as Float32Array;
    expected.input.forEach((row, i) => {
      const mine = model.predict(f32(row));
      // onnxruntime sums in float32: agree to float32 rounding of a sum of 61 terms.
      expect(Math.abs(mine - out[i]!)).toBeLessThan(1e-3);
      expect(Math.abs(mine - expected.output[i]!)).toBeLessThan(1e-3);
    });
  });

  it('refuses a model that is not a single-output tree ensemble, saying why', () => {
    const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
    expect(() => readTreeEnsemble(logreg)).toThrow(/no TreeEnsembleRegressor/);
  });
});

describe('exact interventional TreeSHAP', () => {
  const model = readTreeEnsemble(GBR);

  it('equals the brute-force Shapley values over all 4,096 coalitions', () => {
    const bg = background(6);
    for (const i of [0, 17, 40]) {
      const x = f32(expected.input[i]!);
      const fast = treeShap(model, x, bg);
      const slow = bruteForce(model, x, bg);
      for (let j = 0; j < 12; j++) expect(Math.abs(fast.shap[j]! - slow[j]!), `row ${i} feature ${expected.features[j]}`).toBeLessThan(1e-9);
    }
  });

  it('adds up to the prediction minus the background mean to 1e-9 on every probe row, 100 background rows', () => {
    const bg = background(100);
    let worst = 0;
    for (const row of expected.input) {
      const e = treeShap(model, f32(row), bg);
      const sum = e.shap.reduce((a, b) => a + b, 0);
      worst = Math.max(worst, Math.abs(sum + e.expected - e.value));
      expect(Math.abs(e.value - model.predict(f32(row)))).toBe(0);
    }
    expect(worst).toBeLessThan(1e-9);
    // And it is not trivially zero: the hour of day moves bike demand the most.
    const e = treeShap(model, f32(expected.input[3]!), bg);
    const byMagnitude = e.shap.map((v, j) => [Math.abs(v), expected.features[j]!] as const).sort((a, b) => b[0] - a[0]);
    expect(byMagnitude[0]![0]).toBeGreaterThan(1);
    expect(expected.features).toContain(byMagnitude[0]![1]);
  });

  it('gives a feature no tree uses, and one equal to every background row, exactly zero', () => {
    const bg = background(20);
    const used = new Set(model.trees.flatMap((t) => [...t.feature].filter((f) => f >= 0)));
    const x = f32(expected.input[5]!);
    const e = treeShap(model, x, bg);
    for (let j = 0; j < 12; j++) if (!used.has(j)) expect(e.shap[j]).toBe(0);
    // holiday (column 4) is 0 on the first 20 background rows: a row with holiday 0 owes it nothing.
    const holiday = expected.features.indexOf('holiday');
    expect(bg.every((z) => z[holiday] === 0)).toBe(true);
    if (x[holiday] === 0) expect(e.shap[holiday]).toBe(0);
  });
});
