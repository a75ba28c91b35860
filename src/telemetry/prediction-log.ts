import type { Logger } from 'pino';
import type { EventStore, PredictionEvent } from '../storage/index.ts';
import type { WardenMetrics } from './metrics.ts';

export interface PredictionLogOptions {
  /** Only appends are needed: the log never reads back. */
  store: Pick<EventStore, 'appendPredictions'>;
  metrics: WardenMetrics;
  logger: Logger;
  capacity: number;
  flushIntervalMs: number;
  batchSize: number;
  /** How many times a failed batch is retried before its events are dropped and counted. */
  maxRetries?: number;
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
 * The prediction log: inference events go into a bounded in-memory queue on the request path
 * (an array push, nothing else) and are written to the event store in batches by a timer, never
 * on the caller's clock. When the queue is full the event is dropped and counted — a slow or
 * dead store must not slow or fail predictions. A crash (SIGKILL) loses at most what was queued
 * since the last flush: one flush interval of traffic.
 */
export class PredictionLog {
  private queue: PredictionEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private retries = 0;
  /** Events at the front of the queue that listeners have already seen (a retried batch). */
  private redelivered = 0;
  private readonly listeners = new Set<(batch: readonly PredictionEvent[]) => void>();
  private readonly stats: PredictionLogStats = { enqueued: 0, written: 0, dropped: 0, depth: 0 };

  constructor(private readonly opts: PredictionLogOptions) {
    opts.metrics.predictionLogQueueCapacity.set(opts.capacity);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.opts.flushIntervalMs);
    this.timer.unref();
  }

  /** Calls `listener` with every batch as it is taken for writing, off the request path. */
  onBatch(listener: (batch: readonly PredictionEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Queues one event; returns false (and counts a drop) when the queue is full. */
  enqueue(event: PredictionEvent): boolean {
    // Counted before the bound check so a refused event shows up in `enqueued` and `dropped` alike.
    this.stats.enqueued++;
    if (this.queue.length >= this.opts.capacity) {
      this.stats.dropped++;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'queue_full' });
      return false;
    }
    this.queue.push(event);
    return true;
  }

  depth(): number {
    return this.queue.length;
  }

  snapshot(): PredictionLogStats {
    return { ...this.stats, depth: this.queue.length };
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

  private async flushOnce(): Promise<void> {
    const { store, metrics, logger, batchSize } = this.opts;
    const maxRetries = this.opts.maxRetries ?? 5;
    while (this.queue.length > 0) {
      const batch = this.queue.length <= batchSize ? this.queue : this.queue.slice(0, batchSize);
      // Take the batch out first so requests keep enqueueing into a fresh array while we write.
      this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
      // Listeners (window profiles) see each event once, even when its write is retried.
      const seen = Math.min(this.redelivered, batch.length);
      this.redelivered -= seen;
      if (this.listeners.size > 0 && seen < batch.length) {
        const fresh = seen === 0 ? batch : batch.slice(seen);
        for (const l of this.listeners) {
          try {
            l(fresh);
          } catch (err) {
            logger.error({ err }, 'prediction log listener failed');
          }
        }
      }
      const started = process.hrtime.bigint();
      try {
        await store.appendPredictions(batch);
        this.retries = 0;
        this.stats.written += batch.length;
        metrics.predictionLogWritten.inc(batch.length);
        metrics.predictionLogFlushDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      } catch (err) {
        this.retries++;
        if (this.retries > maxRetries) {
          this.stats.dropped += batch.length;
          metrics.predictionLogDropped.inc({ reason: 'store_error' }, batch.length);
          logger.error({ err, events: batch.length }, 'prediction log: store keeps failing; dropping batch');
          this.retries = 0;
        } else {
          // Put the batch back in front, within capacity; what does not fit is dropped and counted.
          const room = Math.max(0, this.opts.capacity - this.queue.length);
          const keep = batch.slice(0, room);
          const lost = batch.length - keep.length;
          if (lost > 0) {
            this.stats.dropped += lost;
            metrics.predictionLogDropped.inc({ reason: 'queue_full' }, lost);
          }
          this.queue = keep.concat(this.queue);
          this.redelivered += keep.length;
          logger.warn({ err, events: batch.length, attempt: this.retries }, 'prediction log: write failed; will retry');
        }
        break;
      }
    }
    metrics.predictionLogQueueDepth.set(this.queue.length);
  }

  /** Stops the timer and writes everything still queued (graceful shutdown). */
  async drain(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.flushing) await this.flushing;
    let guard = 0;
    while (this.queue.length > 0 && guard++ < 1000) await this.flush();
    if (this.queue.length > 0) {
      // The store failed for the whole drain: count what is left rather than lose it silently.
      const left = this.queue.length;
      this.queue = [];
      this.stats.dropped += left;
      this.opts.metrics.predictionLogDropped.inc({ reason: 'store_error' }, left);
      this.opts.metrics.predictionLogQueueDepth.set(0);
      this.opts.logger.error({ events: left }, 'prediction log: store still failing at shutdown; dropping the rest');
    }
  }
}
