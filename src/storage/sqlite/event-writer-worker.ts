// Runs in a worker thread: owns the SQLite write connection of the event store, so JSON encoding, inserts
// and waits for the write lock never block the event loop that answers predictions.
import { parentPort, workerData } from 'node:worker_threads';
import { PredictionBatch, type PredictionBatchMessage } from '../prediction-batch.ts';
import { SqliteEventStore } from './event-store.ts';
import { lowerThreadPriority } from '../../thread-priority.ts';
import type { WriterCall } from './worker-event-store.ts';

type Message = { id: number; batch: PredictionBatchMessage } | { id: number; call: WriterCall; args: unknown[] } | 'close';

const { file, nice } = workerData as { file: string; nice?: number };
// Writing the log is background work: under load it waits for a free core instead of taking one from
// the serving thread or the clients. The bounded log queue (with counted drops) caps what can pile up.
if (nice) lowerThreadPriority(nice);
const store = new SqliteEventStore(file);

/** Runs a store method posted from the main thread by name (its arguments came by structured clone). */
function call(method: WriterCall, args: unknown[]): Promise<unknown> {
  const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
  return fn.apply(store, args);
}

parentPort!.on('message', (msg: Message) => {
  if (msg === 'close') {
    void store.close().then(() => parentPort!.postMessage({ closed: true }));
    return;
  }
  const work = 'batch' in msg ? store.appendBatch(PredictionBatch.fromMessage(msg.batch)) : Promise.resolve().then(() => call(msg.call, msg.args));
  work.then(
    (value) => parentPort!.postMessage({ id: msg.id, ok: true, value }),
    // The code (SQLITE_FULL, SQLITE_READONLY …) crosses too: it tells a full disk from a bug.
    (e: Error & { code?: unknown }) => parentPort!.postMessage({ id: msg.id, ok: false, error: e.message, ...(typeof e.code === 'string' ? { code: e.code } : {}) }),
  );
});
