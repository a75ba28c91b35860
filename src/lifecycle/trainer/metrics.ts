/** Mean absolute error, root mean squared error and R² (against the mean of the evaluated rows). */
export function regressionMetrics(actual: Float64Array, predicted: Float32Array): Record<string, number> {
  const n = actual.length;
  let mean = 0;
  for (const v of actual) mean += v;
  mean /= n;
  let absolute = 0;
  let squared = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const a = actual[i] as number;
    const error = a - (predicted[i] as number);
    absolute += Math.abs(error);
    squared += error * error;
    total += (a - mean) ** 2;
  }
  return { mae: absolute / n, rmse: Math.sqrt(squared / n), r2: 1 - squared / total };
}

// Same clipping as scikit-learn's log_loss before 1.5, so a confident float32 probability of exactly 0 or 1 stays finite.
const LOG_LOSS_EPS = 1e-15;

/**
 * Accuracy at p ≥ 0.5, log loss, ROC AUC and Brier score for labels in {0, 1}.
 * ROC AUC is omitted when the evaluated rows hold a single class, where it is undefined.
 */
export function classificationMetrics(labels: Float64Array, probability: Float32Array): Record<string, number> {
  const n = labels.length;
  let correct = 0;
  let logLoss = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    const p = probability[i] as number;
    if ((p >= 0.5 ? 1 : 0) === y) correct++;
    const clipped = Math.min(Math.max(p, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS);
    logLoss -= y * Math.log(clipped) + (1 - y) * Math.log(1 - clipped);
    brier += (p - y) ** 2;
  }
  const metrics: Record<string, number> = { accuracy: correct / n, log_loss: logLoss / n, brier: brier / n };
  const auc = rocAuc(labels, probability);
  if (auc !== undefined) metrics.roc_auc = auc;
  return metrics;
}

/** ROC AUC as the Mann–Whitney U statistic over average ranks, so tied scores count one half. */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number | undefined {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positiveRankSum = 0;
  let positives = 0;
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && scores[order[end + 1] as number] === scores[order[start] as number]) end++;
    const averageRank = (start + end) / 2 + 1;
    for (let r = start; r <= end; r++) {
      if (labels[order[r] as number] === 1) {
        positiveRankSum += averageRank;
        positives++;
      }
    }
    start = end + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return undefined;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
