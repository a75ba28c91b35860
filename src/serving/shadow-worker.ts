// Runs in a worker thread: the shadow candidates' onnxruntime sessions, so their model runs (synchronous on the
// calling thread in onnxruntime-node) never hold the event loop that answers callers.
import { parentPort, workerData } from 'node:worker_threads';
import type { DecodedTensor } from '../quality/index.ts';
import type { TensorSpec } from '../storage/index.ts';
import { lowerThreadPriority } from '../thread-priority.ts';
import { OnnxModel } from './runtimes/onnx.ts';
import type { ShadowThreadReply, ShadowThreadRequest } from './shadow-thread.ts';

const { nice, maxSessions } = workerData as { nice: number; maxSessions: number };
// Copies are background work: under load they wait for a free core rather than take the serving thread's.
if (nice) lowerThreadPriority(nice);

/** Sessions by key, least recently used first. */
const sessions = new Map<string, Promise<OnnxModel>>();

async function session(key: string, model: Uint8Array | undefined, outputs: readonly TensorSpec[] | undefined): Promise<OnnxModel | undefined> {
  let s = sessions.get(key);
  if (s) {
    sessions.delete(key);
    sessions.set(key, s);
    return s;
  }
  if (!model || !outputs) return undefined;
  s = OnnxModel.load(model, outputs, { intraOpThreads: 1 });
  sessions.set(key, s);
  s.catch(() => sessions.delete(key));
  while (sessions.size > maxSessions) {
    const [oldest, p] = sessions.entries().next().value as [string, Promise<OnnxModel>];
    sessions.delete(oldest);
    void p.then((m) => m.release()).catch(() => undefined);
  }
  return s;
}

async function handle(m: ShadowThreadRequest): Promise<ShadowThreadReply> {
  try {
    const s = await session(m.key, m.model, m.outputs);
    if (!s) return { id: m.id, missing: true };
    // The run's own time, as the analysis compares it: not the wait in this thread's queue.
    const started = performance.now();
    const outputs = await s.run(m.inputs as DecodedTensor[], m.outputNames);
    return { id: m.id, outputs, runMs: performance.now() - started };
  } catch (e) {
    return { id: m.id, error: (e as Error).message };
  }
}

parentPort!.on('message', (m: ShadowThreadRequest | 'close') => {
  if (m === 'close') {
    void Promise.allSettled([...sessions.values()].map((p) => p.then((s) => s.release()))).then(() => parentPort!.postMessage({ closed: true }));
    return;
  }
  void handle(m).then((r) => parentPort!.postMessage(r));
});
