// Seeded synthetic embeddings for the property tests (not a test file itself).
import { mulberry32 } from '../../../src/monitoring/embeddings/random.ts';
import type { VectorSet } from '../../../src/monitoring/embeddings/index.ts';

/** Standard normal draws by Box–Muller from a seeded mulberry32 stream. */
export function normals(seed: number): () => number {
  const random = mulberry32(seed);
  return () => {
    const u = 1 - random(); // (0, 1], keeps log finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}

/** `rows` vectors of i.i.d. N(shift[c], 1) entries (shift defaults to 0 in every dimension). */
export function gaussianSet(rows: number, dim: number, seed: number, shift: (c: number) => number = () => 0): VectorSet {
  const z = normals(seed);
  const data = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) for (let c = 0; c < dim; c++) data[r * dim + c] = z() + shift(c);
  return { rows, dim, data };
}

/** A VectorSet from the fixture's JSON shape. */
export function fromJson(set: { rows: number; dim: number; data: number[] }): VectorSet {
  return { rows: set.rows, dim: set.dim, data: Float64Array.from(set.data) };
}

/** |actual − expected| ≤ rel·|expected|. */
export function relativeError(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}
