/**
 * Seeded randomness shared by the trainer's holdout split, the embedding drift tests and the test suites:
 * one explicit 32-bit generator, so a result is a pure function of its inputs and the seed, identical across
 * Node versions and replicas. Not for cryptography.
 */

/** mulberry32 by Tommy Ettinger: 32-bit state, uniform doubles in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
