// Fixed-horizon planning for a two-arm comparison: the sample size per arm a two-sided two-sample z-test
// needs to detect a given difference, and the difference it can detect with a given sample size. The
// usual normal-approximation formulas (e.g. Chow, Shao & Wang, "Sample Size Calculations in Clinical
// Research", 2nd ed. 2008, §3.2 for means and §4.2 for proportions: two-sample parallel design, test
// for equality), equal allocation, ignoring the negligible chance of rejecting in the wrong direction. These are the sizes of a test read once;
// the always-valid tests in sequential.ts need more to reach the same power (docs/rollout-statistics.md).

export interface SampleSizeOptions {
  /** Baseline (stable) rate p₁ in (0, 1): a proportion metric, the candidate's rate being p₁ + mde. */
  baselineRate?: number;
  /** Standard deviation of one observation (both arms): a mean metric. */
  sd?: number;
  /** Difference to detect, candidate minus stable (non-zero; for a rate p₁ + mde must lie in (0, 1)). */
  mde: number;
  /** Two-sided significance level, in (0, 1). */
  alpha: number;
  /** Probability of rejecting when the difference is mde, in (α/2, 1). */
  power: number;
}

export interface DetectableEffectOptions {
  baselineRate?: number;
  sd?: number;
  nPerArm: number;
  alpha: number;
  power: number;
}

// Wichura's AS241 PPND16 (Applied Statistics 37(3), 1988): relative error about 1e-16.
const A = [3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125, 45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727];
const B = [1, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077, 21213.794301586595867, 39307.89580009271061, 28729.085735721942674, 5226.495278852854561];
const C = [1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504, 1.27045825245236838258, 0.24178072517745061177, 0.0227238449892691845833, 7.7454501427834140764e-4];
const D = [1, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455, 0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4, 1.05075007164441684324e-9];
const E = [6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358, 0.29656057182850489123, 0.026532189526576123093, 0.0012426609473880784386, 2.71155556874348757815e-5, 2.01033439929228813265e-7];
const F = [1, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525, 7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7, 2.04426310338993978564e-15];

function ratio(num: readonly number[], den: readonly number[], r: number): number {
  let n = 0;
  let d = 0;
  for (let i = 7; i >= 0; i--) {
    n = n * r + num[i]!;
    d = d * r + den[i]!;
  }
  return n / d;
}

/** Standard normal quantile Φ⁻¹(p) (scipy.stats.norm.ppf); ±Infinity at 0 and 1, NaN outside [0, 1]. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) return NaN;
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) return q * ratio(A, B, 0.180625 - q * q);
  const r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  const x = r <= 5 ? ratio(C, D, r - 1.6) : ratio(E, F, r - 5);
  return q < 0 ? -x : x;
}

function checkLevels(fn: string, alpha: number, power: number): number {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`${fn}: alpha must be in (0, 1), got ${alpha}`);
  if (!(power > 0 && power < 1)) throw new RangeError(`${fn}: power must be in (0, 1), got ${power}`);
  const z = -normalQuantile(alpha / 2) + normalQuantile(power); // z_{1−α/2} + z_{power}
  if (!(z > 0)) throw new RangeError(`${fn}: power (${power}) must exceed alpha/2 (${alpha / 2})`);
  return z;
}

function metric(fn: string, o: { baselineRate?: number; sd?: number }): { rate: number } | { sd: number } {
  if ((o.baselineRate === undefined) === (o.sd === undefined)) {
    throw new RangeError(`${fn}: give exactly one of baselineRate (a proportion) or sd (a mean)`);
  }
  if (o.baselineRate !== undefined) {
    if (!(o.baselineRate > 0 && o.baselineRate < 1)) throw new RangeError(`${fn}: baselineRate must be in (0, 1), got ${o.baselineRate}`);
    return { rate: o.baselineRate };
  }
  if (!(o.sd! > 0 && Number.isFinite(o.sd))) throw new RangeError(`${fn}: sd must be a positive finite number, got ${o.sd}`);
  return { sd: o.sd! };
}

/**
 * Observations per arm for a two-sided two-sample z-test at level α to reject with probability `power`
 * when the true difference is `mde`, rounded up:
 *   means:        n = 2σ²(z₁₋α/₂ + z_power)²/mde²
 *   proportions:  n = (z₁₋α/₂ + z_power)²·(p₁(1 − p₁) + p₂(1 − p₂))/mde², p₂ = p₁ + mde (unpooled variance,
 *                 as sequentialProportionDifference uses).
 */
export function requiredSampleSizePerArm(o: SampleSizeOptions): number {
  const fn = 'requiredSampleSizePerArm';
  const m = metric(fn, o);
  const z = checkLevels(fn, o.alpha, o.power);
  const d = o.mde;
  if (!(Number.isFinite(d) && d !== 0)) throw new RangeError(`${fn}: mde must be a non-zero finite number, got ${d}`);
  let variance: number; // sum of the two arms' per-observation variances
  if ('sd' in m) {
    variance = 2 * m.sd * m.sd;
  } else {
    const p2 = m.rate + d;
    if (!(p2 > 0 && p2 < 1)) throw new RangeError(`${fn}: baselineRate + mde must be in (0, 1), got ${p2}`);
    variance = m.rate * (1 - m.rate) + p2 * (1 - p2);
  }
  return Math.ceil((z * z * variance) / (d * d));
}

/**
 * The smallest difference a two-sided two-sample z-test with nPerArm observations per arm detects with
 * probability `power` at level α (the inverse of requiredSampleSizePerArm before rounding):
 *   means:        mde = (z₁₋α/₂ + z_power)·σ·√(2/n)
 *   proportions:  the increase d > 0 with n·d² = (z₁₋α/₂ + z_power)²·(p₁(1 − p₁) + (p₁ + d)(1 − p₁ − d)), a
 *                 quadratic in d. Infinity when no rate below 1 is detectable. For a decrease from p₁, use
 *                 baselineRate 1 − p₁ (the formula is symmetric under p ↦ 1 − p).
 */
export function minimumDetectableEffect(o: DetectableEffectOptions): number {
  const fn = 'minimumDetectableEffect';
  const m = metric(fn, o);
  const z = checkLevels(fn, o.alpha, o.power);
  const n = o.nPerArm;
  if (!(n > 0 && Number.isFinite(n))) throw new RangeError(`${fn}: nPerArm must be a positive finite number, got ${n}`);
  if ('sd' in m) return z * m.sd * Math.sqrt(2 / n);
  const p = m.rate;
  // (n/z² + 1)·d² − (1 − 2p)·d − 2p(1 − p) = 0, positive root (the other is negative)
  const qa = n / (z * z) + 1;
  const qb = 1 - 2 * p;
  const qc = 2 * p * (1 - p);
  const disc = Math.sqrt(qb * qb + 4 * qa * qc);
  const d = qb >= 0 ? (qb + disc) / (2 * qa) : (2 * qc) / (disc - qb);
  return p + d < 1 ? d : Infinity;
}
