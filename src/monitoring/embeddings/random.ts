/**
 * Seeded randomness for the embedding drift tests: every random choice (subsampling, folds, permutations) draws
 * from one explicit 32-bit generator, so a result is a pure function of its inputs and the seed, identical across
 * Node versions and replicas. Not for cryptography.
 */


/** Shuffles `values` in place with Fisher–Yates driven by `random`. */
export { mulberry32 } from '../../random.ts';
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(values: T, random: () => number): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = values[i] as number;
    values[i] = values[j] as number;
    values[j] = tmp;
  }
  return values;
}

/**
 * `k` distinct indices from 0..n-1, ascending, chosen uniformly (a partial Fisher–Yates shuffle); all of them when
 * k ≥ n. Ascending order keeps the sample in the caller's (usually time) order.
 */
export function sampleIndices(n: number, k: number, random: () => number): Int32Array {
  if (k >= n) return Int32Array.from({ length: n }, (_, i) => i);
  const pool = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    const tmp = pool[i] as number;
    pool[i] = pool[j] as number;
    pool[j] = tmp;
  }
  return pool.slice(0, k).sort();
}
