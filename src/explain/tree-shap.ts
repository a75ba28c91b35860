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
  const width = Math.max(model.features, x.length);
  const phi = new Float64Array(width);
  if (background.length === 0) throw new Error('treeShap needs at least one background row');
  // weights[a][b] = a!·b!/(a+b+1)!, for paths of up to `depth` split features.
  const depth = maxDepth(model.trees);
  const w = weights(depth + 1);
  const assigned = new Int8Array(width); // 0 none, 1 from x, 2 from z
  const onPath: number[] = [];
  let expected = 0;
  for (const z of background) {
    expected += model.predict(z);
    for (const t of model.trees) walk(t, 0, x, z, assigned, onPath, 0, 0, w, phi);
  }
  const n = background.length;
  const shap = Array.from(phi, (p) => p / n);
  return { shap, expected: expected / n, value: model.predict(x) };
}

function walk(t: Tree, node: number, x: ArrayLike<number>, z: ArrayLike<number>, assigned: Int8Array, onPath: number[], a: number, b: number, w: number[][], phi: Float64Array): void {
  const f = t.feature[node]!;
  if (f < 0) {
    const v = t.value[node]!;
    if (v === 0) return;
    // Features from x gain what the leaf adds when they join; features from z lose it.
    const gain = a > 0 ? v * w[a - 1]![b]! : 0;
    const loss = b > 0 ? v * w[a]![b - 1]! : 0;
    for (const j of onPath) phi[j]! += assigned[j] === 1 ? gain : -loss;
    return;
  }
  const xYes = goesYes(t, node, x[f]!);
  const next = (yes: boolean) => (yes ? t.yes[node]! : t.no[node]!);
  const owner = assigned[f]!;
  if (owner === 1) return walk(t, next(xYes), x, z, assigned, onPath, a, b, w, phi);
  const zYes = goesYes(t, node, z[f]!);
  if (owner === 2) return walk(t, next(zYes), x, z, assigned, onPath, a, b, w, phi);
  if (xYes === zYes) return walk(t, next(xYes), x, z, assigned, onPath, a, b, w, phi);
  onPath.push(f);
  assigned[f] = 1;
  walk(t, next(xYes), x, z, assigned, onPath, a + 1, b, w, phi);
  assigned[f] = 2;
  walk(t, next(zYes), x, z, assigned, onPath, a, b + 1, w, phi);
  assigned[f] = 0;
  onPath.pop();
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
