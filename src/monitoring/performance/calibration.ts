import { checkBinaryLabels, checkFinite, sameLength } from './inputs.ts';

/**
 * A fitted isotonic calibration map: increasing knots `x` (raw scores) and their calibrated probabilities `y`,
 * the same arrays as sklearn's `X_thresholds_` and `y_thresholds_`. Plain arrays, so it is stored as JSON.
 */
export interface IsotonicCalibration {
  x: number[];
  y: number[];
}

/** np.finfo(np.float64).resolution: sklearn's `_make_unique` treats scores closer than this as one score. */
const DUPLICATE_RESOLUTION = 1e-15;

/**
 * Fits P(label = 1 | score) by isotonic regression, reproducing
 * sklearn.isotonic.IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0, y_max=1).fit(scores, labels)
 * step by step: sort by (score, label); average labels over duplicate scores (`_make_unique`, which also merges
 * scores within 1e-15); pool adjacent violators with the longest-decreasing-run search (Best & Chakravarti 1990,
 * sklearn's `_inplace_contiguous_isotonic_regression`, same arithmetic order); clip to [0, 1]; drop interior knots
 * whose value equals both neighbours. Isotonic calibration for classifiers: Zadrozny & Elkan, KDD 2002.
 */
export function fitCalibration(labels: ArrayLike<number>, scores: ArrayLike<number>): IsotonicCalibration {
  const what = 'fitCalibration';
  const n = sameLength(what, labels, scores, 'labels', 'scores');
  if (n === 0) throw new RangeError(`${what}: needs at least one labelled row`);
  checkBinaryLabels(what, labels);
  checkFinite(what, 'scores', scores);

  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (scores[a] as number) - (scores[b] as number) || (labels[a] as number) - (labels[b] as number),
  );

  const xs: number[] = [];
  const ys: number[] = [];
  const ws: number[] = [];
  let currentX = scores[order[0] as number] as number;
  let currentY = 0;
  let currentW = 0;
  for (const i of order) {
    const x = scores[i] as number;
    if (x - currentX >= DUPLICATE_RESOLUTION) {
      xs.push(currentX);
      ys.push(currentY / currentW);
      ws.push(currentW);
      currentX = x;
      currentW = 1;
      currentY = labels[i] as number;
    } else {
      currentW += 1;
      currentY += labels[i] as number;
    }
  }
  xs.push(currentX);
  ys.push(currentY / currentW);
  ws.push(currentW);

  const y = poolAdjacentViolators(Float64Array.from(ys), Float64Array.from(ws));
  for (let i = 0; i < y.length; i++) y[i] = Math.min(Math.max(y[i] as number, 0), 1);

  const keep: IsotonicCalibration = { x: [], y: [] };
  const m = y.length;
  for (let i = 0; i < m; i++) {
    const v = y[i] as number;
    if (i === 0 || i === m - 1 || v !== y[i - 1] || v !== y[i + 1]) {
      keep.x.push(xs[i] as number);
      keep.y.push(v);
    }
  }
  return keep;
}

/**
 * Calibrated probabilities for raw scores, as IsotonicRegression.predict does with out_of_bounds="clip": clip to
 * [x₀, x_last], then np.interp (scipy's interp1d hands float64 linear interpolation to it): a score on a knot
 * gets the knot's value, otherwise slope·(s − x_j) + y_j. A NaN score gives NaN.
 */
export function calibrate(cal: IsotonicCalibration, scores: ArrayLike<number>): Float64Array {
  const { x, y } = cal;
  const m = x.length;
  if (m === 0 || y.length !== m) throw new RangeError(`calibrate: a calibration needs matching, non-empty x and y`);
  const first = x[0] as number;
  const last = x[m - 1] as number;
  const out = new Float64Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i] as number;
    if (Number.isNaN(s)) {
      out[i] = NaN;
      continue;
    }
    const t = Math.min(Math.max(s, first), last);
    if (m === 1 || t >= last) {
      out[i] = y[m - 1] as number;
      continue;
    }
    // The largest j with x[j] ≤ t (t < last, so j < m − 1).
    let lo = 0;
    let hi = m - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if ((x[mid] as number) <= t) lo = mid;
      else hi = mid;
    }
    const xj = x[lo] as number;
    const yj = y[lo] as number;
    if (t === xj) {
      out[i] = yj;
      continue;
    }
    const slope = ((y[lo + 1] as number) - yj) / ((x[lo + 1] as number) - xj);
    out[i] = slope * (t - xj) + yj;
  }
  return out;
}

/**
 * In-place weighted PAVA, a line-by-line port of sklearn 1.2's `_inplace_contiguous_isotonic_regression`:
 * target[i] = j and target[j] = i mark the block [i..j]; a decreasing run is pooled in one step, then the scan
 * backtracks one block, so the pass is O(n). The pooling condition is `y[i] < y[k]` (strict), so equal
 * neighbours are merged, which is what lets the knot trimming drop them.
 */
function poolAdjacentViolators(y: Float64Array, w: Float64Array): Float64Array {
  const n = y.length;
  const target = new Int32Array(n);
  for (let i = 0; i < n; i++) target[i] = i;
  let i = 0;
  while (i < n) {
    let k = (target[i] as number) + 1;
    if (k === n) break;
    if ((y[i] as number) < (y[k] as number)) {
      i = k;
      continue;
    }
    let sumWy = (w[i] as number) * (y[i] as number);
    let sumW = w[i] as number;
    for (;;) {
      const prevY = y[k] as number;
      sumWy += (w[k] as number) * (y[k] as number);
      sumW += w[k] as number;
      k = (target[k] as number) + 1;
      if (k === n || prevY < (y[k] as number)) {
        y[i] = sumWy / sumW;
        w[i] = sumW;
        target[i] = k - 1;
        target[k - 1] = i;
        if (i > 0) i = target[i - 1] as number;
        break;
      }
    }
  }
  i = 0;
  while (i < n) {
    const k = (target[i] as number) + 1;
    y.fill(y[i] as number, i + 1, k);
    i = k;
  }
  return y;
}
