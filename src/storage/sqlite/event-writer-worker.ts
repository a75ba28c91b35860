// Runs in a worker thread: owns the SQLite write connection for prediction events, so JSON encoding
// and inserts never block the event loop that answers predictions.
import { parentPort, workerData } from 'node:worker_threads';
import { PredictionBatch, type PredictionBatchMessage } from '../prediction-batch.ts';
import { SqliteEventStore } from './event-store.ts';
import { lowerThreadPriority } from './thread-priority.ts';

interface AppendMessage {
  id: number;
  batch: PredictionBatchMessage;
}

const { file, nice } = workerData as { file: string; nice?: number };
// Writing the log is background work: under load it waits for a free core instead of taking one from
// the serving thread or the clients. The bounded log queue (with counted drops) caps what can pile up.
if (nice) lowerThreadPriority(nice);
const store = new SqliteEventStore(file);
parentPort!.on('message', (msg: AppendMessage | 'close') => {
  if (msg === 'close') {
    void store.close().then(() => parentPort!.postMessage({ closed: true }));
    return;
  }
  store.appendBatch(PredictionBatch.fromMessage(msg.batch)).then(
    () => parentPort!.postMessage({ id: msg.id, ok: true }),
    (e: Error) => parentPort!.postMessage({ id: msg.id, ok: false, error: e.message }),
  );
});
