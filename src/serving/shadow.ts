import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DecodedTensor, TensorData } from '../quality/index.ts';
import { WAVE_SPAN_MS, type PredictionBatch } from '../storage/index.ts';
import type { PredictionLog, TrafficAggregator } from '../telemetry/index.ts';
import { LATENCY_BUCKETS } from '../telemetry/index.ts';
import type { ModelTable } from './model-table.ts';
import { sameThread, type ShadowExecutor, type ShadowRecordSink } from './shadow-thread.ts';
import type { WaveJob } from './shadow-wave.ts';

type NumericData = Exclude<TensorData, string[] | boolean[]>;
type NumericCtor = new (n: number) => NumericData;

export interface ShadowRunnerOptions {
  table: ModelTable;
  log?: PredictionLog;
  /** Counts the copies run into the candidate's traffic series (as shadow copies, not requests). */
  traffic?: TrafficAggregator;
  promRegistry: Registry;
  /** Mirrored requests that may wait; past it a copy is dropped and counted (the caller is never slowed). */
  capacity: number;
  /** Candidate runs in flight at once. */
  concurrency: number;
  /** Most rows one candidate run stacks (serving.maxBatchRows). */
  maxBatchRows?: number;
  /**
   * A wave runs once this many copies wait (default 32), and takes every copy waiting (up to 256): each turn of
   * the event loop then runs about the copies of the callers' requests it served, so the copies' work is spread
   * between the callers' in proportion, instead of in bursts. With an `executor` (a thread) the default is 256.
   */
  waveCopies?: number;
  /** Fewer copies than a wave wait at most this long before they run anyway. Default 10 ms; 50 ms with an `executor`. */
  maxWaitMs?: number;
  /** What runs the candidate: a worker thread (ShadowThread) or, by default, the version's session on this thread. */
  executor?: ShadowExecutor;
}

/** Default of `waveCopies`: at ≈ 3 µs of serving-thread work per copy, a wave of 32 takes about what one caller's request does. */
const WAVE_COPIES = 32;
/** Longest a rollout waits for `warm`; past it, the first wave finishes loading the candidate. */
const WARM_TIMEOUT_MS = 5_000;
/** Most copies one wave hands to the candidate. */
const MAX_WAVE = 256;

/** Why a mirrored copy was not run. */
export type ShadowDropReason = 'queue_full' | 'not_loaded';

/**
 * The copies waiting for one candidate version whose inputs share names, datatypes and per-row shape: their
 * values are packed into one growing typed array per input, so a waiting copy costs the garbage collector no
 * objects of its own (copies held across a young collection were copied and promoted, and lengthened every
 * scavenge, a pause for the callers), and a wave is one model run on arrays already stacked.
 */
class Lane {
  readonly names: string[];
  readonly datatypes: string[];
  /** Per input, the dimensions after the first (batch) one, and the values per row. */
  readonly rowDims: number[][];
  readonly widths: number[];
  private readonly ctors: NumericCtor[];
  private buffers: NumericData[];
  /** Rows packed so far. */
  rows = 0;
  requestIds: string[] = [];
  ts: number[] = [];
  rowCounts: number[] = [];
  keys: (string[] | undefined)[] = [];
  /** performance.now() when the oldest waiting copy was packed. */
  oldest = 0;

  constructor(
    readonly model: string,
    readonly version: number,
    readonly outputNames: string[] | undefined,
    first: readonly DecodedTensor[],
  ) {
    this.names = first.map((t) => t.name);
    this.datatypes = first.map((t) => t.datatype);
    this.rowDims = first.map((t) => t.dims.slice(1));
    this.widths = this.rowDims.map((d) => d.reduce((a, b) => a * b, 1));
    this.ctors = first.map((t) => t.data.constructor as NumericCtor);
    this.buffers = this.ctors.map((C, i) => new C(64 * Math.max(1, this.widths[i]!)));
  }

  get copies(): number {
    return this.requestIds.length;
  }

  /** True when `inputs` stack with this lane's: same names, datatypes and per-row shape, numeric data. */
  fits(inputs: readonly DecodedTensor[], outputNames: string[] | undefined): boolean {
    if (inputs.length !== this.names.length || !sameNames(outputNames, this.outputNames)) return false;
    for (let i = 0; i < inputs.length; i++) {
      const t = inputs[i]!;
      if (t.name !== this.names[i] || t.datatype !== this.datatypes[i] || t.data.constructor !== this.ctors[i]) return false;
      const d = this.rowDims[i]!;
      if (t.dims.length !== d.length + 1) return false;
      for (let j = 0; j < d.length; j++) if (t.dims[j + 1] !== d[j]) return false;
    }
    return true;
  }

  push(requestId: string, ts: number, inputs: readonly DecodedTensor[], keys: string[] | undefined, now: number): void {
    const rows = inputs[0]!.dims[0]!;
    for (let i = 0; i < inputs.length; i++) {
      const width = this.widths[i]!;
      let buf = this.buffers[i]!;
      const need = (this.rows + rows) * width;
      if (need > buf.length) {
        const grown = new this.ctors[i]!(Math.max(need, buf.length * 2));
        (grown as Float32Array).set(buf.subarray(0, this.rows * width) as Float32Array);
        this.buffers[i] = buf = grown;
      }
      (buf as Float32Array).set(inputs[i]!.data as Float32Array, this.rows * width);
    }
    if (this.requestIds.length === 0) this.oldest = now;
    this.rows += rows;
    this.requestIds.push(requestId);
    this.ts.push(ts);
    this.rowCounts.push(rows);
    this.keys.push(keys);
  }

  /**
   * Takes the oldest waiting copies (as many as MAX_WAVE, `maxRows` and WAVE_SPAN_MS allow, at least one) as stacked
   * tensors.
   */
  take(maxRows: number): WaveJob {
    let copies = 0;
    let rows = 0;
    const first = this.ts[0]!;
    // A wave is logged under its first copy's time, and a read from a time looks WAVE_SPAN_MS back for waves: a copy
    // that arrived later than that after the first (or before it: a clock stepped back) starts the next wave.
    while (
      copies < this.requestIds.length &&
      copies < MAX_WAVE &&
      (copies === 0 || (rows + this.rowCounts[copies]! <= maxRows && this.ts[copies]! >= first && this.ts[copies]! - first <= WAVE_SPAN_MS))
    )
      rows += this.rowCounts[copies++]!;
    const inputs: DecodedTensor[] = this.names.map((name, i) => ({
      name,
      datatype: this.datatypes[i]!,
      dims: [rows, ...this.rowDims[i]!],
      // A copy of exactly the wave's values: the lane's buffer is reused for the next copies while this one runs.
      data: this.buffers[i]!.slice(0, rows * this.widths[i]!),
    }));
    const wave: WaveJob = {
      model: this.model,
      version: this.version,
      inputs,
      rows,
      rowDims: this.rowDims,
      widths: this.widths,
      requestIds: this.requestIds.slice(0, copies),
      ts: this.ts.slice(0, copies),
      rowCounts: this.rowCounts.slice(0, copies),
      keys: this.keys.slice(0, copies),
      outputNames: this.outputNames,
      stackable: true,
    };
    if (copies === this.requestIds.length) {
      this.requestIds = [];
      this.ts = [];
      this.rowCounts = [];
      this.keys = [];
      this.rows = 0;
    } else {
      for (let i = 0; i < this.names.length; i++) {
        const w = this.widths[i]!;
        (this.buffers[i] as Float32Array).copyWithin(0, rows * w, this.rows * w);
      }
      this.requestIds.splice(0, copies);
      this.ts.splice(0, copies);
      this.rowCounts.splice(0, copies);
      this.keys.splice(0, copies);
      this.rows -= rows;
      this.oldest = performance.now();
    }
    return wave;
  }
}

interface SingleCopy {
  model: string;
  version: number;
  requestId: string;
  ts: number;
  inputs: DecodedTensor[];
  outputNames: string[] | undefined;
  keys: string[] | undefined;
  queuedAt: number;
}

function sameNames(a: string[] | undefined, b: string[] | undefined): boolean {
  if (a === undefined || a.length === 0) return b === undefined || b.length === 0;
  return b !== undefined && a.length === b.length && a.every((n, i) => n === b[i]);
}

function numeric(inputs: readonly DecodedTensor[]): boolean {
  return inputs.length > 0 && inputs.every((t) => !Array.isArray(t.data) && t.dims.length >= 1);
}

/**
 * Runs a candidate on copies of live requests, off the caller's clock: the request path packs a copy of the
 * decoded inputs (already in memory) into the candidate's lane and returns; a bounded queue feeds at most
 * `concurrency` candidate runs. The candidate's answers go to the prediction log with status `shadow` and the
 * caller's request id, so the analysis compares them with what the stable version answered on the same rows.
 * Nothing here can fail a caller's request.
 */
export class ShadowRunner {
  /** Lanes in the order their first waiting copy arrived; a lane with no copies is removed. */
  private readonly lanes = new Map<string, Lane>();
  /** The lane the last copy went to, while it is in `lanes`. */
  private last: Lane | undefined;
  /** Copies whose inputs do not stack (strings, booleans, scalars), oldest first: one model run each. */
  private single: SingleCopy[] = [];
  private waiting = 0;
  private running = 0;
  private readonly dropped: Counter<'model' | 'reason'>;
  private readonly runs: Counter<'model' | 'version' | 'outcome'>;
  private readonly duration: Histogram<'model' | 'version'>;
  private readonly counts = { offered: 0, run: 0, failed: 0, dropped: 0 };
  private idle: (() => void)[] = [];
  /** Runs the copies fewer than a wave once the oldest has waited `maxWaitMs`. */
  private timer: NodeJS.Timeout | undefined;
  private readonly maxWaitMs: number;
  private readonly waveCopies: number;
  private readonly maxRows: number;
  private readonly exec: ShadowExecutor;
  /** Where a thread that packs the waves' records hands them: the prediction log, as one more sealed batch. */
  private readonly sink: ShadowRecordSink | undefined;

  constructor(private readonly opts: ShadowRunnerOptions) {
    this.exec = opts.executor ?? sameThread;
    const log = opts.log;
    this.sink = log ? (batch: PredictionBatch) => void log.append(batch) : undefined;
    const reg = [opts.promRegistry];
    this.dropped = new Counter({ name: 'warden_shadow_dropped_total', help: 'Mirrored requests not run on the candidate, by reason (queue_full: the bounded shadow queue was full; not_loaded: the candidate was not warm).', labelNames: ['model', 'reason'], registers: reg });
    this.runs = new Counter({ name: 'warden_shadow_requests_total', help: 'Mirrored requests the candidate answered (outcome ok) or failed (error); never returned to callers.', labelNames: ['model', 'version', 'outcome'], registers: reg });
    this.duration = new Histogram({ name: 'warden_shadow_duration_seconds', help: "The candidate's model run time on mirrored requests, one observation per run (the copies of one wave share a run; warden_shadow_requests_total counts copies).", labelNames: ['model', 'version'], buckets: [...LATENCY_BUCKETS], registers: reg });
    const depth: Gauge = new Gauge({ name: 'warden_shadow_queue_depth', help: 'Mirrored requests waiting for the candidate.', registers: reg, collect: () => depth.set(this.waiting) });
    const capacity = new Gauge({ name: 'warden_shadow_queue_capacity', help: 'Bound of the shadow queue (serving.shadowQueueCapacity).', registers: reg });
    capacity.set(opts.capacity);
    // A message to a thread costs the serving thread 100–160 µs on this project's bench VM (waking the thread), more
    // than the wave's copies: on a thread, waves are fewer and larger (docs/benchmarks.md).
    this.maxWaitMs = opts.maxWaitMs ?? (opts.executor ? 50 : 10);
    // A queue smaller than a wave runs its wave at 3/4 full, before copies are dropped.
    // On a thread a wave costs the serving thread a message each way whatever its size, and the thread's model runs
    // share their fixed cost among more copies: there, waves wait for MAX_WAVE copies (or maxWaitMs).
    this.waveCopies = Math.max(1, Math.min(opts.waveCopies ?? (opts.executor ? MAX_WAVE : WAVE_COPIES), Math.floor(opts.capacity * 0.75)));
    this.maxRows = opts.maxBatchRows ?? 10_000;
  }

  /** Counters since start: offered = run + failed + dropped + waiting. */
  stats(): { offered: number; run: number; failed: number; dropped: number; waiting: number } {
    return { ...this.counts, waiting: this.waiting };
  }

  /** Queues a copy for the candidate; never throws, never waits. */
  offer(model: string, version: number, requestId: string, ts: number, inputs: DecodedTensor[], outputNames: string[] | undefined, keys: string[] | undefined): void {
    this.counts.offered++;
    if (this.waiting >= this.opts.capacity) {
      this.drop(model, 'queue_full');
      return;
    }
    const now = performance.now();
    const lane = this.laneFor(model, version, inputs, outputNames);
    if (!lane) {
      this.single.push({ model, version, requestId, ts, inputs, outputNames, keys, queuedAt: now });
    } else {
      lane.push(requestId, ts, inputs, keys, now);
    }
    this.waiting++;
    if (this.waiting >= this.waveCopies) this.start();
    else this.timer ??= setTimeout(this.onTimer, this.maxWaitMs);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.start();
  };

  /** Starts a worker unless `concurrency` are running (a running one takes the new copies too). */
  private start(): void {
    if (this.running >= this.opts.concurrency || this.waiting === 0) return;
    this.running++;
    setImmediate(() => void this.work());
  }

  /** A wave is due: a full one is waiting, or the oldest copy has waited `maxWaitMs`. */
  private due(now: number): boolean {
    return this.waiting >= this.waveCopies || (this.waiting > 0 && now - this.oldest() >= this.maxWaitMs);
  }

  private laneFor(model: string, version: number, inputs: readonly DecodedTensor[], outputNames: string[] | undefined): Lane | undefined {
    if (!numeric(inputs)) return undefined;
    // Mirrored traffic is mostly one deployment's: its lane is found without building a key per copy.
    const last = this.last;
    if (last !== undefined && last.version === version && last.model === model) return last.fits(inputs, outputNames) ? last : undefined;
    const key = `${version}\u0000${model}`;
    let lane = this.lanes.get(key);
    if (lane && !lane.fits(inputs, outputNames)) {
      // Another shape or output selection than the copies waiting: run those first, then start a lane for this one.
      return undefined;
    }
    if (!lane) {
      lane = new Lane(model, version, outputNames, inputs);
      this.lanes.set(key, lane);
    }
    this.last = lane;
    return lane;
  }

  /**
   * Readies the candidate before its first copy (a thread's session takes a few hundred ms to start and load, and
   * a 100 % shadow's queue fills meanwhile). Never throws: a failure is logged by the executor, and copies are
   * then run or counted as usual.
   */
  async warm(model: string, version: number): Promise<void> {
    const lv = this.opts.table.peek(model, version);
    if (!lv) return;
    // Bounded: the rollouts loop waits for it, and must not wait on a thread that hangs past its lease.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exec.warm(lv), new Promise<void>((resolve) => (timer = setTimeout(resolve, WARM_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  /** Resolves once nothing is queued or running (tests, shutdown). */
  drained(): Promise<void> {
    if (this.running === 0 && this.waiting === 0) return this.exec.settle();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private drop(model: string, reason: ShadowDropReason, n = 1): void {
    this.counts.dropped += n;
    this.dropped.inc({ model, reason }, n);
  }

  /** performance.now() when the oldest waiting copy was queued. */
  private oldest(): number {
    let oldest = Infinity;
    for (const lane of this.lanes.values()) if (lane.copies > 0 && lane.oldest < oldest) oldest = lane.oldest;
    if (this.single.length > 0 && this.single[0]!.queuedAt < oldest) oldest = this.single[0]!.queuedAt;
    return oldest;
  }

  /**
   * Runs the queue in waves, one per turn of the event loop. A copy costs the serving thread what the model run
   * of a caller's request does (without the HTTP work). Waves that waited for a gap in the callers' traffic, or
   * for the queue to fill, held the thread for milliseconds at a time, and every caller due meanwhile waited
   * (bench/rollouts/shadow.ts). A wave now runs once `waveCopies` wait (or the oldest has waited `maxWaitMs`) and
   * takes every copy waiting, so a turn runs about the copies of the requests it served; the yield after it lets
   * the callers' requests that arrived meanwhile go first. A timer covers the copies left over.
   */
  private async work(): Promise<void> {
    try {
      while (this.due(performance.now())) {
        const lane = this.nextLane();
        if (lane) await this.runWave(lane.take(this.maxRows), true);
        else await this.runSingle();
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running--;
      if (this.waiting > 0) {
        if (this.due(performance.now())) this.start();
        else this.timer ??= setTimeout(this.onTimer, Math.max(0, this.oldest() + this.maxWaitMs - performance.now()));
      } else if (this.running === 0) {
        // Nothing left for the timer a drained wave's first copy armed.
        clearTimeout(this.timer);
        this.timer = undefined;
        const waiting = this.idle;
        this.idle = [];
        // Idle once the records a thread packed have reached the log too.
        if (waiting.length > 0) void this.exec.settle().finally(() => waiting.forEach((resolve) => resolve()));
      }
    }
  }

  /** The lane holding the oldest copy, unless a copy that does not stack is older. */
  private nextLane(): Lane | undefined {
    let best: Lane | undefined;
    for (const [key, lane] of this.lanes) {
      if (lane.copies === 0) {
        this.lanes.delete(key);
        // A lane let go must not take copies: only lanes in the map are ever `last`.
        if (this.last === lane) this.last = undefined;
        continue;
      }
      if (!best || lane.oldest < best.oldest) best = lane;
    }
    if (this.single.length > 0 && (!best || this.single[0]!.queuedAt < best.oldest)) return undefined;
    return best;
  }

  /** Runs one wave (or one copy that does not stack) and counts and logs what it came to. */
  private async runWave(job: WaveJob, transfer: boolean): Promise<void> {
    const copies = job.requestIds.length;
    this.waiting -= copies;
    const lv = this.opts.table.peek(job.model, job.version);
    if (!lv) {
      this.drop(job.model, 'not_loaded', copies);
      return;
    }
    // A signature without a dynamic batch dimension (no batcher) cannot stack rows.
    job.stackable = lv.batcher !== undefined || copies === 1;
    const r = await this.exec.runWave(lv, job, this.sink, transfer);
    const version = lv.label;
    // Once per run, not per copy: prom-client's observe was a quarter of a wave's serving-thread time.
    for (const run of r.runs) {
      this.duration.observe({ model: job.model, version }, run.ms / 1000);
      // One run served its copies: its time counts once towards the candidate's share of CPU.
      this.opts.traffic?.shadow(job.model, job.version, run.copies, run.ms);
    }
    if (r.ok > 0) {
      this.counts.run += r.ok;
      this.runs.inc({ model: job.model, version, outcome: 'ok' }, r.ok);
    }
    if (r.failed > 0) {
      this.counts.failed += r.failed;
      this.runs.inc({ model: job.model, version, outcome: 'error' }, r.failed);
    }
    for (const e of r.events) this.opts.log?.enqueue(e);
  }

  private async runSingle(): Promise<void> {
    const item = this.single.shift();
    if (!item) return;
    const job: WaveJob = {
      model: item.model,
      version: item.version,
      inputs: item.inputs,
      rows: item.inputs[0]?.dims[0] ?? 1,
      rowDims: [],
      widths: [],
      requestIds: [item.requestId],
      ts: [item.ts],
      rowCounts: [item.inputs[0]?.dims[0] ?? 1],
      keys: [item.keys],
      outputNames: item.outputNames,
      stackable: true,
    };
    // The inputs are the caller's decoded tensors, views that may share a buffer: cloned to a thread, not moved.
    await this.runWave(job, false);
  }
}
