/**
 * The historical join's thread: runs {@link runJoin} on the job it was started with and posts its output in chunks,
 * waiting for the main thread's credit before each one (at most a few chunks in flight), so a slow reader holds the
 * join back instead of filling memory. The main thread cancels by setting the shared flag.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { joinErrorOf, runJoin, type JoinJob } from './pit-join.ts';

export type WorkerMessage =
  | { type: 'ready'; rows: number; columns: string[] }
  | { type: 'chunk'; text: string }
  | { type: 'done'; stats: Awaited<ReturnType<typeof runJoin>>; peakHeapBytes: number }
  | { type: 'error'; code: string; message: string };

const { job, control } = workerData as { job: JoinJob; control: SharedArrayBuffer };
/** [0] credits: chunks the main thread will take; [1] cancel: 1 when the reader has gone. */
const flags = new Int32Array(control);
const port = parentPort!;
let peakHeap = 0;

class Cancelled extends Error {}

function emit(text: string): void {
  for (;;) {
    if (Atomics.load(flags, 1) === 1) throw new Cancelled('canceled');
    const credits = Atomics.load(flags, 0);
    if (credits > 0) {
      if (Atomics.compareExchange(flags, 0, credits, credits - 1) === credits) break;
      continue;
    }
    Atomics.wait(flags, 0, credits, 1000);
  }
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  port.postMessage({ type: 'chunk', text } satisfies WorkerMessage);
}

try {
  const stats = await runJoin(job, {
    ready: (info) => port.postMessage({ type: 'ready', ...info } satisfies WorkerMessage),
    emit,
  });
  port.postMessage({ type: 'done', stats, peakHeapBytes: peakHeap } satisfies WorkerMessage);
} catch (e) {
  if (!(e instanceof Cancelled)) port.postMessage({ type: 'error', ...joinErrorOf(e) } satisfies WorkerMessage);
}
