import onnxProto from 'onnx-proto';
import { leafWeights, type GradientBoostedTrees } from './gbt.ts';
import type { TrainerKind } from './types.ts';

const { onnx } = onnxProto;

/** A model in raw feature units: output = weights·x + bias (then Sigmoid when logistic). */
export interface OnnxLinearModel {
  kind: Extract<TrainerKind, 'linear' | 'logistic'>;
  featureCount: number;
  weights: Float32Array;
  bias: number;
  metadata: Record<string, string>;
}

// IR 8 / opset 15 is the pair ONNX 1.10 writes; every onnxruntime since 1.10 loads it.
const IR_VERSION = 8;
const OPSET = 15;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** Serializes a ModelProto with graph input·W + B (→ Sigmoid) and the metadata as metadata_props. */
export function writeOnnx(model: OnnxLinearModel): Uint8Array {
  const k = model.featureCount;
  const logistic = model.kind === 'logistic';
  const output = logistic ? 'probability' : 'variable';
  const node: onnxProto.onnx.INodeProto[] = [
    { opType: 'MatMul', input: ['input', 'weights'], output: ['matmul'], name: 'matmul' },
    { opType: 'Add', input: ['matmul', 'bias'], output: [logistic ? 'logit' : output], name: 'add' },
  ];
  if (logistic) node.push({ opType: 'Sigmoid', input: ['logit'], output: [output], name: 'sigmoid' });

  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'warden',
    graph: {
      name: `warden_${model.kind}`,
      node,
      initializer: [
        { name: 'weights', dataType: FLOAT, dims: [k, 1], floatData: Array.from(model.weights) },
        { name: 'bias', dataType: FLOAT, dims: [1], floatData: [model.bias] },
      ],
      input: [floatMatrix('input', k)],
      output: [floatMatrix(output, 1)],
    },
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(proto).finish();
}

// TreeEnsembleRegressor as skl2onnx writes it: ai.onnx.ml opset 3, float attributes.
const ML_DOMAIN = 'ai.onnx.ml';
const ML_OPSET = 3;
const { AttributeType } = onnx.AttributeProto;

/** A gradient-boosted ensemble to export: `gbt` outputs the raw score, `gbt-classifier` its Sigmoid. */
export interface OnnxTreeModel {
  kind: 'gbt' | 'gbt-classifier';
  featureCount: number;
  ensemble: GradientBoostedTrees;
  metadata: Record<string, string>;
}

/**
 * Serializes one TreeEnsembleRegressor (BRANCH_LEQ on float32 thresholds, SUM of float32 leaf weights already scaled
 * by the learning rate, base value = init): `input` → `variable` for gbt; for gbt-classifier `input` → `margin`
 * (log-odds) → Sigmoid → `probability`. Node ids are each tree's node order, so a node's children follow it.
 */
export function writeTreeEnsembleOnnx(model: OnnxTreeModel): Uint8Array {
  const classifier = model.kind === 'gbt-classifier';
  const output = classifier ? 'probability' : 'variable';
  const weights = leafWeights(model.ensemble);
  const n = { tree: [] as number[], node: [] as number[], feature: [] as number[], value: [] as number[], mode: [] as string[], yes: [] as number[], no: [] as number[] };
  const t = { tree: [] as number[], node: [] as number[], weight: [] as number[] };
  model.ensemble.trees.forEach((tree, treeId) => {
    for (let node = 0; node < tree.feature.length; node++) {
      const feature = tree.feature[node] as number;
      const leaf = feature < 0;
      n.tree.push(treeId);
      n.node.push(node);
      n.feature.push(leaf ? 0 : feature);
      n.value.push(leaf ? 0 : (tree.threshold[node] as number));
      n.mode.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      n.yes.push(leaf ? 0 : (tree.left[node] as number));
      n.no.push(leaf ? 0 : (tree.right[node] as number));
      if (leaf) {
        t.tree.push(treeId);
        t.node.push(node);
        t.weight.push((weights[treeId] as Float32Array)[node] as number);
      }
    }
  });
  const ints = (name: string, values: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: AttributeType.INTS, ints: values });
  const floats = (name: string, values: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: AttributeType.FLOATS, floats: values });
  const text = (name: string, value: string): onnxProto.onnx.IAttributeProto => ({ name, type: AttributeType.STRING, s: Buffer.from(value) });
  const ensemble: onnxProto.onnx.INodeProto = {
    opType: 'TreeEnsembleRegressor',
    domain: ML_DOMAIN,
    name: 'trees',
    input: ['input'],
    output: [classifier ? 'margin' : output],
    attribute: [
      text('aggregate_function', 'SUM'),
      floats('base_values', [Math.fround(model.ensemble.init)]),
      { name: 'n_targets', type: AttributeType.INT, i: 1 },
      ints('nodes_falsenodeids', n.no),
      ints('nodes_featureids', n.feature),
      ints('nodes_missing_value_tracks_true', n.tree.map(() => 0)),
      { name: 'nodes_modes', type: AttributeType.STRINGS, strings: n.mode.map((m) => Buffer.from(m)) },
      ints('nodes_nodeids', n.node),
      ints('nodes_treeids', n.tree),
      ints('nodes_truenodeids', n.yes),
      floats('nodes_values', n.value),
      text('post_transform', 'NONE'),
      ints('target_ids', t.tree.map(() => 0)),
      ints('target_nodeids', t.node),
      ints('target_treeids', t.tree),
      floats('target_weights', t.weight),
    ],
  };
  const node = [ensemble];
  if (classifier) node.push({ opType: 'Sigmoid', input: ['margin'], output: [output], name: 'sigmoid' });
  const proto = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [
      { domain: '', version: OPSET },
      { domain: ML_DOMAIN, version: ML_OPSET },
    ],
    producerName: 'warden',
    graph: {
      name: `warden_${model.kind.replace('-', '_')}`,
      node,
      input: [floatMatrix('input', model.featureCount)],
      output: [floatMatrix(output, 1)],
    },
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** The metadata_props of a serialized ONNX model as a plain object. */
export function readOnnxMetadataProps(bytes: Uint8Array): Record<string, string> {
  const model = onnx.ModelProto.decode(bytes);
  return Object.fromEntries(model.metadataProps.map((entry) => [entry.key ?? '', entry.value ?? '']));
}

function floatMatrix(name: string, columns: number): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: columns }] } } },
  };
}
