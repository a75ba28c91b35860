/**
 * Historical retrieval from the caller's side (the server's routes, the CLI, the dataset export): resolves the
 * features asked for, dumps pushed rows of push-fed views from the feature store, runs the point-in-time join
 * (pit-join.ts) on a worker thread and hands its output over in chunks, taking the next only when the reader has
 * taken the last. The server's event loop only copies chunks; sorting and merging happen on the worker.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { WardenError, type ErrorCode } from '../errors.ts';
import type { FeatureStore } from '../storage/index.ts';
import { resolveFeatureRefs, viewJoinKeys } from './definitions.ts';
import type { WorkerMessage } from './historical-worker.ts';
import { orderViews, type EntityInput, type JoinStats, type JoinView } from './pit-join.ts';
import type { SortLimits } from './sort.ts';
import type { FeatureRepo } from './types.ts';

export interface HistoricalRequest {
  repo: FeatureRepo;
  /** `view:feature` or `view` (every feature of the view). */
  features: readonly string[];
  entities: EntityInput;
  /** `csv`: CSV text with a header; `rows`: JSON text of arrays `[payload, [values…]]` per chunk. */
  output: 'csv' | 'rows';
  /** Feature columns named `view__feature` instead of `feature`. */
  fullNames?: boolean;
  /** A folder under which the run takes a folder of its own (removed at the end). */
  tmpDir: string;
  /** Where push-fed views' rows are read from; without it such views are refused. */
  store?: FeatureStore;
  sort?: SortLimits;
  bucketRows?: number;
  /** The worker's heap cap (MB); past it the join fails with WARDEN_INTERNAL instead of growing the process. */
  maxHeapMb?: number;
}

/** The worker's default heap cap: several times what a join needs (bench: 173 MB for 1M rows × 100 features). */
export const HISTORICAL_HEAP_MB = 768;

export interface HistoricalRun {
  rows: number;
  /** The output's columns: the entity rows' (CSV input), then the features. */
  columns: string[];
  featureColumns: string[];
  /** The views joined, in output order, with their features. */
  views: { name: string; features: string[] }[];
  /** The output in order; ends when the join has; throws if it fails. Stopping early cancels the join. */
  chunks(): AsyncGenerator<string>;
  /** What the join did, once it has ended. */
  stats(): Promise<HistoricalStats>;
  /** Stops the join and removes its files. */
  cancel(): void;
}

export type HistoricalStats = JoinStats & { peakHeapBytes: number };

/** Chunks posted ahead of the reader at most. */
const CREDITS = 4;
const PAGE = 5000;

/** Plans the join: the views in output order with their features and the output's feature column names. */
export function planHistorical(repo: FeatureRepo, features: readonly string[], fullNames = false): { views: JoinView[]; featureColumns: string[] } {
  const selections = resolveFeatureRefs(repo, features);
  const views = orderViews(
    selections.map(({ view, features: fs }): JoinView => ({
      name: view.name,
      joinKeys: viewJoinKeys(repo, view),
      ttlMs: view.ttlMs,
      timestampField: view.timestampField,
      ...(view.createdTimestampField ? { createdTimestampField: view.createdTimestampField } : {}),
      features: fs,
      source: view.source.kind === 'file' ? { kind: view.source.format, path: view.source.path } : { kind: 'dump', path: '' },
    })),
  );
  const featureColumns = views.flatMap((v) => v.features.map((f) => (fullNames ? `${v.name}__${f.name}` : f.name)));
  const seen = new Map<string, string>();
  for (const v of views) {
    for (const f of v.features) {
      const col = fullNames ? `${v.name}__${f.name}` : f.name;
      const prior = seen.get(col);
      if (prior) throw new WardenError('WARDEN_BAD_REQUEST', `features: ${v.name}:${f.name} and ${prior}:${f.name} would both be column ${JSON.stringify(col)}; ask for full names (view__feature)`);
      seen.set(col, v.name);
    }
  }
  return { views, featureColumns };
}

/** Starts a join; resolves once every input is read and checked (errors before: a WardenError naming the row/column). */
export async function startHistorical(req: HistoricalRequest): Promise<HistoricalRun> {
  const { views, featureColumns } = planHistorical(req.repo, req.features, req.fullNames);
  const dir = path.join(req.tmpDir, `historical-${Date.now()}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    for (const v of views) {
      if (v.source.kind !== 'dump') continue;
      if (!req.store) throw new WardenError('WARDEN_CONFLICT', `view ${v.name} is fed by pushes, which live in the server's feature store; run the join on the server (without --definitions or --in-process)`);
      v.source.path = path.join(dir, `pushed-${v.name}.jsonl`);
      await dumpPushed(req.store, v.name, v.source.path);
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const control = new SharedArrayBuffer(8);
  const flags = new Int32Array(control);
  flags[0] = CREDITS;
  const worker = new Worker(new URL('./worker-boot.js', import.meta.url), {
    workerData: {
      entry: new URL('./historical-worker.ts', import.meta.url).href,
      job: { tmpDir: path.join(dir, 'join'), views, featureColumns, entities: req.entities, output: req.output, ...(req.sort ? { sort: req.sort } : {}), ...(req.bucketRows ? { bucketRows: req.bucketRows } : {}) },
      control,
    },
    resourceLimits: { maxOldGenerationSizeMb: req.maxHeapMb ?? HISTORICAL_HEAP_MB },
  });
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let finalError: Error | undefined;
  let stats: HistoricalStats | undefined;
  const statsWaiters: { resolve: (s: HistoricalStats) => void; reject: (e: Error) => void }[] = [];
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const finish = (err?: Error) => {
    if (ended) return;
    ended = true;
    finalError = err;
    cleanup();
    for (const w of statsWaiters.splice(0)) {
      if (stats && !err) w.resolve(stats);
      else w.reject(err ?? new Error('the join was canceled'));
    }
    wake?.();
  };
  worker.on('message', (m: WorkerMessage) => {
    if (m.type === 'done') {
      stats = { ...m.stats, peakHeapBytes: m.peakHeapBytes };
    }
    queue.push(m);
    wake?.();
  });
  worker.on('error', (e) => {
    const oom = (e as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
    queue.push({ type: 'error', code: 'WARDEN_INTERNAL', message: oom ? `historical retrieval ran out of its ${req.maxHeapMb ?? HISTORICAL_HEAP_MB} MB heap` : `historical retrieval failed: ${e.message}` });
    wake?.();
  });
  worker.on('exit', (code) => {
    if (!queue.some((m) => m.type === 'done' || m.type === 'error')) queue.push({ type: 'error', code: 'WARDEN_INTERNAL', message: `the historical join's thread exited (code ${code})` });
    wake?.();
  });
  const nextMessage = async (): Promise<WorkerMessage> => {
    while (queue.length === 0) await new Promise<void>((r) => (wake = r));
    wake = undefined;
    return queue.shift()!;
  };
  const cancel = () => {
    if (ended) return;
    Atomics.store(flags, 1, 1);
    Atomics.add(flags, 0, 1);
    Atomics.notify(flags, 0);
    void worker.terminate();
    finish(new Error('the join was canceled'));
  };

  const first = await nextMessage();
  if (first.type === 'error') {
    await worker.terminate();
    finish(new Error(first.message));
    throw new WardenError(first.code as ErrorCode, first.message);
  }
  if (first.type !== 'ready') {
    cancel();
    throw new WardenError('WARDEN_INTERNAL', `the historical join sent ${first.type} before it was ready`);
  }
  let taken = false;
  return {
    rows: first.rows,
    columns: first.columns,
    featureColumns,
    views: views.map((v) => ({ name: v.name, features: v.features.map((f) => f.name) })),
    cancel,
    stats: () => {
      if (stats && ended && !finalError) return Promise.resolve(stats);
      if (ended) return Promise.reject(finalError ?? new Error('the join did not finish'));
      return new Promise((resolve, reject) => statsWaiters.push({ resolve, reject }));
    },
    async *chunks() {
      if (taken) throw new Error('a historical run can be read once');
      taken = true;
      let done = false;
      try {
        for (;;) {
          const m = await nextMessage();
          if (m.type === 'chunk') {
            yield m.text;
            Atomics.add(flags, 0, 1);
            Atomics.notify(flags, 0);
          } else if (m.type === 'done') {
            done = true;
            finish();
            return;
          } else if (m.type === 'error') {
            finish(new Error(m.message));
            throw new WardenError(m.code as ErrorCode, m.message);
          }
        }
      } finally {
        if (!done) cancel();
      }
    },
  };
}

/** Writes a view's pushed rows to a file, a page at a time: `[entityKey, eventTs, createdTs, values]` per line. */
async function dumpPushed(store: FeatureStore, view: string, file: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    let afterId = 0;
    for (;;) {
      const page = await store.scanFeatureRows({ view, afterId, limit: PAGE });
      if (page.length === 0) break;
      let text = '';
      for (const r of page) text += `${JSON.stringify([r.entityKey, r.eventTs, r.createdTs, r.values])}\n`;
      await fh.write(text);
      if (page.length < PAGE) break;
      afterId = page.at(-1)!.id;
    }
  } finally {
    await fh.close();
  }
}
