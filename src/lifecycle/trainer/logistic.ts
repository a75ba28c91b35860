import { choleskySolve } from './linalg.ts';
import type { StandardizedFit } from './linear.ts';

/** A logistic fit plus how Newton's method got there. */
export interface LogisticFit extends StandardizedFit {
  iterations: number;
  converged: boolean;
}

const MAX_ITERATIONS = 100;
const TOLERANCE = 1e-10;

/**
 * L2-penalized logistic regression on standardized features z [n, k] with labels in {0, 1}:
 * minimize (1/n)·Σ [log(1 + e^η) − y·η] + (l2/2)·‖w‖², η = b + z·w, intercept unpenalized.
 * Newton's method (IRLS) from the intercept-only model; it stops when no coefficient moves by more than 1e-10.
 * Steps are halved when they would raise the loss, which only happens far from the optimum of nearly separable data.
 */
export function fitLogistic(
  z: Float64Array,
  labels: Float64Array,
  n: number,
  k: number,
  l2: number,
  onIteration: (iteration: number, loss: number) => void = () => {},
): LogisticFit {
  const m = k + 1; // θ = [b, w1..wk]
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] as number;
  const theta = new Float64Array(m);
  theta[0] = Math.log(positives / (n - positives));

  const eta = (t: Float64Array, i: number): number => {
    let s = t[0] as number;
    for (let j = 0; j < k; j++) s += (t[j + 1] as number) * (z[i * k + j] as number);
    return s;
  };
  const loss = (t: Float64Array): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = eta(t, i);
      sum += softplus(e) - (labels[i] as number) * e;
    }
    let penalty = 0;
    for (let j = 1; j < m; j++) penalty += (t[j] as number) ** 2;
    return sum / n + (l2 / 2) * penalty;
  };

  let current = loss(theta);
  for (let iteration = 1; iteration <= MAX_ITERATIONS; iteration++) {
    const gradient = new Float64Array(m);
    const hessian = new Float64Array(m * m);
    const row = new Float64Array(m);
    row[0] = 1;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) row[j + 1] = z[i * k + j] as number;
      const p = sigmoid(eta(theta, i));
      const residual = p - (labels[i] as number);
      const weight = p * (1 - p);
      for (let a = 0; a < m; a++) {
        const ra = row[a] as number;
        gradient[a] = (gradient[a] as number) + ra * residual;
        for (let b = 0; b <= a; b++) hessian[a * m + b] = (hessian[a * m + b] as number) + weight * ra * (row[b] as number);
      }
    }
    for (let a = 0; a < m; a++) {
      gradient[a] = (gradient[a] as number) / n + (a > 0 ? l2 * (theta[a] as number) : 0);
      for (let b = 0; b <= a; b++) {
        const v = (hessian[a * m + b] as number) / n + (a === b && a > 0 ? l2 : 0);
        hessian[a * m + b] = v;
        hessian[b * m + a] = v;
      }
    }

    const step = choleskySolve(hessian, gradient, m);
    let scale = 1;
    let next = theta.map((t, j) => t - (step[j] as number));
    let nextLoss = loss(next);
    // The slack keeps rounding noise near the optimum from being mistaken for an uphill step.
    while (nextLoss > current + 1e-12 * Math.abs(current) && scale > 1e-6) {
      scale /= 2;
      next = theta.map((t, j) => t - scale * (step[j] as number));
      nextLoss = loss(next);
    }
    const moved = Math.max(...step.map((s) => Math.abs(s * scale)));
    theta.set(next);
    current = nextLoss;
    onIteration(iteration, current);
    if (moved < TOLERANCE) return { bias: theta[0] as number, weights: theta.slice(1), iterations: iteration, converged: true };
  }
  return { bias: theta[0] as number, weights: theta.slice(1), iterations: MAX_ITERATIONS, converged: false };
}

/** log(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}
