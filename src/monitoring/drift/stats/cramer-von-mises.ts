// Two-sample Cramér-von Mises test, scipy.stats.cramervonmises_2samp(a, b) with method='auto':
// the statistic T of Anderson (1962), "On the distribution of the two-sample Cramér-von Mises
// criterion", Ann. Math. Statist. 33(3), from midranks of the pooled sample; the exact null
// distribution (Xiao, Gordon & Yakovlev 2006, J. Stat. Software 17(8)) when both samples have at most
// 20 values, otherwise Anderson's normalisation of T referred to the limiting one-sample
// distribution (Csörgő & Faraway 1996, J. R. Stat. Soc. B 58(1), eq. 1.2).
import { besselKScaled, floorDivide, gammaln, gcd } from './special.ts';
import { hasNaN, sortedCopy } from './sorted.ts';

/** SciPy's cut-off: method='auto' is exact while max(nx, ny) ≤ this. */
export const CVM_EXACT_MAX_N = 20;

/**
 * CDF of the limiting one-sample Cramér-von Mises statistic (SciPy's _cdf_cvm_inf): Csörgő &
 * Faraway (1996) eq. 1.2, summed until a term falls below 1e-7, as SciPy does.
 */
export function cvmInfCdf(x: number): number {
  let tot = 0;
  for (let k = 0; ; k++) {
    const u = Math.exp(gammaln(k + 0.5) - gammaln(k + 1)) / (Math.PI ** 1.5 * Math.sqrt(x));
    const y = 4 * k + 1;
    const q = (y * y) / (16 * x);
    // e^{-q}·K_{1/4}(q) = e^{-2q}·kve(1/4, q)
    const z = u * Math.sqrt(y) * Math.exp(-2 * q) * besselKScaled(0.25, q);
    tot += z;
    if (!(Math.abs(z) >= 1e-7)) break;
  }
  return tot;
}

/** Exact p-value Pr(U ≥ u) by Xiao et al.'s generating-function recursion (_pval_cvm_2samp_exact). */
function exactPValue(u: number, m: number, n: number): number {
  const lcm = (m / gcd(m, n)) * n;
  const a = lcm / m;
  const b = lcm / n;
  const mn = m * n;
  const zeta = floorDivide(lcm * lcm * (m + n) * (6 * u - mn * (4 * mn - 1)), 6 * mn * mn);
  // gs[v]: frequency table value → count of g⁺_{u,v} (Xiao et al. p. 6)
  let gs: Map<number, number>[] = [new Map([[0, 1]])];
  for (let v = 1; v <= m; v++) gs.push(new Map());
  for (let uu = 0; uu <= n; uu++) {
    const next: Map<number, number>[] = [];
    let tmp = new Map<number, number>();
    for (let v = 0; v <= m; v++) {
      const merged = new Map<number, number>();
      const res = (a * v - b * uu) ** 2;
      for (const [val, f] of tmp) merged.set(val + res, f);
      for (const [val, f] of gs[v]!) merged.set(val + res, (merged.get(val + res) ?? 0) + f);
      tmp = merged;
      next.push(tmp);
    }
    gs = next;
  }
  let hits = 0;
  let total = 0;
  for (const [val, f] of gs[m]!) {
    total += f;
    if (val >= zeta) hits += f;
  }
  return hits / total;
}

/**
 * Two-sample Cramér-von Mises test, equal to scipy.stats.cramervonmises_2samp(a, b) (method='auto').
 * Needs at least two values per sample, like SciPy; NaN anywhere gives NaN.
 */
export function cvm2(a: Float64Array, b: Float64Array): { statistic: number; pValue: number } {
  const nx = a.length;
  const ny = b.length;
  if (nx <= 1 || ny <= 1) throw new RangeError('cvm2: each sample needs at least two observations');
  const x = sortedCopy(a);
  const y = sortedCopy(b);
  if (hasNaN(x) || hasNaN(y)) return { statistic: NaN, pValue: NaN };
  // Midranks of the pooled sample, walked tie group by tie group.
  let i = 0;
  let j = 0;
  let below = 0; // pooled values strictly below the current group
  // Σ(r_i − i)² per sample; the terms are exact (quarter-integers) but the sums pass 2^53 for large
  // samples, and T = U/(kN) − (4k − 1)/(6N) cancels ~6 digits at n = 10^6, so sum with Neumaier's
  // compensation (NumPy's pairwise sum is accurate to ~log n ulps; a naive loop is not).
  let sx = 0;
  let sy = 0;
  let cx = 0;
  let cy = 0;
  while (i < nx || j < ny) {
    const v = j >= ny || (i < nx && x[i]! <= y[j]!) ? x[i]! : y[j]!;
    const i0 = i;
    const j0 = j;
    while (i < nx && x[i]! === v) i++;
    while (j < ny && y[j]! === v) j++;
    const count = i - i0 + (j - j0);
    const midrank = below + (count + 1) / 2;
    for (let t = i0; t < i; t++) {
      const term = (midrank - (t + 1)) ** 2;
      const sum = sx + term;
      cx += Math.abs(sx) >= term ? sx - sum + term : term - sum + sx;
      sx = sum;
    }
    for (let t = j0; t < j; t++) {
      const term = (midrank - (t + 1)) ** 2;
      const sum = sy + term;
      cy += Math.abs(sy) >= term ? sy - sum + term : term - sum + sy;
      sy = sum;
    }
    below += count;
  }
  const u = nx * (sx + cx) + ny * (sy + cy);
  const k = nx * ny;
  const N = nx + ny;
  const t = u / (k * N) - (4 * k - 1) / (6 * N);
  let pValue: number;
  if (Math.max(nx, ny) <= CVM_EXACT_MAX_N) {
    pValue = exactPValue(u, nx, ny);
  } else {
    // Anderson (1962) eq. 11 and 14: mean and variance of T; eq. 15: the normalised statistic.
    const et = (1 + 1 / N) / 6;
    const vt = ((N + 1) * (4 * k * N - 3 * (nx * nx + ny * ny) - 2 * k)) / (45 * N * N * 4 * k);
    const tn = 1 / 6 + (t - et) / Math.sqrt(45 * vt);
    pValue = tn >= 0.003 ? Math.max(1 - cvmInfCdf(tn), 0) : 1;
  }
  return { statistic: t, pValue };
}
