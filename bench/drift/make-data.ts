// bench/drift data: a reference and a current table written once per run as raw little-endian float64,
// column-major (column j fills bytes [j·rows·8, (j+1)·rows·8)), so Node (Float64Array) and NumPy
// (np.fromfile(..., '<f8').reshape(columns, rows)) read exactly the same values. Missing cells are NaN;
// categorical columns hold integer codes 0..k-1. Every column draws from its own seeded stream, so
// the data depend only on (seed, rows), and a column "identical" in both tables is byte-for-byte equal.
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../../src/random.ts';

/** Random draws of one column: uniform on [0, 1) with 53 bits, standard normal (Box–Muller), categorical. */
class Draws {
  private readonly next: () => number;
  private spare = NaN;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** 53 random bits from two 32-bit draws (27 + 26), so continuous columns have (almost) no ties. */
  uniform(): number {
    return (Math.floor(this.next() * 0x8000000) * 0x4000000 + Math.floor(this.next() * 0x4000000)) / 9007199254740992;
  }

  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const z = this.spare;
      this.spare = NaN;
      return z;
    }
    const u = 1 - this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }

  exponential(): number {
    return -Math.log(1 - this.uniform());
  }

  /** Code of a category drawn with the given probabilities (inverse CDF). */
  category(probs: readonly number[]): number {
    const u = this.uniform();
    let c = 0;
    for (let k = 0; k < probs.length - 1; k++) {
      c += probs[k]!;
      if (u < c) return k;
    }
    return probs.length - 1;
  }

  /** Poisson draw (Knuth's product method; fine for the small λ used here). */
  poisson(lambda: number): number {
    const l = Math.exp(-lambda);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= this.uniform();
    } while (p > l);
    return k - 1;
  }
}

type Side = 'reference' | 'current';

/** One generated column: how a value is drawn in each table, and the share of NaN cells in each. */
interface ColumnRecipe {
  name: string;
  categorical?: boolean;
  draw: (d: Draws, side: Side) => number;
  nanShare?: { reference: number; current: number };
  /** The current column reuses the reference's stream, so both hold the very same values. */
  sameValues?: boolean;
  note: string;
}

const normal = (mean: number, sd: number) => (d: Draws) => mean + sd * d.normal();
const both = (f: (d: Draws) => number) => (d: Draws) => f(d);
const byTable = (ref: (d: Draws) => number, cur: (d: Draws) => number) => (d: Draws, side: Side) => (side === 'reference' ? ref(d) : cur(d));
const categories = (ref: number[], cur = ref) => (d: Draws, side: Side) => d.category(side === 'reference' ? ref : cur);

/** 20 numeric and 5 categorical features: shifts, rescales, untouched columns, ties, heavy tails and missing values. */
export const RECIPES: readonly ColumnRecipe[] = [
  { name: 'num_00', draw: both(normal(0, 1)), note: 'N(0,1), unchanged' },
  { name: 'num_01', draw: byTable(normal(10, 2), normal(10.5, 2)), note: 'N(10,2) → mean +0.25 sd' },
  { name: 'num_02', draw: byTable(normal(0, 1), normal(0, 1.5)), note: 'N(0,1) → sd ×1.5' },
  { name: 'num_03', draw: both((d) => Math.exp(d.normal())), note: 'lognormal(0,1), unchanged' },
  { name: 'num_04', draw: byTable((d) => d.exponential(), (d) => 0.05 + d.exponential()), note: 'Exp(1) → +0.05 (small shift)' },
  { name: 'num_05', draw: both((d) => 100 * d.uniform()), nanShare: { reference: 0.01, current: 0.01 }, note: 'U(0,100), unchanged, 1 % NaN in both' },
  { name: 'num_06', draw: byTable(normal(50, 10), normal(55, 10)), nanShare: { reference: 0, current: 0.01 }, note: 'N(50,10) → mean +0.5 sd, 1 % NaN in current' },
  { name: 'num_07', draw: byTable((d) => d.poisson(30), (d) => d.poisson(33)), note: 'Poisson(30) → Poisson(33) (integer ties)' },
  { name: 'num_08', draw: both((d) => Math.round(100 * d.normal()) / 100), note: 'N(0,1) rounded to 0.01 (ties), unchanged' },
  { name: 'num_09', draw: both(normal(3, 0.7)), sameValues: true, note: 'N(3,0.7), current = reference value for value' },
  {
    name: 'num_10',
    draw: both((d) => (d.uniform() < 0.95 ? d.normal() : 10 * d.normal())),
    note: '0.95·N(0,1) + 0.05·N(0,10) (heavy tails), unchanged',
  },
  {
    name: 'num_11',
    draw: (d, side) => (d.uniform() < (side === 'reference' ? 0.5 : 0.6) ? -2 + d.normal() : 2 + d.normal()),
    note: 'bimodal ±2, weights 50/50 → 60/40',
  },
  { name: 'num_12', draw: both(normal(0, 1)), nanShare: { reference: 0.01, current: 0.03 }, note: 'N(0,1), unchanged, 1 % → 3 % NaN' },
  {
    name: 'num_13',
    draw: byTable((d) => d.exponential() + d.exponential() + d.exponential(), (d) => 1.1 * (d.exponential() + d.exponential() + d.exponential())),
    note: 'Gamma(3,1) → scale ×1.1',
  },
  { name: 'num_14', draw: both((d) => 2 * d.uniform() - 1), note: 'U(-1,1), unchanged' },
  { name: 'num_15', draw: byTable(normal(1000, 100), normal(1001, 100)), note: 'N(1000,100) → mean +0.01 sd (negligible)' },
  { name: 'num_16', draw: byTable((d) => Math.exp(3 + 0.5 * d.normal()), (d) => 1.2 * Math.exp(3 + 0.5 * d.normal())), note: 'lognormal(3,0.5) → ×1.2' },
  { name: 'num_17', draw: both(normal(0, 1)), nanShare: { reference: 0.01, current: 0.01 }, note: 'N(0,1), unchanged, 1 % NaN in both' },
  { name: 'num_18', draw: both((d) => d.uniform() ** 2), note: 'U(0,1)², unchanged' },
  { name: 'num_19', draw: byTable(normal(0, 0.01), normal(0.002, 0.01)), note: 'N(0,0.01) → mean +0.2 sd' },
  { name: 'cat_0', categorical: true, draw: categories([0.5, 0.3, 0.2]), note: 'k = 3, unchanged' },
  { name: 'cat_1', categorical: true, draw: categories([0.2, 0.2, 0.2, 0.2, 0.2], [0.3, 0.25, 0.2, 0.15, 0.1]), note: 'k = 5, uniform → skewed' },
  { name: 'cat_2', categorical: true, draw: categories([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03]), note: 'k = 8, unchanged' },
  { name: 'cat_3', categorical: true, draw: categories([0.7, 0.1, 0.1, 0.1], [0.55, 0.15, 0.15, 0.15]), note: 'k = 4, 70 % → 55 % top category' },
  { name: 'cat_4', categorical: true, draw: categories([0.25, 0.25, 0.2, 0.1, 0.1, 0.1]), note: 'k = 6, unchanged' },
];

/** What a data directory holds; written as meta.json next to the two tables. */
export interface DriftBenchData {
  dir: string;
  rows: number;
  seed: number;
  names: string[];
  categorical: string[];
  notes: Record<string, string>;
  files: Record<Side, string>;
}

/** Writes one table, one column at a time (8 bytes × rows of memory), and returns its path. */
function writeTable(dir: string, side: Side, rows: number, seed: number): string {
  const file = path.join(dir, `${side}.f64`);
  const fd = openSync(file, 'w');
  const col = new Float64Array(rows);
  const bytes = new Uint8Array(col.buffer);
  try {
    RECIPES.forEach((recipe, j) => {
      // Independent streams per (table, column); a sameValues column replays the reference's stream.
      const stream = recipe.sameValues || side === 'reference' ? 2 * j : 2 * j + 1;
      const d = new Draws(seed * 1000 + stream);
      const nanDraws = new Draws(seed * 1000 + 500 + stream);
      const nan = recipe.nanShare?.[side] ?? 0;
      for (let i = 0; i < rows; i++) {
        const v = recipe.draw(d, side);
        col[i] = nan > 0 && nanDraws.uniform() < nan ? NaN : v;
      }
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    });
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Generates both tables into `dir` and describes them. */
export function makeDriftData(dir: string, rows: number, seed: number): DriftBenchData {
  if (endianness() !== 'LE') throw new Error('bench/drift writes Float64Array bytes as they are and needs a little-endian machine');
  const data: DriftBenchData = {
    dir,
    rows,
    seed,
    names: RECIPES.map((r) => r.name),
    categorical: RECIPES.filter((r) => r.categorical).map((r) => r.name),
    notes: Object.fromEntries(RECIPES.map((r) => [r.name, r.note])),
    files: { reference: writeTable(dir, 'reference', rows, seed), current: writeTable(dir, 'current', rows, seed) },
  };
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(data, null, 2));
  return data;
}
