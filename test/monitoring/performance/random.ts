// Seeded random numbers for the synthetic tests: mulberry32 (Tommy Ettinger) for uniforms, Box–Muller for normals.
// Explicit seeds keep every test deterministic across Node versions.

/** Uniform doubles in [0, 1) from a 32-bit seed. */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws driven by `random`. */
export function normal(random: () => number): () => number {
  return () => {
    const u = 1 - random(); // (0, 1], so the log is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}
