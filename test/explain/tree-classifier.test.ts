/**
 * TreeSHAP of tree classifiers, in margin (log-odds) space: the 40-tree bike-sharing GradientBoostingClassifier
 * (test/fixtures/models/bike_busy_gbc.onnx, a binary ONNX TreeEnsembleClassifier as skl2onnx writes it), and the same
 * trees as a TreeEnsembleRegressor followed by a Sigmoid (the form of the built-in trainer's gbt-classifier). The
 * margin read from the ONNX file must equal scikit-learn's decision_function, its logistic onnxruntime's
 * probability; the Shapley values of the margin must equal a brute-force enumeration of all 2^12 coalitions and add
 * up to margin − E[margin] to 1e-9.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readTreeModel, treeShap, type TreeEnsemble } from '../../src/explain/index.ts';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/trainer/index.ts';
import { fixturesDir } from '../helpers/server.ts';
import { bikeBackground, bruteForceShapley } from '../helpers/shapley.ts';

const { onnx } = onnxProto;
const GBC = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_gbc.onnx'));
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_gbc.expected.json'), 'utf8')) as {
  features: string[];
  input: number[][];
  label: number[];
  probabilities: number[][];
  decision_function: number[];
  trees: number;
};
const f32 = (row: number[]) => Float32Array.from(row);
const sigmoid = (m: number) => 1 / (1 + Math.exp(-m));

const background = (n: number) => bikeBackground(expected.features, n);

const bruteForce = (model: TreeEnsemble, x: Float32Array, bg: Float32Array[]) => bruteForceShapley((r) => model.predict(r), x, bg);

/** The classifier's trees rewritten as TreeEnsembleRegressor → `margin` → Sigmoid → `probability` [N, 1]. */
function asRegressorWithSigmoid(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const tree = graph.node![0]!;
  const keep = (tree.attribute ?? []).filter((a) => !['classlabels_int64s', 'post_transform'].includes(a.name ?? ''));
  for (const a of keep) if (a.name?.startsWith('class_')) a.name = `target_${a.name.slice('class_'.length)}`;
  keep.push(onnx.AttributeProto.create({ name: 'n_targets', type: onnx.AttributeProto.AttributeType.INT, i: 1 }));
  keep.push(onnx.AttributeProto.create({ name: 'post_transform', type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from('NONE') }));
  tree.opType = 'TreeEnsembleRegressor';
  tree.attribute = keep;
  tree.output = ['margin'];
  graph.node = [tree, onnx.NodeProto.create({ opType: 'Sigmoid', input: ['margin'], output: ['probability'], name: 'sigmoid' })];
  graph.output = [
    onnx.ValueInfoProto.create({
      name: 'probability',
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }] } } },
    }),
  ];
  return onnx.ModelProto.encode(model).finish();
}

/** A copy of the classifier with `edit` applied to its ModelProto. */
function edited(edit: (m: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const m = onnx.ModelProto.decode(GBC);
  edit(m);
  return onnx.ModelProto.encode(m).finish();
}

describe('a binary TreeEnsembleClassifier (scikit-learn GradientBoostingClassifier)', () => {
  const tree = readTreeModel(GBC);

  it('is read as the positive class margin: decision_function, and its logistic is what onnxruntime answers', async () => {
    expect(tree).toMatchObject({ space: 'margin', link: 'logit', output: { tensor: 'probabilities', column: 1 } });
    expect(tree.ensemble.trees).toHaveLength(expected.trees);
    const session = await ort.InferenceSession.create(GBC);
    const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(expected.input.flat()), [expected.input.length, 12]) });
    const probabilities = out.probabilities!.data as Float32Array;
    const labels = out.label!.data as BigInt64Array;
    expected.input.forEach((row, i) => {
      const margin = tree.ensemble.predict(f32(row));
      // float32 leaf weights and base value summed in double: scikit-learn's float64 margin to 1e-5.
      expect(Math.abs(margin - expected.decision_function[i]!), `row ${i}`).toBeLessThan(1e-5);
      expect(Math.abs(sigmoid(margin) - probabilities[2 * i + 1]!)).toBeLessThan(1e-6);
      expect(Math.abs(sigmoid(margin) - expected.probabilities[i]![1]!)).toBeLessThan(1e-6);
      expect(Number(labels[i])).toBe(expected.label[i]);
    });
  });

  it('explains the margin: equal to brute force over all 4,096 coalitions to 1e-9', () => {
    const bg = background(6);
    for (const i of [0, 17, 40]) {
      const x = f32(expected.input[i]!);
      const fast = treeShap(tree.ensemble, x, bg);
      const slow = bruteForce(tree.ensemble, x, bg);
      for (let j = 0; j < 12; j++) expect(Math.abs(fast.shap[j]! - slow[j]!), `row ${i} feature ${expected.features[j]}`).toBeLessThan(1e-9);
    }
  });

  it('adds up to margin − mean background margin to 1e-9 on every probe row, 100 background rows', () => {
    const bg = background(100);
    let worst = 0;
    for (const [i, row] of expected.input.entries()) {
      const e = treeShap(tree.ensemble, f32(row), bg);
      worst = Math.max(worst, Math.abs(e.shap.reduce((a, b) => a + b, 0) + e.expected - e.value));
      expect(Math.abs(e.value - expected.decision_function[i]!)).toBeLessThan(1e-5);
    }
    expect(worst).toBeLessThan(1e-9);
  });
});

describe('a TreeEnsembleRegressor followed by a Sigmoid (the gbt-classifier form)', () => {
  const bytes = asRegressorWithSigmoid(GBC);

  it('is read as the margin before the Sigmoid, the same trees as the classifier; onnxruntime serves their logistic', async () => {
    const tree = readTreeModel(bytes);
    expect(tree).toMatchObject({ space: 'margin', link: 'logit', output: { tensor: 'probability', column: 0 } });
    const session = await ort.InferenceSession.create(bytes);
    const out = (await session.run({ input: new ort.Tensor('float32', Float32Array.from(expected.input.flat()), [expected.input.length, 12]) })).probability!;
    expect(out.dims).toEqual([expected.input.length, 1]);
    expected.input.forEach((row, i) => expect(Math.abs(sigmoid(tree.ensemble.predict(f32(row))) - (out.data as Float32Array)[i]!)).toBeLessThan(1e-6));
    const bg = background(30);
    const classifier = readTreeModel(GBC);
    const x = f32(expected.input[9]!);
    const a = treeShap(tree.ensemble, x, bg);
    const b = treeShap(classifier.ensemble, x, bg);
    expect(a.shap).toEqual(b.shap);
    expect(a.value).toBe(b.value);
  });

  it('a regressor whose post_transform is LOGISTIC is read as its margin too', () => {
    const logistic = edited((m) => {
      const attr = m.graph!.node![0]!.attribute!.find((a) => a.name === 'post_transform')!;
      attr.s = Buffer.from('NONE');
    });
    // The classifier with post_transform NONE is not the one-score form Warden reads.
    expect(() => readTreeModel(logistic)).toThrow(/binary classifier with post_transform NONE; only LOGISTIC is read/);
    const reg = onnx.ModelProto.decode(asRegressorWithSigmoid(GBC));
    const g = reg.graph!;
    const t = g.node![0]!;
    t.attribute!.find((a) => a.name === 'post_transform')!.s = Buffer.from('LOGISTIC');
    t.output = ['probability'];
    g.node = [t];
    expect(readTreeModel(onnx.ModelProto.encode(reg).finish())).toMatchObject({ space: 'margin', link: 'logit', output: { tensor: 'probability', column: 0 } });
  });
});

describe("the built-in trainer's gbt-classifier", () => {
  it('is read as its margin (the log-odds the trainer computes), explained exactly and additively', async () => {
    const trained = await train({ ...bikeSharingDemoOptions('gbt-classifier'), nEstimators: 10 });
    const tree = readTreeModel(trained.onnx);
    expect(tree).toMatchObject({ space: 'margin', link: 'logit', output: { tensor: trained.outputName, column: 0 } });
    expect(tree.ensemble.trees).toHaveLength(10);
    // The trainer's 11 features: the probe rows without yr.
    const yr = expected.features.indexOf('yr');
    const drop = (r: ArrayLike<number>) => Float32Array.from(Array.from(r).filter((_, j) => j !== yr));
    const rows = expected.input.map(drop);
    const margins = trained.margin!(rows.map((r) => Array.from(r)));
    rows.forEach((r, i) => expect(Math.abs(tree.ensemble.predict(r) - margins[i]!)).toBeLessThan(1e-5));
    const bg = background(5).map(drop);
    const x = rows[12]!;
    const fast = treeShap(tree.ensemble, x, bg);
    const slow = bruteForce(tree.ensemble, x, bg);
    for (let j = 0; j < 11; j++) expect(Math.abs(fast.shap[j]! - slow[j]!)).toBeLessThan(1e-9);
    expect(Math.abs(fast.shap.reduce((a, b) => a + b, 0) + fast.expected - fast.value)).toBeLessThan(1e-9);
  });
});

describe('tree graphs that are not read, with the reason', () => {
  it('refuses a ZipMap, a multi-class classifier, two class ids and a graph without trees', () => {
    const zipmap = edited((m) => {
      const g = m.graph!;
      g.node!.push(onnx.NodeProto.create({ opType: 'ZipMap', domain: 'ai.onnx.ml', input: ['probabilities'], output: ['output_probability'], name: 'zipmap' }));
    });
    expect(() => readTreeModel(zipmap)).toThrow(/TreeEnsembleClassifier, ZipMap\) \(export the classifier without ZipMap/);
    const threeClasses = edited((m) => {
      m.graph!.node![0]!.attribute!.find((a) => a.name === 'classlabels_int64s')!.ints = [0, 1, 2];
    });
    expect(() => readTreeModel(threeClasses)).toThrow(/classifier of 3 classes; only binary classifiers are read/);
    const twoIds = edited((m) => {
      const ids = m.graph!.node![0]!.attribute!.find((a) => a.name === 'class_ids')!;
      ids.ints = ids.ints!.map((_, i) => i % 2);
    });
    expect(() => readTreeModel(twoIds)).toThrow(/weights for 2 classes/);
    const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
    expect(() => readTreeModel(logreg)).toThrow(/its graph has MatMul, Add, Sigmoid, no TreeEnsembleRegressor or TreeEnsembleClassifier/);
  });
});
