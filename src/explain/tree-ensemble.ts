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

const notTree = (why: string) => new WardenError('WARDEN_BAD_REQUEST', `exact TreeSHAP needs a single-output ONNX tree ensemble: ${why}`);

/**
 * Reads the tree ensemble out of an ONNX file: one `ai.onnx.ml` TreeEnsembleRegressor with one target, `SUM`
 * aggregation and no post-transform, fed by the first graph input (directly or through a Cast). Anything else is
 * refused with the reason (explain such models with KernelSHAP).
 */
export function readTreeEnsemble(bytes: Uint8Array): TreeEnsemble {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw notTree('the file has no graph');
  const nodes = (graph.node ?? []).filter((n) => n.opType !== 'Cast' && n.opType !== 'Identity');
  const tree = nodes.find((n) => n.opType === 'TreeEnsembleRegressor');
  if (!tree) {
    const ops = [...new Set((graph.node ?? []).map((n) => n.opType))].join(', ');
    throw notTree(`its graph has ${ops || 'no operators'}, no TreeEnsembleRegressor`);
  }
  if (nodes.length !== 1) throw notTree(`the ensemble is one of ${nodes.length} operators (${nodes.map((n) => n.opType).join(', ')})`);
  const attr = new Map((tree.attribute ?? []).map((a) => [a.name ?? '', a]));
  const ints = (name: string) => (attr.get(name)?.ints ?? []).map((v) => Number(v));
  const floats = (name: string) => attr.get(name)?.floats ?? [];
  const strings = (name: string) => (attr.get(name)?.strings ?? []).map((s) => Buffer.from(s).toString('utf8'));
  const str = (name: string) => {
    const s = attr.get(name)?.s;
    return s && s.length ? Buffer.from(s).toString('utf8') : undefined;
  };
  if (attr.has('nodes_values_as_tensor') || attr.has('target_weights_as_tensor')) throw notTree('double-precision tensors (opset 3 *_as_tensor) are not read yet');
  const nTargets = Number(attr.get('n_targets')?.i ?? 1);
  if (nTargets !== 1) throw notTree(`it has ${nTargets} targets`);
  const post = str('post_transform') ?? 'NONE';
  if (post !== 'NONE') throw notTree(`its post_transform is ${post}`);
  const aggregate = str('aggregate_function') ?? 'SUM';
  if (aggregate !== 'SUM') throw notTree(`its aggregate_function is ${aggregate}`);

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
  const tTree = ints('target_treeids');
  const tNode = ints('target_nodeids');
  const tWeight = floats('target_weights');
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
  return new TreeEnsemble(trees, base, width);
}
