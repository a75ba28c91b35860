import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DecodedTensor } from '../quality/index.ts';
import type { ModelVersionRecord, TensorSpec } from '../storage/index.ts';
import type { LoadedVersion } from './model-table.ts';
import type { OutputTensor } from './runtimes/onnx.ts';

/** Nice value of the shadow thread by default: as the prediction log's writer, background work that yields to serving. */
const SHADOW_THREAD_NICE = 10;

/** A candidate's answer to a wave, and how long its model run took (not the wait for a thread to take it). */
export interface ShadowRun {
  outputs: OutputTensor[];
  runMs: number;
}

/** What runs a shadow candidate on a wave's stacked inputs. */
export interface ShadowExecutor {
  run(lv: LoadedVersion, inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined): Promise<ShadowRun>;
  close(): Promise<void>;
}

/** On the serving thread, with the version's own session: what a shadow runs on when no thread is configured. */
export const sameThread: ShadowExecutor = {
  run: async (lv, inputs, outputNames) => {
    const started = performance.now();
    const outputs = await lv.runtime.run(inputs, outputNames);
    return { outputs, runMs: performance.now() - started };
  },
  close: async () => undefined,
};

export interface ShadowThreadRequest {
  id: number;
  /** The version's identity: model, version and artifact digest. */
  key: string;
  /** The model's ONNX bytes, sent the first time (and again when the thread has let the session go). */
  model?: Uint8Array;
  outputs?: TensorSpec[];
  inputs: { name: string; datatype: string; dims: number[]; data: DecodedTensor['data'] }[];
  outputNames?: string[];
}

export type ShadowThreadReply = { id: number; outputs: OutputTensor[]; runMs: number } | { id: number; error: string } | { id: number; missing: true };

export interface ShadowThreadOptions {
  /** The version's ONNX bytes (the registry's artifact), read when the thread first needs them. */
  readArtifact(record: ModelVersionRecord): Promise<Uint8Array>;
  logger: Logger;
  /** Linux nice value of the thread (0–19); default 10. */
  nice?: number;
  /** Candidate sessions the thread keeps; the least recently used is released past it. */
  maxSessions?: number;
}

/**
 * Runs shadow candidates on a worker thread with sessions of their own. onnxruntime-node's `run` is synchronous on
 * the calling thread, so on the serving thread every wave held the event loop for its model run and the callers due
 * meanwhile waited (bench/rollouts/shadow.ts); here the serving thread only posts the stacked inputs and reads the
 * outputs back. The thread runs at a lower priority, so under load it takes a spare core, not the serving thread's.
 * A thread that dies is started again on the next wave; what it was running fails and is counted as errors.
 */
export class ShadowThread implements ShadowExecutor {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (r: ShadowThreadReply) => void; reject: (e: Error) => void }>();
  /** Version keys whose bytes the current worker has been sent. */
  private sent = new Set<string>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: ShadowThreadOptions) {}

  async run(lv: LoadedVersion, inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined): Promise<ShadowRun> {
    if (this.closed) throw new Error('the shadow thread is closed');
    const key = `${lv.record.model}\u0000${lv.record.version}\u0000${lv.record.sha256}`;
    const body: Omit<ShadowThreadRequest, 'id'> = {
      key,
      inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, dims: t.dims, data: t.data })),
      ...(outputNames && outputNames.length ? { outputNames: [...outputNames] } : {}),
    };
    let reply = await this.post(this.sent.has(key) ? body : await this.withModel(body, lv));
    if ('missing' in reply) reply = await this.post(await this.withModel(body, lv));
    if ('error' in reply) throw new Error(reply.error);
    if ('missing' in reply) throw new Error('the shadow thread did not keep the candidate session');
    return { outputs: reply.outputs, runMs: reply.runMs };
  }

  private async withModel(body: Omit<ShadowThreadRequest, 'id'>, lv: LoadedVersion): Promise<Omit<ShadowThreadRequest, 'id'>> {
    const model = await this.opts.readArtifact(lv.record);
    return { ...body, model, outputs: lv.record.signature.outputs };
  }

  private post(body: Omit<ShadowThreadRequest, 'id'>): Promise<ShadowThreadReply> {
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise<ShadowThreadReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ ...body, id });
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
    worker.on('message', (r: ShadowThreadReply | { closed: true }) => {
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
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
      if (!this.closed) this.opts.logger.error({ err: e }, 'shadow thread stopped; it starts again with the next wave');
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`shadow thread exited (code ${code})`)));
    worker.unref();
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    await new Promise<void>((resolve) => {
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
