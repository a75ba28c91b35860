import type { ConfusionCounts } from './classification.ts';
import { checkFinite, orderDescending, sameLength, Sum } from './inputs.ts';

/** Performance of a binary classifier estimated without labels; `confusion` holds expected counts. */
export interface CbpeEstimate {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  rocAuc: number;
  confusion: ConfusionCounts;
}

/**
 * Confidence-based Performance Estimation (NannyML docs, "Confidence-based Performance Estimation"): if the
 * calibrated score p is P(label = 1 | x), a row predicted positive (raw score ≥ threshold, the model's own
 * decision) is a true positive with probability p and a false positive with 1 − p; a row predicted negative is a
 * false negative with p and a true negative with 1 − p. Summing gives the expected confusion matrix, and
 * accuracy = (TP + TN)/n, precision = TP/(TP + FP), recall = TP/(TP + FN), F1 = TP/(TP + ½(FP + FN)), as
 * NannyML's estimate_* functions compute them (0/0 is NaN there and here).
 *
 * ROC AUC: rows ranked by raw score, one threshold per distinct raw score; expected TP(t) = Σ p and
 * FP(t) = Σ (1 − p) over rows with raw ≥ t; TPR = TP(t)/Σp, FPR = FP(t)/Σ(1 − p); trapezoidal area under
 * (FPR, TPR) from (0, 0). This is NannyML's estimate_roc_auc except that tied raw scores form one point (as
 * sklearn's roc_curve does; NannyML orders ties arbitrarily) and cumulative sums are not rounded to 5 decimals.
 * NaN when Σp or Σ(1 − p) is 0. All of it assumes the calibration fitted on the reference still holds:
 * P(label | x) has not changed (no concept drift) and the calibration was fitted on representative labelled data.
 */
export function cbpeEstimate(
  rawScores: ArrayLike<number>,
  calibratedScores: ArrayLike<number>,
  threshold = 0.5,
): CbpeEstimate {
  const what = 'cbpeEstimate';
  const n = sameLength(what, rawScores, calibratedScores, 'rawScores', 'calibratedScores');
  checkFinite(what, 'rawScores', rawScores);
  checkFinite(what, 'calibratedScores', calibratedScores, 0, 1);
  if (!Number.isFinite(threshold)) throw new RangeError(`${what}: threshold must be finite, got ${threshold}`);

  const tp = new Sum();
  const fp = new Sum();
  const tn = new Sum();
  const fn = new Sum();
  for (let i = 0; i < n; i++) {
    const p = calibratedScores[i] as number;
    if ((rawScores[i] as number) >= threshold) {
      tp.add(p);
      fp.add(1 - p);
    } else {
      fn.add(p);
      tn.add(1 - p);
    }
  }
  const confusion: ConfusionCounts = { tp: tp.value, fp: fp.value, tn: tn.value, fn: fn.value };
  const c = confusion;
  return {
    accuracy: (c.tp + c.tn) / n,
    precision: c.tp / (c.tp + c.fp),
    recall: c.tp / (c.tp + c.fn),
    f1: c.tp / (c.tp + 0.5 * (c.fp + c.fn)),
    rocAuc: expectedRocAuc(rawScores, calibratedScores),
    confusion,
  };
}

/** The expected ROC curve's area; see cbpeEstimate. */
function expectedRocAuc(raw: ArrayLike<number>, p: ArrayLike<number>): number {
  const order = orderDescending(raw);
  let tp = 0;
  let fp = 0;
  const points: number[] = [0, 0];
  for (let r = 0; r < order.length; r++) {
    const i = order[r] as number;
    const q = p[i] as number;
    tp += q;
    fp += 1 - q;
    const next = order[r + 1];
    if (next === undefined || raw[next] !== raw[i]) points.push(fp, tp);
  }
  if (!(tp > 0 && fp > 0)) return NaN;
  const area = new Sum();
  for (let j = 2; j < points.length; j += 2) {
    const dx = ((points[j] as number) - (points[j - 2] as number)) / fp;
    area.add((dx * ((points[j + 1] as number) / tp + (points[j - 1] as number) / tp)) / 2);
  }
  return area.value;
}
