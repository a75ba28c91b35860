/**
 * Incremental materialization (docs/features.md#materialization): copies each view's newest rows from its source into
 * the online store, streaming, in batches of at most 5,000 rows, and saving how far it got after every batch, so a
 * run that stops (a crash, a restart, a deploy) continues where it stopped instead of starting over.
 *
 * - CSV files are streamed (csv-parse); the cursor is the byte offset after the last row written and the file's size
 *   and modification time. A stopped run resumes at that offset when the file is unchanged; a changed file is read
 *   from the start again.
 * - Parquet files are read a row group at a time (hyparquet); the cursor is the row group and the row in it.
 * - Pushed rows are read in insertion order, a page at a time (scanFeatureRows); the cursor is the last row id copied,
 *   kept across runs, so each run reads only what was pushed since.
 *
 * A file's watermark (the newest created time copied by a completed pass) makes a later pass over a changed file skip
 * the rows it copied before: only rows created after the watermark are written. A file rewritten in place is read
 * whole again; its rows created after the watermark are written, and the online store keeps per entity the row newest
 * by event time (then created time), so a rewritten row replaces the stored one only when it is newer. A correction
 * must carry a later created time (as it must for the offline store's point-in-time rule); `full` ignores the
 * watermark and offers every row again.
 *
 * One run at a time per view: in this process by a set of running views, across replicas by a lease per view in the
 * metadata store (renewed after every batch, so a replica that dies leaves the view to another after the lease).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WardenError } from '../errors.ts';
import type { FeatureRowRecord, FeatureStore, MaterializationRecord, MetadataStore } from '../storage/index.ts';
import { viewJoinKeys } from './definitions.ts';
import type { OnlineCache } from './online-cache.ts';
import { KEY_SEPARATOR, type FeatureRepo, type FeatureViewDef } from './types.ts';
import { keyText, parseTime, parseValue, type FeatureValue } from './values.ts';

/** Rows per upsert (the FeatureStore's largest batch). */
export const MATERIALIZE_BATCH = 5_000;
/** Pushed rows read again before the cursor at each run: ids are drawn at insert and committed later. */
const PUSH_ID_OVERLAP = 20_000;
/** A view's run lease lives this long unless renewed (after every batch). */
const LEASE_MS = 60_000;

export type ViewRunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'stopped';

/** One view's part of a run, as the API shows it. */
export interface ViewRun {
  view: string;
  source: 'csv' | 'parquet' | 'push';
  state: ViewRunState;
  /** Source rows read (all of them, before the watermark filter). */
  rowsRead: number;
  /** Rows created after the watermark, written to the online store. */
  rowsWritten: number;
  /** Written rows that replaced the stored row (newer by event time). */
  rowsReplaced: number;
  /** Whether it continued a stopped run (at the saved cursor). */
  resumed: boolean;
  /** The watermark it started from and the one it saved last (epoch ms; null: none yet). */
  fromWatermark: number | null;
  watermark: number | null;
  startedAt?: number;
  finishedAt?: number;
  error?: string;
}

export interface MaterializeRun {
  id: string;
  state: 'running' | 'succeeded' | 'failed' | 'stopped';
  actor: string;
  full: boolean;
  startedAt: number;
  finishedAt?: number;
  views: ViewRun[];
}

/** What a view's stored state says of runs (GET /api/v1/features/materialize): readable from every replica. */
export interface ViewMaterialization {
  view: string;
  source: 'csv' | 'parquet' | 'push';
  /** Newest created time copied (epoch ms), null before the first run. */
  watermark: number | null;
  /** Rows written over all runs. */
  rows: number;
  updatedAt: number | null;
  /** The last run that touched it, from any replica; `running` with an old updatedAt means that replica stopped. */
  lastRun: (Partial<ViewRun> & { run: string; holder: string }) | null;
}

/** The cursor saved in the materialization record. */
interface Cursor {
  /** Where a stopped pass over a file continues. */
  file?: { path: string; size: number; mtimeMs: number; offset?: number; line?: number; columns?: string[]; rowGroup?: number; row?: number; maxCreated?: number; from?: number };
  /** The file as the last completed pass saw it: unchanged, it has nothing new. */
  done?: { path: string; size: number; mtimeMs: number };
  /** Pushed rows: the last id copied. */
  afterId?: number;
  run?: Partial<ViewRun> & { run: string; holder: string };
}

export interface MaterializerOptions {
  store: FeatureStore;
  metadata: MetadataStore;
  repo: () => FeatureRepo;
  /** Relative file sources are read from here (default the working directory). */
  baseDir?: () => string;
  /** This replica's copy of the online store: rows written here are served before the next sync. */
  cache?: OnlineCache;
  logger: Logger;
  promRegistry: Registry;
  /** This replica, as lease holder. */
  holder: string;
  batchSize?: number;
  now?: () => number;
}

const conflict = (msg: string) => new WardenError('WARDEN_CONFLICT', msg);
const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** A source row could not be read: the run fails naming where and why. */
class SourceError extends Error {}

/** Reads rows of one view's source into records, with the view's join keys, times and typed values. */
class RowReader {
  private readonly keys: string[];
  private readonly out = { value: null as FeatureValue };

  constructor(
    readonly view: FeatureViewDef,
    repo: FeatureRepo,
  ) {
    this.keys = viewJoinKeys(repo, view);
  }

  /** The columns a source must have. */
  required(): string[] {
    const cols = [...this.keys, this.view.timestampField];
    if (this.view.createdTimestampField) cols.push(this.view.createdTimestampField);
    for (const f of this.view.schema) cols.push(f.name);
    return [...new Set(cols)];
  }

  /** A record from a row whose cells are looked up by `cell(column)`; `where` names it in errors. */
  record(cell: (column: string) => unknown, where: string): FeatureRowRecord {
    const v = this.view;
    let entityKey = '';
    for (let i = 0; i < this.keys.length; i++) {
      const t = keyText(cell(this.keys[i]!));
      if (t === undefined) throw new SourceError(`${where}: join key ${this.keys[i]} has no value`);
      entityKey = i === 0 ? t : `${entityKey}${KEY_SEPARATOR}${t}`;
    }
    const rawTs = cell(v.timestampField);
    const eventTs = parseTime(rawTs);
    if (eventTs === undefined) throw new SourceError(`${where}: event time ${v.timestampField} = ${JSON.stringify(rawTs)} is not a time (epoch ms or ISO-8601)`);
    let createdTs = eventTs;
    if (v.createdTimestampField) {
      const raw = cell(v.createdTimestampField);
      // An empty created time means "at its event time", as the point-in-time join reads it.
      const t = raw === '' || raw === null || raw === undefined ? eventTs : parseTime(raw);
      if (t === undefined) throw new SourceError(`${where}: created time ${v.createdTimestampField} = ${JSON.stringify(raw)} is not a time (epoch ms or ISO-8601)`);
      createdTs = t;
    }
    const values: Record<string, FeatureValue> = {};
    for (const f of v.schema) {
      const raw = cell(f.name);
      const why = parseValue(f.dtype, raw, this.out);
      if (why !== undefined) throw new SourceError(`${where}: ${f.name} = ${JSON.stringify(typeof raw === 'bigint' ? String(raw) : raw)?.slice(0, 80)} is ${why} (${f.dtype})`);
      values[f.name] = this.out.value;
    }
    return { view: v.name, entityKey, eventTs: Math.trunc(eventTs), createdTs: Math.trunc(createdTs), values };
  }
}

interface ViewTask {
  def: FeatureViewDef;
  progress: ViewRun;
}

/**
 * Runs materializations: by hand (the API, the CLI), or every `features.materializeEveryMs` over every view. Runs are
 * kept in memory (the last 20) for their progress; each view's stored state says the same from any replica.
 */
export class Materializer {
  private readonly running = new Set<string>();
  private readonly runs = new Map<string, MaterializeRun>();
  private readonly tasks = new Map<string, Promise<void>>();
  private lastNow = 0;
  private seq = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly batch: number;
  private readonly now: () => number;
  private readonly metrics: { rows: Counter<'view' | 'result'>; runs: Counter<'view' | 'state'>; watermark: Gauge<'view'> };

  constructor(private readonly opts: MaterializerOptions) {
    this.batch = Math.min(opts.batchSize ?? MATERIALIZE_BATCH, MATERIALIZE_BATCH);
    this.now = opts.now ?? Date.now;
    const registers = [opts.promRegistry];
    this.metrics = {
      rows: new Counter({
        name: 'warden_feature_materialized_rows_total',
        help: 'Source rows materialization read, by view and result: written (created after the watermark), skipped (not), replaced (written and newer than the stored row).',
        labelNames: ['view', 'result'],
        registers,
      }),
      runs: new Counter({ name: 'warden_feature_materializations_total', help: 'Materialization runs of a view ended on this replica, by state.', labelNames: ['view', 'state'], registers }),
      watermark: new Gauge({ name: 'warden_feature_materialization_watermark_seconds', help: 'Newest created time copied into the online store per view (epoch seconds).', labelNames: ['view'], registers }),
    };
  }

  /** Epoch ms for a write, strictly increasing: one batch per millisecond, so a page of changes always moves on. */
  private writeTime(): number {
    this.lastNow = Math.max(this.now(), this.lastNow + 1);
    return this.lastNow;
  }

  private resolvePath(p: string): string {
    return path.resolve(this.opts.baseDir?.() ?? process.cwd(), p);
  }

  /**
   * Starts a run over `views` (default every view); resolves once it is started (the views' leases taken), with the
   * run, whose progress changes as it goes. Refused (409) when one of the views is being materialized already, here
   * or on another replica; (400) when a view is unknown.
   */
  async start(views: readonly string[] | undefined, actor: string, opts: { full?: boolean } = {}): Promise<MaterializeRun> {
    if (this.stopping) throw new WardenError('WARDEN_SHUTTING_DOWN', 'this server is shutting down; materialize on another replica');
    const repo = this.opts.repo();
    const defs = views === undefined || views.length === 0 ? repo.featureViews : views.map((n) => repo.featureViews.find((v) => v.name === n) ?? unknownView(n, repo));
    if (defs.length === 0) throw bad('no feature views are defined; define them first (PUT /api/v1/features or features.yaml)');
    const dup = defs.find((d, i) => defs.indexOf(d) !== i);
    if (dup) throw bad(`views lists ${dup.name} twice`);
    const busy = defs.filter((d) => this.running.has(d.name));
    if (busy.length) throw conflict(`view${busy.length === 1 ? '' : 's'} ${busy.map((d) => d.name).join(', ')} ${busy.length === 1 ? 'is' : 'are'} being materialized on this replica; wait for that run to end`);
    const taken: string[] = [];
    try {
      for (const d of defs) {
        const lease = await this.opts.metadata.acquireLease(leaseName(d.name), this.opts.holder, LEASE_MS, this.now());
        if (!lease.acquired) throw conflict(`view ${d.name} is being materialized by replica ${lease.holder}; wait for that run to end (GET /api/v1/features/materialize)`);
        taken.push(d.name);
      }
    } catch (e) {
      for (const v of taken) await this.opts.metadata.releaseLease(leaseName(v), this.opts.holder).catch(() => undefined);
      throw e;
    }
    const id = `m${this.now().toString(36)}${(++this.seq).toString(36)}`;
    const run: MaterializeRun = {
      id,
      state: 'running',
      actor,
      full: opts.full === true,
      startedAt: this.now(),
      views: defs.map((d) => ({
        view: d.name,
        source: sourceKind(d),
        state: 'queued',
        rowsRead: 0,
        rowsWritten: 0,
        rowsReplaced: 0,
        resumed: false,
        fromWatermark: null,
        watermark: null,
      })),
    };
    for (const d of defs) this.running.add(d.name);
    this.runs.set(id, run);
    while (this.runs.size > 20) this.runs.delete(this.runs.keys().next().value!);
    this.opts.logger.info({ run: id, views: defs.map((d) => d.name), actor, full: run.full }, 'features: materialization started');
    const task = this.execute(run, defs.map((def, i) => ({ def, progress: run.views[i]! }))).finally(() => this.tasks.delete(id));
    this.tasks.set(id, task);
    return run;
  }

  /** Starts a run and waits for it to end. */
  async run(views: readonly string[] | undefined, actor: string, opts: { full?: boolean } = {}): Promise<MaterializeRun> {
    const run = await this.start(views, actor, opts);
    await this.tasks.get(run.id);
    return run;
  }

  /** A run of this replica, by id. */
  get(id: string): MaterializeRun | undefined {
    return this.runs.get(id);
  }

  /** Waits for a run of this replica to end. */
  async wait(id: string): Promise<MaterializeRun | undefined> {
    await this.tasks.get(id);
    return this.runs.get(id);
  }

  /** Each view's stored state, from whichever replica ran it. */
  async status(views?: readonly string[]): Promise<ViewMaterialization[]> {
    const repo = this.opts.repo();
    const defs = views?.length ? views.map((n) => repo.featureViews.find((v) => v.name === n) ?? unknownView(n, repo)) : repo.featureViews;
    const out: ViewMaterialization[] = [];
    for (const d of defs) {
      const m = await this.opts.store.getMaterialization(d.name);
      const c = (m?.cursor ?? {}) as Cursor;
      out.push({
        view: d.name,
        source: sourceKind(d),
        watermark: m && m.watermark > Number.MIN_SAFE_INTEGER ? m.watermark : null,
        rows: m?.rows ?? 0,
        updatedAt: m?.updatedAt ?? null,
        lastRun: c.run ?? null,
      });
    }
    return out;
  }

  private async execute(run: MaterializeRun, tasks: ViewTask[]): Promise<void> {
    try {
      for (const t of tasks) {
        if (this.stopping) {
          t.progress.state = 'stopped';
          continue;
        }
        await this.materializeView(run, t);
      }
    } finally {
      for (const t of tasks) {
        this.running.delete(t.def.name);
        await this.opts.metadata.releaseLease(leaseName(t.def.name), this.opts.holder).catch(() => undefined);
      }
      const states = run.views.map((v) => v.state);
      run.state = states.includes('failed') ? 'failed' : states.includes('stopped') ? 'stopped' : 'succeeded';
      run.finishedAt = this.now();
      this.opts.logger.info(
        { run: run.id, state: run.state, views: run.views.map((v) => ({ view: v.view, state: v.state, written: v.rowsWritten, read: v.rowsRead })), ms: run.finishedAt - run.startedAt },
        `features: materialization ${run.state}`,
      );
    }
  }

  private async materializeView(run: MaterializeRun, t: ViewTask): Promise<void> {
    const { def, progress: p } = t;
    p.state = 'running';
    p.startedAt = this.now();
    const log = this.opts.logger.child({ run: run.id, view: def.name });
    let state: MaterializationRecord = (await this.opts.store.getMaterialization(def.name)) ?? { view: def.name, watermark: Number.MIN_SAFE_INTEGER, rows: 0, updatedAt: 0 };
    if (run.full) state = { ...state, watermark: Number.MIN_SAFE_INTEGER, cursor: {} };
    p.fromWatermark = state.watermark > Number.MIN_SAFE_INTEGER ? state.watermark : null;
    p.watermark = p.fromWatermark;
    const ctx: WriteContext = { run, p, def, state, log, lastLog: this.now() };
    try {
      const reader = new RowReader(def, this.opts.repo());
      if (def.source.kind === 'push') await this.fromPush(ctx);
      else if (def.source.format === 'csv') await this.fromCsv(ctx, reader, this.resolvePath(def.source.path));
      else await this.fromParquet(ctx, reader, this.resolvePath(def.source.path));
      if (p.state === 'running') p.state = 'succeeded';
    } catch (e) {
      p.state = 'failed';
      p.error = e instanceof SourceError || e instanceof WardenError ? e.message : `${(e as Error).message ?? String(e)}`;
      log.warn({ err: e }, `features: materializing ${def.name} failed: ${p.error}`);
    }
    p.finishedAt = this.now();
    this.metrics.runs.inc({ view: def.name, state: p.state });
    // The last word on the run, for every replica to read; a stopped run keeps its cursor to resume from.
    await this.save(ctx, ctx.state.watermark, cursorOf(ctx.state)).catch((err: unknown) => log.warn({ err }, 'features: saving the materialization state failed'));
  }

  /** Writes one batch and saves the state with `cursor` and `watermark` (after the write: a crash between re-writes it). */
  private async write(ctx: WriteContext, rows: FeatureRowRecord[], watermark: number, cursor: Cursor): Promise<void> {
    if (rows.length > 0) {
      const replaced = await this.opts.store.upsertOnline(rows, this.writeTime());
      this.opts.cache?.apply(rows);
      ctx.p.rowsWritten += rows.length;
      ctx.p.rowsReplaced += replaced;
      this.metrics.rows.inc({ view: ctx.def.name, result: 'written' }, rows.length);
      this.metrics.rows.inc({ view: ctx.def.name, result: 'replaced' }, replaced);
      ctx.state = { ...ctx.state, rows: ctx.state.rows + rows.length };
    }
    await this.save(ctx, watermark, cursor);
    // Renewed with every batch: another replica takes the view only once this one stops renewing.
    await this.opts.metadata.acquireLease(leaseName(ctx.def.name), this.opts.holder, LEASE_MS, this.now());
    const now = this.now();
    if (now - ctx.lastLog >= 5_000) {
      ctx.lastLog = now;
      ctx.log.info({ read: ctx.p.rowsRead, written: ctx.p.rowsWritten, replaced: ctx.p.rowsReplaced }, `features: materializing ${ctx.def.name}`);
    }
  }

  private async save(ctx: WriteContext, watermark: number, cursor: Cursor): Promise<void> {
    const { p } = ctx;
    p.watermark = watermark > Number.MIN_SAFE_INTEGER ? watermark : null;
    const runInfo: Cursor['run'] = {
      run: ctx.run.id,
      holder: this.opts.holder,
      state: p.state,
      rowsRead: p.rowsRead,
      rowsWritten: p.rowsWritten,
      rowsReplaced: p.rowsReplaced,
      resumed: p.resumed,
      ...(p.startedAt !== undefined ? { startedAt: p.startedAt } : {}),
      ...(p.finishedAt !== undefined ? { finishedAt: p.finishedAt } : {}),
      ...(p.error !== undefined ? { error: p.error } : {}),
    };
    const next: MaterializationRecord = { view: ctx.def.name, watermark, rows: ctx.state.rows, updatedAt: this.now(), cursor: { ...cursor, run: runInfo } as Record<string, unknown> };
    await this.opts.store.saveMaterialization(next);
    ctx.state = next;
    if (p.watermark !== null) this.metrics.watermark.set({ view: ctx.def.name }, p.watermark / 1000);
  }

  private async fromCsv(ctx: WriteContext, reader: RowReader, file: string): Promise<void> {
    const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
      throw new SourceError(`view ${ctx.def.name}: cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
    const identity = { path: file, size: st.size, mtimeMs: st.mtimeMs };
    const saved = cursorOf(ctx.state);
    if (!ctx.run.full && saved.done && sameFile(saved.done, identity) && !saved.file) {
      ctx.p.state = 'succeeded';
      ctx.log.info(`features: ${file} is unchanged since the last materialization of ${ctx.def.name}; nothing to copy`);
      return;
    }
    const resume = saved.file && sameFile(saved.file, identity) && saved.file.offset !== undefined && saved.file.columns ? saved.file : undefined;
    // A pass reads rows created after the watermark it started from; a resumed pass keeps that starting point.
    const from = resume?.from ?? ctx.state.watermark;
    let maxCreated = resume?.maxCreated ?? from;
    const offset = resume?.offset ?? 0;
    // Lines before the offset: csv-parse counts from where the stream starts.
    const line = resume?.line ?? 0;
    ctx.p.resumed = resume !== undefined;
    if (resume) ctx.log.info({ offset, line }, `features: resuming ${ctx.def.name} at byte ${offset} of ${file}`);
    else if (saved.file) ctx.log.info(`features: ${file} changed since the stopped run of ${ctx.def.name}; reading it from the start`);
    const parser = createReadStream(file, { start: offset }).pipe(parseCsv({ bom: offset === 0, info: true, skip_empty_lines: true, relax_column_count: false }));
    let columns = resume?.columns;
    let index: Map<string, number> | undefined = columns ? indexOf(columns, reader, file) : undefined;
    const base = offset;
    let batch: FeatureRowRecord[] = [];
    try {
      for await (const item of parser as AsyncIterable<{ record: string[]; info: { bytes: number; lines: number } }>) {
        const { record, info } = item;
        if (!columns) {
          columns = record;
          index = indexOf(columns, reader, file);
          continue;
        }
        ctx.p.rowsRead++;
        const rowLine = line + info.lines;
        const r = reader.record((c) => record[index!.get(c)!], `${path.basename(file)} line ${rowLine}`);
        if (r.createdTs > from) {
          batch.push(r);
          if (r.createdTs > maxCreated) maxCreated = r.createdTs;
        } else this.metrics.rows.inc({ view: ctx.def.name, result: 'skipped' });
        if (batch.length >= this.batch) {
          const end = base + info.bytes;
          await this.write(ctx, batch, ctx.state.watermark, { file: { ...identity, offset: end, line: rowLine, columns, maxCreated, from } });
          batch = [];
          if (this.stopping) {
            ctx.p.state = 'stopped';
            return;
          }
        }
      }
    } catch (e) {
      if (e instanceof SourceError) throw e;
      throw new SourceError(`${path.basename(file)}: ${(e as Error).message}`);
    } finally {
      parser.destroy();
    }
    if (!columns) throw new SourceError(`${path.basename(file)} is empty: it has no header row`);
    // The pass is complete: the watermark moves to the newest created time it copied.
    await this.write(ctx, batch, Math.max(ctx.state.watermark, maxCreated), { done: identity });
  }

  private async fromParquet(ctx: WriteContext, reader: RowReader, file: string): Promise<void> {
    const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
      throw new SourceError(`view ${ctx.def.name}: cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
    const identity = { path: file, size: st.size, mtimeMs: st.mtimeMs };
    const saved = cursorOf(ctx.state);
    if (!ctx.run.full && saved.done && sameFile(saved.done, identity) && !saved.file) {
      ctx.p.state = 'succeeded';
      ctx.log.info(`features: ${file} is unchanged since the last materialization of ${ctx.def.name}; nothing to copy`);
      return;
    }
    const resume = saved.file && sameFile(saved.file, identity) && saved.file.rowGroup !== undefined ? saved.file : undefined;
    const from = resume?.from ?? ctx.state.watermark;
    let maxCreated = resume?.maxCreated ?? from;
    ctx.p.resumed = resume !== undefined;
    let buffer;
    let metadata;
    try {
      buffer = await asyncBufferFromFile(file);
      metadata = await parquetMetadataAsync(buffer);
    } catch (e) {
      throw new SourceError(`${path.basename(file)} is not a readable Parquet file: ${(e as Error).message}`);
    }
    const names = new Set(metadata.schema.slice(1).map((s) => s.name));
    const missing = reader.required().filter((c) => !names.has(c));
    if (missing.length) throw new SourceError(`${path.basename(file)} has no column ${missing.join(', ')} (view ${ctx.def.name}); it has ${[...names].slice(0, 20).join(', ')}`);
    let start = 0;
    for (let g = 0; g < metadata.row_groups.length; g++) {
      const n = Number(metadata.row_groups[g]!.num_rows);
      const groupStart = start;
      start += n;
      if (resume && g < resume.rowGroup!) continue;
      const skip = resume && g === resume.rowGroup ? (resume.row ?? 0) : 0;
      if (resume && g === resume.rowGroup) ctx.log.info({ rowGroup: g, row: skip }, `features: resuming ${ctx.def.name} at row group ${g}, row ${skip} of ${file}`);
      const rows = (await parquetReadObjects({ file: buffer, metadata, rowStart: groupStart, rowEnd: groupStart + n, columns: reader.required() })) as Record<string, unknown>[];
      let batch: FeatureRowRecord[] = [];
      for (let i = skip; i < rows.length; i++) {
        ctx.p.rowsRead++;
        const row = rows[i]!;
        const r = reader.record((c) => row[c], `${path.basename(file)} row ${groupStart + i}`);
        if (r.createdTs > from) {
          batch.push(r);
          if (r.createdTs > maxCreated) maxCreated = r.createdTs;
        } else this.metrics.rows.inc({ view: ctx.def.name, result: 'skipped' });
        const last = i === rows.length - 1;
        if (batch.length >= this.batch || (last && batch.length > 0)) {
          const next = last ? { rowGroup: g + 1, row: 0 } : { rowGroup: g, row: i + 1 };
          await this.write(ctx, batch, ctx.state.watermark, { file: { ...identity, ...next, maxCreated, from } });
          batch = [];
          if (this.stopping) {
            ctx.p.state = 'stopped';
            return;
          }
        }
      }
    }
    await this.write(ctx, [], Math.max(ctx.state.watermark, maxCreated), { done: identity });
  }

  private async fromPush(ctx: WriteContext): Promise<void> {
    const saved = cursorOf(ctx.state);
    const full = ctx.run.full;
    const startedAfter = full ? 0 : (saved.afterId ?? 0);
    // Ids are the push log's order, drawn at insert and committed after: a row whose id is below the cursor may have
    // committed after the last run read past it. The overlap reads such ids again; those already stored are skipped.
    let afterId = Math.max(0, startedAfter - PUSH_ID_OVERLAP);
    let watermark = ctx.state.watermark;
    ctx.p.resumed = startedAfter > 0;
    for (;;) {
      const page = await this.opts.store.scanFeatureRows({ view: ctx.def.name, afterId, limit: this.batch });
      if (page.length === 0) break;
      ctx.p.rowsRead += page.length;
      const again = page.filter((r) => r.id <= startedAfter);
      const stored = again.length ? new Map((await this.opts.store.getOnline(ctx.def.name, again.map((r) => r.entityKey))).map((r) => [r.entityKey, r])) : undefined;
      const batch: FeatureRowRecord[] = [];
      for (const r of page) {
        const held = r.id <= startedAfter ? stored!.get(r.entityKey) : undefined;
        if (held && (held.eventTs > r.eventTs || (held.eventTs === r.eventTs && held.createdTs >= r.createdTs))) {
          this.metrics.rows.inc({ view: ctx.def.name, result: 'skipped' });
          continue;
        }
        batch.push({ view: r.view, entityKey: r.entityKey, eventTs: r.eventTs, createdTs: r.createdTs, values: r.values });
        if (r.createdTs > watermark) watermark = r.createdTs;
      }
      afterId = page[page.length - 1]!.id;
      await this.write(ctx, batch, watermark, { afterId: Math.max(afterId, startedAfter) });
      if (this.stopping) {
        ctx.p.state = 'stopped';
        return;
      }
      if (page.length < this.batch) break;
    }
  }

  /** Runs every view every `everyMs` on the replica that holds the schedule's lease (one process: always). */
  schedule(everyMs: number): void {
    if (everyMs <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.running.size > 0 || this.stopping) return;
      void (async () => {
        const turn = await this.opts.metadata.acquireLease('features-materialize-schedule', this.opts.holder, Math.max(everyMs * 2, 10_000), this.now());
        if (!turn.acquired || this.opts.repo().featureViews.length === 0) return;
        await this.run(undefined, 'schedule');
      })().catch((err: unknown) => {
        // Another replica (or an API call) runs some view: the next tick tries again.
        if (!(err instanceof WardenError && err.code === 'WARDEN_CONFLICT')) this.opts.logger.warn({ err }, 'features: scheduled materialization failed');
      });
    }, everyMs);
    this.timer.unref();
  }

  /** Stops after the batch each run is writing (its cursor saved: the next run resumes there). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.tasks.values()].map((t) => t.catch(() => undefined)));
    await this.opts.metadata.releaseLease('features-materialize-schedule', this.opts.holder).catch(() => undefined);
  }
}

interface WriteContext {
  run: MaterializeRun;
  p: ViewRun;
  def: FeatureViewDef;
  state: MaterializationRecord;
  log: Logger;
  lastLog: number;
}

function leaseName(view: string): string {
  return `features-materialize:${view}`;
}

function sourceKind(d: FeatureViewDef): ViewRun['source'] {
  return d.source.kind === 'push' ? 'push' : d.source.format;
}

function cursorOf(m: MaterializationRecord): Cursor {
  const { run: _run, ...rest } = (m.cursor ?? {}) as Cursor;
  return rest;
}

function sameFile(a: { path: string; size: number; mtimeMs: number }, b: { path: string; size: number; mtimeMs: number }): boolean {
  return a.path === b.path && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

function indexOf(columns: readonly string[], reader: RowReader, file: string): Map<string, number> {
  const index = new Map(columns.map((c, i) => [c.trim(), i]));
  const missing = reader.required().filter((c) => !index.has(c));
  if (missing.length) throw new SourceError(`${path.basename(file)} has no column ${missing.join(', ')} (view ${reader.view.name}); its header is ${columns.slice(0, 20).join(', ')}`);
  return index;
}

function unknownView(name: string, repo: FeatureRepo): never {
  const known = repo.featureViews.map((v) => v.name);
  throw bad(`no feature view ${JSON.stringify(name.slice(0, 64))}; defined: ${known.length ? known.slice(0, 20).join(', ') : 'none'}`);
}
