// Input checks and the summation shared by the performance functions. They throw RangeError: a wrong length or
// a label that is not 0/1 is a bug in the caller (the label join or the window), not a value to report.

/** Throws unless both arrays have the same length; returns it. */
export function sameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>, aName: string, bName: string): number {
  if (a.length !== b.length) {
    throw new RangeError(`${what}: ${aName} has ${a.length} values but ${bName} has ${b.length}`);
  }
  return a.length;
}

/** Throws unless every label is 0 or 1. */
export function checkBinaryLabels(what: string, labels: ArrayLike<number>): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v !== 0 && v !== 1) throw new RangeError(`${what}: labels must be 0 or 1, labels[${i}] is ${v}`);
  }
}

/** Throws unless every value is a finite number (and inside [lo, hi] when given). */
export function checkFinite(what: string, name: string, values: ArrayLike<number>, lo = -Infinity, hi = Infinity): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v) || v < lo || v > hi) {
      const range = Number.isFinite(lo) ? ` in [${lo}, ${hi}]` : '';
      throw new RangeError(`${what}: ${name} must be finite numbers${range}, ${name}[${i}] is ${v}`);
    }
  }
}

/**
 * A running sum with Neumaier's compensation, so a mean over a large window does not depend on the order rows
 * arrived in beyond the last bit (numpy's pairwise sum, which the fixtures use, is about as accurate).
 */
export class Sum {
  private sum = 0;
  private compensation = 0;

  add(x: number): void {
    const t = this.sum + x;
    this.compensation += Math.abs(this.sum) >= Math.abs(x) ? this.sum - t + x : x - t + this.sum;
    this.sum = t;
  }

  get value(): number {
    return this.sum + this.compensation;
  }
}

/** Indices 0..n-1 ordered by `key` descending; ties keep index order (a stable sort, like numpy's mergesort). */
export function orderDescending(key: ArrayLike<number>): Uint32Array {
  const order = new Uint32Array(key.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  return order.sort((a, b) => (key[b] as number) - (key[a] as number) || a - b);
}
