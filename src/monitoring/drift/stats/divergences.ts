// Divergences and distances between two discrete distributions given as counts (or weights) over
// the same bins. Every function normalises each input to sum to 1 first, as SciPy does.

/** Validates two count vectors over the same bins and returns their totals. */
function totals(fn: string, p: ArrayLike<number>, q: ArrayLike<number>): [number, number] {
  if (p.length !== q.length) throw new RangeError(`${fn}: inputs must have the same length (${p.length} vs ${q.length})`);
  if (p.length === 0) throw new RangeError(`${fn}: inputs must not be empty`);
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i]!;
    if (!(a >= 0 && b >= 0) || !Number.isFinite(a) || !Number.isFinite(b)) {
      throw new RangeError(`${fn}: counts must be finite and non-negative (bin ${i})`);
    }
    sp += a;
    sq += b;
  }
  if (!(sp > 0 && sq > 0)) throw new RangeError(`${fn}: each input needs a positive total`);
  return [sp, sq];
}

/** scipy.special.rel_entr: x·log(x/y) for x, y > 0; 0 for x = 0, y ≥ 0; +∞ otherwise. */
function relEntr(x: number, y: number): number {
  if (x > 0 && y > 0) return x * Math.log(x / y);
  if (x === 0 && y >= 0) return 0;
  return Infinity;
}

/** Default replacement for an empty bin's proportion in psi. */
export const PSI_EMPTY_BIN = 1e-4;

/**
 * Population stability index Σ (r_i − c_i)·ln(r_i/c_i) over shared bins, with r, c the bins'
 * proportions of each total. A proportion of exactly 0 is replaced by `eps` (default 1e-4, as
 * Evidently's `np.place(percents, percents == 0, 0.0001)`) without renormalising, so an empty bin
 * contributes a large but finite term instead of ∞.
 */
export function psi(refCounts: ArrayLike<number>, curCounts: ArrayLike<number>, eps = PSI_EMPTY_BIN): number {
  const [sr, sc] = totals('psi', refCounts, curCounts);
  let sum = 0;
  for (let i = 0; i < refCounts.length; i++) {
    const r = refCounts[i]! / sr || eps;
    const c = curCounts[i]! / sc || eps;
    sum += (r - c) * Math.log(r / c);
  }
  return sum;
}

/**
 * Kullback-Leibler divergence D(p‖q) = Σ p_i log(p_i/q_i) of the normalised inputs, equal to
 * scipy.stats.entropy(p, q, base): natural log unless `base` is given; +∞ when q has an empty bin
 * that p does not.
 */
export function kl(p: ArrayLike<number>, q: ArrayLike<number>, base?: number): number {
  const [sp, sq] = totals('kl', p, q);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += relEntr(p[i]! / sp, q[i]! / sq);
  return base === undefined ? s : s / Math.log(base);
}

/**
 * Jensen-Shannon distance — the square root of the JS divergence — equal to
 * scipy.spatial.distance.jensenshannon(p, q, base): natural log by default (bounded by √ln 2),
 * base 2 bounds it by 1. Symmetric, finite with empty bins, 0 for identical inputs.
 */
export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>, base?: number): number {
  const [sp, sq] = totals('jensenShannon', p, q);
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    const b = q[i]! / sq;
    const m = (a + b) / 2;
    left += relEntr(a, m);
    right += relEntr(b, m);
  }
  let js = left + right;
  if (base !== undefined) js /= Math.log(base);
  return Math.sqrt(js / 2);
}

/**
 * Hellinger distance √(1 − Σ√(p_i q_i)) of the normalised inputs, in [0, 1]. Computed as the
 * algebraically equal √(½ Σ (√p_i − √q_i)²), which avoids the cancellation in 1 − Σ√(p q) for
 * nearly equal inputs (where that form loses most digits and can even go negative).
 */
export function hellinger(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const [sp, sq] = totals('hellinger', p, q);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (Math.sqrt(p[i]! / sp) - Math.sqrt(q[i]! / sq)) ** 2;
  return Math.min(1, Math.sqrt(s / 2));
}

/** Total variation distance ½ Σ |p_i − q_i| of the normalised inputs, in [0, 1]. */
export function totalVariation(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const [sp, sq] = totals('totalVariation', p, q);
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs(p[i]! / sp - q[i]! / sq);
  return Math.min(1, s / 2);
}
