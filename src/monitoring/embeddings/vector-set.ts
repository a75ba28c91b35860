/** A set of equal-length vectors stored row-major, the input shape of every embedding drift test. */
export interface VectorSet {
  /** Number of vectors. */
  rows: number;
  /** Length of each vector. */
  dim: number;
  /** `rows × dim` values, row-major: vector i is `data[i·dim … i·dim + dim)`. */
  data: Float64Array;
}

/** Throws a RangeError unless `set` is well formed, has at least `minRows` rows and only finite values. */
export function checkVectorSet(set: VectorSet, name: string, minRows: number): void {
  if (!Number.isInteger(set.rows) || !Number.isInteger(set.dim) || set.dim < 1) {
    throw new RangeError(`${name}: rows and dim must be integers and dim ≥ 1 (got rows=${set.rows}, dim=${set.dim})`);
  }
  if (set.data.length !== set.rows * set.dim) {
    throw new RangeError(`${name}: data has ${set.data.length} values, expected rows·dim = ${set.rows * set.dim}`);
  }
  if (set.rows < minRows) throw new RangeError(`${name}: needs at least ${minRows} rows, got ${set.rows}`);
  for (let i = 0; i < set.data.length; i++) {
    if (!Number.isFinite(set.data[i])) {
      throw new RangeError(`${name}: value ${i} (row ${Math.floor(i / set.dim)}) is not a finite number`);
    }
  }
}

/** Throws a RangeError unless both sets are valid and have the same dimension. */
export function checkPair(ref: VectorSet, cur: VectorSet, minRows: number): void {
  checkVectorSet(ref, 'reference', minRows);
  checkVectorSet(cur, 'current', minRows);
  if (ref.dim !== cur.dim) throw new RangeError(`reference has dim ${ref.dim} but current has dim ${cur.dim}`);
}

/** The rows of `set` at `indices` (ascending or not), as a new set. */
export function selectRows(set: VectorSet, indices: ArrayLike<number>): VectorSet {
  const { dim } = set;
  const data = new Float64Array(indices.length * dim);
  for (let r = 0; r < indices.length; r++) {
    const from = (indices[r] as number) * dim;
    data.set(set.data.subarray(from, from + dim), r * dim);
  }
  return { rows: indices.length, dim, data };
}

/** Column `c` of `set` as its own array. */
export function column(set: VectorSet, c: number): Float64Array {
  const out = new Float64Array(set.rows);
  for (let r = 0; r < set.rows; r++) out[r] = set.data[r * set.dim + c] as number;
  return out;
}

/** The mean vector of `set`. */
export function meanVector(set: VectorSet): Float64Array {
  const mean = new Float64Array(set.dim);
  for (let r = 0; r < set.rows; r++) {
    const base = r * set.dim;
    for (let c = 0; c < set.dim; c++) mean[c] = (mean[c] as number) + (set.data[base + c] as number);
  }
  for (let c = 0; c < set.dim; c++) mean[c] = (mean[c] as number) / set.rows;
  return mean;
}
