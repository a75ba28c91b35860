import { choleskySolve } from './linalg.ts';

/** Weights and bias in standardized coordinates: ŷ = bias + z·weights. */
export interface StandardizedFit {
  weights: Float64Array;
  bias: number;
}

/**
 * Ridge regression on standardized, training-centred features z [n, k]:
 * minimize (1/2n)·‖y − b − z·w‖² + (l2/2)·‖w‖², intercept unpenalized.
 * Because z is centred the intercept is mean(y) and w solves (zᵀz/n + l2·I)·w = zᵀ(y − ȳ)/n exactly.
 */
export function fitLinear(z: Float64Array, y: Float64Array, n: number, k: number, l2: number): StandardizedFit {
  let yMean = 0;
  for (let i = 0; i < n; i++) yMean += y[i] as number;
  yMean /= n;

  const gram = new Float64Array(k * k);
  const rhs = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const r = (y[i] as number) - yMean;
    for (let a = 0; a < k; a++) {
      const za = z[i * k + a] as number;
      rhs[a] = (rhs[a] as number) + za * r;
      for (let b = 0; b <= a; b++) gram[a * k + b] = (gram[a * k + b] as number) + za * (z[i * k + b] as number);
    }
  }
  for (let a = 0; a < k; a++) {
    rhs[a] = (rhs[a] as number) / n;
    for (let b = 0; b <= a; b++) {
      const v = (gram[a * k + b] as number) / n + (a === b ? l2 : 0);
      gram[a * k + b] = v;
      gram[b * k + a] = v;
    }
  }
  return { weights: choleskySolve(gram, rhs, k), bias: yMean };
}
