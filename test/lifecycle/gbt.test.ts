/**
 * The trainer's gradient-boosted trees (gbt, gbt-classifier) against scikit-learn 1.2.1's GradientBoostingRegressor
 * and GradientBoostingClassifier fitted on the same rows with the same hyperparameters
 * (test/fixtures/trainer/make_gbt_fixtures.py), and the ONNX export against onnxruntime-node and the explainer's
 * tree reader.
 *
 * Tolerances (measured values in docs/trainer.md): every tree's features, double thresholds and node sizes equal;
 * node values to 1e-9; the model's score in double to 1e-9 of scikit-learn's; the float32 `predict` (what
 * onnxruntime computes) to 1e-5 relative for the regressor, 1e-5 absolute + 1e-5 relative for the classifier's
 * decision_function, 1e-6 absolute for its probability.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTrain } from '../../src/cli/train.ts';
import { readTreeEnsemble } from '../../src/explain/index.ts';
import {
  BIKE_SHARING_CSV,
  bikeSharingDemoOptions,
  readOnnxMetadataProps,
  train,
  TrainerError,
  type GradientBoostedTrees,
  type TrainOptions,
  type TrainResult,
} from '../../src/lifecycle/index.ts';
import { loadCsv, selectDataset } from '../../src/lifecycle/trainer/csv-dataset.ts';
import { float32AtMost } from '../../src/lifecycle/trainer/gbt.ts';
import { holdoutSplit } from '../../src/lifecycle/trainer/split.ts';
// Produced by test/fixtures/trainer/make_gbt_fixtures.py (scikit-learn 1.2.1).
import fixture from '../fixtures/trainer/bike-sharing-2011-gbt.json' with { type: 'json' };

const { onnx } = onnxProto;
const FEATURES = fixture.options.features;
const k = FEATURES.length;

/** Like numpy.allclose: |actual − expected| ≤ absolute + relative·|expected|, element by element. */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relative: number, absolute = 0, what = ''): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= absolute + relative * Math.abs(e))) expect.fail(`${what} index ${i}: ${a} is not close to ${e}`);
  }
}

type Reference = typeof fixture.regressor | typeof fixture.classifier;
const reference = { gbt: fixture.regressor, 'gbt-classifier': fixture.classifier } as const;
type TreeKind = keyof typeof reference;

function options(kind: TreeKind): TrainOptions {
  const p: Reference['params'] = reference[kind].params;
  return {
    csvPath: BIKE_SHARING_CSV,
    target: 'cnt',
    model: kind,
    features: FEATURES,
    where: { yr: 0 },
    nEstimators: p.n_estimators,
    learningRate: p.learning_rate,
    maxDepth: p.max_depth,
    minSamplesLeaf: p.min_samples_leaf,
    minSamplesSplit: p.min_samples_split,
  };
}

/** The model's raw score in double precision: init + Σ learning_rate · leaf, routing rows by the double midpoints. */
function scoreInDouble(model: GradientBoostedTrees, rows: Float32Array): Float64Array {
  const out = new Float64Array(rows.length / k);
  for (let i = 0; i < out.length; i++) {
    let sum = model.init;
    for (const tree of model.trees) {
      let node = 0;
      while ((tree.feature[node] as number) >= 0) {
        const goLeft = (rows[i * k + (tree.feature[node] as number)] as number) <= (tree.midpoint[node] as number);
        node = goLeft ? (tree.left[node] as number) : (tree.right[node] as number);
      }
      sum += model.learningRate * (tree.value[node] as number);
    }
    out[i] = sum;
  }
  return out;
}

const models = {} as Record<TreeKind, TrainResult>;
/** The fixture's probe rows: the holdout rows of 2011, then the first 200 rows of 2012, as float32 [N, k]. */
let probes: Float32Array;

beforeAll(async () => {
  models.gbt = await train(options('gbt'));
  models['gbt-classifier'] = await train(options('gbt-classifier'));
  const table = await loadCsv(BIKE_SHARING_CSV);
  const y2011 = selectDataset(table, { target: 'cnt', features: FEATURES, where: { yr: 0 } });
  const y2012 = selectDataset(table, { target: 'cnt', features: FEATURES, where: { yr: 1 } });
  const { holdout } = holdoutSplit(y2011.rows, 0.2, 42);
  probes = new Float32Array((holdout.length + 200) * k);
  holdout.forEach((r, i) => probes.set(y2011.x.subarray(r * k, (r + 1) * k), i * k));
  probes.set(y2012.x.subarray(0, 200 * k), holdout.length * k);
});

describe('gbt and gbt-classifier against scikit-learn', () => {
  it('train on the fixture rows and split', () => {
    expect(holdoutSplit(8645, 0.2, 42).holdout.slice(0, 10)).toEqual(fixture.holdout_first_rows);
    for (const model of Object.values(models)) {
      expect(model.trainingDataSha256).toBe(fixture.csv_sha256);
      expect(model.params).toMatchObject({ rows_train: fixture.rows_train, rows_holdout: fixture.rows_holdout });
      expect(model.features.map((f) => f.name)).toEqual(FEATURES);
    }
    expect(probes.length / k).toBe(fixture.regressor.predict.length);
    expect(models['gbt-classifier'].threshold).toBe(fixture.classifier.threshold);
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: the first tree is scikit-learn’s', (kind) => {
    const tree = models[kind].ensemble!.trees[0]!;
    const want = reference[kind].trees[0]!;
    expect(Array.from(tree.feature, (f) => (f < 0 ? null : FEATURES[f]))).toEqual(want.feature.map((f) => (f < 0 ? null : FEATURES[f])));
    expect(Array.from(tree.left)).toEqual(want.children_left);
    expect(Array.from(tree.right)).toEqual(want.children_right);
    expect(Array.from(tree.samples)).toEqual(want.n_node_samples);
    want.threshold.forEach((t, node) => {
      if (t === null) return expect(Number.isNaN(tree.threshold[node])).toBe(true);
      // The same double midpoint; the exported float32 is it rounded down, within one float32 step.
      expect(tree.midpoint[node]).toBe(t);
      expect(tree.threshold[node]).toBe(float32AtMost(t));
      expect(tree.threshold[node]).toBeLessThanOrEqual(t);
      expect(t - (tree.threshold[node] as number)).toBeLessThanOrEqual(Math.abs(t) * 2 ** -23);
    });
    // The root's mean residual is 0 up to rounding (about 1e-12 for cnt), hence the absolute part.
    expectClose(tree.value, want.value, 1e-9, 1e-9, 'value');
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: init, every tree and the training loss', (kind) => {
    const fitted = models[kind].ensemble!;
    const want = reference[kind];
    expectClose([fitted.init], [want.init], 1e-12);
    expect(fitted.trees).toHaveLength(want.trees.length);
    fitted.trees.forEach((tree, t) => {
      const w = want.trees[t]!;
      expect(Array.from(tree.feature), `tree ${t}`).toEqual(w.feature);
      expect(Array.from(tree.samples), `tree ${t}`).toEqual(w.n_node_samples);
      expect(Array.from(tree.midpoint, (m) => (Number.isNaN(m) ? null : m)), `tree ${t}`).toEqual(w.threshold);
      expectClose(tree.value, w.value, 1e-9, 1e-9, `tree ${t} value`);
    });
    expectClose([fitted.trainLoss.at(-1)!], [want.train_loss], 1e-9);
    expect(models[kind].params.train_loss).toBe(fitted.trainLoss.at(-1));
  });

  it('gbt: predictions equal predict() to 1e-9 in double and 1e-5 relative in float32', () => {
    const model = models.gbt;
    expectClose(scoreInDouble(model.ensemble!, probes), fixture.regressor.predict, 1e-9);
    expectClose(model.predict(probes), fixture.regressor.predict, 1e-5);
  });

  it('gbt-classifier: margin equals decision_function, probability predict_proba[:, 1]', () => {
    const model = models['gbt-classifier'];
    expectClose(scoreInDouble(model.ensemble!, probes), fixture.classifier.decision_function, 1e-9, 1e-9);
    expectClose(model.margin!(probes), fixture.classifier.decision_function, 1e-5, 1e-5);
    expectClose(model.predict(probes), fixture.classifier.predict_proba, 0, 1e-6);
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: holdout metrics equal scikit-learn’s predictions’ metrics', (kind) => {
    const want: Record<string, number> = reference[kind].metrics;
    expect(Object.keys(models[kind].metrics).sort()).toEqual(Object.keys(want).sort());
    const names = Object.keys(want);
    expectClose(names.map((m) => models[kind].metrics[m] as number), names.map((m) => want[m] as number), 1e-6);
  });
});

describe('the TreeEnsembleRegressor export', () => {
  it.each(['gbt', 'gbt-classifier'] as const)('%s: has the documented graph', (kind) => {
    const model = onnx.ModelProto.decode(models[kind].onnx);
    expect(String(model.irVersion)).toBe('8');
    expect(model.producerName).toBe('warden');
    expect(model.opsetImport.map((o) => [o.domain ?? '', String(o.version)])).toEqual([
      ['', '15'],
      ['ai.onnx.ml', '3'],
    ]);
    const graph = model.graph!;
    expect(graph.node!.map((n) => [n.opType, n.domain ?? ''])).toEqual(
      kind === 'gbt' ? [['TreeEnsembleRegressor', 'ai.onnx.ml']] : [['TreeEnsembleRegressor', 'ai.onnx.ml'], ['Sigmoid', '']],
    );
    const dims = (v: onnxProto.onnx.IValueInfoProto | undefined | null): string[] =>
      v?.type?.tensorType?.shape?.dim?.map((d) => d.dimParam || String(d.dimValue)) ?? [];
    expect(graph.input![0]!.name).toBe('input');
    expect(dims(graph.input![0])).toEqual(['N', String(k)]);
    expect(graph.output!.map((o) => o.name)).toEqual([kind === 'gbt' ? 'variable' : 'probability']);
    expect(dims(graph.output![0])).toEqual(['N', '1']);

    const attr = new Map(graph.node![0]!.attribute!.map((a) => [a.name, a]));
    const ensemble = models[kind].ensemble!;
    expect(attr.get('base_values')!.floats).toEqual([Math.fround(ensemble.init)]);
    expect(Buffer.from(attr.get('post_transform')!.s!).toString()).toBe('NONE');
    const modes = attr.get('nodes_modes')!.strings!.map((s) => Buffer.from(s).toString());
    expect(new Set(modes)).toEqual(new Set(['BRANCH_LEQ', 'LEAF']));
    const leaves = ensemble.trees.flatMap((tree) => Array.from(tree.value).filter((_, node) => (tree.feature[node] as number) < 0));
    expect(attr.get('target_weights')!.floats).toEqual(leaves.map((v) => Math.fround(ensemble.learningRate * v)));
    const thresholds = ensemble.trees.flatMap((tree) => Array.from(tree.threshold, (t) => (Number.isNaN(t) ? 0 : t)));
    expect(attr.get('nodes_values')!.floats).toEqual(thresholds);
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: onnxruntime-node agrees with predict()', async (kind) => {
    const result = models[kind];
    const rows = probes.length / k;
    const feed = { input: new ort.Tensor('float32', probes, [rows, k]) };
    const expected = result.predict(probes);
    // One thread: onnxruntime sums each row's trees in tree order, as predict() does, so the scores are identical
    // (the classifier's probabilities differ by MLAS's approximate Sigmoid, a few 1e-8).
    const single = await ort.InferenceSession.create(Buffer.from(result.onnx), { intraOpNumThreads: 1 });
    const one = (await single.run(feed))[result.outputName]!;
    expect(one.dims).toEqual([rows, 1]);
    if (kind === 'gbt') expect(one.data).toEqual(expected);
    else expectClose(one.data as Float32Array, expected, 0, 1e-6);
    await single.release();
    // Default threads: a batch of more than 50 rows has its trees split across threads, whose float32 partial sums
    // can differ in the last bits; hence an absolute part on the scale of the outputs.
    const session = await ort.InferenceSession.create(Buffer.from(result.onnx));
    const out = (await session.run(feed))[result.outputName]!.data as Float32Array;
    const scale = Math.max(...Array.from(expected, Math.abs));
    expectClose(out, expected, 1e-5, kind === 'gbt' ? 1e-6 * scale : 1e-6);
    const asArrays = Array.from({ length: 20 }, (_, i) => Array.from(probes.subarray(i * k, (i + 1) * k)));
    expect(result.predict(asArrays)).toEqual(expected.subarray(0, 20));
    await session.release();
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: float32 thresholds route every value as the double midpoints do', async (kind) => {
    const result = models[kind];
    const ensemble = result.ensemble!;
    // Rows with one feature set to the float32 nearest a split's midpoint: rounding that midpoint to nearest
    // instead of down would send such a row the other way whenever it rounds up.
    const rows: number[] = [];
    let roundsUp = 0;
    for (const tree of ensemble.trees) {
      for (let node = 0; node < tree.feature.length; node++) {
        const f = tree.feature[node] as number;
        if (f < 0) continue;
        const mid = tree.midpoint[node] as number;
        const t = tree.threshold[node] as number;
        if (Math.fround(mid) > mid) roundsUp++;
        for (const x of [Math.fround(mid), t, float32AtMost(mid - Math.abs(mid) * 2 ** -22), Math.fround(mid + Math.abs(mid) * 2 ** -22)]) {
          expect(x <= t, `x = ${x}, midpoint ${mid}`).toBe(x <= mid);
        }
        const row = Array.from(probes.subarray(0, k));
        row[f] = Math.fround(mid);
        rows.push(...row);
      }
    }
    expect(roundsUp).toBeGreaterThan(10);
    const input = Float32Array.from(rows);
    const session = await ort.InferenceSession.create(Buffer.from(result.onnx), { intraOpNumThreads: 1 });
    const out = (await session.run({ input: new ort.Tensor('float32', input, [input.length / k, k]) }))[result.outputName]!.data as Float32Array;
    await session.release();
    const double = scoreInDouble(ensemble, input);
    // A row routed the other way at one split would be off by a whole leaf weight, far beyond float32 rounding.
    if (kind === 'gbt') expectClose(out, double, 1e-5, 1e-4);
    else expectClose(out, double.map((v) => 1 / (1 + Math.exp(-v))), 0, 1e-6);
  });

  it('gbt: the explainer’s readTreeEnsemble reads the trees and predicts what predict() does', () => {
    const result = models.gbt;
    const read = readTreeEnsemble(result.onnx);
    expect(read.trees).toHaveLength(result.ensemble!.trees.length);
    expect(read.base).toBe(Math.fround(result.ensemble!.init));
    const rows = probes.length / k;
    const theirs = Array.from({ length: rows }, (_, i) => read.predict(probes.subarray(i * k, (i + 1) * k)));
    // readTreeEnsemble sums the same float32 leaves in double; predict() sums them in float32.
    expectClose(theirs, result.predict(probes), 1e-5, 1e-6 * 1000);
    expectClose(theirs, scoreInDouble(result.ensemble!, probes), 1e-6, 1e-4);
  });

  it.each(['gbt', 'gbt-classifier'] as const)('%s: metadata_props round-trip through readOnnxMetadataProps', (kind) => {
    const result = models[kind];
    const props = readOnnxMetadataProps(result.onnx);
    expect(props['warden.kind']).toBe(kind);
    expect(props['warden.target']).toBe('cnt');
    expect(props['warden.training_data_sha256']).toBe(result.trainingDataSha256);
    expect(JSON.parse(props['warden.features'] ?? '')).toEqual(result.features);
    expect(JSON.parse(props['warden.metrics'] ?? '')).toEqual(result.metrics);
    const params = JSON.parse(props['warden.params'] ?? '') as Record<string, unknown>;
    expect(params).toEqual(result.params);
    const p: Reference['params'] = reference[kind].params;
    expect(params).toMatchObject({ kind, ...p, subsample: 1, holdout: 0.2, seed: 42, where: 'yr=0' });
    expect(params).not.toHaveProperty('l2');
    expect(props['warden.threshold']).toBe(kind === 'gbt-classifier' ? String(result.threshold) : undefined);
  });
});

describe('gbt on the bike-sharing demo rows', () => {
  it('fits 100 trees of depth 3 on 6916 rows × 11 features and reports progress every 10 trees', async () => {
    const progress: string[] = [];
    const result = await train(bikeSharingDemoOptions('gbt'), (m) => progress.push(m));
    expect(result.params).toMatchObject({ n_estimators: 100, learning_rate: 0.1, max_depth: 3, min_samples_leaf: 1, min_samples_split: 2 });
    expect(result.ensemble!.trees).toHaveLength(100);
    const trees = progress.filter((m) => /^tree \d+\/100: train loss /.test(m));
    expect(trees.map((m) => m.split(':')[0])).toEqual(Array.from({ length: 10 }, (_, i) => `tree ${10 * (i + 1)}/100`));
    expect(progress).toContain('boosting 100 trees of depth 3 (squared error, learning rate 0.1)');
    // Trees follow the two rush-hour peaks that a line cannot (the linear model scores r2 0.385 here).
    expect(result.metrics.r2).toBeGreaterThan(0.8);
    expect(result.warnings).toEqual([]);
  });

  it.each([
    ['gbt', 'r2', 'reconstruct cnt'],
    ['gbt-classifier', 'roc_auc', 'separate cnt > 108'],
  ] as const)('%s with casual and registered: the leakage warning names them', async (model, metric, what) => {
    const result = await train({ csvPath: BIKE_SHARING_CSV, target: 'cnt', model, where: { yr: 0 }, nEstimators: 100 });
    expect(result.metrics[metric]).toBeGreaterThanOrEqual(0.999);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatchObject({ code: 'target_leakage', columns: ['casual', 'registered'], metric });
    expect(result.warnings[0]!.message).toContain(what);
    expect(result.params.leakage_suspected).toBe('casual,registered');
  });
});

describe('gbt options', () => {
  const gbt = bikeSharingDemoOptions('gbt');
  it.each([
    [{ ...gbt, nEstimators: 0 }, 'n_estimators must be an integer in [1, 10000], got 0'],
    [{ ...gbt, nEstimators: 2.5 }, 'n_estimators must be an integer in [1, 10000], got 2.5'],
    [{ ...gbt, learningRate: 0 }, 'learning_rate must be a finite number > 0, got 0'],
    [{ ...gbt, learningRate: Number.POSITIVE_INFINITY }, 'learning_rate must be a finite number > 0, got Infinity'],
    [{ ...gbt, maxDepth: 0 }, 'max_depth must be an integer in [1, 32], got 0'],
    [{ ...gbt, minSamplesLeaf: 0 }, 'min_samples_leaf must be an integer >= 1, got 0'],
    [{ ...gbt, minSamplesSplit: 1 }, 'min_samples_split must be an integer >= 2, got 1'],
    [{ ...gbt, l2: 0.1 }, 'l2 only applies to the linear and logistic models'],
    [{ ...gbt, threshold: 100 }, 'threshold only applies to the logistic model and the gbt-classifier'],
    [{ ...bikeSharingDemoOptions('linear'), nEstimators: 10, maxDepth: 2 }, 'n_estimators, max_depth only apply to the gbt and gbt-classifier models'],
    [{ ...gbt, model: 'forest' as never }, 'model must be linear, logistic, gbt or gbt-classifier, got "forest"'],
    [{ ...bikeSharingDemoOptions('gbt-classifier'), threshold: 1e9 }, 'choose a threshold that splits the data'],
  ])('%#: %s', async (opts, message) => {
    const error = await train(opts).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TrainerError);
    expect(error).toMatchObject({ code: 'WARDEN_TRAIN_BAD_OPTION', message: expect.stringContaining(message) });
  });

  it('min_samples_leaf and min_samples_split bound every node', async () => {
    const result = await train({ ...gbt, nEstimators: 5, maxDepth: 6, minSamplesLeaf: 300, minSamplesSplit: 900 });
    for (const tree of result.ensemble!.trees) {
      for (let node = 0; node < tree.feature.length; node++) {
        expect(tree.samples[node]).toBeGreaterThanOrEqual(300);
        if ((tree.feature[node] as number) >= 0) expect(tree.samples[node]).toBeGreaterThanOrEqual(900);
      }
    }
  });
});

describe('warden train --model gbt', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-gbt-'));
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

  const flags = (kind: TreeKind): string[] => {
    const p: Reference['params'] = reference[kind].params;
    return [
      '--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--where', 'yr=0', '--features', FEATURES.join(','), '--model', kind,
      '--n-estimators', String(p.n_estimators), '--learning-rate', String(p.learning_rate), '--max-depth', String(p.max_depth),
      '--min-samples-leaf', String(p.min_samples_leaf), '--min-samples-split', String(p.min_samples_split),
    ];
  };

  it.each(['gbt', 'gbt-classifier'] as const)('--model %s writes the model train() fits and prints its summary', async (kind) => {
    const out = join(dir, 'nested', `${kind}.onnx`);
    const result = await run(...flags(kind), '--out', out);
    expect(result.error).toBeUndefined();
    const bytes = await readFile(out);
    // The same model as train() with the same options: only the progress timings differ, and they are not in the file.
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(models[kind].onnx).digest('hex'));
    expect(result.out).toContain(`trained ${kind} model for ${kind === 'gbt' ? 'cnt' : 'cnt > 108'} (where yr=0)`);
    expect(result.out).toContain('rows:     6916 train, 1729 holdout');
    expect(result.out).toContain(`sha256:   ${createHash('sha256').update(bytes).digest('hex')}`);
    const n = reference[kind].params.n_estimators;
    expect(result.err).toContain(`tree ${n}/${n}: train loss `);
  });

  it.each([
    [['--n-estimators', 'many'], 'error: --n-estimators expects a number, got "many"'],
    [['--max-depth', '0'], 'error: max_depth must be an integer in [1, 32], got 0'],
    [['--learning-rate', '-1'], 'error: learning_rate must be a finite number > 0, got -1'],
    [['--l2', '0.1'], 'error: l2 only applies to the linear and logistic models'],
  ])('exits 2 with a one-line error for %j', async (extra, message) => {
    const result = await run('--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--model', 'gbt', '--out', join(dir, 'bad.onnx'), ...extra);
    expect(result.error?.exitCode).toBe(2);
    expect(result.err).toContain(message);
    expect(result.err).not.toMatch(/\n\s+at /);
  });

  it('--min-samples-leaf on a linear model is refused', async () => {
    const result = await run('--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--model', 'linear', '--out', join(dir, 'bad.onnx'), '--min-samples-leaf', '5');
    expect(result.error?.exitCode).toBe(2);
    expect(result.err).toContain('error: min_samples_leaf only applies to the gbt and gbt-classifier models');
  });
});
