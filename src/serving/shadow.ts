import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DecodedTensor } from '../quality/index.ts';
import type { PredictionEvent } from '../storage/index.ts';
import type { PredictionLog } from '../telemetry/index.ts';
import { LATENCY_BUCKETS } from '../telemetry/index.ts';
import type { ModelTable } from './model-table.ts';

/** One mirrored request waiting for the candidate. */
interface ShadowItem {
  model: string;
  version: number;
  requestId: string;
  ts: number;
  inputs: DecodedTensor[];
  outputNames: string[] | undefined;
  keys: string[] | undefined;
}

export interface ShadowRunnerOptions {
  table: ModelTable;
  log?: PredictionLog;
  promRegistry: Registry;
  /** Mirrored requests that may wait; past it a copy is dropped and counted (the caller is never slowed). */
  capacity: number;
  /** Candidate runs in flight at once. */
  concurrency: number;
}

/** Most copies one wave hands to the candidate at once (its batcher stacks them into one run, up to maxBatchRows). */
const SHADOW_WAVE = 256;

/** Why a mirrored copy was not run. */
export type ShadowDropReason = 'queue_full' | 'not_loaded';

/**
 * Runs a candidate on copies of live requests, off the caller's clock: the request path pushes a copy of the
 * decoded inputs (already in memory) and returns; a bounded queue feeds at most `concurrency` candidate runs. The
 * candidate's answers go to the prediction log with status `shadow` and the caller's request id, so the analysis
 * compares them with what the stable version answered on the same rows. Nothing here can fail a caller's request.
 */
export class ShadowRunner {
  private readonly queue: ShadowItem[] = [];
  private head = 0;
  private running = 0;
  private readonly dropped: Counter<'model' | 'reason'>;
  private readonly runs: Counter<'model' | 'version' | 'outcome'>;
  private readonly duration: Histogram<'model' | 'version'>;
  private readonly depth: Gauge;
  private readonly counts = { offered: 0, run: 0, failed: 0, dropped: 0 };
  private idle: (() => void)[] = [];

  constructor(private readonly opts: ShadowRunnerOptions) {
    const reg = [opts.promRegistry];
    this.dropped = new Counter({ name: 'warden_shadow_dropped_total', help: 'Mirrored requests not run on the candidate, by reason (queue_full: the bounded shadow queue was full; not_loaded: the candidate was not warm).', labelNames: ['model', 'reason'], registers: reg });
    this.runs = new Counter({ name: 'warden_shadow_requests_total', help: 'Mirrored requests the candidate answered (outcome ok) or failed (error); never returned to callers.', labelNames: ['model', 'version', 'outcome'], registers: reg });
    this.duration = new Histogram({ name: 'warden_shadow_duration_seconds', help: "The candidate's run time on mirrored requests.", labelNames: ['model', 'version'], buckets: [...LATENCY_BUCKETS], registers: reg });
    this.depth = new Gauge({ name: 'warden_shadow_queue_depth', help: 'Mirrored requests waiting for the candidate.', registers: reg, collect: () => this.depth.set(this.queue.length - this.head) });
    const capacity = new Gauge({ name: 'warden_shadow_queue_capacity', help: 'Bound of the shadow queue (serving.shadowQueueCapacity).', registers: reg });
    capacity.set(opts.capacity);
  }

  /** Counters since start: offered = run + failed + dropped + waiting. */
  stats(): { offered: number; run: number; failed: number; dropped: number; waiting: number } {
    return { ...this.counts, waiting: this.queue.length - this.head };
  }

  /** Queues a copy for the candidate; never throws, never waits. */
  offer(model: string, version: number, requestId: string, ts: number, inputs: DecodedTensor[], outputNames: string[] | undefined, keys: string[] | undefined): void {
    this.counts.offered++;
    if (this.queue.length - this.head >= this.opts.capacity) {
      this.drop(model, 'queue_full');
      return;
    }
    this.queue.push({ model, version, requestId, ts, inputs, outputNames, keys });
    if (this.running < this.opts.concurrency) {
      this.running++;
      setImmediate(() => void this.work());
    }
  }

  /** Resolves once nothing is queued or running (tests, shutdown). */
  drained(): Promise<void> {
    if (this.running === 0 && this.queue.length === this.head) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private drop(model: string, reason: ShadowDropReason): void {
    this.counts.dropped++;
    this.dropped.inc({ model, reason });
  }

  private next(): ShadowItem | undefined {
    if (this.head >= this.queue.length) return undefined;
    const item = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as ShadowItem;
    // Compact now and then instead of shift() per item (O(n) each).
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  /**
   * Drains the queue in waves: every copy waiting (up to SHADOW_WAVE) is handed to the candidate at once, so its
   * batcher stacks them into one model run instead of one run per copy, and the loop yields to I/O between waves,
   * so callers' requests are read and answered before more shadow work.
   */
  private async work(): Promise<void> {
    try {
      for (;;) {
        const wave: ShadowItem[] = [];
        for (let item = this.next(); item; item = wave.length < SHADOW_WAVE ? this.next() : undefined) wave.push(item);
        if (wave.length === 0) break;
        await Promise.all(wave.map((item) => this.runOne(item)));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running--;
      if (this.running === 0 && this.queue.length === this.head) {
        const waiting = this.idle;
        this.idle = [];
        for (const resolve of waiting) resolve();
      }
    }
  }

  private async runOne(item: ShadowItem): Promise<void> {
    const lv = this.opts.table.peek(item.model, item.version);
    if (!lv) {
      this.drop(item.model, 'not_loaded');
      return;
    }
    const started = performance.now();
    const event: PredictionEvent = {
      requestId: item.requestId,
      ts: item.ts,
      model: item.model,
      version: item.version,
      // No route: the status says it is a shadow copy, and the rollout's served-request counts stay exact.
      status: 'shadow',
      latencyMs: 0,
      // The inputs are the stable request's, logged under the same request id: not logged twice.
      inputs: null,
      outputs: null,
    };
    if (item.keys !== undefined) event.keys = item.keys;
    try {
      event.outputs = await (lv.batcher ?? lv.runtime).run(item.inputs, item.outputNames);
      this.counts.run++;
      this.runs.inc({ model: item.model, version: lv.label, outcome: 'ok' });
    } catch (e) {
      this.counts.failed++;
      event.error = `WARDEN_INFERENCE_FAILED: ${(e as Error).message}`.slice(0, 2000);
      this.runs.inc({ model: item.model, version: lv.label, outcome: 'error' });
    }
    const seconds = (performance.now() - started) / 1000;
    event.latencyMs = seconds * 1000;
    this.duration.observe({ model: item.model, version: lv.label }, seconds);
    this.opts.log?.enqueue(event);
  }
}
