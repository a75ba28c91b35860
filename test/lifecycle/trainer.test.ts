import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTrain } from '../../src/cli/train.ts';
import {
  allowedRange,
  BIKE_SHARING_CSV,
  bikeSharingDemoOptions,
  readOnnxMetadataProps,
  train,
  TrainerError,
  type TrainerKind,
  type TrainResult,
} from '../../src/lifecycle/index.ts';
import { loadCsv, selectDataset } from '../../src/lifecycle/trainer/csv-dataset.ts';
import { holdoutSplit } from '../../src/lifecycle/trainer/split.ts';
// Produced by test/fixtures/trainer/make_fixtures.py (numpy.linalg.lstsq, scipy.optimize.minimize trust-exact).
import fixture from '../fixtures/trainer/bike-sharing-2011.json' with { type: 'json' };

const { onnx } = onnxProto;

/** Like numpy.allclose: |actual − expected| ≤ absolute + relative·|expected|, element by element. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative: number, absolute = 0): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= absolute + relative * Math.abs(e))) expect.fail(`index ${i}: ${a} is not close to ${e}`);
  }
}

function decode(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

function coefficients(bytes: Uint8Array): { weights: number[]; bias: number } {
  const initializer = (name: string): number[] =>
    decode(bytes).graph?.initializer?.find((t) => t.name === name)?.floatData ?? [];
  return { weights: initializer('weights'), bias: initializer('bias')[0] ?? Number.NaN };
}

const models = {} as Record<TrainerKind, TrainResult>;

beforeAll(async () => {
  models.linear = await train(bikeSharingDemoOptions('linear'));
  models.logistic = await train(bikeSharingDemoOptions('logistic'));
});

describe('train on bike-sharing 2011 against the numpy/scipy reference', () => {
  it('uses the same rows, split and feature statistics', () => {
    expect(holdoutSplit(8645, 0.2, 42).holdout.slice(0, 10)).toEqual(fixture.holdout_first_rows);
    for (const model of [models.linear, models.logistic]) {
      expect(model.trainingDataSha256).toBe(fixture.csv_sha256);
      expect(model.params).toMatchObject({ rows_train: fixture.rows_train, rows_holdout: fixture.rows_holdout });
      expect(model.features.map((f) => f.name)).toEqual(fixture.features.map((f) => f.name));
      for (const stat of ['mean', 'std'] as const) {
        expectClose(model.features.map((f) => f[stat]), fixture.features.map((f) => f[stat]), 1e-9);
      }
      // The allowed range is the training range widened by the default margin of 10 % of its width.
      const allowed = fixture.features.map((f) => allowedRange(f.min, f.max, 0.1));
      expectClose(model.features.map((f) => f.min), allowed.map((r) => r[0]), 1e-9);
      expectClose(model.features.map((f) => f.max), allowed.map((r) => r[1]), 1e-9);
    }
  });

  it('linear: coefficients and holdout mae, rmse, r2', () => {
    const { weights, bias } = coefficients(models.linear.onnx);
    expectClose(weights, fixture.linear.weights, 1e-4);
    expectClose([bias], [fixture.linear.bias], 1e-4);
    const names = Object.keys(fixture.linear.metrics) as (keyof typeof fixture.linear.metrics)[];
    expect(Object.keys(models.linear.metrics).sort()).toEqual([...names].sort());
    expectClose(names.map((m) => models.linear.metrics[m] as number), names.map((m) => fixture.linear.metrics[m]), 1e-4);
  });

  it('logistic: threshold, coefficients and holdout accuracy, log loss, roc auc, brier', () => {
    expect(models.logistic.threshold).toBe(fixture.logistic.threshold);
    const { weights, bias } = coefficients(models.logistic.onnx);
    expectClose(weights, fixture.logistic.weights, 1e-4);
    expectClose([bias], [fixture.logistic.bias], 1e-4);
    const names = Object.keys(fixture.logistic.metrics) as (keyof typeof fixture.logistic.metrics)[];
    expect(Object.keys(models.logistic.metrics).sort()).toEqual([...names].sort());
    expectClose(names.map((m) => models.logistic.metrics[m] as number), names.map((m) => fixture.logistic.metrics[m]), 1e-4);
  });
});

describe('the ONNX file', () => {
  it.each(['linear', 'logistic'] as const)('%s: has the documented graph', (kind) => {
    const model = decode(models[kind].onnx);
    expect(String(model.irVersion)).toBe('8');
    expect(model.producerName).toBe('warden');
    expect(model.opsetImport.map((o) => [o.domain ?? '', String(o.version)])).toEqual([['', '15']]);
    const graph = model.graph;
    expect(graph?.node?.map((n) => n.opType)).toEqual(kind === 'linear' ? ['MatMul', 'Add'] : ['MatMul', 'Add', 'Sigmoid']);
    const dims = (v: onnxProto.onnx.IValueInfoProto | undefined | null): string[] =>
      v?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || String(d.dimValue)) ?? [];
    expect(graph?.input?.[0]?.name).toBe('input');
    expect(dims(graph?.input?.[0])).toEqual(['N', '11']);
    expect(graph?.output?.[0]?.name).toBe(models[kind].outputName);
    expect(dims(graph?.output?.[0])).toEqual(['N', '1']);
  });

  it.each(['linear', 'logistic'] as const)('%s: onnxruntime-node agrees with predict() on 200 rows', async (kind) => {
    const result = models[kind];
    const data = selectDataset(await loadCsv(BIKE_SHARING_CSV), bikeSharingDemoOptions(kind));
    const k = result.features.length;
    const input = Float32Array.from(data.x.subarray(0, 200 * k));
    const session = await ort.InferenceSession.create(Buffer.from(result.onnx));
    const outputs = await session.run({ [result.inputName]: new ort.Tensor('float32', input, [200, k]) });
    const tensor = outputs[result.outputName];
    expect(tensor?.dims).toEqual([200, 1]);
    // The absolute 1e-6 covers outputs near 0, where a different summation order (a CPU without FMA) or MLAS's
    // approximate Sigmoid can move the last float32 bits by more than 1e-5 of the value.
    expectClose(tensor?.data as Float32Array, result.predict(input), 1e-5, 1e-6);
    const asArrays = Array.from({ length: 200 }, (_, i) => Array.from(input.subarray(i * k, (i + 1) * k)));
    expect(result.predict(asArrays)).toEqual(result.predict(input));
    await session.release();
  });

  it.each(['linear', 'logistic'] as const)('%s: metadata_props round-trip through readOnnxMetadataProps', (kind) => {
    const result = models[kind];
    const props = readOnnxMetadataProps(result.onnx);
    expect(props['warden.kind']).toBe(kind);
    expect(props['warden.target']).toBe('cnt');
    expect(props['warden.training_data_sha256']).toBe(result.trainingDataSha256);
    expect(JSON.parse(props['warden.features'] ?? '')).toEqual(result.features);
    expect(JSON.parse(props['warden.metrics'] ?? '')).toEqual(result.metrics);
    expect(JSON.parse(props['warden.params'] ?? '')).toEqual(result.params);
    expect(props['warden.threshold']).toBe(kind === 'logistic' ? String(result.threshold) : undefined);
  });
});

describe('train on a small synthetic CSV', () => {
  it('recovers an exact line, pins a constant column to 0 and scores the training rows when holdout is 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-train-'));
    const csvPath = join(dir, 'line.csv');
    const lines = ['x,constant,label,y', ...Array.from({ length: 50 }, (_, i) => `${i / 10},3,row${i},${2 * (i / 10) + 1}`)];
    await writeFile(csvPath, lines.join('\n'));
    const result = await train({ csvPath, target: 'y', model: 'linear', holdout: 0 });
    await rm(dir, { recursive: true, force: true });
    expect(result.features.map((f) => f.name)).toEqual(['x', 'constant']);
    const { weights, bias } = coefficients(result.onnx);
    expectClose(weights, [2, 0], 1e-5, 1e-6);
    expectClose([bias], [1], 1e-5);
    expect(result.params).toMatchObject({ rows_train: 50, rows_holdout: 0, metrics_on: 'train' });
    expect(result.metrics.r2).toBeCloseTo(1, 6);
  });
});

describe('train input errors', () => {
  const base = bikeSharingDemoOptions('linear');
  it.each([
    [{ ...base, csvPath: 'no/such/file.csv' }, 'WARDEN_TRAIN_CSV_UNREADABLE', 'file not found'],
    [{ ...base, features: ['temp', 'nope'] }, 'WARDEN_TRAIN_UNKNOWN_COLUMN', 'unknown feature column "nope"'],
    [{ ...base, features: ['dteday'] }, 'WARDEN_TRAIN_NON_NUMERIC_COLUMN', 'feature column "dteday" is not numeric'],
    [{ ...base, where: { yr: 7 } }, 'WARDEN_TRAIN_EMPTY_DATASET', 'has no rows where yr=7'],
    [{ ...base, threshold: 100 }, 'WARDEN_TRAIN_BAD_OPTION', 'threshold only applies to the logistic model'],
    [{ ...base, model: 'logistic' as const, threshold: 1e9 }, 'WARDEN_TRAIN_BAD_OPTION', 'choose a threshold'],
  ])('%#: %s', async (opts, code, message) => {
    const error = await train(opts).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TrainerError);
    expect(error).toMatchObject({ code, message: expect.stringContaining(message) });
  });
});

describe('warden train', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-train-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(...args: string[]): Promise<{ out: string; err: string; error?: CommanderError }> {
    let out = '';
    let err = '';
    const program = new Command()
      .exitOverride()
      .configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerTrain(program);
    try {
      await program.parseAsync(['train', ...args], { from: 'user' });
      return { out, err };
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error;
      return { out, err, error };
    }
  }

  const demo = ['--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--where', 'yr=0'];
  const exclude = ['--exclude', 'instant,dteday,casual,registered,cnt,yr'];

  it('writes the model and prints a summary with its sha256', async () => {
    const out = join(dir, 'nested', 'bike-logistic.onnx');
    const result = await run(...demo, ...exclude, '--model', 'logistic', '--out', out);
    expect(result.error).toBeUndefined();
    const bytes = await readFile(out);
    expect(result.out).toContain(`sha256:   ${createHash('sha256').update(bytes).digest('hex')}`);
    expect(result.out).toContain('rows:     6916 train, 1729 holdout');
    expect(result.out).toContain(`roc_auc=${models.logistic.metrics.roc_auc?.toPrecision(4)}`);
    expect(result.err).toContain('kept 8645 rows where yr=0');
    expect(readOnnxMetadataProps(bytes)['warden.metrics']).toBe(JSON.stringify(models.logistic.metrics));
  });

  it.each([
    [['--features', 'temp,nope'], 'error: unknown feature column "nope"'],
    [['--features', 'temp,dteday'], 'error: feature column "dteday" is not numeric: data row 1 has "1/1/11"'],
    [['--where', 'yr=0,hr=99'], 'has no rows where yr=0,hr=99'],
    [['--holdout', 'lots'], 'error: --holdout expects a number, got "lots"'],
  ])('exits 2 with a one-line error for %j', async (extra, message) => {
    const result = await run(...demo, '--model', 'linear', '--out', join(dir, 'bad.onnx'), ...extra);
    expect(result.error?.exitCode).toBe(2);
    expect(result.err).toContain(message);
    expect(result.err).not.toMatch(/\n\s+at /);
  });

  it('exits 2 when the CSV does not exist', async () => {
    const result = await run('--csv', join(dir, 'missing.csv'), '--target', 'cnt', '--model', 'linear', '--out', join(dir, 'x.onnx'));
    expect(result.error?.exitCode).toBe(2);
    expect(result.err).toContain('file not found');
  });
});
