// Runs in a worker thread: the shadow candidates' onnxruntime sessions, so their model runs (synchronous on the
// calling thread in onnxruntime-node) never hold the event loop that answers callers; and, with a prediction log,
// the waves' records, built and packed here and sent sealed.
import { parentPort, workerData } from 'node:worker_threads';
import type { DecodedTensor } from '../quality/index.ts';
import { PredictionBatch, type PredictionEvent, type TensorSpec } from '../storage/index.ts';
import { runQueueClock } from '../thread-clock.ts';
import { lowerThreadPriority } from '../thread-priority.ts';
import { OnnxModel } from './runtimes/onnx.ts';
import type { ShadowThreadReply, ShadowThreadRequest } from './shadow-thread.ts';
import { movable, runWave } from './shadow-wave.ts';

const { nice, maxSessions } = workerData as { nice: number; maxSessions: number };
// Copies are background work: under load they wait for a free core rather than take the serving thread's.
if (nice) lowerThreadPriority(nice);
/** This thread's wait for a CPU: taken out of each run's time (where Linux reports it), see thread-clock.ts. */
const waited = runQueueClock();

/**
 * Records a sealed batch holds at most (a wave is one record): the prediction log writes each batch it is handed in
 * one store call, so batches of many waves, not one each.
 */
const SEAL_RECORDS = 64;
/** Tensor values past which a batch is sealed whatever its records. */
const SEAL_VALUES = 1_000_000;
/**
 * A batch is sealed this long after its first record at the latest: the prediction log's default flush interval.
 * Each batch costs the serving thread a message to the log's writer, 100–350 µs on this project's bench VM.
 */
const SEAL_MS = 200;

/** Sessions by key, least recently used first. */
const sessions = new Map<string, Promise<OnnxModel>>();
let records: PredictionBatch | undefined;
let sealTimer: NodeJS.Timeout | undefined;

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

function seal(): void {
  clearTimeout(sealTimer);
  sealTimer = undefined;
  if (!records || records.length === 0) return;
  // The batch's numbers are on SharedArrayBuffers: shared with the serving thread, not copied. It is not reused here.
  parentPort!.postMessage({ records: records.toMessage() });
  records = undefined;
}

/** Packs events for the log; returns those that could not be packed (out of memory), for the caller to log. */
function pack(events: readonly PredictionEvent[]): PredictionEvent[] {
  const left: PredictionEvent[] = [];
  for (const e of events) {
    try {
      (records ??= new PredictionBatch(SEAL_RECORDS)).push(e);
    } catch {
      // Packing grows buffers: the serving thread tries again, and counts a drop if it cannot either.
      left.push(e);
    }
  }
  if (records && (records.length >= SEAL_RECORDS || records.values >= SEAL_VALUES)) seal();
  else if (records && records.length > 0) sealTimer ??= setTimeout(seal, SEAL_MS);
  return left;
}

async function handle(m: ShadowThreadRequest): Promise<ShadowThreadReply> {
  try {
    if (m.settle) {
      seal();
      return { id: m.id, settled: true };
    }
    const s = await session(m.key, m.model, m.outputs);
    if (m.warm) return s ? { id: m.id, warmed: true } : { id: m.id, error: 'no model bytes to load the candidate from' };
    if (!s) return m.wave ? { id: m.id, missing: true, inputs: m.wave.inputs } : { id: m.id, missing: true };
    // The run's own time, as the analysis compares it: not the wait in this thread's queue, nor (at nice 10 on a
    // busy machine) the time the thread was preempted for others during the run.
    const run = async (inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined) => {
      const w0 = waited?.read() ?? 0;
      const started = performance.now();
      const outputs = await s.run(inputs as DecodedTensor[], outputNames as string[] | undefined);
      const wall = performance.now() - started;
      const wait = (waited?.read() ?? 0) - w0;
      return { outputs, runMs: Number.isFinite(wait) ? Math.max(0, wall - wait) : wall };
    };
    if (m.wave) {
      const result = await runWave(m.wave, run);
      if (m.log) result.events = pack(result.events);
      return { id: m.id, wave: result };
    }
    return { id: m.id, ...(await run(m.inputs as DecodedTensor[], m.outputNames)) };
  } catch (e) {
    return { id: m.id, error: (e as Error).message };
  }
}

/** Messages are handled one after another, so records are sealed and sent in the order their waves came. */
let chain: Promise<void> = Promise.resolve();

parentPort!.on('message', (m: ShadowThreadRequest | 'close') => {
  if (m === 'close') {
    chain = chain.then(async () => {
      seal();
      await Promise.allSettled([...sessions.values()].map((p) => p.then((s) => s.release())));
      parentPort!.postMessage({ closed: true });
    });
    return;
  }
  chain = chain.then(async () => {
    const r = await handle(m);
    const moves = 'missing' in r && r.inputs ? movable(r.inputs) : [];
    parentPort!.postMessage(r, moves);
  });
});
