import { goesYes, type Tree, type TreeEnsemble } from './tree-ensemble.ts';

/** A row's Shapley values: one per input column, and the background's mean output they start from. */
export interface Explanation {
  /** φ_j per input column; Σφ + expected = the model's output for the row. */
  shap: number[];
  /** Mean output over the background rows. */
  expected: number;
  /** The ensemble's output for the row (double precision over float32 thresholds). */
  value: number;
}

/**
 * Exact interventional TreeSHAP (the "independent" value function of Lundberg et al. 2020, `TreeExplainer` with
 * `feature_perturbation="interventional"`): v(S) = mean over background rows z of f(x_S, z_rest). For one pair (x, z)
 * a tree only depends on the features where x and z take different branches; walking the tree with each such
 * feature assigned to x or to z reaches every leaf whose path is consistent with some coalition, and a leaf reached
 * with `a` features from x and `b` from z adds v·(a−1)!·b!/(a+b)! to each x-feature and subtracts v·a!·(b−1)!/(a+b)!
 * from each z-feature: the chance that, in a random order of the features, the feature comes after the other
 * x-features and before the z-features (or the reverse). Cost per pair: the leaves of each tree's consistent paths.
 */
export function treeShap(model: TreeEnsemble, x: ArrayLike<number>, background: readonly ArrayLike<number>[]): Explanation {
  if (background.length === 0) throw new Error('treeShap needs at least one background row');
  const walker = new PathWalker(Math.max(model.features, x.length), maxDepth(model.trees));
  let expected = 0;
  for (const z of background) {
    expected += model.predict(z);
    for (const t of model.trees) walker.walk(t, 0, x, z, 0, 0);
  }
  const n = background.length;
  const shap = Array.from(walker.phi, (p) => p / n);
  return { shap, expected: expected / n, value: model.predict(x) };
}

/** The walk's state, kept on one object so the recursion passes only what changes. */
class PathWalker {
  readonly phi: Float64Array;
  /** Per feature: 0 not on the path, 1 taken from x, 2 taken from z. */
  private readonly assigned: Int8Array;
  private readonly onPath: Int32Array;
  private depth = 0;
  /** w[a][b] = a!·b!/(a+b+1)!, for paths of up to the deepest tree's split features. */
  private readonly w: number[][];

  constructor(width: number, maxDepth: number) {
    this.phi = new Float64Array(width);
    this.assigned = new Int8Array(width);
    this.onPath = new Int32Array(maxDepth + 1);
    this.w = weights(maxDepth + 1);
  }

  walk(t: Tree, node: number, x: ArrayLike<number>, z: ArrayLike<number>, a: number, b: number): void {
    for (;;) {
      const f = t.feature[node]!;
      if (f < 0) {
        const v = t.value[node]!;
        if (v === 0 || this.depth === 0) return;
        // Features from x gain what the leaf adds when they join; features from z lose it.
        const gain = a > 0 ? v * this.w[a - 1]![b]! : 0;
        const loss = b > 0 ? v * this.w[a]![b - 1]! : 0;
        for (let i = 0; i < this.depth; i++) {
          const j = this.onPath[i]!;
          this.phi[j]! += this.assigned[j] === 1 ? gain : -loss;
        }
        return;
      }
      const owner = this.assigned[f]!;
      const xYes = owner === 2 ? false : goesYes(t, node, x[f]!);
      if (owner === 1) {
        node = xYes ? t.yes[node]! : t.no[node]!;
        continue;
      }
      const zYes = goesYes(t, node, z[f]!);
      if (owner === 2 || xYes === zYes) {
        node = zYes ? t.yes[node]! : t.no[node]!;
        continue;
      }
      // x and z part here: the feature joins the path, once from each side.
      this.onPath[this.depth++] = f;
      this.assigned[f] = 1;
      this.walk(t, xYes ? t.yes[node]! : t.no[node]!, x, z, a + 1, b);
      this.assigned[f] = 2;
      this.walk(t, zYes ? t.yes[node]! : t.no[node]!, x, z, a, b + 1);
      this.assigned[f] = 0;
      this.depth--;
      return;
    }
  }
}

/** w[a][b] = a!·b!/(a+b+1)!, built by recurrence (no factorial overflow): w[a][b] = w[a-1][b]·a/(a+b+1). */
function weights(n: number): number[][] {
  const w: number[][] = [];
  for (let a = 0; a <= n; a++) {
    w.push([]);
    for (let b = 0; b <= n; b++) {
      if (a === 0) w[a]!.push(b === 0 ? 1 : (w[0]![b - 1]! * b) / (b + 1));
      else w[a]!.push((w[a - 1]![b]! * a) / (a + b + 1));
    }
  }
  return w;
}

function maxDepth(trees: readonly Tree[]): number {
  let max = 0;
  for (const t of trees) {
    const depth = new Int32Array(t.feature.length);
    for (let n = 0; n < t.feature.length; n++) {
      if (t.feature[n]! < 0) {
        max = Math.max(max, depth[n]!);
        continue;
      }
      depth[t.yes[n]!] = depth[n]! + 1;
      depth[t.no[n]!] = depth[n]! + 1;
    }
  }
  return max;
}
