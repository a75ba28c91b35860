import { checkBinaryLabels, checkFinite, orderDescending, sameLength, Sum } from './inputs.ts';

/** Counts of a binary confusion matrix (expected counts, so not integers, when CBPE estimates them). */
export interface ConfusionCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Metrics of a binary classifier on labelled rows; NaN where scikit-learn raises (see classificationMetrics). */
export interface ClassificationMetrics {
  n: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  rocAuc: number;
  /** Average precision, the step-wise area under the precision-recall curve. */
  prAuc: number;
  logLoss: number;
  brier: number;
  /** Expected calibration error on 10 equal-width bins. */
  ece: number;
  confusion: ConfusionCounts;
  /** Share of rows whose label is 1. */
  positiveRate: number;
  /** Share of rows predicted 1 (score ≥ threshold). */
  predictedPositiveRate: number;
}

/** sklearn 1.2 `log_loss(eps="auto")` clips float64 probabilities to [ε, 1 − ε] with ε = np.finfo(float64).eps. */
const LOG_LOSS_EPS = 2 ** -52;

/**
 * Upper edges of the 10 uniform calibration bins as np.linspace(0, 1, 11) computes them (i · 0.1, so the third is
 * 0.30000000000000004); a score goes to the first bin whose upper edge it does not exceed, as
 * np.searchsorted(bins[1:-1], score) in sklearn.calibration.calibration_curve does.
 */
const ECE_INNER_EDGES = Array.from({ length: 9 }, (_, i) => (i + 1) * 0.1);

/**
 * Binary classification metrics, each equal (to rounding) to its scikit-learn 1.2 counterpart: accuracy_score,
 * precision_score, recall_score and f1_score on `score ≥ threshold` (an undefined ratio is 0, sklearn's default
 * zero_division), roc_auc_score, average_precision_score, log_loss, brier_score_loss and confusion_matrix.
 * ROC AUC and log loss are NaN when only one class is present (sklearn raises); average precision is 0 with no
 * positive label (sklearn 1.2 warns and returns 0). ECE is Σ_b (n_b / n)·|mean(label)_b − mean(score)_b| over
 * calibration_curve(n_bins=10, strategy="uniform")'s bins (Naeini, Cooper & Hauskrecht, AAAI 2015).
 * Empty input gives NaN everywhere. Labels must be 0/1 and scores in [0, 1].
 */
export function classificationMetrics(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  threshold = 0.5,
): ClassificationMetrics {
  const what = 'classificationMetrics';
  const n = sameLength(what, labels, scores, 'labels', 'scores');
  checkBinaryLabels(what, labels);
  checkFinite(what, 'scores', scores, 0, 1);
  if (!Number.isFinite(threshold)) throw new RangeError(`${what}: threshold must be finite, got ${threshold}`);
  if (n === 0) return emptyClassification();

  const confusion: ConfusionCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const logLoss = new Sum();
  const brier = new Sum();
  const binCount = new Float64Array(10);
  const binLabels = new Float64Array(10);
  const binScores = new Float64Array(10);
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    const s = scores[i] as number;
    if (s >= threshold) {
      if (y === 1) confusion.tp++;
      else confusion.fp++;
    } else if (y === 1) confusion.fn++;
    else confusion.tn++;

    // sklearn clips, builds the two columns [1 − p, p] and renormalizes each row before taking −log.
    const p = Math.min(Math.max(s, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    const q = 1 - p;
    logLoss.add(-Math.log((y === 1 ? p : q) / (q + p)));
    brier.add((y - s) ** 2);

    let bin = 0;
    while (bin < 9 && (ECE_INNER_EDGES[bin] as number) < s) bin++;
    binCount[bin] = (binCount[bin] as number) + 1;
    binLabels[bin] = (binLabels[bin] as number) + y;
    binScores[bin] = (binScores[bin] as number) + s;
  }

  const { tp, fp, tn, fn } = confusion;
  const positives = tp + fn;
  const negatives = fp + tn;
  const precision = ratioOrZero(tp, tp + fp);
  const recall = ratioOrZero(tp, positives);
  let ece = 0;
  for (let b = 0; b < 10; b++) {
    const count = binCount[b] as number;
    if (count > 0) ece += (count / n) * Math.abs((binLabels[b] as number) / count - (binScores[b] as number) / count);
  }
  const ranking = rankingAreas(labels, scores, positives, negatives);
  const bothClasses = positives > 0 && negatives > 0;

  return {
    n,
    accuracy: (tp + tn) / n,
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    rocAuc: ranking.rocAuc,
    prAuc: ranking.averagePrecision,
    logLoss: bothClasses ? logLoss.value / n : NaN,
    brier: brier.value / n,
    ece,
    confusion,
    positiveRate: positives / n,
    predictedPositiveRate: (tp + fp) / n,
  };
}

function emptyClassification(): ClassificationMetrics {
  const nan = Number.NaN;
  return {
    n: 0,
    accuracy: nan,
    precision: nan,
    recall: nan,
    f1: nan,
    rocAuc: nan,
    prAuc: nan,
    logLoss: nan,
    brier: nan,
    ece: nan,
    confusion: { tp: 0, fp: 0, tn: 0, fn: 0 },
    positiveRate: nan,
    predictedPositiveRate: nan,
  };
}

/** sklearn's `_prf_divide` with zero_division="warn": a 0/0 precision or recall counts as 0. */
function ratioOrZero(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

/**
 * ROC AUC and average precision from one pass over the rows by descending score, one curve point per distinct
 * score as sklearn's `_binary_clf_curve` does (tied scores move TP and FP together, a diagonal segment). The
 * trapezoid sum is kept in integers, twice the area times P·N, so the only rounding is the final division.
 */
function rankingAreas(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  positives: number,
  negatives: number,
): { rocAuc: number; averagePrecision: number } {
  const order = orderDescending(scores);
  let tp = 0;
  let fp = 0;
  let prevTp = 0;
  let prevFp = 0;
  let twiceArea = 0;
  const averagePrecision = new Sum();
  for (let r = 0; r < order.length; r++) {
    const i = order[r] as number;
    if (labels[i] === 1) tp++;
    else fp++;
    const next = order[r + 1];
    if (next !== undefined && scores[next] === scores[i]) continue;
    twiceArea += (fp - prevFp) * (tp + prevTp);
    // AP = Σ (R_k − R_{k−1}) · P_k (sklearn's _binary_uninterpolated_average_precision).
    if (tp > prevTp && positives > 0) averagePrecision.add(((tp - prevTp) / positives) * (tp / (tp + fp)));
    prevTp = tp;
    prevFp = fp;
  }
  return {
    rocAuc: positives > 0 && negatives > 0 ? twiceArea / (2 * positives * negatives) : NaN,
    averagePrecision: averagePrecision.value,
  };
}
