// Runs in a worker thread: owns the SQLite write connection for prediction events, so JSON encoding
// and inserts never block the event loop that answers predictions.
import { parentPort, workerData } from 'node:worker_threads';
import type { PredictionEvent } from '../ports.ts';
import { SqliteEventStore } from './event-store.ts';

interface AppendMessage {
  id: number;
  events: PredictionEvent[];
}

const store = new SqliteEventStore((workerData as { file: string }).file);
parentPort!.on('message', (msg: AppendMessage | 'close') => {
  if (msg === 'close') {
    void store.close().then(() => parentPort!.postMessage({ closed: true }));
    return;
  }
  store.appendPredictions(msg.events).then(
    () => parentPort!.postMessage({ id: msg.id, ok: true }),
    (e: Error) => parentPort!.postMessage({ id: msg.id, ok: false, error: e.message }),
  );
});
