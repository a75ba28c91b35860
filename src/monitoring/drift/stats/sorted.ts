// Sorting helpers for the sample statistics: every test sorts each sample once (a typed-array sort,
// numeric, NaN last) and then walks the sorted arrays in a single merge pass.

/** A sorted copy of a sample; the input is left untouched. */
export function sortedCopy(x: Float64Array): Float64Array {
  return x.slice().sort();
}

/** True when a sorted sample holds a NaN (they sort to the end). */
export function hasNaN(sorted: Float64Array): boolean {
  return sorted.length > 0 && Number.isNaN(sorted[sorted.length - 1]!);
}

/** Throws when a sample is empty, naming the function, like SciPy's ValueError. */
export function requireNonEmpty(fn: string, ...samples: Float64Array[]): void {
  for (const s of samples) if (s.length === 0) throw new RangeError(`${fn}: samples must not be empty`);
}
