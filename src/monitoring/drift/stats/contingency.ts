// Tests on counts: Pearson's χ² on a contingency table and against expected frequencies, the
// pooled two-proportion z-test, and Fisher's exact test on a 2×2 table.
import { chi2Sf, gammaln, ldexp, normTwoSided } from './special.ts';

function checkCount(fn: string, x: number): void {
  if (!(x >= 0) || !Number.isFinite(x)) throw new RangeError(`${fn}: counts must be finite and non-negative, got ${x}`);
}

/**
 * Pearson's χ² test of independence on an r×c table, equal to scipy.stats.chi2_contingency(table,
 * correction): expected counts from the margins, Yates' continuity correction when dof = 1 and
 * `correction` (default true; each |O − E| shrinks by at most 0.5, gh-13875), and dof = 0 tables
 * (one row or column) give statistic 0 and p-value 1. Throws, like SciPy, on a zero expected count.
 */
export function chi2Contingency(table: number[][], correction = true): { statistic: number; pValue: number; dof: number } {
  const r = table.length;
  const c = r > 0 ? table[0]!.length : 0;
  if (r === 0 || c === 0) throw new RangeError('chi2Contingency: no data; the table is empty');
  const rowSums = new Float64Array(r);
  const colSums = new Float64Array(c);
  let total = 0;
  for (let i = 0; i < r; i++) {
    const row = table[i]!;
    if (row.length !== c) throw new RangeError('chi2Contingency: rows must have the same length');
    for (let j = 0; j < c; j++) {
      const o = row[j]!;
      checkCount('chi2Contingency', o);
      rowSums[i] = rowSums[i]! + o;
      colSums[j] = colSums[j]! + o;
      total += o;
    }
  }
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      if ((rowSums[i]! * colSums[j]!) / total === 0 || total === 0) {
        throw new RangeError(`chi2Contingency: the table of expected frequencies has a zero element at (${i}, ${j})`);
      }
    }
  }
  const dof = r * c - (r + c) + 1;
  if (dof === 0) return { statistic: 0, pValue: 1, dof };
  const yates = dof === 1 && correction;
  let statistic = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const e = (rowSums[i]! * colSums[j]!) / total; // scipy.stats.contingency.expected_freq
      let o = table[i]![j]!;
      if (yates) {
        const diff = e - o;
        o += Math.sign(diff) * Math.min(0.5, Math.abs(diff));
      }
      statistic += (o - e) ** 2 / e;
    }
  }
  return { statistic, pValue: chi2Sf(statistic, dof), dof };
}

/**
 * Pearson's χ² goodness-of-fit test with k − 1 degrees of freedom, equal to
 * scipy.stats.chisquare(observed, expected·Σobserved/Σexpected): `expected` is rescaled to the
 * observed total first (SciPy instead refuses sums that differ by more than √ε relative), so raw
 * reference counts can be passed directly. As in SciPy, an expected 0 gives an infinite term
 * (NaN when the observed count is 0 too), so drop bins empty on both sides before calling.
 */
export function chisquare(observed: ArrayLike<number>, expected: ArrayLike<number>): { statistic: number; pValue: number } {
  const k = observed.length;
  if (expected.length !== k) throw new RangeError('chisquare: observed and expected must have the same length');
  if (k === 0) throw new RangeError('chisquare: no bins');
  let so = 0;
  let se = 0;
  for (let i = 0; i < k; i++) {
    checkCount('chisquare', observed[i]!);
    checkCount('chisquare', expected[i]!);
    so += observed[i]!;
    se += expected[i]!;
  }
  if (!(se > 0)) throw new RangeError('chisquare: expected counts sum to zero');
  const scale = so / se;
  let statistic = 0;
  for (let i = 0; i < k; i++) {
    const e = expected[i]! * scale;
    statistic += (observed[i]! - e) ** 2 / e;
  }
  return { statistic, pValue: chi2Sf(statistic, k - 1) };
}

/**
 * Pooled two-sided two-proportion z-test (Evidently's z-test; statsmodels proportions_ztest with
 * pooled variance): z = (p̂A − p̂B)/√(p̂(1 − p̂)(1/nA + 1/nB)), p = 2·Φ(−|z|) via scipy.stats.norm.sf.
 * When the pooled share is 0 or 1 both samples are identical and the variance is 0; SciPy-style
 * arithmetic would give 0/0 = NaN, we return statistic 0 and p-value 1 instead.
 */
export function twoProportionZ(successA: number, nA: number, successB: number, nB: number): { statistic: number; pValue: number } {
  for (const v of [successA, nA, successB, nB]) checkCount('twoProportionZ', v);
  if (nA === 0 || nB === 0) throw new RangeError('twoProportionZ: both groups need at least one trial');
  if (successA > nA || successB > nB) throw new RangeError('twoProportionZ: successes exceed trials');
  const pA = successA / nA;
  const pB = successB / nB;
  const pooled = (pA * nA + pB * nB) / (nA + nB);
  const variance = pooled * (1 - pooled) * (1 / nA + 1 / nB);
  if (!(variance > 0)) return { statistic: 0, pValue: 1 };
  const statistic = (pA - pB) / Math.sqrt(variance);
  return { statistic, pValue: normTwoSided(statistic) };
}

// ---------------------------------------------------------------------------------------------
// Hypergeometric distribution for Fisher's test.

let primeCache = new Int32Array(0);
let primeLimit = 1;

/** Primes ≤ n (sieve of Eratosthenes, cached and grown on demand). */
function primesUpTo(n: number): Int32Array {
  if (n <= primeLimit) {
    let end = primeCache.length;
    while (end > 0 && primeCache[end - 1]! > n) end--;
    return primeCache.subarray(0, end);
  }
  const limit = Math.max(n, 2 * primeLimit, 1024);
  const composite = new Uint8Array(limit + 1);
  const out: number[] = [];
  for (let p = 2; p <= limit; p++) {
    if (composite[p]) continue;
    out.push(p);
    for (let q = p * p; q <= limit; q += p) composite[q] = 1;
  }
  primeCache = Int32Array.from(out);
  primeLimit = limit;
  return primesUpTo(n);
}

/** Exponent of prime p in m! (Legendre's formula). */
function legendre(m: number, p: number): number {
  let e = 0;
  for (let q = m; q >= p; ) {
    q = Math.floor(q / p);
    e += q;
  }
  return e;
}

/** Totals above this use log-gamma for the pmf instead of prime factorisation. */
const PRIME_PMF_MAX_TOTAL = 1 << 20;

/**
 * Hypergeometric pmf C(K, x)·C(N − K, n − x)/C(N, n) (scipy.stats.hypergeom.pmf(x, N, K, n)).
 * Evaluated as a product of prime powers, like Boost (which SciPy calls) for moderate N: the result
 * is accurate to a few ulps per prime and, because equal rationals have equal factorisations, two
 * mathematically equal probabilities come out bit-identical — Fisher's two-sided test compares
 * probabilities with a 1e-14 relative tolerance, so that matters for symmetric tables.
 */
function hypergeomPmf(x: number, N: number, K: number, n: number): number {
  if (x < Math.max(0, n - (N - K)) || x > Math.min(n, K)) return 0;
  const plus = [K, N - K, n, N - n];
  const minus = [x, K - x, n - x, N - K - n + x, N];
  if (N > PRIME_PMF_MAX_TOTAL) {
    // log-gamma in a canonical order (sorted arguments), so that the mirror images of a symmetric
    // table — the same factorials in another order — still give bit-identical probabilities
    const byValue = (a: number, b: number): number => a - b;
    let lg = 0;
    for (const m of plus.sort(byValue)) lg += gammaln(m + 1);
    let lgMinus = 0;
    for (const m of minus.sort(byValue)) lgMinus += gammaln(m + 1);
    return Math.exp(lg - lgMinus);
  }
  let value = 1;
  let exp2 = 0;
  for (const p of primesUpTo(N)) {
    let e = 0;
    for (const m of plus) e += legendre(m, p);
    for (const m of minus) e -= legendre(m, p);
    if (e === 0) continue;
    if (p === 2) {
      exp2 += e;
      continue;
    }
    // p^e in chunks small enough not to overflow, renormalising the running product
    const chunk = Math.max(1, Math.floor(400 / Math.log2(p)));
    let left = e;
    while (left !== 0) {
      const step = left > 0 ? Math.min(left, chunk) : Math.max(left, -chunk);
      value *= p ** step;
      left -= step;
      const shift = Math.floor(Math.log2(value));
      if (shift > 500 || shift < -500) {
        value *= 2 ** -shift;
        exp2 += shift;
      }
    }
  }
  return ldexp(value, exp2);
}

/** Pr(X ≤ x) and Pr(X > x) summed from the tail inwards by the pmf recurrence (as Boost does). */
function hypergeomTails(x: number, N: number, K: number, n: number): { cdf: number; sf: number } {
  const lo = Math.max(0, n - (N - K));
  const hi = Math.min(n, K);
  if (x < lo) return { cdf: 0, sf: 1 };
  if (x >= hi) return { cdf: 1, sf: 0 };
  const mode = Math.floor(((n + 1) * (K + 1)) / (N + 2));
  if (x < mode) {
    // Σ_{i ≤ x}: terms fall moving down from x
    let term = hypergeomPmf(x, N, K, n);
    let sum = term;
    for (let i = x; i > lo && term > 0; i--) {
      term *= (i * (N - K - n + i)) / ((K - i + 1) * (n - i + 1));
      sum += term;
      if (term < sum * 1e-20) break;
    }
    return { cdf: sum, sf: 1 - sum };
  }
  // Σ_{i > x}: terms fall moving up from x + 1
  let term = hypergeomPmf(x + 1, N, K, n);
  let sum = term;
  for (let i = x + 1; i < hi && term > 0; i++) {
    term *= ((K - i) * (n - i)) / ((i + 1) * (N - K - n + i + 1));
    sum += term;
    if (term < sum * 1e-20) break;
  }
  return { cdf: 1 - sum, sf: sum };
}

/** SciPy's _binary_search_for_binom_tst: i in [lo, hi] with a(i) ≤ d < a(i + 1). */
function binarySearch(a: (i: number) => number, d: number, lo0: number, hi0: number): number {
  let lo = lo0;
  let hi = hi0;
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const midval = a(mid);
    if (midval < d) lo = mid + 1;
    else if (midval > d) hi = mid - 1;
    else return mid;
  }
  return a(lo) <= d ? lo : lo - 1;
}

/**
 * Fisher's exact test on a 2×2 table, equal to scipy.stats.fisher_exact(table) (two-sided): the
 * statistic is the sample odds ratio t00·t11/(t01·t10) (∞ when t01 or t10 is 0), the p-value sums
 * the hypergeometric probabilities no larger than the observed one (relative tolerance 1e-14, as
 * SciPy). A zero row or column gives NaN and 1.
 */
export function fisherExact(table: [[number, number], [number, number]]): { statistic: number; pValue: number } {
  const [[c00, c01], [c10, c11]] = table;
  for (const v of [c00, c01, c10, c11]) {
    checkCount('fisherExact', v);
    if (!Number.isInteger(v)) throw new RangeError(`fisherExact: counts must be integers, got ${v}`);
  }
  if (c00 + c01 === 0 || c10 + c11 === 0 || c00 + c10 === 0 || c01 + c11 === 0) return { statistic: NaN, pValue: 1 };
  const statistic = c10 > 0 && c01 > 0 ? (c00 * c11) / (c10 * c01) : Infinity;
  const n1 = c00 + c01;
  const n2 = c10 + c11;
  const n = c00 + c10;
  const N = n1 + n2;
  const pmf = (x: number): number => hypergeomPmf(x, N, n1, n);
  const mode = Math.trunc(((n + 1) * (n1 + 1)) / (N + 2));
  const pexact = pmf(c00);
  const pmode = pmf(mode);
  const epsilon = 1e-14;
  const gamma = 1 + epsilon;
  if (Math.abs(pexact - pmode) / Math.max(pexact, pmode) <= epsilon) return { statistic, pValue: 1 };
  let pValue: number;
  if (c00 < mode) {
    const plower = hypergeomTails(c00, N, n1, n).cdf;
    if (pmf(n) > pexact * gamma) return { statistic, pValue: plower };
    const guess = binarySearch((x) => -pmf(x), -pexact * gamma, mode, n);
    pValue = plower + hypergeomTails(guess, N, n1, n).sf;
  } else {
    const pupper = hypergeomTails(c00 - 1, N, n1, n).sf;
    if (pmf(0) > pexact * gamma) return { statistic, pValue: pupper };
    const guess = binarySearch(pmf, pexact * gamma, 0, mode);
    pValue = pupper + hypergeomTails(guess, N, n1, n).cdf;
  }
  return { statistic, pValue: Math.min(pValue, 1) };
}
