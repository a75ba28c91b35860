/** Shapley values by definition, for checking the explainers: every coalition enumerated, no shortcut. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './server.ts';

/** φ from the value of every coalition: v[S] for each bitmask S of the n features. */
export function shapleyFromValues(v: Float64Array, n: number): number[] {
  const fact = [1];
  for (let k = 1; k <= n; k++) fact.push(fact[k - 1]! * k);
  const phi = new Array<number>(n).fill(0);
  for (let s = 0; s < 1 << n; s++) {
    let size = 0;
    for (let j = 0; j < n; j++) if (s & (1 << j)) size++;
    const weight = (fact[size]! * fact[n - size - 1]!) / fact[n]!;
    for (let j = 0; j < n; j++) if (!(s & (1 << j))) phi[j]! += weight * (v[s | (1 << j)]! - v[s]!);
  }
  return phi;
}

/** Interventional Shapley values of `predict` at x: v(S) is the mean over the background of x on S, the background row elsewhere. */
export function bruteForceShapley(predict: (row: Float32Array) => number, x: Float32Array, bg: readonly Float32Array[]): number[] {
  const n = x.length;
  const v = new Float64Array(1 << n);
  const hybrid = new Float32Array(n);
  for (let s = 0; s < 1 << n; s++) {
    let sum = 0;
    for (const z of bg) {
      for (let j = 0; j < n; j++) hybrid[j] = s & (1 << j) ? x[j]! : z[j]!;
      sum += predict(hybrid);
    }
    v[s] = sum / bg.length;
  }
  return shapleyFromValues(v, n);
}

/** The first `n` rows of 2011 in `features` order, as float32: a background sample. */
export function bikeBackground(features: readonly string[], n: number): Float32Array[] {
  const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  const cols = features.map((f) => header.indexOf(f));
  return lines.slice(1, 1 + n).map((l) => {
    const cells = l.split(',');
    return Float32Array.from(cols.map((c) => Number(cells[c])));
  });
}
