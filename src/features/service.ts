/**
 * The feature repository on one replica (docs/features.md): the definitions in memory (read from the metadata store,
 * so replicas share them; seeded from `features.file` at start), replaced by `apply`, followed through the change
 * feed by `reload`; rows pushed to push-fed views; and historical retrieval, a bounded number at a time.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { WardenError } from '../errors.ts';
import type { FeatureStore, MetadataStore } from '../storage/index.ts';
import { checkFileSources, featureRepoJson, loadFeatureRepoFile, parseFeatureRepo, type FeatureViewJson } from './definitions.ts';
import { startHistorical, type HistoricalRun } from './historical.ts';
import type { EntityInput } from './pit-join.ts';
import { parsePushRows, pushView } from './push.ts';
import type { EntityDef, FeatureRepo } from './types.ts';

/** Joins running at once per process: each holds a worker thread, sort buffers and a bucket of results. */
export const MAX_CONCURRENT_HISTORICAL = 2;

export interface FeatureServiceOptions {
  metadata: MetadataStore;
  store: FeatureStore;
  logger: Logger;
  /** The definitions file (`features.file`): read at start and written to the store when it differs. */
  file?: string;
  /** Scratch space of historical joins (sort runs, buckets). */
  tmpDir: string;
  /** Folders the file sources of applied definitions must be in (`features.sourceDirs`); unset: anywhere. */
  sourceDirs?: readonly string[];
  now?: () => number;
}

/** The repository as GET /api/v1/features returns it. */
export interface FeatureRepoView {
  entities: EntityDef[];
  featureViews: FeatureViewJson[];
  updatedAt: number | null;
  updatedBy: string | null;
}

export interface HistoricalQuery {
  entities: EntityInput;
  features: readonly string[];
  fullNames?: boolean;
  output?: 'csv' | 'rows';
}

const EMPTY: FeatureRepo = { entities: [], featureViews: [] };

export class FeatureService {
  private current: FeatureRepo = EMPTY;
  private meta: { updatedAt: number; updatedBy: string } | undefined;
  private running = 0;
  private readonly runs = new Set<HistoricalRun>();
  private readonly listeners: ((repo: FeatureRepo) => void)[] = [];

  constructor(private readonly opts: FeatureServiceOptions) {}

  /** The definitions this replica serves by (empty until start). */
  repo(): FeatureRepo {
    return this.current;
  }

  /** Called with the new definitions whenever they change on this replica (apply, reload). */
  onChange(listener: (repo: FeatureRepo) => void): void {
    this.listeners.push(listener);
  }

  view(): FeatureRepoView {
    return { ...featureRepoJson(this.current), updatedAt: this.meta?.updatedAt ?? null, updatedBy: this.meta?.updatedBy ?? null };
  }

  /** Seeds the store from `features.file` (when set, and different), then loads what the store holds. */
  async start(): Promise<void> {
    const { file } = this.opts;
    if (file) {
      let repo: FeatureRepo;
      try {
        repo = await loadFeatureRepoFile(file);
      } catch (e) {
        throw new WardenError('WARDEN_CONFIG_INVALID', `features.file: ${(e as Error).message}`);
      }
      const stored = await this.opts.metadata.getFeatureRepo();
      if (!stored || JSON.stringify(stored.repo) !== JSON.stringify(repo)) {
        await this.opts.metadata.saveFeatureRepo(repo, this.now(), `file:${path.resolve(file)}`);
        this.opts.logger.info({ file: path.resolve(file), entities: repo.entities.length, views: repo.featureViews.length }, 'feature definitions stored from features.file');
      }
    }
    await this.reload();
  }

  /** Re-reads the stored definitions (another replica replaced them). */
  async reload(): Promise<void> {
    const stored = await this.opts.metadata.getFeatureRepo();
    if (!stored) return;
    if (this.meta && stored.updatedAt === this.meta.updatedAt && stored.updatedBy === this.meta.updatedBy) return;
    try {
      this.set(parseFeatureRepo(stored.repo, { source: 'the stored feature definitions' }), stored);
    } catch (e) {
      // Stored by a Warden that validated differently: keep serving the previous definitions, say why.
      this.opts.logger.error({ err: e }, 'the stored feature definitions are not valid; keeping the previous ones');
    }
  }

  /**
   * Validates the definitions (shape, references, and every file source: readable, its columns, its first rows) and
   * replaces the stored ones. `baseDir`: where relative paths resolve (none through the API: paths must be absolute).
   */
  async apply(raw: unknown, actor: string, opts: { baseDir?: string } = {}): Promise<FeatureRepoView> {
    const repo = parseFeatureRepo(raw, { ...opts, source: 'definitions' });
    this.checkSourceDirs(repo);
    await checkFileSources(repo);
    const now = this.now();
    await this.opts.metadata.saveFeatureRepo(repo, now, actor);
    this.set(repo, { updatedAt: now, updatedBy: actor });
    this.opts.logger.info({ actor, entities: repo.entities.length, views: repo.featureViews.length }, 'feature definitions replaced');
    return this.view();
  }

  /** Refuses a file source outside `sourceDirs` (symbolic links followed: the real file must be inside too). */
  private checkSourceDirs(repo: FeatureRepo): void {
    const dirs = this.opts.sourceDirs;
    if (!dirs?.length) return;
    const real = (p: string) => {
      try {
        return realpathSync(p);
      } catch {
        return p;
      }
    };
    const roots = dirs.map((d) => real(path.resolve(d)));
    repo.featureViews.forEach((v, i) => {
      if (v.source.kind !== 'file') return;
      const file = real(v.source.path);
      const inside = roots.some((root) => {
        const rel = path.relative(root, file);
        return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
      });
      if (!inside) throw new WardenError('WARDEN_BAD_REQUEST', `featureViews[${i}].source.path: ${v.source.path} is outside features.sourceDirs (${dirs.join(', ')}); put the file in one of them`);
    });
  }

  /** Appends rows to a push-fed view (its offline store); returns how many. */
  async push(viewName: string, rows: unknown): Promise<{ view: string; rows: number }> {
    const view = pushView(this.current, viewName);
    const records = parsePushRows(this.current, view, rows, this.now());
    const n = await this.opts.store.appendFeatureRows(records);
    return { view: view.name, rows: n };
  }

  /**
   * Starts a point-in-time join (at most {@link MAX_CONCURRENT_HISTORICAL} at once: WARDEN_RATE_LIMITED beyond);
   * resolves when every input has been read and checked, with the output to read.
   */
  async historical(q: HistoricalQuery): Promise<HistoricalRun> {
    if (this.running >= MAX_CONCURRENT_HISTORICAL) {
      throw new WardenError('WARDEN_RATE_LIMITED', `${MAX_CONCURRENT_HISTORICAL} historical retrievals are already running on this server; retry when one has finished`);
    }
    this.running++;
    let release = () => {
      this.running--;
      release = () => undefined;
    };
    try {
      const run = await startHistorical({
        repo: this.current,
        features: q.features,
        entities: q.entities,
        output: q.output ?? 'csv',
        ...(q.fullNames ? { fullNames: true } : {}),
        tmpDir: this.opts.tmpDir,
        store: this.opts.store,
      });
      this.runs.add(run);
      const end = () => {
        this.runs.delete(run);
        release();
      };
      void run.stats().then(end, end);
      return run;
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * A join over entity rows the caller produces (the dataset export's labelled rows): written to a file of this
   * service's scratch space, a row per line, then joined as {@link historical} does, with typed values out
   * (`[payload, [values…]]` per row, in the rows' order).
   */
  async historicalRows(rows: AsyncIterable<{ time: number; keys: Record<string, unknown>; payload: unknown }>, q: { features: readonly string[]; fullNames?: boolean }): Promise<HistoricalRun> {
    if (this.running >= MAX_CONCURRENT_HISTORICAL) {
      throw new WardenError('WARDEN_RATE_LIMITED', `${MAX_CONCURRENT_HISTORICAL} historical retrievals are already running on this server; retry when one has finished`);
    }
    mkdirSync(this.opts.tmpDir, { recursive: true, mode: 0o700 });
    const file = path.join(this.opts.tmpDir, `entities-${Date.now()}-${randomBytes(4).toString('hex')}.jsonl`);
    try {
      const out = createWriteStream(file, { mode: 0o600 });
      const failed = once(out, 'error').then(([e]) => Promise.reject(e as Error));
      failed.catch(() => undefined);
      let buf = '';
      for await (const r of rows) {
        buf += `${JSON.stringify([r.time, r.keys, r.payload])}\n`;
        if (buf.length >= 1 << 20) {
          if (!out.write(buf)) await Promise.race([once(out, 'drain'), failed]);
          buf = '';
        }
      }
      out.end(buf);
      await Promise.race([once(out, 'finish'), failed]);
      // The join has read the file once it is ready (its rows are spooled on the join's side).
      return await this.historical({ entities: { kind: 'jsonl', path: file }, features: q.features, ...(q.fullNames ? { fullNames: true } : {}), output: 'rows' });
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Cancels the joins still running (the server is closing). */
  close(): void {
    for (const run of this.runs) run.cancel();
  }

  private set(repo: FeatureRepo, meta: { updatedAt: number; updatedBy: string }): void {
    this.current = repo;
    this.meta = { updatedAt: meta.updatedAt, updatedBy: meta.updatedBy };
    for (const l of this.listeners) {
      try {
        l(repo);
      } catch (e) {
        this.opts.logger.error({ err: e }, 'a feature definitions listener failed');
      }
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
