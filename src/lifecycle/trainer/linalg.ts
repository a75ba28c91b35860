/** Per-column statistics of a row-major [n, k] matrix. */
export interface ColumnStats {
  mean: Float64Array;
  /** Population standard deviation (ddof = 0). */
  std: Float64Array;
  min: Float64Array;
  max: Float64Array;
}

/** Mean, std, min and max of each column. */
export function columnStats(x: Float64Array, n: number, k: number): ColumnStats {
  const mean = new Float64Array(k);
  const std = new Float64Array(k);
  const min = new Float64Array(k).fill(Infinity);
  const max = new Float64Array(k).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const v = x[i * k + j] as number;
      mean[j] = (mean[j] as number) + v;
      if (v < (min[j] as number)) min[j] = v;
      if (v > (max[j] as number)) max[j] = v;
    }
  }
  for (let j = 0; j < k; j++) mean[j] = (mean[j] as number) / n;
  // Two passes: subtracting the mean first avoids the cancellation of E[x²] − E[x]².
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) std[j] = (std[j] as number) + ((x[i * k + j] as number) - (mean[j] as number)) ** 2;
  }
  for (let j = 0; j < k; j++) std[j] = Math.sqrt((std[j] as number) / n);
  return { mean, std, min, max };
}

/** (x − mean) / scale, column by column. */
export function standardize(x: Float64Array, n: number, k: number, mean: Float64Array, scale: Float64Array): Float64Array {
  const z = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) z[i * k + j] = ((x[i * k + j] as number) - (mean[j] as number)) / (scale[j] as number);
  }
  return z;
}

/** Solves A·x = b for a symmetric positive definite row-major [m, m] matrix A by Cholesky (A = L·Lᵀ). */
export function choleskySolve(a: Float64Array, b: Float64Array, m: number): Float64Array {
  const l = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * m + j] as number;
      for (let p = 0; p < j; p++) sum -= (l[i * m + p] as number) * (l[j * m + p] as number);
      if (i === j) {
        if (!(sum > 0)) throw new Error('matrix is not positive definite');
        l[i * m + i] = Math.sqrt(sum);
      } else {
        l[i * m + j] = sum / (l[j * m + j] as number);
      }
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < i; p++) x[i] = (x[i] as number) - (l[i * m + p] as number) * (x[p] as number);
    x[i] = (x[i] as number) / (l[i * m + i] as number);
  }
  for (let i = m - 1; i >= 0; i--) {
    for (let p = i + 1; p < m; p++) x[i] = (x[i] as number) - (l[p * m + i] as number) * (x[p] as number);
    x[i] = (x[i] as number) / (l[i * m + i] as number);
  }
  return x;
}
