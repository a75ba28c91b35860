/**
 * KernelSHAP of the interventional value function v(S) = mean_z f(x_S, z_rest), run through onnxruntime on the
 * bike-sharing logistic regression (test/fixtures/models/bike_busy_logreg.onnx, MatMul + Add + Sigmoid: no trees).
 * Exact mode (all 4,094 coalitions of 12 features within the budget) must equal a brute-force enumeration of all
 * 2^12 coalitions with the Shapley formula to 1e-9; sampled mode must add up to f(x) − v(∅) to 1e-9 and stay close to
 * the exact values. On the GBR's trees, exact KernelSHAP must equal TreeSHAP (both explain the same v).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { kernelShap, readTreeEnsemble, treeShap, type BatchModel } from '../../src/explain/index.ts';
import { fixturesDir, repoRoot } from '../helpers/server.ts';
import { shapleyFromValues } from '../helpers/shapley.ts';

const LOGREG = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[]; input: number[][]; output: number[] };
const f32 = (row: number[]) => Float32Array.from(row);

const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
const cols = probe.features.map((f) => header.indexOf(f));
const hours = lines.slice(1).map((l) => {
  const cells = l.split(',');
  return Float32Array.from(cols.map((c) => Number(cells[c])));
});

/**
 * `n` background rows in the model's feature order: every `step`-th hour of 2011 and 2012 (by default spread over
 * both years, so `yr` varies), the last one a holiday (so every one of the 12 features can differ from a probe row).
 */
function background(n: number, step = Math.floor(hours.length / n)): Float32Array[] {
  const rows = hours.filter((_, i) => i % step === 0).slice(0, n);
  if (step > 1) rows[n - 1] = hours.find((z) => z[probe.features.indexOf('holiday')] === 1)!;
  return rows;
}

/** How many features differ between x and some background row. */
const varying = (x: Float32Array, bg: Float32Array[]) => [...x].filter((v, j) => bg.some((z) => z[j] !== v)).length;

let session: ort.InferenceSession;
/** The logistic model as KernelSHAP calls it: one onnxruntime run per batch. */
const logreg: BatchModel = async (data, rows) => (await session.run({ input: new ort.Tensor('float32', data, [rows, 12]) })).probability!.data as Float32Array;

/** Shapley values by definition: v of every one of the 4,096 coalitions through onnxruntime, then the Shapley formula. */
async function bruteForce(x: Float32Array, bg: Float32Array[]): Promise<number[]> {
  const n = x.length;
  const data = new Float32Array((1 << n) * bg.length * n);
  let r = 0;
  for (let s = 0; s < 1 << n; s++) {
    for (const z of bg) {
      for (let j = 0; j < n; j++) data[r * n + j] = s & (1 << j) ? x[j]! : z[j]!;
      r++;
    }
  }
  const out = await logreg(data, r);
  const v = new Float64Array(1 << n);
  for (let s = 0; s < 1 << n; s++) {
    let sum = 0;
    for (let b = 0; b < bg.length; b++) sum += out[s * bg.length + b]!;
    v[s] = sum / bg.length;
  }
  return shapleyFromValues(v, n);
}

const sum = (a: number[]) => a.reduce((p, q) => p + q, 0);

describe('KernelSHAP on a model with no trees (logistic regression through onnxruntime)', () => {
  beforeAll(async () => {
    session = await ort.InferenceSession.create(LOGREG);
  });

  it('exact mode: every coalition within the budget equals brute force over all 4,096 coalitions to 1e-9', async () => {
    const bg = background(8);
    for (const i of [0, 17, 40]) {
      const x = f32(probe.input[i]!);
      const e = await kernelShap(logreg, x, bg, { budget: 4096 });
      expect(varying(x, bg)).toBe(12);
      expect(e.exact).toBe(true);
      // 12 features all vary on these rows: 2^12 − 2 coalitions besides the empty and the full one.
      expect(e.coalitions).toBe(4094);
      expect(e.modelRows).toBe(1 + 8 + 4094 * 8);
      expect(e.runs).toBeGreaterThan(1);
      const slow = await bruteForce(x, bg);
      for (let j = 0; j < 12; j++) expect(Math.abs(e.shap[j]! - slow[j]!), `row ${i} feature ${probe.features[j]}`).toBeLessThan(1e-9);
      expect(Math.abs(sum(e.shap) + e.expected - e.value)).toBeLessThan(1e-9);
      // The value explained is what the model answers for the row: the expected probability, as float32.
      expect(Math.abs(e.value - probe.output[i]!)).toBeLessThan(1e-6);
    }
  });

  it('sampled mode: additive to 1e-9; within 0.0025 of the exact values at the default 2,048 coalitions, 0.005 at 1,024', async () => {
    const bg = background(100);
    let worstAdd = 0;
    const worst = new Map([
      [2048, 0],
      [1024, 0],
    ]);
    for (let i = 0; i < probe.input.length; i += 2) {
      const x = f32(probe.input[i]!);
      const exact = await kernelShap(logreg, x, bg, { budget: 4096 });
      expect(exact.exact).toBe(true);
      for (const budget of worst.keys()) {
        const sampled = await kernelShap(logreg, x, bg, budget === 2048 ? {} : { budget });
        expect(sampled.exact).toBe(false);
        expect(sampled.coalitions).toBeLessThanOrEqual(budget);
        expect(sampled.coalitions).toBeGreaterThan(budget * 0.95);
        expect(sampled.expected).toBe(exact.expected);
        expect(sampled.value).toBe(exact.value);
        worstAdd = Math.max(worstAdd, Math.abs(sum(sampled.shap) + sampled.expected - sampled.value));
        for (let j = 0; j < 12; j++) worst.set(budget, Math.max(worst.get(budget)!, Math.abs(sampled.shap[j]! - exact.shap[j]!)));
      }
    }
    expect(worstAdd).toBeLessThan(1e-9);
    // φ here reaches 0.33 (a probability). Worst seen over all 64 probe rows: 1.7e-3 at 2,048 and 4.0e-3 at 1,024;
    // uniform size weights instead of the Shapley kernel's give 6.9e-3, unit weights on enumerated sizes 1.6e-2 at 1,024.
    expect(worst.get(2048)).toBeLessThan(0.0025);
    expect(worst.get(1024)).toBeLessThan(0.005);
  });

  it('a small budget samples fewer coalitions, still additive, further from exact; the same row gets the same answer', async () => {
    const bg = background(50);
    const x = f32(probe.input[17]!);
    const exact = await kernelShap(logreg, x, bg, { budget: 4096 });
    const small = await kernelShap(logreg, x, bg, { budget: 64 });
    expect(small).toMatchObject({ exact: false, coalitions: 64 });
    expect(Math.abs(sum(small.shap) + small.expected - small.value)).toBeLessThan(1e-9);
    const err = Math.max(...small.shap.map((p, j) => Math.abs(p - exact.shap[j]!)));
    expect(err).toBeLessThan(0.05);
    const again = await kernelShap(logreg, x, bg, { budget: 64 });
    expect(again.shap).toEqual(small.shap);
    const reseeded = await kernelShap(logreg, x, bg, { budget: 64, seed: 7 });
    expect(reseeded.shap).not.toEqual(small.shap);
  });

  it('gives a feature equal on the row and every background row exactly 0, and leaves it out of the coalitions', async () => {
    // The first 20 hours of 2011: January, no holiday, like probe row 5.
    const bg = background(20, 1);
    const x = f32(probe.input[5]!);
    const constant = ['season', 'yr', 'mnth', 'holiday'].map((f) => probe.features.indexOf(f));
    expect(constant.every((j) => bg.every((z) => z[j] === x[j]))).toBe(true);
    const e = await kernelShap(logreg, x, bg, { budget: 1024 });
    for (const j of constant) expect(e.shap[j]).toBe(0);
    // Six features vary (a Saturday in January like the background): 2^6 − 2 coalitions, so the answer is exact.
    expect(varying(x, bg)).toBe(6);
    expect(e).toMatchObject({ exact: true, coalitions: 62, modelRows: 1 + 20 + 62 * 20 });
    const slow = await bruteForce(x, bg);
    for (let j = 0; j < 12; j++) expect(Math.abs(e.shap[j]! - slow[j]!)).toBeLessThan(1e-9);
  });

  it('runs the model in batches and lets other work run between them', async () => {
    const bg = background(100);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const e = await kernelShap(logreg, f32(probe.input[2]!), bg, { budget: 2048, batchRows: 256 });
    clearInterval(timer);
    expect(e.runs).toBeGreaterThan(3);
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('KernelSHAP and TreeSHAP agree on the same value function', () => {
  it('exact KernelSHAP of the GBR (its trees in double precision as the model) equals TreeSHAP to 1e-9', async () => {
    const gbr = readTreeEnsemble(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx')));
    const trees: BatchModel = async (data, rows) => Float64Array.from({ length: rows }, (_, r) => gbr.predict(data.subarray(r * 12, (r + 1) * 12)));
    const bg = background(6);
    for (const i of [0, 33]) {
      const x = f32(probe.input[i]!);
      const k = await kernelShap(trees, x, bg, { budget: 4096 });
      const t = treeShap(gbr, x, bg);
      expect(k.exact).toBe(true);
      for (let j = 0; j < 12; j++) expect(Math.abs(k.shap[j]! - t.shap[j]!)).toBeLessThan(1e-9);
      expect(Math.abs(k.expected - t.expected)).toBeLessThan(1e-9);
    }
  });
});
