/** How many recent picks per model the diversity check compares a candidate with. */
export const RECENT_PICKS = 64;
/**
 * Near-duplicate radius, as a root-mean-square per standardized feature: a candidate closer than
 * DIVERSITY_RADIUS · √d (euclidean, d features, each divided by its running standard deviation) to a recent
 * pick is skipped. 0.1 means "differs from a recent pick by about a tenth of a standard deviation per
 * feature": the same input again, or one a rounding step away.
 */
export const DIVERSITY_RADIUS = 0.1;

/** One request's rows as the sampler sees them. */
export interface SampleRequest {
  requestId: string;
  /** P(y = 1) per row (NaN where the output is no probability). */
  p: ArrayLike<number>;
  /** Rows eligible for sampling: above the confidence threshold, with a probability. */
  candidate: ArrayLike<boolean>;
  /** Row-major n × dims numeric inputs (all numeric input tensors side by side); absent when the model has none. */
  features?: { dims: number; data: ArrayLike<number> };
}

/** What the sampler decided for one request. */
export interface SampleResult {
  /** Picked row indices, ascending. */
  rows: number[];
  /** Candidates the hash draw chose but the diversity check skipped. */
  nearDuplicates: number;
}

interface ModelState {
  dims: number;
  /** Running mean of candidates' uncertainty 1 − |2p − 1|. */
  uCount: number;
  uMean: number;
  /** Welford's running mean and sum of squared deviations per feature (Welford 1962; Knuth TAOCP 2, 4.2.2). */
  n: number;
  mean: Float64Array;
  m2: Float64Array;
  /** Ring of the raw feature vectors of the latest picks. */
  recent: Float64Array[];
  next: number;
}

/**
 * Uniform in [0, 1) from a request id and row: 32-bit FNV-1a over the UTF-16 code units of `${requestId}#${row}`,
 * then MurmurHash3's fmix32 finalizer so ids that differ in one character still spread over the whole range.
 */
export function hashUnit(requestId: string, row: number): number {
  let h = 0x811c9dc5;
  const s = `${requestId}#${row}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

/**
 * Active-learning sampler: picks a `sampleRate` share of a model's confident rows, preferring uncertain ones
 * and skipping near-duplicates of recent picks. The rule, per request in log order:
 *  1. update the model's running feature mean/std (all rows) and running mean ū of candidates' uncertainty
 *     u = 1 − |2p − 1| (1 at p = 0.5, 0 at p ∈ {0, 1}) with this request's rows;
 *  2. a candidate row r is drawn when hashUnit(requestId, r) < min(1, sampleRate · u / ū) (sampleRate when
 *     ū = 0): proportional to uncertainty, and sampleRate of the candidates on average;
 *  3. a drawn row is skipped when its euclidean distance to any of the last RECENT_PICKS picks, on features
 *     divided by their running standard deviation, is below DIVERSITY_RADIUS · √d; otherwise it is picked.
 * The draw depends only on the request id and row, so the same traffic in the same order picks the same rows.
 */
export class ActiveLearningSampler {
  private readonly models = new Map<string, ModelState>();

  /** Forgets a model's running statistics and recent picks (its policy was removed). */
  forget(model: string): void {
    this.models.delete(model);
  }

  select(model: string, sampleRate: number, req: SampleRequest): SampleResult {
    const n = req.p.length;
    const dims = req.features?.dims ?? 0;
    let st = this.models.get(model);
    if (!st || st.dims !== dims) {
      // A new version with another input width starts fresh: distances across layouts mean nothing.
      st = { dims, uCount: 0, uMean: 0, n: 0, mean: new Float64Array(dims), m2: new Float64Array(dims), recent: [], next: 0 };
      this.models.set(model, st);
    }
    const x = req.features?.data;
    const finiteRow = (r: number) => {
      for (let j = 0; j < dims; j++) if (!Number.isFinite(x![r * dims + j])) return false;
      return true;
    };
    if (x && dims > 0) {
      for (let r = 0; r < n; r++) {
        if (!finiteRow(r)) continue;
        st.n++;
        for (let j = 0; j < dims; j++) {
          const v = x[r * dims + j]!;
          const d = v - st.mean[j]!;
          st.mean[j]! += d / st.n;
          st.m2[j]! += d * (v - st.mean[j]!);
        }
      }
    }
    for (let r = 0; r < n; r++) {
      if (!req.candidate[r]) continue;
      st.uCount++;
      st.uMean += (uncertainty(req.p[r]!) - st.uMean) / st.uCount;
    }
    const out: SampleResult = { rows: [], nearDuplicates: 0 };
    if (!(sampleRate > 0)) return out;
    const sd = new Float64Array(dims);
    for (let j = 0; j < dims; j++) {
      const s = st.n > 1 ? Math.sqrt(st.m2[j]! / (st.n - 1)) : 0;
      sd[j] = s > 0 ? s : 1;
    }
    const radius2 = DIVERSITY_RADIUS * DIVERSITY_RADIUS * dims;
    for (let r = 0; r < n; r++) {
      if (!req.candidate[r]) continue;
      const weight = st.uMean > 0 ? uncertainty(req.p[r]!) / st.uMean : 1;
      if (!(hashUnit(req.requestId, r) < Math.min(1, sampleRate * weight))) continue;
      if (x && dims > 0 && finiteRow(r)) {
        const v = new Float64Array(dims);
        for (let j = 0; j < dims; j++) v[j] = x[r * dims + j]!;
        if (st.recent.some((pick) => distance2(pick, v, sd) < radius2)) {
          out.nearDuplicates++;
          continue;
        }
        if (st.recent.length < RECENT_PICKS) st.recent.push(v);
        else st.recent[st.next] = v;
        st.next = (st.next + 1) % RECENT_PICKS;
      }
      out.rows.push(r);
    }
    return out;
  }
}

function uncertainty(p: number): number {
  return 1 - Math.abs(2 * p - 1);
}

/** Squared euclidean distance of two raw vectors after dividing each feature by its standard deviation (the means cancel). */
function distance2(a: Float64Array, b: Float64Array, sd: Float64Array): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) {
    const d = (a[j]! - b[j]!) / sd[j]!;
    s += d * d;
  }
  return s;
}
