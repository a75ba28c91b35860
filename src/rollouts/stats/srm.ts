// Sample ratio mismatch: are the arms getting the traffic shares they were configured with? Two
// answers from the same counts: the anytime-valid Dirichlet-multinomial Bayes factor of Lindon &
// Malek ("Anytime-valid inference for multinomial count data", NeurIPS 2022; the test Optimizely's
// ssrm package implements), which may be checked after every request, and Pearson's fixed-sample
// χ² goodness of fit (= scipy.stats.chisquare), which is only valid at one pre-planned look.
//
// With counts x over k arms (n = Σx), null shares θ and the prior Dirichlet(c·θ) under the alternative:
//
//   ln BF = ln Γ(c) − ln Γ(c + n) + Σᵢ [ln Γ(cθᵢ + xᵢ) − ln Γ(cθᵢ)] − Σᵢ xᵢ ln θᵢ
//
// BF is a non-negative martingale with mean 1 under the null, so min(previousP, 1/BF) is an
// anytime-valid p-value (Ville's inequality). docs/rollout-statistics.md has the details.
import gammainc from '@stdlib/math-base-special-gammainc';
import gammaln from '@stdlib/math-base-special-gammaln';
import { checkCount, checkPreviousP } from './sequential.ts';

export interface SrmResult {
  /** Anytime-valid p-value min(previousP, 1/BF, 1); non-increasing when each look passes the last one's. */
  pValue: number;
  /** The Dirichlet-multinomial Bayes factor BF (alternative over null) at these counts. */
  bayesFactor: number;
  /** Pearson's χ² statistic Σ (xᵢ − nθᵢ)²/(nθᵢ); 0 when n = 0. */
  chi2: number;
  /** Fixed-sample p-value of chi2 on k − 1 degrees of freedom (scipy.stats.chisquare); 1 when n = 0. */
  chi2PValue: number;
  /** xᵢ/n (all 0 when n = 0). */
  observedShares: number[];
  /** The expected shares, normalised to sum to exactly 1. */
  expectedShares: number[];
  n: number;
}

export interface SrmOptions {
  /** The p-value of the previous look at the same experiment. */
  previousP?: number;
  /** Concentration c of the Dirichlet(c·θ) prior; default DEFAULT_SRM_CONCENTRATION. */
  concentration?: number;
}

/**
 * Default Dirichlet concentration, as in Optimizely's ssrm (dirichlet_concentration=10000): the prior
 * puts the share of an arm with expected share θ within about ±√(θ(1 − θ)/c) of θ, so it is most
 * sensitive to mismatches of that size (±0.5 percentage points at 50/50, ±0.2 at 95/5).
 */
export const DEFAULT_SRM_CONCENTRATION = 10000;

/** How far the expected shares may sum from 1 before they are refused (they are then normalised). */
const SHARE_SUM_TOLERANCE = 1e-6;

/**
 * Sample ratio mismatch test on the request counts per arm against the configured shares.
 * `observed` are cumulative counts (non-negative integers) and `expectedShares` positive shares that
 * sum to 1, one per arm, at least two arms.
 */
export function sampleRatioMismatch(observed: readonly number[], expectedShares: readonly number[], opts: SrmOptions = {}): SrmResult {
  const fn = 'sampleRatioMismatch';
  const k = observed.length;
  if (expectedShares.length !== k) {
    throw new RangeError(`${fn}: observed has ${k} arms but expectedShares has ${expectedShares.length}`);
  }
  if (k < 2) throw new RangeError(`${fn}: need at least 2 arms, got ${k}`);
  let shareSum = 0;
  for (let i = 0; i < k; i++) {
    checkCount(fn, `observed[${i}]`, observed[i]!);
    const s = expectedShares[i]!;
    if (!(s > 0 && s < 1)) throw new RangeError(`${fn}: expectedShares[${i}] must be in (0, 1), got ${s}`);
    shareSum += s;
  }
  if (!(Math.abs(shareSum - 1) <= SHARE_SUM_TOLERANCE)) throw new RangeError(`${fn}: expectedShares must sum to 1, got ${shareSum}`);
  const previousP = checkPreviousP(fn, opts.previousP);
  const c = opts.concentration ?? DEFAULT_SRM_CONCENTRATION;
  if (!(c > 0 && Number.isFinite(c))) throw new RangeError(`${fn}: concentration must be a positive finite number, got ${c}`);

  const theta = expectedShares.map((s) => s / shareSum);
  const n = observed.reduce((s, x) => s + x, 0);
  if (n === 0) {
    return { pValue: previousP, bayesFactor: 1, chi2: 0, chi2PValue: 1, observedShares: theta.map(() => 0), expectedShares: theta, n };
  }

  let chi2 = 0;
  let logBf = gammaln(c) - gammaln(c + n);
  for (let i = 0; i < k; i++) {
    const x = observed[i]!;
    const e = n * theta[i]!;
    chi2 += (x - e) ** 2 / e;
    const a = c * theta[i]!;
    if (x > 0) logBf += gammaln(a + x) - gammaln(a) - x * Math.log(theta[i]!);
  }
  const bayesFactor = Math.exp(logBf);
  return {
    pValue: Math.min(previousP, 1, Math.exp(-logBf)),
    bayesFactor,
    chi2,
    chi2PValue: chi2 > 0 ? gammainc(chi2 / 2, (k - 1) / 2, true, true) : 1, // χ²(k−1) survival = Q((k−1)/2, χ²/2)
    observedShares: observed.map((x) => x / n),
    expectedShares: theta,
    n,
  };
}
