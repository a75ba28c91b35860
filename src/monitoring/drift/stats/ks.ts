// Two-sample Kolmogorov-Smirnov test, scipy.stats.ks_2samp(a, b) with alternative='two-sided' and
// method='auto': exact when both samples have at most 10,000 values (Hodges 1958, "The
// significance probability of the Smirnov two-sample test", Ark. Mat. 3; with the numerically
// stable 1 − p recursion of Viehmann 2021, arXiv:2102.08037), otherwise kstwo.sf(D, round(mn/(m+n))).
import { kstwoSf } from './kolmogorov.ts';
import { gcd, roundHalfEven } from './special.ts';
import { hasNaN, requireNonEmpty, sortedCopy } from './sorted.ts';

/** SciPy's MAX_AUTO_N: method='auto' is exact while max(n1, n2) ≤ this. */
export const KS_EXACT_MAX_N = 10000;

/** Pr(D_{n,n} ≥ h/n), Gnedenko-Korolyuk's alternating sum in Horner form (_compute_prob_outside_square). */
function probOutsideSquare(n: number, h: number): number {
  let P = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = ((n - k * h - j) * p1) / (n + k * h + j + 1);
    P = p1 * (1 - P);
  }
  return 2 * P;
}

/** Proportion of lattice paths leaving |x/m − y/n| < h/lcm (_compute_outer_prob_inside_method). */
function outerProbInside(m0: number, n0: number, g: number, h: number): number {
  const m = Math.max(m0, n0);
  const n = Math.min(m0, n0);
  const mg = m / g;
  const ng = n / g;
  let minj = 0;
  let maxj = Math.min(Math.ceil(h / mg), n + 1);
  let curlen = maxj - minj;
  const lenA = Math.min(2 * maxj + 2, n + 1);
  const A = new Float64Array(lenA).fill(1);
  for (let j = minj; j < maxj && j < lenA; j++) A[j] = 0;
  for (let i = 1; i <= m; i++) {
    const lastminj = minj;
    const lastlen = curlen;
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxj <= minj) return 1;
    let val = minj === 0 ? 0 : 1;
    for (let jj = 0; jj < maxj - minj; jj++) {
      const j = jj + minj;
      val = (A[jj + minj - lastminj]! * i + val * j) / (i + j);
      A[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      const end = Math.min(maxj - minj + (lastlen - curlen), lenA);
      for (let t = maxj - minj; t < end; t++) A[t] = 1;
    }
  }
  return A[maxj - minj - 1]!;
}

/** The KS statistic max|F_a − G_b| of two sorted samples (ECDFs evaluated as searchsorted 'right'). */
export function ksStatisticSorted(x: Float64Array, y: Float64Array): number {
  const n1 = x.length;
  const n2 = y.length;
  let i = 0;
  let j = 0;
  let maxS = -Infinity;
  let minS = Infinity;
  while (i < n1 || j < n2) {
    const v = j >= n2 || (i < n1 && x[i]! <= y[j]!) ? x[i]! : y[j]!;
    while (i < n1 && x[i]! <= v) i++;
    while (j < n2 && y[j]! <= v) j++;
    const diff = i / n1 - j / n2;
    if (diff > maxS) maxS = diff;
    if (diff < minS) minS = diff;
  }
  const negMin = Math.min(Math.max(-minS, 0), 1);
  return negMin > maxS ? negMin : maxS;
}

/** Two-sided p-value of ks_2samp for statistic d and sizes n1, n2; returns d as SciPy reports it. */
export function ksTwoSidedPValue(d: number, n1: number, n2: number): { statistic: number; pValue: number } {
  let statistic = d;
  let prob = NaN;
  let exact = Math.max(n1, n2) <= KS_EXACT_MAX_N;
  if (exact) {
    const g = gcd(n1, n2);
    const lcm = (n1 / g) * n2;
    const h = roundHalfEven(d * lcm);
    statistic = h / lcm;
    if (h === 0) return { statistic, pValue: 1 };
    prob = n1 === n2 ? probOutsideSquare(n1, h) : outerProbInside(n1, n2, g, h);
    // SciPy falls back to the asymptotic method when the exact value is not a probability.
    if (!(prob >= 0 && prob <= 1)) exact = false;
  }
  if (!exact) {
    const m = Math.max(n1, n2);
    const n = Math.min(n1, n2);
    const en = (m * n) / (m + n);
    prob = kstwoSf(roundHalfEven(en), statistic);
  }
  return { statistic, pValue: Math.min(Math.max(prob, 0), 1) };
}

/**
 * Two-sample two-sided Kolmogorov-Smirnov test, equal to scipy.stats.ks_2samp(a, b) (method='auto').
 * NaN anywhere gives NaN (SciPy's nan_policy='propagate').
 */
export function ks2(a: Float64Array, b: Float64Array): { statistic: number; pValue: number } {
  requireNonEmpty('ks2', a, b);
  const x = sortedCopy(a);
  const y = sortedCopy(b);
  if (hasNaN(x) || hasNaN(y)) return { statistic: NaN, pValue: NaN };
  return ksTwoSidedPValue(ksStatisticSorted(x, y), x.length, y.length);
}
