// k-sample Anderson-Darling test, scipy.stats.anderson_ksamp(samples) with its default midrank
// variant: the A²akN statistic of Scholz & Stephens (1987), "K-Sample Anderson-Darling Tests",
// J. Am. Stat. Assoc. 82(399), eq. 7, standardised by its exact mean and variance (eq. 4), and a
// p-value interpolated from their Table 2 critical values as SciPy does — a quadratic fit of
// log(significance) on the critical values, capped to [0.001, 0.25] outside the table (SciPy warns
// there and suggests method=PermutationMethod; we return the cap, as SciPy's default does).
import { quadraticFitAt } from './special.ts';
import { sortedCopy } from './sorted.ts';

const B0 = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
const B1 = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
const B2 = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
const SIG = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
const LOG_SIG = SIG.map(Math.log);

/** Scholz & Stephens Table 2 critical values for k samples (m = k − 1), as SciPy computes them. */
export function andersonCriticalValues(k: number): number[] {
  const m = k - 1;
  return B0.map((b0, i) => b0 + B1[i]! / Math.sqrt(m) + B2[i]! / m);
}

/**
 * k-sample Anderson-Darling test (midrank), equal to scipy.stats.anderson_ksamp(samples): the
 * standardised statistic and SciPy's interpolated p-value, capped to [0.001, 0.25].
 * Throws like SciPy for fewer than two samples, an empty sample or a single distinct value.
 */
export function andersonKsamp(samples: Float64Array[]): { statistic: number; pValue: number } {
  const k = samples.length;
  if (k < 2) throw new RangeError('andersonKsamp: needs at least two samples');
  const sorted = samples.map(sortedCopy);
  let N = 0;
  for (const s of sorted) {
    if (s.length === 0) throw new RangeError('andersonKsamp: encountered a sample without observations');
    N += s.length;
  }
  for (const s of sorted) if (Number.isNaN(s[s.length - 1]!)) return { statistic: NaN, pValue: NaN };

  // One merge pass over the distinct pooled values z_j: l_j (ties in the pool), B_j (midrank
  // position in the pool), and per sample M_ij (values at or below z_j, ties counted half).
  const ptr = new Int32Array(k);
  const ties = new Int32Array(k);
  const inner = new Float64Array(k);
  let below = 0;
  let distinct = 0;
  while (below < N) {
    let v = Infinity;
    for (let i = 0; i < k; i++) {
      const s = sorted[i]!;
      const p = ptr[i]!;
      if (p < s.length && s[p]! < v) v = s[p]!;
    }
    let lj = 0;
    for (let i = 0; i < k; i++) {
      const s = sorted[i]!;
      const p0 = ptr[i]!;
      let p = p0;
      while (p < s.length && s[p]! === v) p++;
      ptr[i] = p;
      ties[i] = p - p0;
      lj += p - p0;
    }
    const Bj = below + lj / 2;
    const denom = Bj * (N - Bj) - (N * lj) / 4;
    for (let i = 0; i < k; i++) {
      const Mij = ptr[i]! - ties[i]! / 2;
      const dev = N * Mij - Bj * sorted[i]!.length;
      inner[i] = inner[i]! + ((lj / N) * dev * dev) / denom;
    }
    below += lj;
    distinct++;
  }
  if (distinct < 2) throw new RangeError('andersonKsamp: needs more than one distinct observation');
  let A2kN = 0;
  for (let i = 0; i < k; i++) A2kN += inner[i]! / sorted[i]!.length;
  A2kN *= (N - 1) / N;

  // Exact mean and variance of A2kN under H0 (Scholz & Stephens eq. 4), as SciPy's H, h, g.
  let H = 0;
  for (const s of sorted) H += 1 / s.length;
  let hsCum = 0; // running sum 1/(N−1) + 1/(N−2) + … (SciPy's hs_cs)
  let g = 0;
  for (let t = 0; t < N - 2; t++) {
    hsCum += 1 / (N - 1 - t);
    g += hsCum / (t + 2);
  }
  const h = hsCum + 1;
  const a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * H;
  const b = (2 * g - 4) * k * k + 8 * h * k + (2 * g - 14 * h - 4) * H - 8 * h + 4 * g - 6;
  const c = (6 * h + 2 * g - 2) * k * k + (4 * h - 4 * g + 6) * k + (2 * h - 6) * H + 4 * h;
  const d = (2 * h + 6) * k * k - 4 * h * k;
  const sigmasq = (a * N ** 3 + b * N ** 2 + c * N + d) / ((N - 1) * (N - 2) * (N - 3));
  const m = k - 1;
  const statistic = (A2kN - m) / Math.sqrt(sigmasq);

  const critical = andersonCriticalValues(k);
  const lo = Math.min(...critical);
  const hi = Math.max(...critical);
  let pValue: number;
  if (statistic < lo) pValue = 0.25;
  else if (statistic > hi) pValue = 0.001;
  else pValue = Math.exp(quadraticFitAt(critical, LOG_SIG, statistic));
  return { statistic, pValue };
}
