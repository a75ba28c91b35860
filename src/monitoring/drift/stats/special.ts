// Special functions and small numeric helpers shared by the drift statistics. The distribution
// tails come from @stdlib (ports of Boost/Cephes, the same families SciPy uses); the rest are
// re-implementations of the NumPy/SciPy behaviour a statistic depends on (rounding, floor division,
// polyfit), so that our results agree with SciPy's bit for bit where it matters.
import erfc from '@stdlib/math-base-special-erfc';
import gammainc from '@stdlib/math-base-special-gammainc';
import gammalnStd from '@stdlib/math-base-special-gammaln';

/** log Γ(x) (scipy.special.gammaln). */
export const gammaln: (x: number) => number = gammalnStd;

/** Survival function of χ²(df) at x: scipy.stats.chi2.sf = scipy.special.chdtrc = Q(df/2, x/2). */
export function chi2Sf(x: number, df: number): number {
  if (Number.isNaN(x) || Number.isNaN(df)) return NaN;
  if (x <= 0) return 1;
  if (x === Infinity) return 0;
  return gammainc(x / 2, df / 2, true, true);
}

/** Two-sided normal tail 2·P(Z > |z|) = erfc(|z|/√2) (scipy.stats.norm.sf, doubled). */
export function normTwoSided(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2);
}

/** x·2^e without overflowing the intermediate power of two (numpy.ldexp). */
export function ldexp(x: number, e: number): number {
  let v = x;
  let k = e;
  while (k > 1000) {
    v *= 2 ** 1000;
    k -= 1000;
  }
  while (k < -1000) {
    v *= 2 ** -1000;
    k += 1000;
  }
  return v * 2 ** k;
}

/** Round half to even, as numpy.round / Python's round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; move exact ties on odd results back to the even neighbour.
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Floor division of doubles with NumPy's semantics (npy_divmod), which `//` on float64 uses. */
export function floorDivide(a: number, b: number): number {
  if (b === 0) return a / b;
  let mod = a % b;
  let div = (a - mod) / b;
  if (mod !== 0) {
    if (b < 0 !== mod < 0) {
      mod += b;
      div -= 1;
    }
  }
  if (div !== 0) {
    let floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1;
    return floordiv;
  }
  return a / b < 0 ? -0 : 0;
}

/** Greatest common divisor of two non-negative integers. */
export function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) {
    const t = x % y;
    x = y;
    y = t;
  }
  return x;
}

/**
 * exp(q)·K_ν(q), the exponentially scaled modified Bessel function of the second kind
 * (scipy.special.kve), from K_ν(q) = ∫₀^∞ exp(−q cosh t) cosh(νt) dt. The integrand is entire and
 * decays double-exponentially, so the trapezoidal rule converges geometrically (Trefethen & Weideman,
 * SIAM Review 2014); a step of min(0.1, 0.5/√q) gives ~1e-14 relative error for ν = 1/4.
 */
export function besselKScaled(nu: number, q: number): number {
  if (!(q > 0)) return q === 0 ? Infinity : NaN;
  const h = Math.min(0.1, 0.5 / Math.sqrt(q));
  let sum = 0.5; // the t = 0 end point, halved
  for (let t = h; ; t += h) {
    const s = Math.sinh(t / 2);
    const a = 2 * q * s * s; // q·(cosh t − 1) without cancellation
    const f = Math.exp(-a) * Math.cosh(nu * t);
    sum += f;
    if (a > 745 || f < 1e-17 * sum) break;
  }
  return sum * h;
}

/**
 * Least-squares quadratic through (x, y) evaluated at x0, as `np.polyval(np.polyfit(x, y, 2), x0)`.
 * Householder QR on the Vandermonde matrix: the same solution as NumPy's SVD-based lstsq up to
 * rounding (the systems here are 7×3 and well conditioned).
 */
export function quadraticFitAt(x: ArrayLike<number>, y: ArrayLike<number>, x0: number): number {
  const m = x.length;
  const a = new Float64Array(m * 3); // row-major m×3: [x², x, 1] like np.polyfit's vander
  const b = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const xi = x[i]!;
    a[i * 3] = xi * xi;
    a[i * 3 + 1] = xi;
    a[i * 3 + 2] = 1;
    b[i] = y[i]!;
  }
  for (let k = 0; k < 3; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[i * 3 + k]! ** 2;
    norm = Math.sqrt(norm);
    const akk = a[k * 3 + k]!;
    const alpha = akk > 0 ? -norm : norm;
    // v = column − alpha·e_k, stored in place below the diagonal
    const v0 = akk - alpha;
    let vnorm2 = v0 * v0;
    for (let i = k + 1; i < m; i++) vnorm2 += a[i * 3 + k]! ** 2;
    if (vnorm2 === 0) continue;
    const vAt = (i: number): number => (i === k ? v0 : a[i * 3 + k]!);
    for (let j = k + 1; j < 3; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += vAt(i) * a[i * 3 + j]!;
      const f = (2 * dot) / vnorm2;
      for (let i = k; i < m; i++) a[i * 3 + j] = a[i * 3 + j]! - f * vAt(i);
    }
    let dotb = 0;
    for (let i = k; i < m; i++) dotb += vAt(i) * b[i]!;
    const fb = (2 * dotb) / vnorm2;
    for (let i = k; i < m; i++) b[i] = b[i]! - fb * vAt(i);
    a[k * 3 + k] = alpha;
  }
  const c = [0, 0, 0];
  for (let k = 2; k >= 0; k--) {
    let s = b[k]!;
    for (let j = k + 1; j < 3; j++) s -= a[k * 3 + j]! * c[j]!;
    c[k] = s / a[k * 3 + k]!;
  }
  return (c[0]! * x0 + c[1]!) * x0 + c[2]!;
}
