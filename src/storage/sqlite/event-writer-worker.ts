// Runs in a worker thread: owns the SQLite write connection for prediction events, so JSON encoding
// and inserts never block the event loop that answers predictions.
import { parentPort, workerData } from 'node:worker_threads';
import { PredictionBatch, type PredictionBatchMessage } from '../prediction-batch.ts';
import { SqliteEventStore } from './event-store.ts';

interface AppendMessage {
  id: number;
  batch: PredictionBatchMessage;
}

const store = new SqliteEventStore((workerData as { file: string }).file);
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
