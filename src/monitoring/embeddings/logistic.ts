/**
 * L2-regularised logistic regression fitted by L-BFGS (Nocedal & Wright, Numerical Optimization, 2nd ed., alg. 7.4
 * and 7.5) with a backtracking Armijo line search. The objective, on already standardised features, is
 *
 *   f(w, b) = (1/n)·Σᵢ [log(1 + e^ηᵢ) − yᵢ·ηᵢ] + (l2/2)·‖w‖²,   ηᵢ = xᵢ·w + b   (the bias is not penalised),
 *
 * the same form as the built-in trainer's. L-BFGS rather than Newton/IRLS because embeddings reach ~512 dimensions:
 * a Newton step needs the d×d Hessian (n·d² work), an L-BFGS step only two passes over the data (n·d). The margin
 * η is linear along a search direction, so the line search costs O(n) per trial after one n·d product.
 */

/** A fitted linear scorer: the margin of row x is x·weights + bias. */
export interface LogisticFit {
  weights: Float64Array;
  bias: number;
  /** L-BFGS iterations taken. */
  iterations: number;
  /** True when the gradient's largest component fell below the tolerance. */
  converged: boolean;
}

/** Options for fitLogistic. */
export interface LogisticOptions {
  l2: number;
  /** Stop when max |∂f| ≤ tolerance (default 1e-6). */
  tolerance?: number;
  /** Default 500. */
  maxIterations?: number;
  /** Pairs kept by L-BFGS (default 10). */
  memory?: number;
}

/** log(1 + e^η) without overflow. */
function softplus(eta: number): number {
  return eta > 0 ? eta + Math.log1p(Math.exp(-eta)) : Math.log1p(Math.exp(eta));
}

/** 1 / (1 + e^−η) without overflow. */
function sigmoid(eta: number): number {
  if (eta >= 0) return 1 / (1 + Math.exp(-eta));
  const e = Math.exp(eta);
  return e / (1 + e);
}

/**
 * Fits the model to `n` rows of `d` standardised features `x` (row-major) with labels `y` ∈ {0, 1}.
 * Starts from zero weights, so the fit is deterministic.
 */
export function fitLogistic(x: Float64Array, y: Float64Array, n: number, d: number, opts: LogisticOptions): LogisticFit {
  const { l2 } = opts;
  const tolerance = opts.tolerance ?? 1e-6;
  const maxIterations = opts.maxIterations ?? 500;
  const memory = opts.memory ?? 10;
  const p = d + 1; // parameters: weights then bias

  const theta = new Float64Array(p);
  const eta = new Float64Array(n); // margins at theta
  const grad = new Float64Array(p);

  const lossAt = (margins: Float64Array, w: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const m = margins[i] as number;
      s += softplus(m) - (y[i] as number) * m;
    }
    let ww = 0;
    for (let j = 0; j < d; j++) ww += (w[j] as number) ** 2;
    return s / n + 0.5 * l2 * ww;
  };

  const gradientAt = (margins: Float64Array, w: Float64Array, out: Float64Array): void => {
    out.fill(0);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const r = sigmoid(margins[i] as number) - (y[i] as number);
      if (r === 0) continue;
      gb += r;
      const base = i * d;
      for (let j = 0; j < d; j++) out[j] = (out[j] as number) + r * (x[base + j] as number);
    }
    for (let j = 0; j < d; j++) out[j] = (out[j] as number) / n + l2 * (w[j] as number);
    out[d] = gb / n;
  };

  const maxAbs = (v: Float64Array): number => {
    let m = 0;
    for (let j = 0; j < v.length; j++) m = Math.max(m, Math.abs(v[j] as number));
    return m;
  };

  let f = lossAt(eta, theta);
  gradientAt(eta, theta, grad);

  const sHist: Float64Array[] = [];
  const yHist: Float64Array[] = [];
  const rhoHist: number[] = [];
  const alpha = new Float64Array(memory);
  const dir = new Float64Array(p);
  const dirMargin = new Float64Array(n);
  const trialEta = new Float64Array(n);
  const trialTheta = new Float64Array(p);
  const trialGrad = new Float64Array(p);

  let iterations = 0;
  let converged = maxAbs(grad) <= tolerance;
  while (!converged && iterations < maxIterations) {
    // Two-loop recursion: dir = −H·grad.
    for (let j = 0; j < p; j++) dir[j] = -(grad[j] as number);
    const k = sHist.length;
    for (let h = k - 1; h >= 0; h--) {
      const s = sHist[h] as Float64Array;
      const yy = yHist[h] as Float64Array;
      let a = 0;
      for (let j = 0; j < p; j++) a += (s[j] as number) * (dir[j] as number);
      a *= rhoHist[h] as number;
      alpha[h] = a;
      for (let j = 0; j < p; j++) dir[j] = (dir[j] as number) - a * (yy[j] as number);
    }
    if (k > 0) {
      const s = sHist[k - 1] as Float64Array;
      const yy = yHist[k - 1] as Float64Array;
      let sy = 0;
      let yyy = 0;
      for (let j = 0; j < p; j++) {
        sy += (s[j] as number) * (yy[j] as number);
        yyy += (yy[j] as number) ** 2;
      }
      const gamma = sy / yyy;
      for (let j = 0; j < p; j++) dir[j] = (dir[j] as number) * gamma;
    }
    for (let h = 0; h < k; h++) {
      const s = sHist[h] as Float64Array;
      const yy = yHist[h] as Float64Array;
      let b = 0;
      for (let j = 0; j < p; j++) b += (yy[j] as number) * (dir[j] as number);
      b *= rhoHist[h] as number;
      const a = alpha[h] as number;
      for (let j = 0; j < p; j++) dir[j] = (dir[j] as number) + (a - b) * (s[j] as number);
    }

    let slope = 0;
    for (let j = 0; j < p; j++) slope += (grad[j] as number) * (dir[j] as number);
    if (!(slope < 0)) {
      // Not a descent direction (rounding after many steps): restart from steepest descent.
      sHist.length = 0;
      yHist.length = 0;
      rhoHist.length = 0;
      for (let j = 0; j < p; j++) dir[j] = -(grad[j] as number);
      slope = 0;
      for (let j = 0; j < p; j++) slope -= (grad[j] as number) ** 2;
    }

    // Margins move linearly along dir: η(t) = η + t·(X·dir_w + dir_b).
    for (let i = 0; i < n; i++) {
      const base = i * d;
      let m = dir[d] as number;
      for (let j = 0; j < d; j++) m += (x[base + j] as number) * (dir[j] as number);
      dirMargin[i] = m;
    }
    // First step: scale steepest descent to unit length; afterwards L-BFGS's scaling makes t = 1 the natural try.
    let t = k === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    let fTrial = Number.POSITIVE_INFINITY;
    for (let tries = 0; tries < 60; tries++) {
      for (let j = 0; j < p; j++) trialTheta[j] = (theta[j] as number) + t * (dir[j] as number);
      for (let i = 0; i < n; i++) trialEta[i] = (eta[i] as number) + t * (dirMargin[i] as number);
      fTrial = lossAt(trialEta, trialTheta);
      if (fTrial <= f + 1e-4 * t * slope) break;
      t *= 0.5;
    }
    if (!(fTrial <= f + 1e-4 * t * slope)) break; // no decrease possible at machine precision
    gradientAt(trialEta, trialTheta, trialGrad);

    const s = new Float64Array(p);
    const yy = new Float64Array(p);
    let sy = 0;
    for (let j = 0; j < p; j++) {
      s[j] = (trialTheta[j] as number) - (theta[j] as number);
      yy[j] = (trialGrad[j] as number) - (grad[j] as number);
      sy += (s[j] as number) * (yy[j] as number);
    }
    theta.set(trialTheta);
    eta.set(trialEta);
    grad.set(trialGrad);
    const fPrev = f;
    f = fTrial;
    iterations++;
    if (sy > 1e-12) {
      if (sHist.length === memory) {
        sHist.shift();
        yHist.shift();
        rhoHist.shift();
      }
      sHist.push(s);
      yHist.push(yy);
      rhoHist.push(1 / sy);
    }
    converged = maxAbs(grad) <= tolerance;
    if (!converged && fPrev - f <= 1e-15 * Math.max(1, Math.abs(f))) break; // stalled at machine precision
  }

  return { weights: theta.slice(0, d), bias: theta[d] as number, iterations, converged };
}
