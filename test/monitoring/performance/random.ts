// Seeded random numbers for the synthetic tests: mulberry32 (Tommy Ettinger) for uniforms, Box–Muller for normals.
// Explicit seeds keep every test deterministic across Node versions.
export { mulberry32 as uniform } from '../../../src/random.ts';

/** Standard normal draws driven by `random`. */
export function normal(random: () => number): () => number {
  return () => {
    const u = 1 - random(); // (0, 1], so the log is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}
