import type { DecodedTensor, TensorData } from '../quality/index.ts';
import type { TensorSpec } from '../storage/index.ts';
import type { OutputTensor } from './runtimes/onnx.ts';

/** What the batcher needs of a runtime. */
export interface BatchRunner {
  run(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): Promise<OutputTensor[]>;
}

interface Waiting {
  inputs: readonly DecodedTensor[];
  outputNames: readonly string[] | undefined;
  rows: number;
  resolve: (out: OutputTensor[]) => void;
  reject: (e: unknown) => void;
}

/**
 * Dynamic batching without a timer: while a run is in flight, requests for the same version wait; when it
 * finishes they run together as one batch (up to `maxRows`), and each gets its own rows back. Once a run
 * has been shared, the first request of the next wave waits for the end of the event loop's I/O phase
 * instead of running alone (see `run`). Under light load every request runs at once, alone; under
 * concurrency the per-call cost of the runtime (tensor setup, its `setImmediate` hop) is shared. Only for
 * versions whose inputs and outputs all have a dynamic first (batch) dimension, since rows must be
 * independent to be stacked.
 */
export class Batcher {
  /** A run is in flight, or a deferred one is scheduled. */
  private busy = false;
  private queue: Waiting[] = [];
  private queuedRows = 0;
  /** The last run stacked more than one request: concurrency is high enough to wait for company. */
  private contended = false;

  constructor(
    private readonly runner: BatchRunner,
    private readonly maxRows: number,
  ) {}

  /** True when every input and output of the signature has a dynamic batch dimension. */
  static supports(signature: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] }): boolean {
    const batchable = (t: TensorSpec) => t.shape.length >= 1 && t.shape[0] === -1 && t.datatype !== 'BYTES' && t.datatype !== 'BOOL';
    return signature.inputs.length > 0 && signature.inputs.every(batchable) && signature.outputs.every(batchable);
  }

  run(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): Promise<OutputTensor[]> {
    const rows = inputs[0]?.dims[0] ?? 0;
    if (!this.busy) {
      if (!this.contended) return this.runAlone(inputs, outputNames);
      // Under concurrency, requests come in waves (a wave's answers bring the next wave's requests). Running the
      // first one at once would run it alone and the rest of its wave one loop turn later; waiting for the end of
      // this I/O phase (setImmediate) runs the whole wave as one batch. Idle traffic never waits.
      this.busy = true;
      setImmediate(() => this.drain());
    }
    if (this.queuedRows + rows > this.maxRows) return this.runner.run(inputs, outputNames);
    return new Promise((resolve, reject) => {
      this.queue.push({ inputs, outputNames, rows, resolve, reject });
      this.queuedRows += rows;
    });
  }

  private async runAlone(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): Promise<OutputTensor[]> {
    this.busy = true;
    this.contended = false;
    try {
      return await this.runner.run(inputs, outputNames);
    } finally {
      this.drain();
    }
  }

  private drain(): void {
    const queued = this.queue;
    this.queue = [];
    this.queuedRows = 0;
    if (queued.length === 0) {
      this.busy = false;
      return;
    }
    // Rows stack only when every other dimension agrees: with dynamic non-batch dimensions (image
    // height and width), [1,2,3] and [1,3,2] hold as many values, and stacking them would silently
    // reshape one request's data. Members of another shape run alone, beside the batch.
    const batch = queued.filter((w) => sameRowShape(w.inputs, queued[0]!.inputs));
    for (const w of queued) if (!batch.includes(w)) void this.runner.run(w.inputs, w.outputNames).then(w.resolve, w.reject);
    if (batch.length === 1) {
      const only = batch[0]!;
      void this.runAlone(only.inputs, only.outputNames).then(only.resolve, only.reject);
      return;
    }
    void this.runMerged(batch).finally(() => this.drain());
  }

  private async runMerged(batch: Waiting[]): Promise<void> {
    this.contended = true;
    const totalRows = batch.reduce((n, w) => n + w.rows, 0);
    const merged = batch[0]!.inputs.map((first) => {
      const parts = batch.map((w) => w.inputs.find((t) => t.name === first.name)!);
      return { name: first.name, datatype: first.datatype, dims: [totalRows, ...first.dims.slice(1)], data: concat(parts.map((p) => p.data)) };
    });
    let outputs: OutputTensor[];
    try {
      outputs = await this.runner.run(merged);
    } catch {
      // One bad batch member must not fail the others: fall back to running each alone.
      await Promise.all(batch.map((w) => this.runner.run(w.inputs, w.outputNames).then(w.resolve, w.reject)));
      return;
    }
    if (outputs.some((o) => o.shape[0] !== totalRows)) {
      await Promise.all(batch.map((w) => this.runner.run(w.inputs, w.outputNames).then(w.resolve, w.reject)));
      return;
    }
    let offset = 0;
    for (const w of batch) {
      // In the order asked for, as the runtime answers a request run alone.
      const wanted = w.outputNames && w.outputNames.length ? w.outputNames.flatMap((n) => outputs.filter((o) => o.name === n)) : outputs;
      w.resolve(
        wanted.map((o) => {
          const width = o.data.length / totalRows;
          return { name: o.name, datatype: o.datatype, shape: [w.rows, ...o.shape.slice(1)], data: o.data.slice(offset * width, (offset + w.rows) * width) as OutputTensor['data'] };
        }),
      );
      offset += w.rows;
    }
  }
}

function sameRowShape(a: readonly DecodedTensor[], b: readonly DecodedTensor[]): boolean {
  return a.every((t) => {
    const u = b.find((x) => x.name === t.name);
    return u !== undefined && u.dims.length === t.dims.length && t.dims.every((d, i) => i === 0 || d === u.dims[i]);
  });
}

function concat(parts: TensorData[]): TensorData {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as unknown[][]).flat() as TensorData;
  const Ctor = first.constructor as new (n: number) => Exclude<TensorData, unknown[]>;
  const out = new Ctor(total);
  let at = 0;
  for (const p of parts as Exclude<TensorData, unknown[]>[]) {
    (out as Float32Array).set(p as Float32Array, at);
    at += p.length;
  }
  return out;
}
