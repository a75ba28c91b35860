import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DecodedTensor } from '../quality/index.ts';
import { PredictionBatch, type ModelVersionRecord, type PredictionBatchMessage, type TensorSpec } from '../storage/index.ts';
import type { LoadedVersion } from './model-table.ts';
import type { OutputTensor } from './runtimes/onnx.ts';
import { failedWave, movable, runWave, type WaveJob, type WaveResult } from './shadow-wave.ts';

/** Nice value of the shadow thread by default: as the prediction log's writer, background work that yields to serving. */
const SHADOW_THREAD_NICE = 10;

/** A candidate's answer to a wave, and how long its model run took (not the wait for a thread to take it). */
export interface ShadowRun {
  outputs: OutputTensor[];
  runMs: number;
}

/** Where an executor that packs a wave's records itself hands them: the prediction log. */
export type ShadowRecordSink = (batch: PredictionBatch) => void;

/** What runs a shadow candidate on a wave's stacked inputs. */
export interface ShadowExecutor {
  run(lv: LoadedVersion, inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined): Promise<ShadowRun>;
  /**
   * Runs a wave and builds its records. Records the executor packs for `sink` itself are not in the result's
   * `events`; the caller logs the ones that are. `transfer`: the wave's input buffers are its own and may move.
   */
  runWave(lv: LoadedVersion, job: WaveJob, sink: ShadowRecordSink | undefined, transfer: boolean): Promise<WaveResult>;
  /** Resolves once every record packed so far has reached its sink. */
  settle(): Promise<void>;
  /** Readies the version's session before its first wave; never throws. */
  warm(lv: LoadedVersion): Promise<void>;
  close(): Promise<void>;
}

/** On the serving thread, with the version's own session: what a shadow runs on when no thread is configured. */
export const sameThread: ShadowExecutor = {
  run: async (lv, inputs, outputNames) => {
    const started = performance.now();
    const outputs = await lv.runtime.run(inputs, outputNames);
    return { outputs, runMs: performance.now() - started };
  },
  runWave: (lv, job) => runWave(job, (inputs, outputNames) => sameThread.run(lv, inputs, outputNames)),
  settle: async () => undefined,
  // The version's session is the model table's, loaded before a rollout routes or mirrors to it.
  warm: async () => undefined,
  close: async () => undefined,
};

export interface ShadowThreadRequest {
  id: number;
  /** Set for a wave: run it (instead of `inputs` alone) and build its records; `log`: pack them on the thread. */
  wave?: WaveJob;
  log?: boolean;
  /** The version's identity: model, version and artifact digest. */
  key: string;
  /** The model's ONNX bytes, sent the first time (and again when the thread has let the session go). */
  model?: Uint8Array;
  outputs?: TensorSpec[];
  inputs?: { name: string; datatype: string; dims: number[]; data: DecodedTensor['data'] }[];
  outputNames?: string[];
  /** Seal what is packed and send it, then answer `settled`. */
  settle?: true;
  /** Load the session (`model` is sent) and answer `warmed`, running nothing. */
  warm?: true;
}

export type ShadowThreadReply =
  | { id: number; outputs: OutputTensor[]; runMs: number }
  | { id: number; wave: WaveResult }
  | { id: number; error: string }
  | { id: number; missing: true; inputs?: DecodedTensor[] }
  | { id: number; settled: true }
  | { id: number; warmed: true };

/** What the thread sends unasked: the records it packed, sealed (before the reply of the wave that sealed them). */
export interface ShadowThreadRecords {
  records: PredictionBatchMessage;
}

export interface ShadowThreadOptions {
  /** The version's ONNX bytes (the registry's artifact), read when the thread first needs them. */
  readArtifact(record: ModelVersionRecord): Promise<Uint8Array>;
  logger: Logger;
  /** Linux nice value of the thread (0–19); default 10. */
  nice?: number;
  /** Candidate sessions the thread keeps; the least recently used is released past it. */
  maxSessions?: number;
}

/** A version's identity on the thread: model, version and artifact digest. */
const keyOf = (lv: LoadedVersion): string => `${lv.record.model}\u0000${lv.record.version}\u0000${lv.record.sha256}`;

/**
 * Runs shadow candidates on a worker thread with sessions of their own. onnxruntime-node's `run` is synchronous on
 * the calling thread, so on the serving thread every wave held the event loop for its model run and the callers due
 * meanwhile waited (bench/rollouts/shadow.ts); here the serving thread only posts the stacked inputs and reads the
 * outputs back. The thread runs at a lower priority, so under load it takes a spare core, not the serving thread's.
 * With a prediction log, the thread also builds and packs the waves' records (shadow-wave.ts) and sends them sealed,
 * so the serving thread's share of a wave is a message each way and of a copy its packing into a lane.
 * A thread that dies is started again on the next wave; what it was running fails and is counted as errors, and
 * records it had packed but not sent are lost with it (logged).
 */
export class ShadowThread implements ShadowExecutor {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (r: ShadowThreadReply) => void; reject: (e: Error) => void }>();
  /** Version keys whose bytes the current worker has been sent. */
  private sent = new Set<string>();
  private nextId = 1;
  private closed = false;
  /** The log the records go to: the last runner's that ran a wave (one runner per thread, as in the app). */
  private sink: ShadowRecordSink | undefined;
  /** Records the current worker has packed that have not reached the sink yet (a settle seals them). */
  private unsent = false;
  /** The settle in flight: callers meanwhile wait for the same one. */
  private settling: Promise<void> | undefined;

  constructor(private readonly opts: ShadowThreadOptions) {}

  async run(lv: LoadedVersion, inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined): Promise<ShadowRun> {
    if (this.closed) throw new Error('the shadow thread is closed');
    const body: Omit<ShadowThreadRequest, 'id'> = {
      key: keyOf(lv),
      inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, dims: t.dims, data: t.data })),
      ...(outputNames && outputNames.length ? { outputNames: [...outputNames] } : {}),
    };
    const reply = await this.exchange(lv, body, false);
    if ('error' in reply) throw new Error(reply.error);
    if (!('outputs' in reply)) throw new Error('the shadow thread did not keep the candidate session');
    return { outputs: reply.outputs, runMs: reply.runMs };
  }

  async runWave(lv: LoadedVersion, job: WaveJob, sink: ShadowRecordSink | undefined, transfer: boolean): Promise<WaveResult> {
    const started = performance.now();
    if (this.closed) return failedWave(job, 'the shadow thread is closed', 0);
    if (sink) this.sink = sink;
    try {
      const reply = await this.exchange(lv, { key: keyOf(lv), wave: job, log: sink !== undefined }, transfer);
      if ('wave' in reply) {
        if (sink) this.unsent = true;
        return reply.wave;
      }
      return failedWave(job, 'error' in reply ? reply.error : 'the shadow thread did not keep the candidate session', performance.now() - started);
    } catch (e) {
      return failedWave(job, (e as Error).message, performance.now() - started);
    }
  }

  /** Starts the thread and loads the version's session there, so the first wave does not wait for either. */
  async warm(lv: LoadedVersion): Promise<void> {
    if (this.closed) return;
    const key = keyOf(lv);
    // Sent to this thread already (a later step of the same rollout): loaded, or loaded again on a `missing` reply.
    if (this.worker && this.sent.has(key)) return;
    try {
      const reply = await this.post(await this.withModel({ key, warm: true }, lv));
      if ('error' in reply) throw new Error(reply.error);
    } catch (err) {
      this.opts.logger.error({ err, model: lv.record.model, version: lv.record.version }, 'shadow thread could not load the candidate ahead of its copies; the first wave loads it');
    }
  }

  /** Asks the thread for the records it holds; resolves once they have reached the sink. */
  settle(): Promise<void> {
    if (this.settling) return this.settling;
    if (!this.unsent || !this.worker) return Promise.resolve();
    this.settling = this.post({ key: '', settle: true }, [])
      .then(() => {
        // The thread handles messages in order: every wave answered before `settled` had its records sealed by it.
        this.unsent = false;
      })
      .catch(() => {
        // The thread died: what it held is lost with it, as its exit says in the log.
      })
      .finally(() => {
        this.settling = undefined;
      });
    return this.settling;
  }

  /**
   * Posts a request for `lv`'s session: with the model's bytes the first time, and again with them when the thread
   * has let the session go (it keeps a few). `transfer`: the wave's inputs are its own copies (Lane.take), moved to
   * the thread rather than cloned; a `missing` reply sends them back.
   */
  private async exchange(lv: LoadedVersion, body: Omit<ShadowThreadRequest, 'id'>, transfer: boolean): Promise<ShadowThreadReply> {
    const moves = () => (transfer && body.wave ? movable(body.wave.inputs) : []);
    let reply = await this.post(this.sent.has(body.key) ? body : await this.withModel(body, lv), moves());
    if ('missing' in reply) {
      if (reply.inputs && body.wave) body.wave.inputs = reply.inputs;
      reply = await this.post(await this.withModel(body, lv), moves());
    }
    return reply;
  }

  private async withModel(body: Omit<ShadowThreadRequest, 'id'>, lv: LoadedVersion): Promise<Omit<ShadowThreadRequest, 'id'>> {
    const model = await this.opts.readArtifact(lv.record);
    return { ...body, model, outputs: lv.record.signature.outputs };
  }

  private post(body: Omit<ShadowThreadRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<ShadowThreadReply> {
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise<ShadowThreadReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ ...body, id }, transfer);
        if (body.model) this.sent.add(body.key);
      } catch (e) {
        this.pending.delete(id);
        reject(e as Error);
      }
    });
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('../storage/sqlite/worker-boot.js', import.meta.url), {
      workerData: { entry: new URL('./shadow-worker.ts', import.meta.url).href, nice: this.opts.nice ?? SHADOW_THREAD_NICE, maxSessions: this.opts.maxSessions ?? 4 },
    });
    this.sent = new Set();
    this.unsent = false;
    worker.on('message', (r: ShadowThreadReply | ShadowThreadRecords | { closed: true }) => {
      // A thread already given up on (its waves counted failed and logged as such): what it still sends is not taken.
      if (this.worker !== worker && !this.closed) return;
      if ('records' in r) {
        this.deliver(r.records);
        return;
      }
      if (!('id' in r)) return;
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      p.resolve(r);
    });
    const fail = (e: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (this.unsent && !this.closed) this.opts.logger.error('shadow thread stopped holding shadow records it had not sent; they are lost');
      this.unsent = false;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      if (!this.closed) this.opts.logger.error({ err: e }, 'shadow thread stopped; it starts again with the next wave');
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`shadow thread exited (code ${code})`)));
    worker.unref();
    return worker;
  }

  private deliver(m: PredictionBatchMessage): void {
    if (!this.sink) return;
    try {
      this.sink(PredictionBatch.fromMessage(m));
    } catch (err) {
      this.opts.logger.error({ err }, 'shadow records could not be handed to the prediction log');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    await new Promise<void>((resolve) => {
      // The thread sends what it still holds before it answers `closed`.
      const onMessage = (m: { closed?: true }) => {
        if (!m.closed) return;
        worker.off('message', onMessage);
        resolve();
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolve());
      worker.postMessage('close');
    });
    this.worker = undefined;
    await worker.terminate();
  }
}
