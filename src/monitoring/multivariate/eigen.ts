/**
 * Eigendecomposition of a small dense symmetric matrix by the cyclic Jacobi method (Golub & Van Loan, Matrix
 * Computations, 4th ed., §8.5): plane rotations zero one off-diagonal entry at a time until the off-diagonal mass
 * is negligible. It is slow for large n (each sweep is O(n³)) but simple, converges quadratically and gives
 * eigenvectors orthogonal to machine precision — the right trade for covariance matrices of ≤ a few hundred features.
 */

/** Eigenvalues in descending order and the matching unit eigenvectors. */
export interface SymmetricEigen {
  values: Float64Array;
  /** n × n row-major; column j (entries vectors[i·n + j]) is the eigenvector of values[j]. */
  vectors: Float64Array;
}

/**
 * Eigenvalues and eigenvectors of the symmetric n × n matrix `a` (row-major; only symmetry is assumed, the upper
 * and lower triangles must agree). Each eigenvector's sign is fixed so its largest-magnitude entry is positive,
 * which makes the output deterministic (eigenvectors are otherwise defined only up to sign).
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`expected ${n * n} entries for a ${n}×${n} matrix, got ${a.length}`);
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += (m[i] as number) ** 2;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (m[p * n + q] as number) ** 2;
    if (off <= 1e-32 * scale) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q] as number;
        if (apq === 0) continue;
        const app = m[p * n + p] as number;
        const aqq = m[q * n + q] as number;
        // Rotation angle that zeroes a_pq: t = tan φ is the smaller root of t² + 2θt − 1 = 0.
        const theta = (aqq - app) / (2 * apq);
        const t = Number.isFinite(theta * theta)
          ? (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
          : 1 / (2 * theta);
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p] as number;
          const akq = m[k * n + q] as number;
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k] as number;
          const aqk = m[q * n + k] as number;
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
        m[p * n + q] = 0;
        m[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number;
          const vkq = v[k * n + q] as number;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => (m[j * n + j] as number) - (m[i * n + i] as number));
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => {
    values[to] = m[from * n + from] as number;
    let big = 0;
    for (let k = 0; k < n; k++) {
      if (Math.abs(v[k * n + from] as number) > Math.abs(v[big * n + from] as number)) big = k;
    }
    const sign = (v[big * n + from] as number) < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[k * n + to] = sign * (v[k * n + from] as number);
  });
  return { values, vectors };
}
