import { mulberry32 } from '../random.ts';
import type { Explanation } from './tree-shap.ts';

/** Coalitions evaluated per explained row by default, and at most; each costs one model row per background row. */
export const DEFAULT_KERNEL_BUDGET = 2048;
export const MAX_KERNEL_BUDGET = 16384;
/** Milliseconds one onnxruntime run should take: it runs on the event loop's thread, so it bounds what it holds. */
const TARGET_RUN_MS = 5;
const MIN_BATCH_ROWS = 64;
const MAX_BATCH_ROWS = 65536;

/** The model as KernelSHAP calls it: `rows` rows of float32 values, row-major, to one output value per row. */
export type BatchModel = (data: Float32Array, rows: number) => Promise<ArrayLike<number>>;

export interface KernelOptions {
  /** Coalitions evaluated at most, besides the empty and the full one (default {@link DEFAULT_KERNEL_BUDGET}). */
  budget?: number;
  /** Seed of the coalition sampler (sampled mode); default a hash of the row, so a row always gets the same answer. */
  seed?: number;
  /** Rows of the first run of coalitions; later runs are sized so that each takes about 5 ms. */
  batchRows?: number;
}

export interface KernelExplanation extends Explanation {
  /** True when every coalition was evaluated: the values are then the exact Shapley values of v. */
  exact: boolean;
  /** Coalitions evaluated besides the empty and the full one (distinct ones, in sampled mode). */
  coalitions: number;
  /** Rows run through the model: the row itself, the background, and each coalition once per background row. */
  modelRows: number;
  /** Model runs (batches) those rows took. */
  runs: number;
  /** Rows the next run would have taken: a good `batchRows` for the next row of the same model. */
  batchRows: number;
}

/**
 * Model-agnostic Kernel SHAP (Lundberg & Lee 2017) of the interventional value function v(S) = mean over background
 * rows z of f(x_S, z_rest), the one TreeSHAP explains. Features equal on the row and on every background row get 0
 * and are left out (they change no v). With M features left:
 * - when all 2^M − 2 coalitions besides the empty and the full one fit in the budget, every one is evaluated and φ
 *   is computed with the Shapley formula: the exact Shapley values of v;
 * - otherwise coalitions are chosen as SHAP's KernelExplainer chooses them: coalition sizes whose subsets all fit
 *   in what is left of the budget are enumerated whole, smallest (and their complements) first, then the rest is
 *   sampled in complementary pairs with sizes drawn by the Shapley kernel's weight; φ solves the kernel-weighted
 *   least squares fit of v, constrained so that Σφ = f(x) − v(∅) exactly (one feature eliminated).
 * The hybrid rows are run through `f` in batches, yielding to the event loop between them.
 */
export async function kernelShap(f: BatchModel, x: Float32Array, background: readonly Float32Array[], opts: KernelOptions = {}): Promise<KernelExplanation> {
  const n = background.length;
  if (n === 0) throw new Error('kernelShap needs at least one background row');
  const budget = opts.budget ?? DEFAULT_KERNEL_BUDGET;
  const k = x.length;
  const varying: number[] = [];
  for (let j = 0; j < k; j++) if (background.some((z) => z[j] !== x[j])) varying.push(j);
  const m = varying.length;
  const exact = m < 31 && 2 ** m - 2 <= budget;

  // Coalitions, as the varying features they take from x.
  const masks: Uint8Array[] = [];
  let weights: Float64Array | undefined;
  if (exact) {
    for (let s = 1; s < 2 ** m - 1; s++) {
      const mask = new Uint8Array(m);
      for (let i = 0; i < m; i++) mask[i] = (s >> i) & 1;
      masks.push(mask);
    }
  } else {
    const chosen = chooseCoalitions(m, budget, opts.seed ?? hashRow(x));
    masks.push(...chosen.masks);
    weights = chosen.weights;
  }

  const ev = await evaluate(f, x, background, varying, masks, opts.batchRows ?? 1024);
  const total = ev.fx - ev.fnull;
  const shap = new Array<number>(k).fill(0);
  if (m === 1) shap[varying[0]!] = total;
  else if (m > 1) {
    const phi = exact ? shapleyFormula(m, ev.fnull, ev.fx, ev.v) : constrainedKernelFit(masks, weights!, ev.v, ev.fnull, total);
    for (let i = 0; i < m; i++) shap[varying[i]!] = phi[i]!;
  }
  return { shap, expected: ev.fnull, value: ev.fx, exact: exact || m <= 1, coalitions: masks.length, modelRows: ev.rows, runs: ev.runs, batchRows: ev.batchRows };
}

/**
 * f(x) and v(∅) = mean f(z) in a first run, then v of each coalition: runs of whole coalitions (each the background
 * block with the coalition's columns taken from x), sized so that a run takes about TARGET_RUN_MS.
 */
async function evaluate(
  f: BatchModel,
  x: Float32Array,
  bg: readonly Float32Array[],
  varying: readonly number[],
  masks: readonly Uint8Array[],
  firstBatch: number,
): Promise<{ fx: number; fnull: number; v: Float64Array; rows: number; runs: number; batchRows: number }> {
  const k = x.length;
  const n = bg.length;
  const block = new Float32Array(n * k);
  bg.forEach((z, r) => block.set(z, r * k));
  const first = new Float32Array((n + 1) * k);
  first.set(x, 0);
  first.set(block, k);
  const head = await f(first, n + 1);
  if (head.length !== n + 1) throw new Error(`the model answered ${head.length} values for ${n + 1} rows`);
  const fx = Number(head[0]);
  let fnull = 0;
  for (let r = 1; r <= n; r++) fnull += Number(head[r]);
  let runs = 1;
  // Per coalition, the columns it takes from x.
  const fromX = masks.map((mask) => Int32Array.from(varying.filter((_, i) => mask[i] === 1)));
  const v = new Float64Array(masks.length);
  const clamp = (rows: number) => Math.max(1, Math.round(Math.max(MIN_BATCH_ROWS, Math.min(MAX_BATCH_ROWS, rows)) / n));
  let perRun = clamp(firstBatch);
  for (let c0 = 0; c0 < masks.length; ) {
    await new Promise((r) => setImmediate(r));
    const count = Math.min(perRun, masks.length - c0);
    const data = new Float32Array(count * n * k);
    for (let c = 0; c < count; c++) {
      const off = c * n * k;
      data.set(block, off);
      for (const j of fromX[c0 + c]!) {
        const xj = x[j]!;
        for (let r = 0; r < n; r++) data[off + r * k + j] = xj;
      }
    }
    const t0 = performance.now();
    const out = await f(data, count * n);
    const ms = performance.now() - t0;
    runs++;
    if (out.length !== count * n) throw new Error(`the model answered ${out.length} values for ${count * n} rows`);
    for (let c = 0; c < count; c++) {
      let sum = 0;
      for (let r = c * n; r < (c + 1) * n; r++) sum += Number(out[r]);
      v[c0 + c] = sum / n;
    }
    c0 += count;
    // Toward TARGET_RUN_MS, at most doubling at a time (a fast first run says little about a large one).
    if (ms > 0) perRun = clamp(Math.min(2 * perRun * n, (perRun * n * TARGET_RUN_MS) / ms));
  }
  return { fx, fnull: fnull / n, v, rows: 1 + n + masks.length * n, runs, batchRows: perRun * n };
}

/**
 * φ_i = Σ over coalitions S without i of |S|!·(M−|S|−1)!/M! · (v(S ∪ {i}) − v(S)), with v indexed by bitmask
 * (bit i for the i-th varying feature); `v[s − 1]` holds v(s) for s in [1, 2^M − 2].
 */
function shapleyFormula(m: number, fnull: number, fx: number, v: Float64Array): number[] {
  const full = 2 ** m - 1;
  const value = (s: number) => (s === 0 ? fnull : s === full ? fx : v[s - 1]!);
  // w[s] = s!·(M−s−1)!/M!, by recurrence: w[0] = 1/M, w[s] = w[s−1]·s/(M−s).
  const w = new Float64Array(m);
  w[0] = 1 / m;
  for (let s = 1; s < m; s++) w[s] = (w[s - 1]! * s) / (m - s);
  const phi = new Array<number>(m).fill(0);
  for (let s = 0; s < full; s++) {
    let size = 0;
    for (let t = s; t; t &= t - 1) size++;
    const ws = w[size]!;
    const vs = value(s);
    for (let i = 0; i < m; i++) if (!((s >> i) & 1)) phi[i]! += ws * (value(s | (1 << i)) - vs);
  }
  return phi;
}

/**
 * Coalitions and kernel weights for sampled Kernel SHAP, as SHAP's KernelExplainer picks them: sizes s and M − s
 * are taken in order of the Shapley kernel's weight (M − 1)/(s·(M − s)); while all subsets of a size (and of its
 * complement size) fit in what is left of the budget, they are enumerated with that size's share of the weight;
 * the budget left is sampled in complementary pairs, sizes drawn by the remaining weights, repeats adding weight.
 */
export function chooseCoalitions(m: number, budget: number, seed: number): { masks: Uint8Array[]; weights: Float64Array } {
  const rand = mulberry32(seed);
  const sizes = Math.ceil((m - 1) / 2);
  const paired = Math.floor((m - 1) / 2);
  const weightOfSize = Array.from({ length: sizes }, (_, i) => ((m - 1) / ((i + 1) * (m - i - 1))) * (i < paired ? 2 : 1));
  const sum = weightOfSize.reduce((a, b) => a + b, 0);
  for (let i = 0; i < sizes; i++) weightOfSize[i]! /= sum;

  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const index = new Map<string, number>();
  const add = (mask: Uint8Array, w: number) => {
    const key = mask.join('');
    const at = index.get(key);
    if (at !== undefined) weights[at]! += w;
    else {
      index.set(key, masks.length);
      masks.push(mask);
      weights.push(w);
    }
    return at === undefined;
  };

  let left = budget;
  let full = 0;
  const remaining = [...weightOfSize];
  for (let s = 1; s <= sizes; s++) {
    const subsets = binomial(m, s) * (s <= paired ? 2 : 1);
    if ((left * remaining[s - 1]!) / subsets < 1 - 1e-8) break;
    full++;
    left -= subsets;
    if (remaining[s - 1]! < 1) {
      const rest = 1 - remaining[s - 1]!;
      for (let i = 0; i < sizes; i++) remaining[i]! /= rest;
    }
    const w = weightOfSize[s - 1]! / binomial(m, s) / (s <= paired ? 2 : 1);
    for (const mask of combinations(m, s)) {
      add(mask, w);
      if (s <= paired) add(complement(mask), w);
    }
  }
  const fixed = masks.length;
  if (full < sizes && left > 0) {
    // Each draw of a paired size yields two coalitions: its weight per draw is halved.
    const draw = weightOfSize.map((w, i) => (i < paired ? w / 2 : w)).slice(full);
    const drawSum = draw.reduce((a, b) => a + b, 0);
    const cdf: number[] = [];
    let acc = 0;
    for (const d of draw) cdf.push((acc += d / drawSum));
    const perm = Int32Array.from({ length: m }, (_, i) => i);
    // Every draw either adds a coalition or adds weight to one; the cap only guards against a budget the sizes cannot fill.
    for (let tries = 0; left > 0 && tries < 100 * budget + 1000; tries++) {
      const u = rand();
      let d = cdf.findIndex((c) => u < c);
      if (d < 0) d = cdf.length - 1;
      const s = d + full + 1;
      // The first s entries of a partial Fisher–Yates shuffle: a uniform subset of size s.
      for (let i = 0; i < s; i++) {
        const j = i + Math.floor(rand() * (m - i));
        const t = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = t;
      }
      const mask = new Uint8Array(m);
      for (let i = 0; i < s; i++) mask[perm[i]!] = 1;
      if (add(mask, 1)) left--;
      if (left > 0 && s <= paired) {
        if (add(complement(mask), 1)) left--;
      }
    }
    // The sampled coalitions share the weight the enumerated sizes left, in proportion to how often each was drawn.
    const weightLeft = weightOfSize.slice(full).reduce((a, b) => a + b, 0);
    let sampled = 0;
    for (let i = fixed; i < weights.length; i++) sampled += weights[i]!;
    for (let i = fixed; i < weights.length; i++) weights[i] = (weights[i]! * weightLeft) / sampled;
  }
  return { masks, weights: Float64Array.from(weights) };
}

/**
 * The constrained kernel-weighted least squares of Kernel SHAP: minimise Σ w_S (v(S) − v(∅) − Σ_{i∈S} φ_i)² subject
 * to Σφ = f(x) − v(∅), by eliminating the last feature (φ_last = total − Σ others) and solving the normal
 * equations of the rest.
 */
function constrainedKernelFit(masks: readonly Uint8Array[], w: Float64Array, v: Float64Array, fnull: number, total: number): number[] {
  const m = masks[0]!.length;
  const p = m - 1;
  const a = Array.from({ length: p }, () => new Float64Array(p));
  const b = new Float64Array(p);
  const row = new Float64Array(p);
  for (let c = 0; c < masks.length; c++) {
    const mask = masks[c]!;
    const last = mask[p]!;
    const y = v[c]! - fnull - last * total;
    for (let i = 0; i < p; i++) row[i] = mask[i]! - last;
    const wc = w[c]!;
    for (let i = 0; i < p; i++) {
      const ri = row[i]!;
      if (ri === 0) continue;
      b[i]! += wc * ri * y;
      const ai = a[i]!;
      for (let j = 0; j < p; j++) ai[j]! += wc * ri * row[j]!;
    }
  }
  const phi = solve(a, b);
  let sum = 0;
  for (const q of phi) sum += q;
  phi.push(total - sum);
  return phi;
}

/** Gaussian elimination with partial pivoting; throws when the coalitions do not determine every value. */
function solve(a: Float64Array[], b: Float64Array): number[] {
  const p = b.length;
  let scale = 0;
  for (let i = 0; i < p; i++) scale = Math.max(scale, Math.abs(a[i]![i]!));
  for (let col = 0; col < p; col++) {
    let pivot = col;
    for (let r = col + 1; r < p; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (!(Math.abs(a[pivot]![col]!) > 1e-12 * scale)) throw new Error('the sampled coalitions do not determine every feature\'s value; raise the budget');
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    [b[col], b[pivot]] = [b[pivot]!, b[col]!];
    const ac = a[col]!;
    for (let r = col + 1; r < p; r++) {
      const ar = a[r]!;
      const factor = ar[col]! / ac[col]!;
      if (factor === 0) continue;
      for (let j = col; j < p; j++) ar[j]! -= factor * ac[j]!;
      b[r]! -= factor * b[col]!;
    }
  }
  const out = new Array<number>(p).fill(0);
  for (let r = p - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let j = r + 1; j < p; j++) s -= a[r]![j]! * out[j]!;
    out[r] = s / a[r]![r]!;
  }
  return out;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** Every subset of size s of m items, as 0/1 masks, in lexicographic order. */
function* combinations(m: number, s: number): Generator<Uint8Array> {
  const idx = Array.from({ length: s }, (_, i) => i);
  for (;;) {
    const mask = new Uint8Array(m);
    for (const i of idx) mask[i] = 1;
    yield mask;
    let i = s - 1;
    while (i >= 0 && idx[i] === m - s + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < s; j++) idx[j] = idx[j - 1]! + 1;
  }
}

function complement(mask: Uint8Array): Uint8Array {
  return mask.map((b) => 1 - b);
}

/** 32-bit FNV-1a of the row's bytes: the sampler's default seed. */
function hashRow(x: Float32Array): number {
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  let h = 0x811c9dc5;
  for (const byte of bytes) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}
