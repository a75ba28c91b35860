/**
 * Distance between the mean vectors of the two sets: Evidently's "distance" embeddings drift method (its default
 * is euclidean with a 0.2 threshold). Cheap and readable, but a shift that keeps the mean (a change in spread or
 * shape) is invisible to it.
 */
import { checkPair, meanVector, type VectorSet } from './vector-set.ts';

/** Cosine distance and euclidean distance between the reference and current mean vectors. */
export interface MeanDistanceResult {
  /** 1 − cos∠(mean_ref, mean_cur), in [0, 2]; NaN when either mean is the zero vector. */
  cosine: number;
  /** ‖mean_ref − mean_cur‖₂. */
  euclidean: number;
}

/** Distances between the mean vectors, as scipy.spatial.distance.cosine and .euclidean define them. */
export function meanVectorDistance(ref: VectorSet, cur: VectorSet): MeanDistanceResult {
  checkPair(ref, cur, 1);
  const a = meanVector(ref);
  const b = meanVector(cur);
  let dot = 0;
  let aa = 0;
  let bb = 0;
  let diff = 0;
  for (let c = 0; c < ref.dim; c++) {
    const u = a[c] as number;
    const v = b[c] as number;
    dot += u * v;
    aa += u * u;
    bb += v * v;
    diff += (u - v) ** 2;
  }
  const norms = Math.sqrt(aa) * Math.sqrt(bb);
  // Clipped to [0, 2] against rounding, as scipy.spatial.distance.cosine does.
  const cosine = norms > 0 ? Math.min(2, Math.max(0, 1 - dot / norms)) : Number.NaN;
  return { cosine, euclidean: Math.sqrt(diff) };
}
