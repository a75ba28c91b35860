/**
 * ROC AUC as the Mann–Whitney statistic: AUC = U₊ / (n₊·n₋) with U₊ = R₊ − n₊(n₊+1)/2, where R₊ is the rank sum
 * of the positive scores in the pooled sample and tied scores share their mean rank (midranks). This equals the
 * area under the empirical ROC curve with ties counted as one half (Hanley & McNeil 1982), the value
 * sklearn.metrics.roc_auc_score and scipy.stats.mannwhitneyu(pos, neg).statistic / (n₊·n₋) give.
 */
export function mannWhitneyAuc(positive: ArrayLike<number>, negative: ArrayLike<number>): number {
  const np = positive.length;
  const nn = negative.length;
  if (np === 0 || nn === 0) throw new RangeError('mannWhitneyAuc needs at least one positive and one negative score');
  const n = np + nn;
  const values = new Float64Array(n);
  for (let i = 0; i < np; i++) values[i] = positive[i] as number;
  for (let i = 0; i < nn; i++) values[np + i] = negative[i] as number;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(values[i])) throw new RangeError('mannWhitneyAuc: scores must not be NaN');
  }
  const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => (values[a] as number) - (values[b] as number));
  let positiveRankSum = 0;
  for (let start = 0; start < n; ) {
    const v = values[order[start] as number] as number;
    let end = start + 1;
    while (end < n && values[order[end] as number] === v) end++;
    // Ranks start+1 … end (1-based) share their mean.
    const midrank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) if ((order[k] as number) < np) positiveRankSum += midrank;
    start = end;
  }
  return (positiveRankSum - (np * (np + 1)) / 2) / (np * nn);
}
