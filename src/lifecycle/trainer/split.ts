import { mulberry32 } from '../../random.ts';

export { mulberry32 } from '../../random.ts';

/** Row indices for training and for holdout metrics, each in ascending order. */
export interface Split {
  train: number[];
  holdout: number[];
}

/**
 * Shuffles 0..n-1 with Fisher–Yates driven by mulberry32(seed) and holds out the first floor(n·fraction).
 * A tiny explicit PRNG (not Math.random) keeps the split identical across Node versions and lets the
 * Python fixture script reproduce it bit for bit.
 */
export function holdoutSplit(n: number, fraction: number, seed: number): Split {
  const order = Array.from({ length: n }, (_, i) => i);
  const random = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const cut = Math.floor(n * fraction);
  const ascending = (a: number, b: number): number => a - b;
  return { holdout: order.slice(0, cut).sort(ascending), train: order.slice(cut).sort(ascending) };
}

