/**
 * Training–serving skew of feature-store features (docs/features.md#skew): served values, sampled from logged
 * predictions of deployments that read feature views, compared with the offline store's point-in-time value for the
 * same entity and time (the historical join of pit-join.ts, on its worker thread). The skew rate of a feature is the
 * share of sampled rows whose served value differs from the offline one: beyond a relative 1e-6 for floats, exactly
 * for the other types (a null on one side only differs). Exported as warden_feature_skew_rate{view,feature} (once a
 * view's sample has `minRows` rows) with warden_feature_skew_sample_rows{view}; the last report per view is kept for
 * GET /api/v1/features/skew.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FeatureStore, MetadataStore } from '../storage/index.ts';
import { viewJoinKeys } from './definitions.ts';
import { startHistorical } from './historical.ts';
import { KEY_SEPARATOR, type FeatureDtype, type FeatureRepo } from './types.ts';
import type { FeatureValue } from './values.ts';

/** One served row of one view: the entity (join key → value), the request's time and the values served by feature. */
export interface SkewSample {
  view: string;
  deployment: string;
  /** The request's time (epoch ms): the point in time the offline value is looked up at. */
  ts: number;
  /** The entity key as the online store holds it (join-key values joined by KEY_SEPARATOR, in join-key order). */
  entityKey: string;
  /** Feature name → the value the model was served (features absent here are not compared for this row). */
  served: Record<string, FeatureValue>;
}

export interface SkewFeature {
  feature: string;
  /** Rows of the sample that served this feature. */
  compared: number;
  differing: number;
  /** differing / compared (0 when nothing was compared). */
  rate: number;
}

export interface SkewExample {
  feature: string;
  deployment: string;
  ts: number;
  joinKeys: Record<string, string>;
  served: FeatureValue;
  offline: FeatureValue;
}

/** The last check of one view. */
export interface SkewViewReport {
  view: string;
  /** When the check ran (epoch ms). */
  at: number;
  /** Rows of the sample. */
  rows: number;
  /** Rows seen since the previous check, of which `rows` were sampled. */
  seen: number;
  deployments: string[];
  features: SkewFeature[];
  /** A few differing rows (at most 5 per feature), for the runbook's first look. */
  examples: SkewExample[];
  error?: string;
}

/** The lease whose holder runs the skew checks. */
export const SKEW_LEASE = 'features-skew';

/** Float values agree within this relative tolerance. */
export const FLOAT_TOLERANCE = 1e-6;

/** Whether a served value agrees with the offline one for a feature of this type. */
export function sameValue(dtype: FeatureDtype, served: FeatureValue, offline: FeatureValue): boolean {
  if (served === null || offline === null) return served === offline;
  // A boolean reaches the model as 1 or 0.
  if (typeof offline === 'boolean' && typeof served === 'number') return served === (offline ? 1 : 0);
  if (dtype === 'float' && typeof served === 'number' && typeof offline === 'number') {
    if (served === offline) return true;
    return Math.abs(served - offline) <= FLOAT_TOLERANCE * Math.max(Math.abs(served), Math.abs(offline));
  }
  return served === offline;
}

export interface SkewMonitorOptions {
  repo: () => FeatureRepo;
  /** Where push-fed views' rows are read from for the join. */
  store?: FeatureStore;
  /** A folder the joins take folders under (removed after each). */
  tmpDir: string;
  logger: Logger;
  promRegistry: Registry;
  /** Rows sampled per view between two checks at most (a uniform reservoir over the rows seen); default 200. */
  sampleRows?: number;
  /** A view's skew rates are exported once its sample has at least this many rows; default 20. */
  minRows?: number;
  /** How often the check runs (ms); 0: only when run() is called. */
  everyMs?: number;
  /**
   * With several replicas: each check first takes (or renews) this lease, and only its holder checks; the others drop
   * their sample of the interval (the holder's served rows are the sample). Without it every process checks its own.
   */
  lease?: { metadata: Pick<MetadataStore, 'acquireLease' | 'releaseLease'>; holder: string };
  now?: () => number;
  random?: () => number;
}

/**
 * Samples served rows (`observe`, called with what enrichment filled) and checks them against the offline store
 * (`run`, every `everyMs`). Memory is bounded by `sampleRows` per view.
 */
export class SkewMonitor {
  private readonly samples = new Map<string, { rows: SkewSample[]; seen: number }>();
  private readonly reports = new Map<string, SkewViewReport>();
  private readonly rate: Gauge<'view' | 'feature'>;
  private readonly sampleGauge: Gauge<'view'>;
  private readonly failures: Counter<'view'>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SkewViewReport[]> | undefined;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly opts: SkewMonitorOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    const registers = [opts.promRegistry];
    this.rate = new Gauge({
      name: 'warden_feature_skew_rate',
      help: 'Share of sampled served rows whose feature value differs from the offline store\'s point-in-time value for the same entity and time (floats beyond 1e-6 relative, others exactly); set once at least 20 sampled rows served the feature.',
      labelNames: ['view', 'feature'],
      registers,
    });
    this.sampleGauge = new Gauge({
      name: 'warden_feature_skew_sample_rows',
      help: 'Served rows of the feature view compared with the offline store at the last skew check.',
      labelNames: ['view'],
      registers,
    });
    this.failures = new Counter({
      name: 'warden_feature_skew_check_failures_total',
      help: 'Skew checks of a feature view that failed (its offline source could not be joined).',
      labelNames: ['view'],
      registers,
    });
  }

  private get sampleRows(): number {
    return this.opts.sampleRows ?? 200;
  }

  private pending: { view: string; slot: number } | undefined;
  private leader = false;

  /**
   * Counts one served row of the view and says whether the sample keeps it (reservoir sampling: each row seen is kept
   * with equal chance); when true, the caller builds the row and passes it to `observe`. Enrichment calls this on the
   * request path, so a row not kept costs a counter and a random number.
   */
  want(view: string): boolean {
    let s = this.samples.get(view);
    if (!s) {
      s = { rows: [], seen: 0 };
      this.samples.set(view, s);
    }
    s.seen++;
    const slot = s.rows.length < this.sampleRows ? s.rows.length : Math.floor(this.random() * s.seen);
    if (slot >= this.sampleRows) return false;
    this.pending = { view, slot };
    return true;
  }

  /** Puts a served row in the view's sample (after `want` said yes; on its own, it is counted and offered). */
  observe(sample: SkewSample): void {
    const p = this.pending;
    this.pending = undefined;
    if (!p || p.view !== sample.view) {
      if (!this.want(sample.view)) return;
      return this.observe(sample);
    }
    const s = this.samples.get(sample.view)!;
    if (p.slot >= s.rows.length) s.rows.push(sample);
    else s.rows[p.slot] = sample;
  }

  /** The last report of every view checked. */
  report(): SkewViewReport[] {
    return [...this.reports.values()].sort((a, b) => a.view.localeCompare(b.view));
  }

  /** Checks every view sampled since the last run; resolves to the reports written. */
  run(): Promise<SkewViewReport[]> {
    if (this.running) return this.running;
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runOnce(): Promise<SkewViewReport[]> {
    const taken = [...this.samples.entries()];
    this.samples.clear();
    const out: SkewViewReport[] = [];
    for (const [view, s] of taken) {
      try {
        out.push(await this.check(view, s.rows, s.seen));
      } catch (err) {
        this.failures.inc({ view });
        this.opts.logger.warn({ err, view }, 'features: the skew check of the view failed; its next sample is checked at the next run');
        const r: SkewViewReport = { view, at: this.now(), rows: s.rows.length, seen: s.seen, deployments: [], features: [], examples: [], error: (err as Error).message };
        this.reports.set(view, r);
        out.push(r);
      }
    }
    return out;
  }

  private async check(view: string, rows: SkewSample[], seen: number): Promise<SkewViewReport> {
    const repo = this.opts.repo();
    const def = repo.featureViews.find((v) => v.name === view);
    if (!def) throw new Error(`feature view ${view} is no longer defined`);
    const joinKeys = viewJoinKeys(repo, def);
    const dir = path.join(this.opts.tmpDir, `skew-${view.replace(/[^A-Za-z0-9_.-]/g, '_')}-${this.now()}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keysOf = (r: SkewSample): Record<string, string> => {
      const parts = r.entityKey.split(KEY_SEPARATOR);
      return Object.fromEntries(joinKeys.map((k, i) => [k, parts[i] ?? '']));
    };
    const offline: FeatureValue[][] = new Array<FeatureValue[]>(rows.length);
    let columns: string[] = [];
    try {
      const file = path.join(dir, 'entities.jsonl');
      writeFileSync(file, rows.map((r, i) => JSON.stringify([r.ts, keysOf(r), i])).join('\n') + '\n');
      const run = await startHistorical({ repo, features: [view], entities: { kind: 'jsonl', path: file }, output: 'rows', tmpDir: dir, ...(this.opts.store ? { store: this.opts.store } : {}) });
      columns = run.featureColumns;
      for await (const chunk of run.chunks()) {
        for (const [i, values] of JSON.parse(chunk) as [number, FeatureValue[]][]) offline[i] = values;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const features: SkewFeature[] = [];
    const examples: SkewExample[] = [];
    for (const [c, name] of columns.entries()) {
      const dtype = def.schema.find((f) => f.name === name)?.dtype ?? 'string';
      let compared = 0;
      let differing = 0;
      let shown = 0;
      for (const [i, r] of rows.entries()) {
        const served = r.served[name];
        if (served === undefined) continue;
        compared++;
        const off = offline[i]?.[c] ?? null;
        if (sameValue(dtype, served, off)) continue;
        differing++;
        if (shown++ < 5) examples.push({ feature: name, deployment: r.deployment, ts: r.ts, joinKeys: keysOf(r), served, offline: off });
      }
      features.push({ feature: name, compared, differing, rate: compared ? differing / compared : 0 });
    }
    const report: SkewViewReport = { view, at: this.now(), rows: rows.length, seen, deployments: [...new Set(rows.map((r) => r.deployment))].sort(), features, examples };
    this.reports.set(view, report);
    this.sampleGauge.set({ view }, rows.length);
    const minRows = this.opts.minRows ?? 20;
    for (const f of features) {
      if (f.compared >= minRows) this.rate.set({ view, feature: f.feature }, f.rate);
      else this.rate.remove({ view, feature: f.feature });
    }
    this.opts.logger.info({ view, rows: rows.length, seen, skewed: features.filter((f) => f.differing > 0).map((f) => `${f.feature}:${f.rate.toFixed(3)}`) }, 'features: skew check of the view');
    return report;
  }

  /** One scheduled turn: take or renew the lease (when given), then check as its holder, else drop the sample. */
  async turn(): Promise<SkewViewReport[]> {
    const lease = this.opts.lease;
    if (lease) {
      const every = this.opts.everyMs ?? 60_000;
      const got = await lease.metadata.acquireLease(SKEW_LEASE, lease.holder, Math.max(3 * every, 10_000), this.now());
      this.leader = got.acquired;
      if (!got.acquired) {
        this.samples.clear();
        return [];
      }
    }
    return this.run();
  }

  /** Runs a turn every `everyMs`. */
  start(): void {
    const every = this.opts.everyMs ?? 0;
    if (this.timer || every <= 0) return;
    this.timer = setInterval(() => {
      void this.turn().catch((err: unknown) => this.opts.logger.warn({ err }, 'features: skew check failed'));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    const lease = this.opts.lease;
    if (lease && this.leader) await lease.metadata.releaseLease(SKEW_LEASE, lease.holder).catch(() => undefined);
    this.leader = false;
  }
}
