// Always-valid comparison of two arms: the mixture sequential probability ratio test (mSPRT) with a
// normal mixing distribution on the difference, under the Gaussian approximation of Johari, Koomen,
// Pekelis & Walsh ("Always valid inference: continuous monitoring of A/B tests", Operations Research
// 70(3), 2022; arXiv:1512.04922), and the confidence sequence obtained by inverting it, which is
// Robbins' normal-mixture boundary (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
// nonparametric, nonasymptotic confidence sequences", Annals of Statistics 49(2), 2021: the two-sided
// normal-mixture boundary).
//
// With θ̂ = mean_b − mean_a, V = s²_a/n_a + s²_b/n_b its estimated variance and the mixture
// θ ~ N(θ₀, τ²) around the null value θ₀:
//
//   Λ(θ₀) = √(V/(V + τ²)) · exp( τ²(θ̂ − θ₀)² / (2V(V + τ²)) )
//   CS    = θ̂ ± √( V(V + τ²)/τ² · (2 ln(1/α) + ln((V + τ²)/V)) )     (the θ₀ with Λ(θ₀) < 1/α)
//
// docs/rollout-statistics.md gives the derivation, the defaults and the assumptions.

/** A sample's size, mean and sample variance (n − 1 denominator). `mean` is ignored when n = 0, `variance` when n < 2. */
export interface ArmMoments {
  n: number;
  mean: number;
  variance: number;
}

/** Trials and successes of a binary metric in one arm. */
export interface ArmCounts {
  n: number;
  successes: number;
}

export interface SequentialResult {
  /** mean_b − mean_a (or p_b − p_a): candidate minus stable. 0 while either arm is empty. */
  estimate: number;
  /** Always-valid (1 − α) confidence sequence on the difference; ±Infinity while either arm has fewer than 2 observations. */
  lower: number;
  upper: number;
  /** Always-valid p-value for "no difference": min(previousP, 1/Λ, 1), non-increasing across looks. */
  pValue: number;
  /** The mixture likelihood ratio Λ(0) at this look (may be Infinity for overwhelming evidence). */
  lambda: number;
  n: [number, number];
}

export interface SequentialOptions {
  /** Level of the confidence sequence, in (0, 1). The p-value does not depend on it. */
  alpha: number;
  /**
   * Standard deviation τ of the normal mixing distribution, in the units of the difference. Default:
   * DEFAULT_TAU_SCALE × the pooled standard deviation of one observation (√(pooled sample variance)
   * for means, √(p̄(1 − p̄)) with the pooled rate p̄ for proportions), i.e. an effect of 0.1 standard
   * deviations. Pass a fixed τ (e.g. from the stable version's history) to keep the mixture fixed across looks.
   */
  tau?: number;
  /** The p-value of the previous look of the same comparison, so that the p-value never increases. */
  previousP?: number;
}

/** Default τ in units of one observation's standard deviation (see SequentialOptions.tau). */
export const DEFAULT_TAU_SCALE = 0.1;

/** Each arm needs at least this many observations before the variance, hence Λ and the CS, are defined. */
export const MIN_SEQUENTIAL_N = 2;

/** Throws unless x is a finite integer ≥ 0. */
export function checkCount(fn: string, what: string, x: number): void {
  if (!Number.isInteger(x) || x < 0) throw new RangeError(`${fn}: ${what} must be a non-negative integer, got ${x}`);
}

/** Throws unless 0 < x < 1. */
export function checkOpenUnit(fn: string, what: string, x: number): void {
  if (!(x > 0 && x < 1)) throw new RangeError(`${fn}: ${what} must be in (0, 1), got ${x}`);
}

/** Throws unless previousP is absent or in [0, 1]; returns it with 1 for absent. */
export function checkPreviousP(fn: string, previousP: number | undefined): number {
  if (previousP === undefined) return 1;
  if (!(previousP >= 0 && previousP <= 1)) throw new RangeError(`${fn}: previousP must be in [0, 1], got ${previousP}`);
  return previousP;
}

function checkOptions(fn: string, opts: SequentialOptions): number {
  checkOpenUnit(fn, 'alpha', opts.alpha);
  if (opts.tau !== undefined && !(opts.tau > 0 && Number.isFinite(opts.tau))) {
    throw new RangeError(`${fn}: tau must be a positive finite number, got ${opts.tau}`);
  }
  return checkPreviousP(fn, opts.previousP);
}

/**
 * The mSPRT at null value 0 and its confidence sequence for an estimate θ̂ with variance V under the
 * mixture N(0, τ²). V = 0 (both arms constant) is the limit V → 0: a zero-width CS at θ̂, with Λ = ∞
 * when θ̂ ≠ 0 and Λ = 0 when θ̂ = 0.
 */
export function mixtureSprt(
  estimate: number,
  variance: number,
  tau: number,
  alpha: number,
  previousP: number,
): { lower: number; upper: number; pValue: number; lambda: number } {
  const t2 = tau * tau;
  const ratio = t2 / variance; // τ²/V
  if (!Number.isFinite(ratio)) {
    // V = 0 (or so small that τ²/V overflows)
    const lambda = estimate === 0 ? 0 : Infinity;
    return { lower: estimate, upper: estimate, pValue: Math.min(previousP, lambda === Infinity ? 0 : 1), lambda };
  }
  // ln Λ = −½ ln(1 + τ²/V) + θ̂²τ² / (2V(V + τ²))
  const logLambda = -0.5 * Math.log1p(ratio) + (estimate * estimate * ratio) / (2 * (variance + t2));
  const lambda = Math.exp(logLambda);
  const pValue = Math.min(previousP, 1, Math.exp(-logLambda));
  const half = Math.sqrt(((variance * (variance + t2)) / t2) * (2 * Math.log(1 / alpha) + Math.log1p(ratio)));
  return { lower: estimate - half, upper: estimate + half, pValue, lambda };
}

function tooFew(estimate: number, previousP: number, n: [number, number]): SequentialResult {
  return { estimate, lower: -Infinity, upper: Infinity, pValue: previousP, lambda: 1, n };
}

function checkMoments(fn: string, arm: string, m: ArmMoments): void {
  checkCount(fn, `${arm}.n`, m.n);
  if (m.n >= 1 && !Number.isFinite(m.mean)) throw new RangeError(`${fn}: ${arm}.mean must be finite, got ${m.mean}`);
  if (m.n >= 2 && !(m.variance >= 0 && Number.isFinite(m.variance))) {
    throw new RangeError(`${fn}: ${arm}.variance must be finite and non-negative, got ${m.variance}`);
  }
}

/**
 * Always-valid test and confidence sequence for mean_b − mean_a (candidate minus stable) from each
 * arm's running moments. Valid at every look, however often the caller looks, under the Gaussian
 * approximation with plug-in variances (Johari et al. 2022, §4). Fewer than 2 observations in an
 * arm gives an infinite CS and pValue = previousP (1 on the first look).
 */
export function sequentialMeanDifference(a: ArmMoments, b: ArmMoments, opts: SequentialOptions): SequentialResult {
  const fn = 'sequentialMeanDifference';
  checkMoments(fn, 'a', a);
  checkMoments(fn, 'b', b);
  const previousP = checkOptions(fn, opts);
  const n: [number, number] = [a.n, b.n];
  const estimate = a.n >= 1 && b.n >= 1 ? b.mean - a.mean : 0;
  if (a.n < MIN_SEQUENTIAL_N || b.n < MIN_SEQUENTIAL_N) return tooFew(estimate, previousP, n);
  const variance = a.variance / a.n + b.variance / b.n;
  if (variance === 0) return { estimate, ...mixtureSprt(estimate, 0, 1, opts.alpha, previousP), n };
  const pooled = ((a.n - 1) * a.variance + (b.n - 1) * b.variance) / (a.n + b.n - 2);
  const tau = opts.tau ?? DEFAULT_TAU_SCALE * Math.sqrt(pooled);
  return { estimate, ...mixtureSprt(estimate, variance, tau, opts.alpha, previousP), n };
}

/**
 * p(1 − p) for a rate s/n, with an arm that is all successes or all failures counted as if it had
 * half an observation of the other kind: p is clamped to [1/(2n), 1 − 1/(2n)]. This only changes
 * degenerate arms (for 0 < s < n the clamp is inactive) and keeps the variance, hence Λ, finite.
 */
export function bernoulliVariance(successes: number, n: number): number {
  const floor = 1 / (2 * n);
  const p = Math.min(Math.max(successes / n, floor), 1 - floor);
  return p * (1 - p);
}

/**
 * Always-valid test and confidence sequence for p_b − p_a (candidate minus stable) from success
 * counts, with the unpooled variance p̂_a(1 − p̂_a)/n_a + p̂_b(1 − p̂_b)/n_b (zero-variance guard in
 * bernoulliVariance). Fewer than 2 trials in an arm gives an infinite CS and pValue = previousP.
 */
export function sequentialProportionDifference(a: ArmCounts, b: ArmCounts, opts: SequentialOptions): SequentialResult {
  const fn = 'sequentialProportionDifference';
  for (const [arm, c] of [['a', a], ['b', b]] as const) {
    checkCount(fn, `${arm}.n`, c.n);
    checkCount(fn, `${arm}.successes`, c.successes);
    if (c.successes > c.n) throw new RangeError(`${fn}: ${arm}.successes (${c.successes}) exceeds ${arm}.n (${c.n})`);
  }
  const previousP = checkOptions(fn, opts);
  const n: [number, number] = [a.n, b.n];
  const estimate = a.n >= 1 && b.n >= 1 ? b.successes / b.n - a.successes / a.n : 0;
  if (a.n < MIN_SEQUENTIAL_N || b.n < MIN_SEQUENTIAL_N) return tooFew(estimate, previousP, n);
  const variance = bernoulliVariance(a.successes, a.n) / a.n + bernoulliVariance(b.successes, b.n) / b.n;
  const tau = opts.tau ?? DEFAULT_TAU_SCALE * Math.sqrt(bernoulliVariance(a.successes + b.successes, a.n + b.n));
  return { estimate, ...mixtureSprt(estimate, variance, tau, opts.alpha, previousP), n };
}
