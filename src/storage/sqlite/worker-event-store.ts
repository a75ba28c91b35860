import { Worker } from 'node:worker_threads';
import type {
  EventStore,
  LabelIngestOptions,
  LabelIngestResult,
  LabelInput,
  LabelledQuery,
  LabelledRow,
  LabelStats,
  MonitorResultRecord,
  PredictionEvent,
  PredictionQuery,
  SliBucket,
  SliCountRecord,
  SliQuery,
  StoredPredictionEvent,
  WindowProfileRecord,
  WindowQuery,
} from '../ports.ts';
import { PredictionBatch } from '../prediction-batch.ts';
import { SqliteEventStore } from './event-store.ts';

interface Reply {
  id?: number;
  ok?: boolean;
  error?: string;
  closed?: boolean;
}

/**
 * The SQLite event store with its writes in a worker thread. Packed batches are posted to the worker
 * (their buffers shared, not copied; far cheaper than encoding and inserting), so a flush of thousands of events
 * costs the serving thread well under a millisecond. Reads use a connection on this thread; WAL
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
  private readonly pending = new WeakMap<Worker, Map<number, { resolve: () => void; reject: (e: Error) => void }>>();
  private nextId = 1;
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
    const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
    this.pending.set(worker, pending);
    worker.on('message', (m: Reply) => {
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve();
      else p.reject(new Error(`event store write failed: ${m.error}`));
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
    const worker = (this.worker ??= this.spawn());
    // The worker is unref'd so an idle store does not keep the process alive, but a write in
    // flight must: otherwise a graceful shutdown (http closed, timers unref'd) lets Node exit while
    // the drain awaits the worker's reply, and the drained events are lost with exit code 0.
    worker.ref();
    const id = this.nextId++;
    const done = new Promise<void>((resolve, reject) => {
      this.pending.get(worker)!.set(id, { resolve, reject });
      // The batch's typed arrays live on SharedArrayBuffers: posting shares them; only its few lists are copied.
      worker.postMessage({ id, batch: batch.toMessage() });
    });
    this.inflight.add(done);
    const forget = () => {
      this.inflight.delete(done);
      if (this.inflight.size === 0) this.worker?.unref();
    };
    done.then(forget, forget);
    return done;
  }

  // Profiles and results are a few writes a minute from the control plane: this thread's connection does.
  appendProfiles(records: readonly WindowProfileRecord[]): Promise<void> {
    return this.reader.appendProfiles(records);
  }

  listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]> {
    return this.reader.listProfiles(q);
  }

  saveMonitorResult(r: MonitorResultRecord): Promise<void> {
    return this.reader.saveMonitorResult(r);
  }

  listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]> {
    return this.reader.listMonitorResults(q);
  }

  queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    return this.reader.queryPredictions(q);
  }

  countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number> {
    return this.reader.countPredictions(q);
  }

  // Labels are written on this thread's connection, synchronously, so the API answers only once they are
  // committed; a label batch is a few thousand small rows, not the prediction stream.
  appendLabels(labels: readonly LabelInput[], now: number, opts?: LabelIngestOptions): Promise<LabelIngestResult> {
    return this.reader.appendLabels(labels, now, opts);
  }

  queryLabelled(q: LabelledQuery): Promise<LabelledRow[]> {
    return this.reader.queryLabelled(q);
  }

  labelStats(q?: { model?: string; version?: number }): Promise<LabelStats> {
    return this.reader.labelStats(q);
  }

  // SLO series: a few upserts per SLO per tick from the control plane, on this thread's connection.
  addSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    return this.reader.addSliCounts(records);
  }

  setSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    return this.reader.setSliCounts(records);
  }

  querySli(q: SliQuery): Promise<SliBucket[]> {
    return this.reader.querySli(q);
  }

  deleteSli(q: { slo?: string; before?: number }): Promise<number> {
    return this.reader.deleteSli(q);
  }

  /** Waits for pending writes, closes the worker's connection, then the reader. */
  async close(): Promise<void> {
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
