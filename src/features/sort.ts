/**
 * External sort of records by (key, time): records collect in memory up to a bound, each full buffer is sorted and
 * written to a run file, and the runs are merged with a heap. Memory holds one buffer while adding and one line per
 * run while merging, whatever the number of records. The sort is stable: records equal in (key, time) keep the order
 * they were added in.
 *
 * A record is stored as one line `key \t time \t rest`. The key is compared as the text given (callers pass JSON
 * strings, which hold no tab or line break); both sides of a merge-join use the same text, so they agree on the order.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { LineReader, TextWriter } from './files.ts';

export interface SortedRecord {
  key: string;
  time: number;
  rest: string;
}

export interface RecordSource {
  next(): SortedRecord | undefined;
  close(): void;
}

export interface SortLimits {
  /** Records per in-memory buffer. */
  maxRecords: number;
  /** Characters per in-memory buffer (keys and rests). */
  maxChars: number;
}

export const DEFAULT_SORT_LIMITS: SortLimits = { maxRecords: 250_000, maxChars: 16_000_000 };

function compare(ka: string, ta: number, kb: string, tb: number): number {
  return ka < kb ? -1 : ka > kb ? 1 : ta - tb;
}

export class ExternalSorter {
  private keys: string[] = [];
  private times: number[] = [];
  private rests: string[] = [];
  private chars = 0;
  private readonly runs: string[] = [];
  count = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly limits: SortLimits = DEFAULT_SORT_LIMITS,
  ) {}

  add(key: string, time: number, rest: string): void {
    this.keys.push(key);
    this.times.push(time);
    this.rests.push(rest);
    this.count++;
    this.chars += key.length + rest.length + 16;
    if (this.keys.length >= this.limits.maxRecords || this.chars >= this.limits.maxChars) this.spill();
  }

  /** Runs written so far (0 when everything fit in memory). */
  get spilled(): number {
    return this.runs.length;
  }

  private order(): Uint32Array {
    const { keys, times } = this;
    const idx = new Uint32Array(keys.length);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    // Ties broken by position: the sort is stable whatever the engine's algorithm.
    return idx.sort((a, b) => compare(keys[a]!, times[a]!, keys[b]!, times[b]!) || a - b);
  }

  private spill(): void {
    if (this.keys.length === 0) return;
    const file = path.join(this.dir, `${this.name}.run${this.runs.length}`);
    const w = new TextWriter(file, 1 << 20);
    for (const i of this.order()) w.write(`${this.keys[i]}\t${this.times[i]}\t${this.rests[i]}\n`);
    w.close();
    this.runs.push(file);
    this.keys = [];
    this.times = [];
    this.rests = [];
    this.chars = 0;
  }

  /**
   * No more records will be added: a buffer of more than `keep` records goes to disk now, so that sorters waiting for
   * their merge (one per view, while the next view is read) hold no memory. A small one stays for an in-memory finish.
   */
  seal(keep = 20_000): void {
    if (this.keys.length > keep || this.runs.length > 0) this.spill();
  }

  /** The records in order. The sorter is spent; the source removes its run files when closed. */
  finish(): RecordSource {
    if (this.runs.length === 0) {
      const { keys, times, rests } = this;
      const idx = this.order();
      this.keys = [];
      this.times = [];
      this.rests = [];
      let at = 0;
      return {
        next: () => {
          if (at >= idx.length) return undefined;
          const i = idx[at++]!;
          return { key: keys[i]!, time: times[i]!, rest: rests[i]! };
        },
        close: () => {
          at = idx.length;
        },
      };
    }
    this.spill();
    return new RunMerge(this.runs.splice(0));
  }
}

function parseLine(line: string): SortedRecord {
  const a = line.indexOf('\t');
  const b = line.indexOf('\t', a + 1);
  return { key: line.slice(0, a), time: Number(line.slice(a + 1, b)), rest: line.slice(b + 1) };
}

/** A k-way merge of sorted run files; among equal records the earlier run's first (runs are in insertion order). */
class RunMerge implements RecordSource {
  private readonly readers: LineReader[];
  private readonly heads: (SortedRecord | undefined)[];
  /** Run indexes as a binary min-heap by (head, run). */
  private readonly heap: number[] = [];

  constructor(private readonly files: string[]) {
    this.readers = files.map((f) => new LineReader(f));
    this.heads = this.readers.map((r) => {
      const line = r.next();
      return line === undefined || line === '' ? undefined : parseLine(line);
    });
    for (let i = 0; i < this.heads.length; i++) if (this.heads[i]) this.push(i);
  }

  private less(i: number, j: number): boolean {
    const a = this.heads[i]!;
    const b = this.heads[j]!;
    const c = compare(a.key, a.time, b.key, b.time);
    return c < 0 || (c === 0 && i < j);
  }

  private push(run: number): void {
    const h = this.heap;
    h.push(run);
    let n = h.length - 1;
    while (n > 0) {
      const p = (n - 1) >> 1;
      if (!this.less(h[n]!, h[p]!)) break;
      [h[n], h[p]] = [h[p]!, h[n]!];
      n = p;
    }
  }

  private siftDown(): void {
    const h = this.heap;
    let n = 0;
    for (;;) {
      const l = 2 * n + 1;
      const r = l + 1;
      let m = n;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === n) return;
      [h[n], h[m]] = [h[m]!, h[n]!];
      n = m;
    }
  }

  next(): SortedRecord | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const run = h[0]!;
    const out = this.heads[run]!;
    const line = this.readers[run]!.next();
    if (line === undefined || line === '') {
      this.heads[run] = undefined;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        this.siftDown();
      }
    } else {
      this.heads[run] = parseLine(line);
      this.siftDown();
    }
    return out;
  }

  close(): void {
    for (const r of this.readers) r.close();
    for (const f of this.files) rmSync(f, { force: true });
    this.heap.length = 0;
  }
}
