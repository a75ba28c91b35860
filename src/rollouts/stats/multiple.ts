// Adjusted p-values for a family of tests (several metrics of one canary, several arms of one A/B),
// as statsmodels.stats.multitest.multipletests(p, method='holm' | 'fdr_bh') returns them.

function sortedOrder(fn: string, pValues: readonly number[]): number[] {
  pValues.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${fn}: pValues[${i}] must be in [0, 1], got ${p}`);
  });
  // Ties may come out in either order; the adjusted values of tied p-values are equal either way.
  return pValues.map((_, i) => i).sort((i, j) => pValues[i]! - pValues[j]!);
}

/**
 * Holm's step-down adjustment (Holm 1979, "A simple sequentially rejective multiple test procedure",
 * Scand. J. Statist. 6): with p₍₁₎ ≤ … ≤ p₍ₘ₎, p̃₍ᵢ₎ = maxⱼ≤ᵢ min(1, (m − j + 1)·p₍ⱼ₎). Controls the
 * family-wise error rate under any dependence. Same order as the input.
 */
export function holm(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = sortedOrder('holm', pValues);
  const out = new Array<number>(m);
  let running = 0;
  order.forEach((idx, rank) => {
    running = Math.max(running, (m - rank) * pValues[idx]!);
    out[idx] = Math.min(1, running);
  });
  return out;
}

/**
 * Benjamini–Hochberg step-up adjustment (Benjamini & Hochberg 1995, "Controlling the false discovery
 * rate", JRSS B 57): p̃₍ᵢ₎ = minⱼ≥ᵢ min(1, m·p₍ⱼ₎/j). Controls the false discovery rate for independent
 * or positively dependent (PRDS) tests. Same order as the input.
 */
export function benjaminiHochberg(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = sortedOrder('benjaminiHochberg', pValues);
  const out = new Array<number>(m);
  let running = Infinity;
  for (let rank = m - 1; rank >= 0; rank--) {
    const idx = order[rank]!;
    running = Math.min(running, pValues[idx]! / ((rank + 1) / m)); // statsmodels: p / ecdffactor
    out[idx] = Math.min(1, running);
  }
  return out;
}
