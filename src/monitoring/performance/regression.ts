import { checkFinite, sameLength, Sum } from './inputs.ts';

/** Metrics of a regression model on labelled rows. */
export interface RegressionMetrics {
  n: number;
  mae: number;
  rmse: number;
  /** Mean absolute percentage error as a fraction (0.1 = 10 %), not a percentage. */
  mape: number;
  r2: number;
  /** mean(prediction − label): positive when the model over-predicts. */
  bias: number;
}

/** np.finfo(np.float64).eps: sklearn's floor on |label| in the MAPE denominator. */
const MAPE_EPS = 2 ** -52;

/**
 * Regression metrics equal (to rounding) to scikit-learn 1.2's mean_absolute_error,
 * mean_squared_error(squared=False), mean_absolute_percentage_error and r2_score. MAPE divides by
 * max(|label|, ε) with ε = 2.2e-16, so a zero label gives a huge but finite term, as in sklearn. R² follows
 * force_finite=True: 1 for perfect predictions, 0 when labels are constant but predictions are not, and NaN
 * with fewer than two rows (sklearn warns and returns NaN). Empty input gives NaN everywhere.
 */
export function regressionMetrics(labels: ArrayLike<number>, predictions: ArrayLike<number>): RegressionMetrics {
  const what = 'regressionMetrics';
  const n = sameLength(what, labels, predictions, 'labels', 'predictions');
  checkFinite(what, 'labels', labels);
  checkFinite(what, 'predictions', predictions);
  if (n === 0) return { n: 0, mae: NaN, rmse: NaN, mape: NaN, r2: NaN, bias: NaN };

  const absolute = new Sum();
  const squared = new Sum();
  const percentage = new Sum();
  const error = new Sum();
  const labelSum = new Sum();
  for (let i = 0; i < n; i++) {
    const y = labels[i] as number;
    const e = (predictions[i] as number) - y;
    absolute.add(Math.abs(e));
    squared.add(e * e);
    percentage.add(Math.abs(e) / Math.max(Math.abs(y), MAPE_EPS));
    error.add(e);
    labelSum.add(y);
  }
  const mean = labelSum.value / n;
  const spread = new Sum();
  for (let i = 0; i < n; i++) spread.add(((labels[i] as number) - mean) ** 2);

  return {
    n,
    mae: absolute.value / n,
    rmse: Math.sqrt(squared.value / n),
    mape: percentage.value / n,
    r2: n < 2 ? NaN : rSquared(squared.value, spread.value),
    bias: error.value / n,
  };
}

/** sklearn's `_assemble_r2_explained_variance` with force_finite=True. */
function rSquared(residual: number, total: number): number {
  if (residual === 0) return 1;
  if (total === 0) return 0;
  return 1 - residual / total;
}
