// A shadow wave from its stacked inputs to its prediction records, the same on the serving thread and on the shadow
// thread (shadow-worker.ts): with the candidate on a thread, the records are built and packed there too, so the
// serving thread's share of a copy is packing its inputs into a lane.
import type { DecodedTensor, TensorData } from '../quality/index.ts';
import type { PredictionEvent } from '../storage/index.ts';
import type { OutputTensor } from './runtimes/onnx.ts';

/** The copies of one wave, as plain data a thread can be sent. */
export interface WaveJob {
  model: string;
  version: number;
  /** The copies' inputs stacked along the first dimension. */
  inputs: DecodedTensor[];
  rows: number;
  /** Per input, the dimensions after the first, and its values per row: to split the wave when a copy fails. */
  rowDims: number[][];
  widths: number[];
  requestIds: string[];
  ts: number[];
  rowCounts: number[];
  keys: (string[] | undefined)[];
  outputNames: string[] | undefined;
  /** False when the candidate cannot stack rows (no dynamic batch dimension): each copy runs alone. */
  stackable: boolean;
}

/** What a wave came to, for the runner's counters and metrics; `events` are the records to log. */
export interface WaveResult {
  ok: number;
  failed: number;
  /** One per model run: its time and how many copies it answered. */
  runs: { ms: number; copies: number }[];
  events: PredictionEvent[];
}

export type ModelRun = (inputs: readonly DecodedTensor[], outputNames: readonly string[] | undefined) => Promise<{ outputs: OutputTensor[]; runMs: number }>;

/** Longest error text a shadow record keeps. */
const MAX_ERROR = 2000;

/**
 * Runs a wave: one model run on the stacked rows, split into one run per copy when that fails or cannot keep the
 * batch dimension (one bad copy must not fail the others). The wave's answer is ONE record (its outputs as the run
 * stacked them, the copies' ids, times, rows and keys): a row per copy cost more than running the copy, and the
 * store reads the wave back as one event per copy.
 */
export async function runWave(job: WaveJob, run: ModelRun): Promise<WaveResult> {
  const copies = job.requestIds.length;
  if (copies === 1) return runEach(job, run);
  let outputs: OutputTensor[] | undefined;
  let runMs = 0;
  if (job.stackable) {
    try {
      ({ outputs, runMs } = await run(job.inputs, job.outputNames));
      if (outputs.some((o) => o.shape[0] !== job.rows)) outputs = undefined;
    } catch {
      // Run again copy by copy: the copies that can be answered are, and each failure keeps its own reason.
    }
  }
  if (!outputs) return runEach(job, run);
  const event = shadowEvent(job.model, job.version, job.requestIds[0]!, job.ts[0]!, job.keys[0], runMs);
  event.outputs = outputs;
  event.copies = { requestIds: job.requestIds, ts: job.ts, rows: job.rowCounts };
  if (job.keys.some((k) => k !== undefined)) event.copies.keys = job.keys;
  return { ok: copies, failed: 0, runs: [{ ms: runMs, copies }], events: [event] };
}

async function runEach(job: WaveJob, run: ModelRun): Promise<WaveResult> {
  const result: WaveResult = { ok: 0, failed: 0, runs: [], events: [] };
  let offset = 0;
  const runs: Promise<void>[] = [];
  for (let c = 0; c < job.requestIds.length; c++) {
    const rows = job.rowCounts[c]!;
    const inputs = job.requestIds.length === 1 ? job.inputs : job.inputs.map((t, i) => ({ ...t, dims: [rows, ...job.rowDims[i]!], data: t.data.slice(offset * job.widths[i]!, (offset + rows) * job.widths[i]!) as TensorData }));
    offset += rows;
    runs.push(
      (async () => {
        const started = performance.now();
        const event = shadowEvent(job.model, job.version, job.requestIds[c]!, job.ts[c]!, job.keys[c], 0);
        let runMs: number | undefined;
        try {
          const r = await run(inputs, job.outputNames);
          event.outputs = r.outputs;
          runMs = r.runMs;
          result.ok++;
        } catch (e) {
          event.error = `WARDEN_INFERENCE_FAILED: ${(e as Error).message}`.slice(0, MAX_ERROR);
          result.failed++;
        }
        // A failed run's time is the whole wait for its answer: a thread does not report one.
        event.latencyMs = runMs ?? performance.now() - started;
        result.runs.push({ ms: event.latencyMs, copies: 1 });
        result.events.push(event);
      })(),
    );
  }
  await Promise.all(runs);
  return result;
}

/** Every copy of a wave failed before any model run (the shadow thread died or was closed). */
export function failedWave(job: WaveJob, message: string, ms: number): WaveResult {
  const events = job.requestIds.map((id, c) => {
    const e = shadowEvent(job.model, job.version, id, job.ts[c]!, job.keys[c], ms);
    e.error = `WARDEN_INFERENCE_FAILED: ${message}`.slice(0, MAX_ERROR);
    return e;
  });
  return { ok: 0, failed: job.requestIds.length, runs: [{ ms, copies: job.requestIds.length }], events };
}

function shadowEvent(model: string, version: number, requestId: string, ts: number, keys: string[] | undefined, ms: number): PredictionEvent {
  const event: PredictionEvent = {
    requestId,
    ts,
    model,
    version,
    // No route: the status says it is a shadow copy, and the rollout's served-request counts stay exact.
    status: 'shadow',
    latencyMs: ms,
    // The inputs are the stable request's, logged under the same request id: not logged twice.
    inputs: null,
    outputs: null,
  };
  if (keys !== undefined) event.keys = keys;
  return event;
}

/** The tensors' own ArrayBuffers, each once, to move to another thread (shared and plain-array data stay). */
export function movable(tensors: readonly DecodedTensor[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const t of tensors) if (ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer) out.add(t.data.buffer);
  return [...out];
}
