/**
 * Maximum mean discrepancy with a Gaussian kernel (Gretton, Borgwardt, Rasch, Schölkopf & Smola, "A Kernel
 * Two-Sample Test", JMLR 13, 2012). MMD² is the squared distance between the two samples' mean embeddings in the
 * kernel's feature space: 0 when the distributions are equal, positive otherwise. We report the unbiased estimator
 * MMD²ᵤ (Gretton et al. eq. 3, which can dip slightly below 0 under no drift) and a permutation p-value.
 */
import { mulberry32, sampleIndices, shuffleInPlace } from './random.ts';
import { checkPair, selectRows, type VectorSet } from './vector-set.ts';

/** Options for mmd. */
export interface MmdOptions {
  /** Label permutations for the p-value (default 200). */
  permutations?: number;
  /** Seed for subsampling and permutations (default 42). */
  seed?: number;
  /** Each side is subsampled to at most this many rows (default 1,000); cost grows with (2·maxRows)². */
  maxRows?: number;
}

/** The MMD² estimate, its permutation p-value and the kernel bandwidth used. */
export interface MmdResult {
  /** Unbiased MMD²ᵤ (Gretton et al. 2012, eq. 3) with kernel k(x, y) = exp(−‖x−y‖² / (2σ²)). */
  mmd2: number;
  /** (1 + #{permutations with MMD²ᵤ ≥ observed}) / (1 + permutations). */
  pValue: number;
  /** σ, from the median heuristic: σ² = median of the pooled pairwise squared distances / 2. */
  bandwidth: number;
}

/**
 * Kernel two-sample test of `ref` against `cur`. Both sides are subsampled to `maxRows` (seeded), the pooled
 * squared-distance matrix is computed once, σ² is half its median (so the kernel is exp(−‖x−y‖² / median)), and
 * the null distribution comes from random relabellings of the pooled sample, reusing the one kernel matrix.
 */
export function mmd(ref: VectorSet, cur: VectorSet, opts: MmdOptions = {}): MmdResult {
  const permutations = opts.permutations ?? 200;
  const seed = opts.seed ?? 42;
  const maxRows = opts.maxRows ?? 1000;
  if (!Number.isInteger(permutations) || permutations < 0) throw new RangeError(`permutations must be an integer ≥ 0, got ${permutations}`);
  if (!Number.isInteger(maxRows) || maxRows < 2) throw new RangeError(`maxRows must be an integer ≥ 2, got ${maxRows}`);
  checkPair(ref, cur, 2);

  const random = mulberry32(seed);
  const x = selectRows(ref, sampleIndices(ref.rows, maxRows, random));
  const y = selectRows(cur, sampleIndices(cur.rows, maxRows, random));
  const m = x.rows;
  const n = y.rows;
  const total = m + n;
  const d = ref.dim;
  const pooled = new Float64Array(total * d);
  pooled.set(x.data, 0);
  pooled.set(y.data, m * d);

  // Condensed upper triangle (scipy.spatial.distance.pdist order): pair (i, j), i < j, sits at rowStart[i] + j − i − 1.
  const pairs = (total * (total - 1)) / 2;
  // Two arrays of this many doubles live at once (kernel and the median's scratch copy); refuse past 2 × 1 GiB.
  if (pairs > 2 ** 27) throw new RangeError(`mmd: ${m} + ${n} rows need ${pairs} kernel entries; lower maxRows (at most ~8,000 per side)`);
  const kernel = new Float64Array(pairs);
  const rowStart = new Float64Array(total);
  let at = 0;
  for (let i = 0; i < total; i++) {
    rowStart[i] = at;
    const bi = i * d;
    for (let j = i + 1; j < total; j++) {
      const bj = j * d;
      kernel[at++] = squaredDistance(pooled, bi, bj, d);
    }
  }

  const median = medianOf(kernel.slice());
  const sigma2 = median / 2;
  if (!(sigma2 > 0)) {
    // Over half the pairs coincide: the median heuristic has no scale. Identical samples carry no evidence of drift.
    return { mmd2: 0, pValue: 1, bandwidth: 0 };
  }
  for (let k = 0; k < pairs; k++) kernel[k] = Math.exp(-(kernel[k] as number) / (2 * sigma2));

  // Σ_{j>i} K_ij per row; the statistic for any labelling needs only Σ_{j>i} K_ij·[j ∈ X] per row on top.
  const rowSum = new Float64Array(total);
  let grand = 0;
  for (let i = 0; i < total; i++) {
    const start = rowStart[i] as number;
    let s = 0;
    for (let k = start, end = start + total - i - 1; k < end; k++) s += kernel[k] as number;
    rowSum[i] = s;
    grand += s;
  }

  const isX = new Float64Array(total);
  isX.fill(1, 0, m);
  const statistic = (): number => {
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < total - 1; i++) {
      const start = rowStart[i] as number;
      const s = maskedRowSum(kernel, start, isX, i + 1, total);
      if (isX[i] === 1) sxx += s;
      else syy += (rowSum[i] as number) - s;
    }
    const sxy = grand - sxx - syy;
    // Sums run over unordered pairs; eq. 3 sums over ordered pairs i ≠ j, hence the factors 2.
    return (2 * sxx) / (m * (m - 1)) + (2 * syy) / (n * (n - 1)) - (2 * sxy) / (m * n);
  };

  const observed = statistic();
  let atLeast = 0;
  for (let p = 0; p < permutations; p++) {
    shuffleInPlace(isX, random);
    if (statistic() >= observed) atLeast++;
  }
  return { mmd2: observed, pValue: (1 + atLeast) / (1 + permutations), bandwidth: Math.sqrt(sigma2) };
}

/** ‖z_a − z_b‖² for rows starting at offsets a and b; four accumulators let V8 overlap the additions. */
function squaredDistance(z: Float64Array, a: number, b: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let c = 0;
  for (; c + 3 < d; c += 4) {
    const d0 = (z[a + c] as number) - (z[b + c] as number);
    const d1 = (z[a + c + 1] as number) - (z[b + c + 1] as number);
    const d2 = (z[a + c + 2] as number) - (z[b + c + 2] as number);
    const d3 = (z[a + c + 3] as number) - (z[b + c + 3] as number);
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; c < d; c++) {
    const diff = (z[a + c] as number) - (z[b + c] as number);
    s0 += diff * diff;
  }
  return s0 + s1 + s2 + s3;
}

/** Σ_{j=from}^{to−1} kernel[start + j − from]·mask[j], with four accumulators. */
function maskedRowSum(kernel: Float64Array, start: number, mask: Float64Array, from: number, to: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = from;
  let k = start;
  for (; j + 3 < to; j += 4, k += 4) {
    s0 += (kernel[k] as number) * (mask[j] as number);
    s1 += (kernel[k + 1] as number) * (mask[j + 1] as number);
    s2 += (kernel[k + 2] as number) * (mask[j + 2] as number);
    s3 += (kernel[k + 3] as number) * (mask[j + 3] as number);
  }
  for (; j < to; j++, k++) s0 += (kernel[k] as number) * (mask[j] as number);
  return s0 + s1 + s2 + s3;
}

/** Median (mean of the two middle values for even length) by quickselect; reorders `values`. */
export function medianOf(values: Float64Array): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const hi = n >> 1;
  select(values, hi);
  const upper = values[hi] as number;
  if (n % 2 === 1) return upper;
  // After selection everything before hi is ≤ values[hi]; the lower middle is their maximum.
  let lower = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < hi; i++) if ((values[i] as number) > lower) lower = values[i] as number;
  return (lower + upper) / 2;
}

/** Hoare-style quickselect (median-of-three pivot): puts the k-th smallest at index k, smaller ones before it. */
function select(a: Float64Array, k: number): void {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >> 1;
    // Median of three as pivot, guarding against sorted input.
    if ((a[mid] as number) < (a[lo] as number)) swap(a, mid, lo);
    if ((a[hi] as number) < (a[lo] as number)) swap(a, hi, lo);
    if ((a[hi] as number) < (a[mid] as number)) swap(a, hi, mid);
    const pivot = a[mid] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] as number) < pivot) i++;
      while ((a[j] as number) > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i] as number;
  a[i] = a[j] as number;
  a[j] = t;
}
