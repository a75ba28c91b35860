import { Worker } from 'node:worker_threads';
import type {
  EventStore,
  LabelIngestOptions,
  LabelIngestResult,
  LabelInput,
  OutcomeInput,
  OutcomeIngestResult,
  OutcomeStatsRow,
  LabelledQuery,
  LabelledRow,
  LabelStats,
  MonitorResultRecord,
  MonitorSummaryRecord,
  PredictionEvent,
  PredictionQuery,
  SliBucket,
  SliCountRecord,
  SliQuery,
  StoredPredictionEvent,
  TrafficBucketRecord,
  TrafficQuery,
  TrafficUsageRecord,
  TrafficStep,
  WindowProfileRecord,
  WindowQuery,
} from '../ports.ts';
import { PredictionBatch } from '../prediction-batch.ts';
import { flatLabel } from '../label-input.ts';
import { SqliteEventStore } from './event-store.ts';

interface Reply {
  id?: number;
  ok?: boolean;
  /** What a call returned (structured clone). */
  value?: unknown;
  error?: string;
  /** The store error's code, when it had one. */
  code?: string;
  closed?: boolean;
}

/** The writes (and join-then-read calls) the writer thread runs on its connection, by name. */
export type WriterCall = 'appendProfiles' | 'saveMonitorResult' | 'appendLabels' | 'queryLabelled' | 'labelStats' | 'addSliCounts' | 'setSliCounts' | 'deleteSli' | 'appendOutcomes' | 'addTraffic' | 'pruneTraffic' | 'prunePredictions';

/**
 * The SQLite event store with its writes in a worker thread. Packed batches are posted to the worker
 * (their buffers shared, not copied; far cheaper than encoding and inserting), so a flush of thousands of events
 * costs the serving thread well under a millisecond. Every other write (labels, window profiles, results,
 * SLO series) runs on the same thread's connection, in order. Reads use a connection on this thread; WAL
 * lets them run while the worker writes.
 */
export class SqliteWorkerEventStore implements EventStore {
  private readonly reader: SqliteEventStore;
  private worker: Worker | undefined;
  /**
   * Writes posted to each worker and not yet answered. Per worker: when one dies, only its own writes fail —
   * a write already posted to its replacement must not be rejected (and retried, so stored twice) by the
   * dead worker's late `exit` event.
   */
  private readonly pending = new WeakMap<Worker, Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>>();
  private nextId = 1;
  private closed = false;
  private readonly inflight = new Set<Promise<void>>();

  /** `writerNice`: Linux nice value for the writer thread (0–19; 0 leaves it as it is). */
  constructor(
    private readonly file: string,
    private readonly opts: { writerNice?: number } = {},
  ) {
    // Opening here first applies the migrations before the worker opens the same file.
    this.reader = new SqliteEventStore(file);
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./worker-boot.js', import.meta.url), {
      workerData: { entry: new URL('./event-writer-worker.ts', import.meta.url).href, file: this.file, nice: this.opts.writerNice ?? 0 },
    });
    const pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();
    this.pending.set(worker, pending);
    worker.on('message', (m: Reply) => {
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(Object.assign(new Error(`event store write failed: ${m.error}`), { store: 'events', ...(m.code ? { code: m.code } : {}) }));
    });
    const fail = (e: Error) => {
      for (const p of pending.values()) p.reject(e);
      pending.clear();
      if (this.worker === worker) this.worker = undefined;
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`event writer thread exited (code ${code})`)));
    worker.unref();
    return worker;
  }

  appendPredictions(events: readonly PredictionEvent[]): Promise<void> {
    return this.appendBatch(PredictionBatch.of(events));
  }

  appendBatch(batch: PredictionBatch): Promise<void> {
    if (batch.length === 0) return Promise.resolve();
    // The batch's typed arrays live on SharedArrayBuffers: posting shares them; only its few lists are copied.
    return this.post<void>((id) => ({ id, batch: batch.toMessage() }));
  }

  /** Runs a store method on the writer thread's connection and resolves with what it returned, once committed. */
  private call<T>(method: WriterCall, ...args: unknown[]): Promise<T> {
    return this.post<T>((id) => ({ id, call: method, args }));
  }

  private post<T>(message: (id: number) => unknown): Promise<T> {
    if (this.closed) return Promise.reject(new Error('event store is closed'));
    const worker = (this.worker ??= this.spawn());
    // The worker is unref'd so an idle store does not keep the process alive, but a write in
    // flight must: otherwise a graceful shutdown (http closed, timers unref'd) lets Node exit while
    // the drain awaits the worker's reply, and the drained events are lost with exit code 0.
    worker.ref();
    const id = this.nextId++;
    const pending = this.pending.get(worker)!;
    const done = new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      try {
        worker.postMessage(message(id));
      } catch (e) {
        // A value that cannot be cloned (a function, say): nothing was posted, so nothing will answer.
        pending.delete(id);
        reject(e as Error);
      }
    });
    const settled = done.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.add(settled);
    void settled.then(() => {
      this.inflight.delete(settled);
      if (this.inflight.size === 0) this.worker?.unref();
    });
    return done;
  }

  // Every write goes through the writer thread's connection, one after another. A write on this thread's
  // connection would wait (busy_timeout) for the writer's transaction with the event loop blocked.
  appendProfiles(records: readonly WindowProfileRecord[]): Promise<void> {
    return this.call('appendProfiles', records);
  }

  listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]> {
    return this.reader.listProfiles(q);
  }

  saveMonitorResult(r: MonitorResultRecord): Promise<void> {
    return this.call('saveMonitorResult', r);
  }

  listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]> {
    return this.reader.listMonitorResults(q);
  }

  listMonitorSummaries(q: WindowQuery): Promise<MonitorSummaryRecord[]> {
    return this.reader.listMonitorSummaries(q);
  }

  queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    return this.reader.queryPredictions(q);
  }

  countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number> {
    return this.reader.countPredictions(q);
  }

  // The promise resolves once the labels are committed, so the API answers only then.
  appendLabels(labels: readonly LabelInput[], now: number, opts?: LabelIngestOptions): Promise<LabelIngestResult> {
    return this.call('appendLabels', labels.map(flatLabel), now, opts);
  }

  // These join waiting labels (a write) before reading.
  queryLabelled(q: LabelledQuery): Promise<LabelledRow[]> {
    return this.call('queryLabelled', q);
  }

  labelStats(q?: { model?: string; version?: number }): Promise<LabelStats> {
    return this.call('labelStats', q);
  }

  appendOutcomes(outcomes: readonly OutcomeInput[], now: number): Promise<OutcomeIngestResult> {
    return this.call('appendOutcomes', outcomes, now);
  }

  outcomeStats(q: { model: string; since: number; until?: number }): Promise<OutcomeStatsRow[]> {
    return this.reader.outcomeStats(q);
  }

  countKeys(q: { model: string; version: number; since: number; until?: number }): Promise<number> {
    return this.reader.countKeys(q);
  }

  unmatchedOutcomes(since: number): Promise<number> {
    return this.reader.unmatchedOutcomes(since);
  }

  addSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    return this.call('addSliCounts', records);
  }

  setSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    return this.call('setSliCounts', records);
  }

  querySli(q: SliQuery): Promise<SliBucket[]> {
    return this.reader.querySli(q);
  }

  sumSli(q: { slo: string; ranges: readonly { since: number; until: number }[] }): Promise<{ good: number; total: number }[]> {
    return this.reader.sumSli(q);
  }

  deleteSli(q: { slo?: string; before?: number }): Promise<number> {
    return this.call('deleteSli', q);
  }

  addTraffic(records: readonly TrafficBucketRecord[]): Promise<void> {
    return this.call('addTraffic', records);
  }

  queryTraffic(q: TrafficQuery): Promise<TrafficBucketRecord[]> {
    return this.reader.queryTraffic(q);
  }

  trafficUsage(q: { step: TrafficStep; since: number; until: number }): Promise<TrafficUsageRecord[]> {
    return this.reader.trafficUsage(q);
  }

  pruneTraffic(q: { step: TrafficStep; before: number }): Promise<number> {
    return this.call('pruneTraffic', q);
  }

  prunePredictions(before: number, byModel: Readonly<Record<string, number>> = {}): Promise<number> {
    return this.call('prunePredictions', before, byModel) as Promise<number>;
  }

  /** Waits for pending writes, closes the worker's connection, then the reader. */
  async close(): Promise<void> {
    // Writes already posted are waited for; later ones are refused rather than starting a thread no one closes.
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      worker.ref();
      await Promise.allSettled([...this.inflight]);
      await new Promise<void>((resolve) => {
        worker.once('message', (m: Reply) => m.closed && resolve());
        worker.once('exit', () => resolve());
        worker.postMessage('close');
      });
      await worker.terminate();
    }
    await this.reader.close();
  }
}
