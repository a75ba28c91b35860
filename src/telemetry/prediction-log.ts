import type { Logger } from 'pino';
import { PredictionBatch, classifyStoreError, type EventStore, type PredictionEvent, type StoreHealth } from '../storage/index.ts';
import type { WardenMetrics } from './metrics.ts';

export interface PredictionLogOptions {
  /** Only appends are needed: the log never reads back. */
  store: Pick<EventStore, 'appendBatch'>;
  metrics: WardenMetrics;
  logger: Logger;
  capacity: number;
  flushIntervalMs: number;
  batchSize: number;
  /**
   * How many times a batch that fails for a reason other than the store being unavailable (see classifyStoreError)
   * is retried before its events are dropped and counted. A store outage is retried until it ends.
   */
  maxRetries?: number;
  /** How long `drain` keeps trying a failing store at shutdown before counting the rest as dropped. Default 15 s. */
  drainTimeoutMs?: number;
  /** Told of every write's outcome: the log writes each flush, so it is the first to see a full or read-only disk. */
  health?: StoreHealth;
}

/**
 * Counters of the log since start. Every event offered is accounted for: at rest (no flush in
 * progress) `enqueued === written + dropped + depth`.
 */
export interface PredictionLogStats {
  /** Events offered to `enqueue`, including those refused because the queue was full. */
  enqueued: number;
  /** Events the store acknowledged. */
  written: number;
  /** Events given up on: queue full on arrival or on re-queue, or the store kept failing. */
  dropped: number;
  /** Events waiting in the queue. */
  depth: number;
}

/**
 * Tensor values one batch holds before it is sealed whatever its event count (32 MB as float64): large
 * requests make few, bounded batches instead of one huge buffer.
 */
const MAX_BATCH_VALUES = 4_000_000;

/** Events a new batch has room for before its buffers grow (doubling); reused batches keep what they grew to. */
const FIRST_BATCH_EVENTS = 64;

/**
 * Written batches kept for reuse: enough for a flush interval of traffic at tens of thousands of requests a
 * second (≈ 0.5 MB each at 2,000 events), so a busy server stops allocating buffers.
 */
const MAX_SPARE_BATCHES = 8;
const MAX_SPARE_BYTES = 4 * 1024 * 1024;

/**
 * The prediction log: inference events are packed into a bounded in-memory batch on the request path
 * (numbers copied into typed arrays, strings kept) and written to the event store in batches by a timer,
 * never on the caller's clock. When the log is full — events waiting and events being written — the
 * event is dropped and counted: a slow or dead store must not slow or fail predictions. A crash
 * (SIGKILL) loses at most what was queued since the last flush: one flush interval of traffic.
 *
 * Listeners (window profiles, SLO counts, review sampling) get the event objects once per event-loop
 * turn, before they are written; packing at once and handing events on within the turn lets every
 * event object die young, where a queue of objects kept until the flush made the garbage collector
 * copy and promote each of them.
 */
export class PredictionLog {
  /** Batches sealed at batchSize (or by a flush), oldest first; the first may be at the store right now. */
  private sealed: PredictionBatch[] = [];
  private sealedEvents = 0;
  private current: PredictionBatch;
  /** Written batches kept for reuse: their buffers are already mapped and large enough. */
  private spare: PredictionBatch[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private retries = 0;
  /** The last write failed because the store is unavailable (not because of the batch). */
  private storeDown = false;
  private packErrors = 0;
  private readonly listeners = new Set<(batch: readonly PredictionEvent[]) => void>();
  /** Accepted events listeners have not seen yet, and whether a hand-over is scheduled. */
  private fresh: PredictionEvent[] = [];
  private dispatchScheduled = false;
  private readonly stats: PredictionLogStats = { enqueued: 0, written: 0, dropped: 0, depth: 0 };

  constructor(private readonly opts: PredictionLogOptions) {
    opts.metrics.predictionLogQueueCapacity.set(opts.capacity);
    this.current = new PredictionBatch(FIRST_BATCH_EVENTS);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.opts.flushIntervalMs);
    this.timer.unref();
  }

  /** Calls `listener` with every accepted event once, in small batches, off the request's own call. */
  onBatch(listener: (batch: readonly PredictionEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Queues one event; returns false (and counts a drop) when the log is full. */
  enqueue(event: PredictionEvent): boolean {
    // Counted before the bound check so a refused event shows up in `enqueued` and `dropped` alike.
    this.stats.enqueued++;
    if (this.sealedEvents + this.current.length >= this.opts.capacity) {
      this.stats.dropped++;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'queue_full' });
      return false;
    }
    try {
      this.current.push(event);
    } catch (err) {
      // Packing copies into buffers that may need to grow; when memory runs out the prediction has still been
      // served, so the event is dropped and counted rather than turning the response into an error.
      this.stats.dropped++;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'pack_error' });
      if (this.packErrors++ % 1000 === 0) this.opts.logger.error({ err }, 'prediction log: could not pack an event; dropped');
      return false;
    }
    if (this.current.length >= this.opts.batchSize || this.current.values >= MAX_BATCH_VALUES) this.seal();
    if (this.listeners.size > 0) {
      this.fresh.push(event);
      if (!this.dispatchScheduled) {
        this.dispatchScheduled = true;
        setImmediate(this.dispatch);
      }
    }
    return true;
  }

  /**
   * Queues a batch packed on another thread (the shadow thread's records), whole or not at all against the bound.
   * Listeners do not see its events: they are shadow copies, which none of them counts.
   */
  append(batch: PredictionBatch): boolean {
    const n = batch.length;
    this.stats.enqueued += n;
    if (n === 0) return true;
    if (this.sealedEvents + this.current.length + n > this.opts.capacity) {
      this.stats.dropped += n;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'queue_full' }, n);
      return false;
    }
    this.sealed.push(batch);
    this.sealedEvents += n;
    return true;
  }

  depth(): number {
    return this.sealedEvents + this.current.length;
  }

  snapshot(): PredictionLogStats {
    return { ...this.stats, depth: this.depth() };
  }

  /** Writes what is queued, in batches; concurrent calls share one flush. */
  flush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = this.flushOnce().finally(() => {
        this.flushing = undefined;
      });
    }
    return this.flushing;
  }

  private seal(): void {
    if (this.current.length === 0) return;
    this.sealed.push(this.current);
    this.sealedEvents += this.current.length;
    this.current = this.spare.pop() ?? new PredictionBatch(FIRST_BATCH_EVENTS);
  }

  /** A batch the store is done with (written or given up on) goes back to the spares. */
  private recycle(batch: PredictionBatch): void {
    // A batch that grew for a few huge requests is let go rather than kept holding its memory.
    if (this.spare.length >= MAX_SPARE_BATCHES || batch.capacityBytes > MAX_SPARE_BYTES) return;
    batch.reset();
    this.spare.push(batch);
  }

  private readonly dispatch = (): void => {
    this.dispatchScheduled = false;
    if (this.fresh.length === 0) return;
    const batch = this.fresh;
    this.fresh = [];
    for (const l of this.listeners) {
      try {
        l(batch);
      } catch (err) {
        this.opts.logger.error({ err }, 'prediction log listener failed');
      }
    }
  };

  private async flushOnce(): Promise<void> {
    const { store, metrics, logger } = this.opts;
    const maxRetries = this.opts.maxRetries ?? 5;
    // Listeners see events before they are written, as on the timer path.
    this.dispatch();
    // While a failed batch waits for its retry, new events keep filling the current batch (up to batchSize)
    // instead of each flush sealing a few of them into another batch: an outage costs memory per event,
    // not per flush.
    if (this.sealed.length === 0) this.seal();
    while (this.sealed.length > 0) {
      // The batch stays in `sealed` (and counts toward capacity) until the store has it.
      const batch = this.sealed[0]!;
      const started = process.hrtime.bigint();
      try {
        await store.appendBatch(batch);
        this.storeDown = false;
        this.opts.health?.ok('events');
        this.retries = 0;
        this.sealed.shift();
        this.sealedEvents -= batch.length;
        this.stats.written += batch.length;
        metrics.predictionLogWritten.inc(batch.length);
        metrics.predictionLogFlushDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
        this.recycle(batch);
      } catch (err) {
        const fault = classifyStoreError(err);
        this.storeDown = fault !== undefined;
        if (fault) this.opts.health?.fault('events', fault);
        this.retries++;
        // A store that is down or full is waited for, however long: the batch stays queued (the bound still applies
        // to new events) and is written when the store is back. Only an error that is not the store's (a bad row,
        // a bug) gives up on the batch after maxRetries, so it cannot block the log for ever.
        if (this.retries > maxRetries && !fault) {
          this.sealed.shift();
          this.sealedEvents -= batch.length;
          this.stats.dropped += batch.length;
          metrics.predictionLogDropped.inc({ reason: 'store_error' }, batch.length);
          logger.error({ err, events: batch.length }, 'prediction log: store keeps failing; dropping batch');
          this.retries = 0;
          this.recycle(batch);
        } else if (this.retries <= 3 || this.retries % 50 === 0) {
          // An outage retries every flush interval: log the first attempts and then one in 50, not every one.
          logger.warn({ err, events: batch.length, attempt: this.retries, queued: this.depth() }, 'prediction log: write failed; will retry');
        }
        break;
      }
      // Events queued while the batch was at the store go in the next one.
      if (this.sealed.length === 0) this.seal();
    }
    metrics.predictionLogQueueDepth.set(this.depth());
  }

  /** Stops the timer and writes everything still queued (graceful shutdown). */
  async drain(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.flushing) await this.flushing;
    let guard = 0;
    // Bounded in attempts and in time: a store that stays down must not hold the shutdown past the drain deadline.
    const deadline = Date.now() + (this.opts.drainTimeoutMs ?? 15_000);
    let failuresInRow = 0;
    while (this.depth() > 0 && guard++ < 1000 && Date.now() < deadline) {
      const before = this.stats.written + this.stats.dropped;
      await this.flush();
      if (this.stats.written + this.stats.dropped === before && this.storeDown) {
        // The store is down: wait a little before the next attempt instead of spinning on a dead connection.
        if (++failuresInRow > 1) await new Promise((r) => setTimeout(r, Math.min(500, 20 * failuresInRow)));
      } else failuresInRow = 0;
    }
    if (this.depth() > 0) {
      // The store failed for the whole drain: count what is left rather than lose it silently.
      const left = this.depth();
      this.sealed = [];
      this.sealedEvents = 0;
      this.current = new PredictionBatch(FIRST_BATCH_EVENTS);
      this.stats.dropped += left;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'store_error' }, left);
      this.opts.metrics.predictionLogQueueDepth.set(0);
      this.opts.logger.error({ events: left }, 'prediction log: store still failing at shutdown; dropping the rest');
    }
  }
}
