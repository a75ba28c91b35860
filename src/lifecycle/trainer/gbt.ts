/**
 * Gradient-boosted regression trees, fitted the way scikit-learn's GradientBoostingRegressor (squared error) and
 * binary GradientBoostingClassifier (log loss) fit them with subsample = 1:
 *
 * - init: the mean of y (squared error), or the log-odds of the positive share clipped to [ε, 1 − ε] with ε the
 *   float32 machine epsilon (log loss).
 * - each stage fits one depth-first CART regression tree to the residuals, y − F (squared error) or y − σ(F)
 *   (log loss), with the friedman_mse criterion: the split that maximizes (n_R·S_L − n_L·S_R)² / (n_L·n_R) over
 *   every feature and every boundary between consecutive distinct sorted float32 values (values within 1e-7 count
 *   as one, like scikit-learn's FEATURE_THRESHOLD), subject to min_samples_leaf; a node becomes a leaf at
 *   max_depth, below min_samples_split or 2·min_samples_leaf rows, when its residuals are constant (variance
 *   ≤ 2.2e-16) or when no feature has two distinct values.
 * - the leaf value is the mean residual (squared error) or the Newton step Σr / Σ p(1 − p), with p(1 − p) written
 *   as (y − r)(1 − y + r) and 0 when the denominator is below 1e-150 (log loss), and F += learning_rate · leaf.
 *
 * The split threshold is scikit-learn's midpoint of the two float32 values, computed in double. The exported
 * (float32) threshold is that midpoint rounded down to a float32, never up to the upper value: for every float32 x,
 * x ≤ t32 exactly when x ≤ midpoint, so the ONNX model routes every row as scikit-learn's double threshold does.
 *
 * Speed: each feature is sorted once; every node holds, for every feature, its rows in that feature's order as one
 * segment of an Int32Array, and a split partitions the segments stably. Nothing is allocated per row.
 */

/** Hyperparameters of the boosting; scikit-learn's names and defaults. */
export interface GbtParams {
  nEstimators: number;
  learningRate: number;
  maxDepth: number;
  minSamplesLeaf: number;
  minSamplesSplit: number;
}

export const GBT_DEFAULTS: Readonly<GbtParams> = { nEstimators: 100, learningRate: 0.1, maxDepth: 3, minSamplesLeaf: 1, minSamplesSplit: 2 };

export type GbtLoss = 'squared_error' | 'log_loss';

/**
 * One fitted tree as flat arrays in scikit-learn's node order (depth first, left child first, so node 0 is the root
 * and a node's children come after it). A leaf has feature −1 and left = right = −1.
 */
export interface RegressionTree {
  feature: Int32Array;
  /** The split as scikit-learn stores it: the midpoint of two float32 values, in double; NaN at a leaf. */
  midpoint: Float64Array;
  /** The float32 threshold compared with `x ≤ threshold` (the midpoint rounded down to float32); NaN at a leaf. */
  threshold: Float32Array;
  left: Int32Array;
  right: Int32Array;
  /** Training rows that reach the node. */
  samples: Int32Array;
  /** Mean residual of the node's rows; at a leaf of a log-loss model, the Newton step. Not yet scaled by the rate. */
  value: Float64Array;
}

/** A fitted ensemble: raw score F(x) = init + Σ learning_rate · leaf_t(x); with log loss, p = σ(F). */
export interface GradientBoostedTrees {
  loss: GbtLoss;
  init: number;
  learningRate: number;
  trees: RegressionTree[];
  /** Training loss after each stage: mean squared error, or mean log loss (half scikit-learn's deviance). */
  trainLoss: Float64Array;
}

// scikit-learn's constants: _splitter.pyx FEATURE_THRESHOLD, _tree.pyx EPSILON (double machine epsilon), and
// _gb_losses.py's float32 epsilon for the clipped prior.
const FEATURE_THRESHOLD = 1e-7;
const EPSILON = 2.220446049250313e-16;
const FLOAT32_EPSILON = 1.1920928955078125e-7;

/** Called after each stage with its 1-based index and the training loss. */
export type StageCallback = (stage: number, trainLoss: number) => void;

/**
 * Fits the ensemble on row-major [n, k] features (cast to float32 first, as scikit-learn does) and targets y:
 * the target values (squared error) or 0/1 labels (log loss).
 */
export function fitGradientBoosting(
  x: Float64Array,
  y: Float64Array,
  n: number,
  k: number,
  loss: GbtLoss,
  params: GbtParams,
  onStage: StageCallback = () => {},
): GradientBoostedTrees {
  // Column-major float32 copy: the split search reads one feature at a time.
  const columns = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) columns[j * n + i] = x[i * k + j] as number;
  const sorted = new Int32Array(n * k);
  for (let j = 0; j < k; j++) {
    const col = columns.subarray(j * n, (j + 1) * n);
    const order = sorted.subarray(j * n, (j + 1) * n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => (col[a] as number) - (col[b] as number) || a - b);
  }

  const init = initialScore(y, n, loss);
  const raw = new Float64Array(n).fill(init);
  const residual = new Float64Array(n);
  const builder = new TreeBuilder(columns, sorted, n, k, residual, params);
  const trees: RegressionTree[] = [];
  const trainLoss = new Float64Array(params.nEstimators);
  for (let t = 0; t < params.nEstimators; t++) {
    for (let i = 0; i < n; i++) {
      const f = raw[i] as number;
      residual[i] = (y[i] as number) - (loss === 'squared_error' ? f : sigmoid(f));
    }
    const tree = builder.build();
    const leafOf = builder.leafOf;
    if (loss === 'log_loss') newtonLeaves(tree, leafOf, y, residual, n);
    const lr = params.learningRate;
    for (let i = 0; i < n; i++) raw[i] = (raw[i] as number) + lr * (tree.value[leafOf[i] as number] as number);
    trees.push(tree);
    trainLoss[t] = meanLoss(y, raw, n, loss);
    onStage(t + 1, trainLoss[t] as number);
  }
  return { loss, init, learningRate: params.learningRate, trees, trainLoss };
}

function sigmoid(v: number): number {
  return 1 / (1 + Math.exp(-v));
}

function initialScore(y: Float64Array, n: number, loss: GbtLoss): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += y[i] as number;
  const mean = sum / n;
  if (loss === 'squared_error') return mean;
  const p = Math.min(Math.max(mean, FLOAT32_EPSILON), 1 - FLOAT32_EPSILON);
  return Math.log(p / (1 - p));
}

function meanLoss(y: Float64Array, raw: Float64Array, n: number, loss: GbtLoss): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const f = raw[i] as number;
    const t = y[i] as number;
    if (loss === 'squared_error') {
      sum += (t - f) ** 2;
    } else {
      // log(1 + e^f) − y·f, computed without overflow.
      sum += Math.max(f, 0) + Math.log1p(Math.exp(-Math.abs(f))) - t * f;
    }
  }
  return sum / n;
}

/** Replaces each leaf's mean residual by scikit-learn's one Newton step for the log loss. */
function newtonLeaves(tree: RegressionTree, leafOf: Int32Array, y: Float64Array, residual: Float64Array, n: number): void {
  const size = tree.value.length;
  const numerator = new Float64Array(size);
  const denominator = new Float64Array(size);
  for (let i = 0; i < n; i++) {
    const leaf = leafOf[i] as number;
    const r = residual[i] as number;
    const t = y[i] as number;
    numerator[leaf] = (numerator[leaf] as number) + r;
    denominator[leaf] = (denominator[leaf] as number) + (t - r) * (1 - t + r);
  }
  for (let node = 0; node < size; node++) {
    if ((tree.feature[node] as number) >= 0) continue;
    const d = denominator[node] as number;
    tree.value[node] = Math.abs(d) < 1e-150 ? 0 : (numerator[node] as number) / d;
  }
}

/** The largest float32 that is ≤ v. */
export function float32AtMost(v: number): number {
  const f = Math.fround(v);
  if (f <= v) return f;
  const buffer = new Float32Array([f]);
  const bits = new Int32Array(buffer.buffer);
  if (f > 0) bits[0] = (bits[0] as number) - 1;
  else if (f === 0) buffer[0] = -1.401298464324817e-45;
  else bits[0] = (bits[0] as number) + 1;
  return buffer[0] as number;
}

/** Grows one tree at a time over the same presorted features; reused across stages. */
class TreeBuilder {
  /** For every feature, the rows of each node in that feature's order; a node is the same segment in all k. */
  private readonly order: Int32Array;
  private readonly scratch: Int32Array;
  private readonly goesLeft: Uint8Array;
  /** The leaf each training row falls in, for the tree just built. */
  readonly leafOf: Int32Array;
  private nodes: {
    feature: number[];
    midpoint: number[];
    threshold: number[];
    left: number[];
    right: number[];
    samples: number[];
    value: number[];
  } = TreeBuilder.emptyNodes();

  constructor(
    private readonly columns: Float32Array,
    private readonly sorted: Int32Array,
    private readonly n: number,
    private readonly k: number,
    private readonly residual: Float64Array,
    private readonly params: GbtParams,
  ) {
    this.order = new Int32Array(n * k);
    this.scratch = new Int32Array(n);
    this.goesLeft = new Uint8Array(n);
    this.leafOf = new Int32Array(n);
  }

  private static emptyNodes() {
    return { feature: [], midpoint: [], threshold: [], left: [], right: [], samples: [], value: [] } as {
      feature: number[];
      midpoint: number[];
      threshold: number[];
      left: number[];
      right: number[];
      samples: number[];
      value: number[];
    };
  }

  build(): RegressionTree {
    this.order.set(this.sorted);
    this.nodes = TreeBuilder.emptyNodes();
    this.grow(0, this.n, 0);
    const nd = this.nodes;
    return {
      feature: Int32Array.from(nd.feature),
      midpoint: Float64Array.from(nd.midpoint),
      threshold: Float32Array.from(nd.threshold),
      left: Int32Array.from(nd.left),
      right: Int32Array.from(nd.right),
      samples: Int32Array.from(nd.samples),
      value: Float64Array.from(nd.value),
    };
  }

  /** Adds the node for rows [start, end) of every feature's order and its subtree; returns its id. */
  private grow(start: number, end: number, depth: number): number {
    const { n, k, order, residual, columns, params } = this;
    const count = end - start;
    let sum = 0;
    let squares = 0;
    for (let p = start; p < end; p++) {
      const r = residual[order[p] as number] as number;
      sum += r;
      squares += r * r;
    }
    const impurity = squares / count - (sum / count) ** 2;
    const id = this.addNode(count, sum / count);

    let leaf =
      depth >= params.maxDepth || count < params.minSamplesSplit || count < 2 * params.minSamplesLeaf || impurity <= EPSILON;
    let bestFeature = -1;
    let bestPos = -1;
    let bestMidpoint = 0;
    if (!leaf) {
      let best = Number.NEGATIVE_INFINITY;
      const minLeaf = params.minSamplesLeaf;
      for (let j = 0; j < k; j++) {
        // order[base + p] is the p-th row in feature j's order, columns[base + row] its value.
        const base = j * n;
        const col = base;
        const first = columns[col + (order[base + start] as number)] as number;
        const last = columns[col + (order[base + end - 1] as number)] as number;
        if (last <= first + FEATURE_THRESHOLD) continue; // constant in this node
        let sumLeft = 0;
        let done = start; // rows [start, done) are in sumLeft
        let p = start;
        while (p < end) {
          let v = columns[col + (order[base + p] as number)] as number;
          while (p + 1 < end) {
            const next = columns[col + (order[base + p + 1] as number)] as number;
            if (!(next <= v + FEATURE_THRESHOLD)) break;
            v = next;
            p++;
          }
          p++;
          if (p >= end) break;
          const nLeft = p - start;
          const nRight = end - p;
          if (nLeft < minLeaf || nRight < minLeaf) continue;
          for (; done < p; done++) sumLeft += residual[order[base + done] as number] as number;
          const sumRight = sum - sumLeft;
          const diff = nRight * sumLeft - nLeft * sumRight;
          const proxy = (diff * diff) / (nLeft * nRight);
          if (proxy > best) {
            best = proxy;
            bestFeature = j;
            bestPos = p;
            const lower = columns[col + (order[base + p - 1] as number)] as number;
            const upper = columns[col + (order[base + p] as number)] as number;
            let mid = lower / 2 + upper / 2;
            if (mid === upper || !Number.isFinite(mid)) mid = lower;
            bestMidpoint = mid;
          }
        }
      }
      if (bestFeature < 0) leaf = true;
    }

    const nd = this.nodes;
    if (leaf) {
      for (let p = start; p < end; p++) this.leafOf[order[p] as number] = id;
      return id;
    }
    nd.feature[id] = bestFeature;
    nd.midpoint[id] = bestMidpoint;
    nd.threshold[id] = float32AtMost(bestMidpoint);
    this.partition(bestFeature, start, bestPos, end);
    nd.left[id] = this.grow(start, bestPos, depth + 1);
    nd.right[id] = this.grow(bestPos, end, depth + 1);
    return id;
  }

  private addNode(count: number, value: number): number {
    const nd = this.nodes;
    const id = nd.feature.length;
    nd.feature.push(-1);
    nd.midpoint.push(Number.NaN);
    nd.threshold.push(Number.NaN);
    nd.left.push(-1);
    nd.right.push(-1);
    nd.samples.push(count);
    nd.value.push(value);
    return id;
  }

  /** Rows [start, pos) of feature f's order go left; every other feature's segment is split the same way, stably. */
  private partition(f: number, start: number, pos: number, end: number): void {
    const { n, k, order, goesLeft, scratch } = this;
    for (let p = start; p < end; p++) goesLeft[order[f * n + p] as number] = p < pos ? 1 : 0;
    for (let j = 0; j < k; j++) {
      if (j === f) continue;
      const base = j * n;
      let l = base + start;
      let r = 0;
      for (let p = base + start; p < base + end; p++) {
        const row = order[p] as number;
        if (goesLeft[row] === 1) order[l++] = row;
        else scratch[r++] = row;
      }
      order.set(scratch.subarray(0, r), l);
    }
  }
}

/**
 * Raw scores F(x) of float32 rows [N, k] as onnxruntime's TreeEnsembleRegressor computes them: each row compared
 * with the float32 thresholds (`x ≤ t`), the float32 leaf weights (learning_rate · leaf, rounded) summed in float32
 * in tree order starting from 0, then the float32 base value added. That is onnxruntime's order when it runs a row's
 * trees on one thread; when it splits a batch's trees across threads, its partial sums can differ in the last bits.
 */
export function ensembleScorer(model: GradientBoostedTrees): (input: Float32Array, k: number) => Float32Array {
  const weights = leafWeights(model);
  const base = Math.fround(model.init);
  const trees = model.trees;
  return (input, k) => {
    const out = new Float32Array(input.length / k);
    for (let i = 0; i < out.length; i++) {
      let score = 0;
      const row = i * k;
      for (let t = 0; t < trees.length; t++) {
        const tree = trees[t] as RegressionTree;
        const { feature, threshold, left, right } = tree;
        let node = 0;
        let f: number;
        while ((f = feature[node] as number) >= 0) {
          node = (input[row + f] as number) <= (threshold[node] as number) ? (left[node] as number) : (right[node] as number);
        }
        score = Math.fround(score + ((weights[t] as Float32Array)[node] as number));
      }
      out[i] = Math.fround(score + base);
    }
    return out;
  };
}

/** Each tree's leaf weights as the ONNX file stores them: float32(learning_rate · value); 0 at split nodes. */
export function leafWeights(model: GradientBoostedTrees): Float32Array[] {
  return model.trees.map((tree) => {
    const weights = new Float32Array(tree.value.length);
    for (let node = 0; node < weights.length; node++) {
      if ((tree.feature[node] as number) < 0) weights[node] = model.learningRate * (tree.value[node] as number);
    }
    return weights;
  });
}
