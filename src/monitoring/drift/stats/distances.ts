// Distances between one-dimensional distributions through their CDFs (SciPy's _cdf_distance):
// ℓ_p(U, V) = (∫|U − V|^p)^{1/p}; p = 1 is the Wasserstein-1 (earth mover's) distance and
// √2·ℓ_2 the energy distance (Székely & Rizzo 2013, J. Stat. Plan. Inference 143(8);
// Bellemare et al. 2017, arXiv:1705.10743). Both samples are sorted once and merged in one pass.
import { hasNaN, requireNonEmpty, sortedCopy } from './sorted.ts';

/** Below this length the built-in sort is as fast: the radix sort first clears 4 × 65,536 counters. */
const RADIX_MIN_LENGTH = 4096;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A sorted copy of a sample, in the order of `sortedCopy` (ascending, −0 before +0, NaN last), by an
 * LSD radix sort on the IEEE-754 bit patterns: setting the sign bit of non-negative values and flipping
 * every bit of negative ones makes the unsigned order of the 64-bit patterns the numeric order
 * (M. Herf, "Radix Tricks", 2001). Four stable passes over 16-bit digits, skipping a pass when every
 * value shares the digit. On 10^6 values it is about 3× faster than the built-in typed-array sort,
 * which was 90 % of an offline Wasserstein test (bench/drift).
 */
function sortedSample(x: Float64Array): Float64Array {
  const n = x.length;
  if (n < RADIX_MIN_LENGTH || !LITTLE_ENDIAN) return sortedCopy(x);
  const words = new Uint32Array(x.buffer, x.byteOffset, 2 * n);
  let keys = new Uint32Array(2 * n);
  let spare = new Uint32Array(2 * n);
  // One histogram per 16-bit digit: low and high half of the low word, then of the high word.
  const counts = new Uint32Array(4 * 65536);
  for (let i = 0; i < n; i++) {
    let lo = words[2 * i]!;
    let hi = words[2 * i + 1]!;
    // Any NaN (either sign, any payload) becomes +NaN, which sorts last as in sortedCopy.
    if ((hi & 0x7fffffff) > 0x7ff00000 || ((hi & 0x7fffffff) === 0x7ff00000 && lo !== 0)) {
      lo = 0;
      hi = 0xfff80000;
    } else if (hi & 0x80000000) {
      lo = ~lo >>> 0;
      hi = ~hi >>> 0;
    } else hi = (hi | 0x80000000) >>> 0;
    keys[2 * i] = lo;
    keys[2 * i + 1] = hi;
    counts[lo & 0xffff]!++;
    counts[65536 + (lo >>> 16)]!++;
    counts[131072 + (hi & 0xffff)]!++;
    counts[196608 + (hi >>> 16)]!++;
  }
  for (let pass = 0; pass < 4; pass++) {
    const base = pass * 65536;
    let start = 0;
    let single = false;
    for (let d = 0; d < 65536; d++) {
      const c = counts[base + d]!;
      if (c === n) {
        single = true;
        break;
      }
      counts[base + d] = start;
      start += c;
    }
    if (single) continue;
    const word = pass >> 1;
    const shift = (pass & 1) * 16;
    for (let i = 0; i < n; i++) {
      const lo = keys[2 * i]!;
      const hi = keys[2 * i + 1]!;
      const at = counts[base + ((keys[2 * i + word]! >>> shift) & 0xffff)]!++;
      spare[2 * at] = lo;
      spare[2 * at + 1] = hi;
    }
    [keys, spare] = [spare, keys];
  }
  for (let i = 0; i < n; i++) {
    const lo = keys[2 * i]!;
    const hi = keys[2 * i + 1]!;
    if (hi & 0x80000000) {
      spare[2 * i] = lo;
      spare[2 * i + 1] = hi & 0x7fffffff;
    } else {
      spare[2 * i] = ~lo >>> 0;
      spare[2 * i + 1] = ~hi >>> 0;
    }
  }
  return new Float64Array(spare.buffer);
}

/** Σ |U − V|^p·Δ over the merged sorted samples (p ∈ {1, 2}), as np.vecdot in _cdf_distance. */
function cdfIntegralSorted(x: Float64Array, y: Float64Array, p: 1 | 2): number {
  const n1 = x.length;
  const n2 = y.length;
  const total = n1 + n2;
  let i = 0;
  let j = 0;
  let sum = 0;
  // Value of the k-th pooled order statistic, advancing one sample's pointer per step; with ties the
  // partially advanced counts meet a zero-width step, so they add nothing (as in SciPy).
  let current = j >= n2 || (i < n1 && x[i]! <= y[j]!) ? x[i++]! : y[j++]!;
  for (let k = 1; k < total; k++) {
    const next = j >= n2 || (i < n1 && x[i]! <= y[j]!) ? x[i]! : y[j]!;
    const delta = next - current;
    if (delta !== 0) {
      const diff = Math.abs(i / n1 - j / n2);
      sum += p === 1 ? diff * delta : diff * diff * delta;
    }
    if (j >= n2 || (i < n1 && x[i]! <= y[j]!)) i++;
    else j++;
    current = next;
  }
  return sum;
}

/** Wasserstein-1 distance between two samples, equal to scipy.stats.wasserstein_distance(a, b). */
export function wasserstein(a: Float64Array, b: Float64Array): number {
  requireNonEmpty('wasserstein', a, b);
  const x = sortedSample(a);
  const y = sortedSample(b);
  if (hasNaN(x) || hasNaN(y)) return NaN;
  return cdfIntegralSorted(x, y, 1);
}

/** Energy distance between two samples, equal to scipy.stats.energy_distance(a, b). */
export function energyDistance(a: Float64Array, b: Float64Array): number {
  requireNonEmpty('energyDistance', a, b);
  const x = sortedSample(a);
  const y = sortedSample(b);
  if (hasNaN(x) || hasNaN(y)) return NaN;
  return Math.SQRT2 * Math.sqrt(cdfIntegralSorted(x, y, 2));
}

/** Population standard deviation (np.std, ddof = 0), two-pass like NumPy. */
export function populationStd(x: Float64Array): number {
  const n = x.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]!;
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i]! - mean) ** 2;
  return Math.sqrt(ss / n);
}

/** Floor for the reference std in wassersteinNormed (Evidently's `max(np.std(reference), 0.001)`). */
export const WASSERSTEIN_STD_FLOOR = 0.001;

/**
 * Wasserstein distance in units of the reference's standard deviation (Evidently's "normed"
 * Wasserstein: wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)). The 0.001 floor is
 * Evidently's: a constant reference (std 0) divides by 0.001 instead of 0, so any shift of the
 * current values shows up as a large finite distance and an unchanged constant column scores 0.
 */
export function wassersteinNormed(ref: Float64Array, cur: Float64Array): number {
  const d = wasserstein(ref, cur);
  return d / Math.max(populationStd(ref), WASSERSTEIN_STD_FLOOR);
}

/** ℓ_p CDF distance between two weightings of the same support points (weighted _cdf_distance). */
function weightedCdfIntegral(values: ArrayLike<number>, wa: ArrayLike<number>, wb: ArrayLike<number>, p: 1 | 2): number {
  const n = values.length;
  if (n === 0) throw new RangeError('distribution can not be empty');
  if (wa.length !== n || wb.length !== n) throw new RangeError('values and weights must have the same length');
  let ta = 0;
  let tb = 0;
  for (let i = 0; i < n; i++) {
    const a = wa[i]!;
    const b = wb[i]!;
    if (!(a >= 0) || !(b >= 0)) throw new RangeError('weights must be non-negative');
    ta += a;
    tb += b;
  }
  if (!(ta > 0 && ta < Infinity && tb > 0 && tb < Infinity)) throw new RangeError('weight sums must be positive and finite');
  const v = (i: number): number => values[i]!;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(v(i))) return NaN;
    order[i] = i;
  }
  order.sort((i, j) => (v(i) < v(j) ? -1 : v(i) > v(j) ? 1 : 0));
  let ca = 0;
  let cb = 0;
  let sum = 0;
  for (let k = 0; k < n - 1; k++) {
    const idx = order[k]!;
    ca += wa[idx]!;
    cb += wb[idx]!;
    const delta = v(order[k + 1]!) - v(idx);
    if (delta !== 0) {
      const diff = Math.abs(ca / ta - cb / tb);
      sum += p === 1 ? diff * delta : diff * diff * delta;
    }
  }
  return sum;
}

/**
 * Wasserstein-1 distance between two weightings of the same values (e.g. two histograms on the
 * reference's bin centres), equal to scipy.stats.wasserstein_distance(values, values, weightsA, weightsB).
 */
export function wassersteinFromWeights(values: ArrayLike<number>, weightsA: ArrayLike<number>, weightsB: ArrayLike<number>): number {
  return weightedCdfIntegral(values, weightsA, weightsB, 1);
}

/** Energy distance between two weightings of the same values, equal to scipy.stats.energy_distance(values, values, weightsA, weightsB). */
export function energyDistanceFromWeights(values: ArrayLike<number>, weightsA: ArrayLike<number>, weightsB: ArrayLike<number>): number {
  return Math.SQRT2 * Math.sqrt(weightedCdfIntegral(values, weightsA, weightsB, 2));
}
