import onnxProto from 'onnx-proto';
import { WardenError } from '../errors.ts';

const { onnx } = onnxProto;

/** How a node compares the row's value with its threshold (ONNX-ML TreeEnsemble `nodes_modes`); LEAF ends a path. */
type Mode = 'BRANCH_LEQ' | 'BRANCH_LT' | 'BRANCH_GTE' | 'BRANCH_GT' | 'BRANCH_EQ' | 'BRANCH_NEQ' | 'LEAF';
const MODES = new Set<Mode>(['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ', 'LEAF']);

/** One tree as flat arrays indexed by node position; a leaf has feature -1 and its value in `value`. */
export interface Tree {
  feature: Int32Array;
  threshold: Float64Array;
  mode: Mode[];
  /** Where a row goes when the comparison holds (`truenodeids`), and when it does not. */
  yes: Int32Array;
  no: Int32Array;
  /** A NaN goes the `yes` way (`nodes_missing_value_tracks_true`). */
  missingYes: Uint8Array;
  value: Float64Array;
}

/**
 * A single-output tree ensemble read from an ONNX TreeEnsembleRegressor: the sum of each tree's leaf plus the base
 * value, as onnxruntime computes it (thresholds are float32, compared with the float32 input). Explanations need the
 * trees themselves, which onnxruntime does not expose.
 */
export class TreeEnsemble {
  constructor(
    readonly trees: Tree[],
    readonly base: number,
    /** Width of the input tensor (the highest feature id used, plus one, at least). */
    readonly features: number,
  ) {}

  /** The ensemble's output for one row (float32 values, as the model sees them), in double precision. */
  predict(x: ArrayLike<number>): number {
    let sum = this.base;
    for (const t of this.trees) sum += t.value[leafOf(t, x)]!;
    return sum;
  }
}

/** Whether a row goes the `yes` way at node `n`. */
export function goesYes(t: Tree, n: number, v: number): boolean {
  if (Number.isNaN(v)) return t.missingYes[n] === 1;
  const th = t.threshold[n]!;
  switch (t.mode[n]) {
    case 'BRANCH_LEQ':
      return v <= th;
    case 'BRANCH_LT':
      return v < th;
    case 'BRANCH_GTE':
      return v >= th;
    case 'BRANCH_GT':
      return v > th;
    case 'BRANCH_EQ':
      return v === th;
    default:
      return v !== th;
  }
}

function leafOf(t: Tree, x: ArrayLike<number>): number {
  let n = 0;
  while (t.feature[n]! >= 0) n = goesYes(t, n, x[t.feature[n]!]!) ? t.yes[n]! : t.no[n]!;
  return n;
}

const notTree = (why: string) =>
  new WardenError('WARDEN_BAD_REQUEST', `exact TreeSHAP needs a single-output ONNX tree ensemble (a TreeEnsembleRegressor, alone or followed by a Sigmoid, or a binary TreeEnsembleClassifier): ${why}`);

/** What an explanation of a tree model is of: the ensemble's sum, and how the served output is made from it. */
export interface TreeModel {
  ensemble: TreeEnsemble;
  /**
   * `output`: the sum is the served output (a regressor). `margin`: the served output is the logistic function of
   * the sum (log-odds), which is what is explained, since Shapley values of the sum add up exactly.
   */
  space: 'output' | 'margin';
  /** How the explained value maps to the served output: identity, or `logit` (served = 1 / (1 + e^−value)). */
  link: 'identity' | 'logit';
  /** The graph output and column the explained value belongs to (a classifier's positive-class probability). */
  output: { tensor: string; column: number };
}

/** The ensemble of a tree model read with {@link readTreeModel}. */
export function readTreeEnsemble(bytes: Uint8Array): TreeEnsemble {
  return readTreeModel(bytes).ensemble;
}

const PASS_THROUGH = new Set(['Cast', 'Identity']);

/**
 * Reads the tree ensemble out of an ONNX file. Three forms are read, every other graph is refused with the reason
 * (explain such models with KernelSHAP):
 * - one `ai.onnx.ml` TreeEnsembleRegressor with one target and `SUM` aggregation: the output itself when its
 *   post_transform is NONE, its margin when it is LOGISTIC;
 * - that regressor (post_transform NONE) followed by a Sigmoid (the built-in trainer's gbt-classifier): the margin;
 * - a binary TreeEnsembleClassifier in the one-score form skl2onnx writes for GradientBoostingClassifier (every
 *   leaf weight for one class id, one base value, post_transform LOGISTIC, outputs label and probabilities): the
 *   positive class's margin, whose logistic is the second probability column.
 * Cast and Identity nodes around the ensemble are looked through.
 */
export function readTreeModel(bytes: Uint8Array): TreeModel {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw notTree('the file has no graph');
  const all = graph.node ?? [];
  const nodes = all.filter((n) => !PASS_THROUGH.has(n.opType ?? ''));
  const tree = nodes.find((n) => n.opType === 'TreeEnsembleRegressor' || n.opType === 'TreeEnsembleClassifier');
  if (!tree) {
    const ops = [...new Set(all.map((n) => n.opType))].join(', ');
    throw notTree(`its graph has ${ops || 'no operators'}, no TreeEnsembleRegressor or TreeEnsembleClassifier`);
  }
  const classifier = tree.opType === 'TreeEnsembleClassifier';
  const sigmoid = nodes.find((n) => n.opType === 'Sigmoid');
  const others = nodes.filter((n) => n !== tree && n !== sigmoid);
  if (others.length || (sigmoid && classifier)) {
    const hint = nodes.some((n) => n.opType === 'ZipMap') ? ' (export the classifier without ZipMap: skl2onnx options {zipmap: False})' : '';
    throw notTree(`the ensemble is one of ${nodes.length} operators (${nodes.map((n) => n.opType).join(', ')})${hint}`);
  }
  // Names that carry the same values through Cast/Identity, so `follow` finds what a value becomes downstream.
  const next = new Map<string, string>();
  for (const n of all) if (PASS_THROUGH.has(n.opType ?? '') && n.input?.[0] && n.output?.[0]) next.set(n.input[0], n.output[0]);
  const follow = (name: string): string[] => {
    const chain = [name];
    for (let v = next.get(name); v !== undefined && chain.length <= all.length; v = next.get(v)) chain.push(v);
    return chain;
  };
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const servedAs = (name: string): string => {
    const out = follow(name).find((v) => graphOutputs.has(v));
    if (out === undefined) throw notTree(`${name} is not a graph output`);
    return out;
  };

  const attr = new Map((tree.attribute ?? []).map((a) => [a.name ?? '', a]));
  const ints = (name: string) => (attr.get(name)?.ints ?? []).map((v) => Number(v));
  const floats = (name: string) => attr.get(name)?.floats ?? [];
  const strings = (name: string) => (attr.get(name)?.strings ?? []).map((s) => Buffer.from(s).toString('utf8'));
  const str = (name: string) => {
    const s = attr.get(name)?.s;
    return s && s.length ? Buffer.from(s).toString('utf8') : undefined;
  };
  if (attr.has('nodes_values_as_tensor') || attr.has('target_weights_as_tensor') || attr.has('class_weights_as_tensor') || attr.has('base_values_as_tensor')) {
    throw notTree('double-precision tensors (opset 3 *_as_tensor) are not read yet');
  }
  const post = str('post_transform') ?? 'NONE';
  const aggregate = str('aggregate_function') ?? 'SUM';
  if (aggregate !== 'SUM') throw notTree(`its aggregate_function is ${aggregate}`);
  const leafPrefix = classifier ? 'class' : 'target';
  let space: TreeModel['space'];
  let output: TreeModel['output'];
  if (classifier) {
    const labels = attr.has('classlabels_strings') ? strings('classlabels_strings') : ints('classlabels_int64s');
    if (labels.length !== 2) throw notTree(`it is a classifier of ${labels.length} classes; only binary classifiers are read`);
    const classIds = new Set(ints('class_ids'));
    if (classIds.size !== 1) throw notTree(`its leaves carry weights for ${classIds.size} classes; only the one-score binary form (scikit-learn's GradientBoostingClassifier exported by skl2onnx) is read`);
    if (post !== 'LOGISTIC') throw notTree(`it is a binary classifier with post_transform ${post}; only LOGISTIC is read`);
    if (floats('base_values').length > 1) throw notTree(`it has ${floats('base_values').length} base values for one score`);
    const probabilities = tree.output?.[1];
    if (!probabilities) throw notTree('the classifier has no probabilities output');
    space = 'margin';
    output = { tensor: servedAs(probabilities), column: 1 };
  } else {
    const nTargets = Number(attr.get('n_targets')?.i ?? 1);
    if (nTargets !== 1) throw notTree(`it has ${nTargets} targets`);
    if (post !== 'NONE' && post !== 'LOGISTIC') throw notTree(`its post_transform is ${post}`);
    if (sigmoid && post !== 'NONE') throw notTree(`a Sigmoid follows an ensemble whose post_transform is already ${post}`);
    const sum = tree.output?.[0] ?? '';
    if (sigmoid) {
      const feeds = follow(sum);
      if (!feeds.includes(sigmoid.input?.[0] ?? '')) throw notTree('the Sigmoid does not take the ensemble\'s output');
      if (graphOutputs.has(sum) || feeds.some((v) => graphOutputs.has(v))) throw notTree('the graph outputs the ensemble\'s sum beside its Sigmoid');
      space = 'margin';
      output = { tensor: servedAs(sigmoid.output?.[0] ?? ''), column: 0 };
    } else {
      space = post === 'LOGISTIC' ? 'margin' : 'output';
      output = { tensor: servedAs(sum), column: 0 };
    }
  }

  const treeIds = ints('nodes_treeids');
  const nodeIds = ints('nodes_nodeids');
  const featureIds = ints('nodes_featureids');
  const values = floats('nodes_values');
  const modes = strings('nodes_modes');
  const trueIds = ints('nodes_truenodeids');
  const falseIds = ints('nodes_falsenodeids');
  const missing = ints('nodes_missing_value_tracks_true');
  const n = treeIds.length;
  for (const [name, arr] of [['nodes_nodeids', nodeIds], ['nodes_featureids', featureIds], ['nodes_values', values], ['nodes_modes', modes], ['nodes_truenodeids', trueIds], ['nodes_falsenodeids', falseIds]] as const) {
    if (arr.length !== n) throw notTree(`${name} has ${arr.length} entries for ${n} nodes`);
  }
  const byTree = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (!MODES.has(modes[i] as Mode)) throw notTree(`node mode ${JSON.stringify(modes[i])} is unknown`);
    let list = byTree.get(treeIds[i]!);
    if (!list) byTree.set(treeIds[i]!, (list = []));
    list.push(i);
  }
  const leafValue = new Map<string, number>();
  const tTree = ints(`${leafPrefix}_treeids`);
  const tNode = ints(`${leafPrefix}_nodeids`);
  const tWeight = floats(`${leafPrefix}_weights`);
  for (let i = 0; i < tTree.length; i++) {
    const k = `${tTree[i]}/${tNode[i]}`;
    leafValue.set(k, (leafValue.get(k) ?? 0) + tWeight[i]!);
  }
  let width = 0;
  const trees: Tree[] = [];
  for (const [treeId, members] of [...byTree].sort((a, b) => a[0] - b[0])) {
    // Node ids are positions within the tree in every exporter we know; map them anyway.
    const pos = new Map(members.map((m, j) => [nodeIds[m]!, j]));
    const root = pos.get(0);
    if (root !== 0) throw notTree(`tree ${treeId} does not start at node 0`);
    const size = members.length;
    const t: Tree = {
      feature: new Int32Array(size),
      threshold: new Float64Array(size),
      mode: new Array<Mode>(size),
      yes: new Int32Array(size),
      no: new Int32Array(size),
      missingYes: new Uint8Array(size),
      value: new Float64Array(size),
    };
    members.forEach((m, j) => {
      const mode = modes[m] as Mode;
      t.mode[j] = mode;
      if (mode === 'LEAF') {
        t.feature[j] = -1;
        t.value[j] = leafValue.get(`${treeId}/${nodeIds[m]}`) ?? 0;
        return;
      }
      const yes = pos.get(trueIds[m]!);
      const no = pos.get(falseIds[m]!);
      if (yes === undefined || no === undefined || yes <= j || no <= j) throw notTree(`tree ${treeId} node ${nodeIds[m]} points to a missing or earlier node`);
      t.feature[j] = featureIds[m]!;
      t.threshold[j] = values[m]!;
      t.yes[j] = yes;
      t.no[j] = no;
      t.missingYes[j] = missing[m] === 1 ? 1 : 0;
      width = Math.max(width, featureIds[m]! + 1);
    });
    trees.push(t);
  }
  const base = floats('base_values')[0] ?? 0;
  return { ensemble: new TreeEnsemble(trees, base, width), space, link: space === 'margin' ? 'logit' : 'identity', output };
}
