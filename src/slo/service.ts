import type { Logger } from 'pino';
import { WardenError } from '../errors.ts';
import type { WindowResult } from '../monitoring/index.ts';
import type { EventStore, PredictionEvent, SliCountRecord } from '../storage/index.ts';
import { SloAlertSource } from './alert-source.ts';
import {
  bucketMs,
  burnWindows,
  errorBudgetOf,
  multiWindowAlertsOf,
  scaledPeriodMs,
  type BurnAlert,
  type ErrorBudget,
  type SliPoint,
  type TimeOptions,
} from './burn-rate.ts';
import { describeSli, parseSlo, periodMs, sameSli, WINDOW_SLI_KINDS, type SloDefinition } from './definition.ts';
import { costPer1k, requestCount, windowCount, type DeploymentUsage } from './sli.ts';
import { SloFile } from './slo-file.ts';
import type { SloSource } from './slo-store.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Bound on buckets waiting to be written (a replay spread over many buckets while the store is down). */
const MAX_PENDING = 200_000;
/** Bound on deployments tracked for cost attribution between two samples (unknown model names included). */
const MAX_USAGE = 10_000;

export interface SloServiceDeps {
  events: Pick<EventStore, 'addSliCounts' | 'setSliCounts' | 'querySli' | 'sumSli' | 'deleteSli'>;
  logger: Logger;
  /** Path of the SLO definitions file (slo.yaml). */
  file: string;
  /** Where definitions live instead of the file: the metadata store, for replicas sharing one (StoreSloSource). */
  source?: SloSource;
  /** Multiplies every duration; 1 in production (see TimeOptions). */
  timeScale: number;
  /** Recorded buckets older than this (scaled) are deleted. */
  retentionDays: number;
  /** Price of one CPU-hour, for cost SLIs; cost SLOs are refused without it. */
  costPerCpuHour?: number;
  /**
   * Feature freshness SLIs: the staleness (ms) of a feature view in this replica's online cache (now - newest event
   * time held); Infinity when the view is held with no rows, undefined when this replica does not hold it (it then
   * counts nothing for the SLO).
   */
  featureStaleness?: (view: string) => number | undefined;
  /** How often counts are written and windows polled (at most one bucket). */
  tickMs: number;
  /** Evaluated monitoring windows of a deployment (every version), starting in [since, until). */
  windows?: (deployment: string, q: { since: number; until: number }) => Promise<WindowResult[]>;
  now?: () => number;
  /** Process CPU seconds used so far (user + system); default from process.cpuUsage(). */
  cpuSeconds?: () => number;
  /**
   * Names of the registered models. With it, an API write of an SLO on an unknown deployment is refused, and SLOs of
   * the file on unknown deployments are logged and flagged in their status; without it, deployments are not checked.
   */
  modelNames?: () => Promise<readonly string[]>;
}

/** What an SLO's status page shows: its SLI and error budget over the period, and the burn rate of every policy row. */
export interface SloStatus {
  slo: SloDefinition;
  /** What the SLI counts as good. */
  measures: string;
  now: number;
  timeScale: number;
  /** The period after time scaling (ms). */
  periodMs: number;
  budget: ErrorBudget;
  burnRates: BurnAlert[];
  /** Names of the policy rows firing now (e.g. "1h/5m"). */
  firing: string[];
  /** Cost SLIs: the last cost per 1,000 inferences measured on this replica, and when. */
  lastCost?: { costPer1k: number; at: number };
  /** Feature freshness SLIs: the last staleness of the view sampled on this replica (ms; null: no rows), and when. */
  lastStaleness?: { stalenessMs: number | null; at: number };
  /** Why the SLO may measure nothing (its deployment is not a registered model). */
  warnings?: string[];
}

/** One deployment's outcome in a loop run: loops never die of one bad item. */
export interface SloRunResult {
  deployment: string;
  ok: boolean;
  error?: string;
  windows?: number;
}

const unregisteredText = (slo: SloDefinition) =>
  `SLO ${slo.name}: deployment ${slo.deployment} is not a registered model; the SLO counts no events (SLI 100%, never burning) until a model of that name is pushed (list models with 'warden models list')`;

const cpuFromProcess = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * SLOs per deployment: definitions in slo.yaml (also edited through the API), good/total counts recorded per
 * bucket from the prediction log's batches (latency, availability, explanation coverage, cost) and from evaluated monitoring windows
 * (accuracy, drift_free, completeness), error budgets and multi-window burn rates read back from the store.
 */
export class SloService {
  private slos: SloDefinition[] = [];
  private byDeployment = new Map<string, SloDefinition[]>();
  private readonly file: SloSource;
  private fileMtime = 0;
  private pending = new Map<string, SliCountRecord>();
  private usage = new Map<string, DeploymentUsage>();
  private costBucket: number | undefined;
  private lastCpu = 0;
  private readonly lastCost = new Map<string, { costPer1k: number; at: number }>();
  private freshBucket: number | undefined;
  /** Freshness SLOs: the worst staleness sampled in the current bucket, by SLO name. */
  private freshWorst = new Map<string, number>();
  private readonly lastStaleness = new Map<string, { stalenessMs: number | null; at: number }>();
  /** Window SLOs whose whole period has been read from monitoring since they were (re)defined. */
  private readonly backfilled = new Set<string>();
  private lastWindowPoll = -Infinity;
  private lastPrune = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> = Promise.resolve();
  private writing: Promise<unknown> = Promise.resolve();
  private flushing: Promise<void> | undefined;
  private flushAfter: Promise<void> | undefined;

  constructor(private readonly deps: SloServiceDeps) {
    this.file = deps.source ?? new SloFile(deps.file);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private get time(): TimeOptions {
    return { timeScale: this.deps.timeScale };
  }

  /** Recording resolution (ms): a minute, scaled. */
  get bucketMs(): number {
    return bucketMs(this.time);
  }

  get timeScale(): number {
    return this.deps.timeScale;
  }

  /** Path of the definitions file. */
  get path(): string {
    return this.file.file;
  }

  /** Loads slo.yaml (refusing to start on an invalid one) and starts the recording loop. */
  async start(): Promise<void> {
    try {
      const state = await this.file.read();
      state.slos.forEach((s) => this.check(s));
      this.apply(state.slos);
      this.fileMtime = state.mtimeMs;
    } catch (e) {
      throw new WardenError('WARDEN_CONFIG_INVALID', (e as Error).message);
    }
    await this.warnUnknownDeployments(this.slos);
    this.lastCpu = (this.deps.cpuSeconds ?? cpuFromProcess)();
    this.costBucket = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    const every = Math.max(10, Math.min(this.deps.tickMs, this.bucketMs));
    this.timer = setInterval(() => void this.tick().catch((err) => this.deps.logger.error({ err }, 'slo tick failed')), every);
    this.timer.unref();
  }

  /** Stops the loop and writes what is counted (call after the prediction log has drained). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.tick({ windows: false }).catch((err) => this.deps.logger.error({ err }, 'final slo flush failed'));
  }

  /** Checks what the schema cannot: the period fits the retention, cost SLOs have a price. */
  private check(slo: SloDefinition): void {
    if (periodMs(slo) > this.deps.retentionDays * DAY) {
      throw new WardenError('WARDEN_BAD_REQUEST', `SLO ${slo.name}: period ${slo.period} is longer than the ${this.deps.retentionDays} days of recorded series (slo.retentionDays)`);
    }
    if (slo.sli.kind === 'cost' && this.deps.costPerCpuHour === undefined) {
      throw new WardenError('WARDEN_BAD_REQUEST', `SLO ${slo.name}: a cost SLI needs slo.costPerCpuHour in the server config (the price of one CPU-hour)`);
    }
  }

  /** The deployments of these SLOs that are not registered models (none when models are not known). */
  private async unknownDeployments(slos: readonly SloDefinition[]): Promise<{ unknown: Set<string>; models: readonly string[] }> {
    if (!this.deps.modelNames || slos.length === 0) return { unknown: new Set(), models: [] };
    const models = await this.deps.modelNames();
    return { unknown: new Set(slos.map((s) => s.deployment).filter((d) => !models.includes(d))), models };
  }

  /**
   * SLOs of the file may lead their model (the file ships with the config, the model is pushed later), so they are
   * kept, but each one whose deployment is not a registered model is logged at warn: until it is pushed, the SLO
   * counts no events and can never burn.
   */
  private async warnUnknownDeployments(slos: readonly SloDefinition[]): Promise<void> {
    try {
      const { unknown } = await this.unknownDeployments(slos);
      for (const s of slos) {
        if (unknown.has(s.deployment)) this.deps.logger.warn({ slo: s.name, deployment: s.deployment, file: this.file.file }, unregisteredText(s));
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'SLO deployments not checked: listing the registered models failed');
    }
  }

  /** Installs a new set of definitions; series of removed SLOs, and of SLOs whose SLI changed, are deleted. */
  private apply(next: SloDefinition[]): string[] {
    const before = new Map(this.slos.map((s) => [s.name, s]));
    const reset: string[] = [];
    for (const s of next) {
      const old = before.get(s.name);
      if (old && !sameSli(old, s)) reset.push(s.name);
      if (!old || !sameSli(old, s)) this.backfilled.delete(s.name);
    }
    const names = new Set(next.map((s) => s.name));
    for (const name of before.keys()) if (!names.has(name)) reset.push(name);
    this.slos = next;
    const by = new Map<string, SloDefinition[]>();
    for (const s of next) by.set(s.deployment, [...(by.get(s.deployment) ?? []), s]);
    this.byDeployment = by;
    for (const [k, r] of this.pending) if (reset.includes(r.slo) || !names.has(r.slo)) this.pending.delete(k);
    return reset;
  }

  private async resetSeries(names: readonly string[]): Promise<void> {
    for (const slo of names) await this.deps.events.deleteSli({ slo });
  }

  /** Every SLO, in file order. */
  list(): SloDefinition[] {
    return [...this.slos];
  }

  /** One SLO, or WARDEN_NOT_FOUND. */
  get(name: string): SloDefinition {
    const slo = this.slos.find((s) => s.name === name);
    if (!slo) throw new WardenError('WARDEN_NOT_FOUND', `no SLO named ${name}; list them with GET /api/v1/slos`);
    return slo;
  }

  /**
   * Creates or replaces the SLO `name` from an API body (its `name`, if given, must match) and writes slo.yaml.
   * Changing the deployment or the SLI starts the SLO's series afresh; changing objective or period keeps it.
   */
  async put(name: string, body: unknown): Promise<{ slo: SloDefinition; created: boolean }> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new WardenError('WARDEN_BAD_REQUEST', 'body must be a JSON object: {"deployment", "sli": {"kind", …}, "objective", "period"}');
    }
    const raw = body as Record<string, unknown>;
    if (raw.name !== undefined && raw.name !== name) {
      throw new WardenError('WARDEN_BAD_REQUEST', `body names SLO ${JSON.stringify(raw.name)} but the path names ${name}; leave "name" out or make them match`);
    }
    const slo = parseSlo({ ...raw, name });
    this.check(slo);
    const { unknown, models } = await this.unknownDeployments([slo]);
    if (unknown.size) {
      // Through the API a name that matches no model is almost always a typo, and the SLO would silently measure
      // nothing (SLI 100%, never burning). An SLO that leads its model belongs in the SLO file, which only warns.
      const shown = models.slice(0, 20).join(', ');
      throw new WardenError(
        'WARDEN_MODEL_NOT_FOUND',
        `SLO ${name}: deployment ${slo.deployment} is not a registered model, so the SLO would count no events. ` +
          `Registered models: ${models.length ? `${shown}${models.length > 20 ? `, … (${models.length} in all)` : ''}` : 'none'} (list them with 'warden models list' or GET /api/v1/models). ` +
          `Push the model first ('warden push model.onnx --model ${slo.deployment}'), or define an SLO ahead of its model in ${this.file.file}`,
      );
    }
    return this.serialized(async () => {
      const created = !this.slos.some((s) => s.name === name);
      const state = await this.file.upsert(slo);
      await this.resetSeries(this.apply(state.slos));
      this.fileMtime = state.mtimeMs;
      this.deps.logger.info({ slo: name, deployment: slo.deployment, created }, 'SLO saved');
      return { slo, created };
    });
  }

  /** Deletes the SLO and its recorded series. */
  remove(name: string): Promise<void> {
    return this.serialized(async () => {
      this.get(name);
      // Gone from the file already (edited by hand since the last reload) is as good as removed here.
      await this.file.remove(name);
      const state = await this.file.read();
      await this.resetSeries(this.apply(state.slos));
      this.fileMtime = state.mtimeMs;
      this.deps.logger.info({ slo: name }, 'SLO deleted');
    });
  }

  /** File edits one at a time, so two API calls cannot lose each other's change. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.writing.then(fn);
    this.writing = next.catch(() => undefined);
    return next;
  }

  /** Counts a batch of the prediction log (called off the request path). */
  onEvents(batch: readonly PredictionEvent[]): void {
    if (this.slos.length === 0) return;
    const bucket = this.bucketMs;
    const costs = this.deps.costPerCpuHour !== undefined && this.slos.some((s) => s.sli.kind === 'cost');
    for (const e of batch) {
      if (costs) this.countUsage(e);
      // A shadow answer is never returned to a caller: it costs CPU (counted above) but is no part of the service.
      if (e.status === 'shadow') continue;
      const slos = this.byDeployment.get(e.model);
      if (!slos) continue;
      for (const slo of slos) {
        if (slo.version !== undefined && e.version !== slo.version) continue;
        const c = requestCount(slo.sli, e);
        if (!c) continue;
        const ts = Math.floor(e.ts / bucket) * bucket;
        this.add({ slo: slo.name, ts, source: 'traffic', good: c.good, total: c.total });
      }
    }
  }

  private countUsage(e: PredictionEvent): void {
    let u = this.usage.get(e.model);
    if (!u) {
      if (this.usage.size >= MAX_USAGE) return;
      u = { inferences: 0, busyMs: 0, requests: 0 };
      this.usage.set(e.model, u);
    }
    // A shadow wave is one record for all its copies, and its time is the one run that answered them.
    u.requests += e.copies?.requestIds.length ?? 1;
    u.busyMs += Math.max(0, e.latencyMs);
    if (e.status === 'ok') u.inferences++;
  }

  private add(r: SliCountRecord): void {
    const k = `${r.slo}\u0000${r.ts}`;
    const p = this.pending.get(k);
    if (p) {
      p.good += r.good;
      p.total += r.total;
    } else if (this.pending.size < MAX_PENDING) {
      this.pending.set(k, { ...r });
    }
  }

  /** Writes the counted buckets (added to what other replicas wrote); on failure they stay for the next flush. */
  flush(): Promise<void> {
    // A write is at the store: counts added since must not be skipped by returning it. Wait for it, then write
    // what is pending (one follow-up flush shared by every caller meanwhile).
    if (this.flushing) {
      this.flushAfter ??= this.flushing
        .catch(() => undefined)
        .then(() => {
          this.flushAfter = undefined;
          return this.flush();
        });
      return this.flushAfter;
    }
    if (this.pending.size === 0) return Promise.resolve();
    const batch = [...this.pending.values()];
    this.pending = new Map();
    const write = this.deps.events.addSliCounts(batch).catch((err: unknown) => {
      for (const r of batch) this.add(r);
      throw err;
    });
    this.flushing = write.finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /**
   * One loop run: pick up edits of slo.yaml, take a cost sample at each bucket boundary, write the counts, poll
   * monitoring for evaluated windows, prune old buckets. Returns the outcome per deployment polled.
   */
  tick(opts: { windows?: boolean } = {}): Promise<SloRunResult[]> {
    const run = async (): Promise<SloRunResult[]> => {
      const now = this.now();
      await this.reload();
      this.sampleCost(now, opts.windows === false);
      this.sampleFreshness(now, opts.windows === false);
      await this.flush();
      let results: SloRunResult[] = [];
      const pollEvery = Math.max(this.deps.tickMs, Math.round(60_000 * this.deps.timeScale));
      if (opts.windows !== false && now - this.lastWindowPoll >= pollEvery) {
        this.lastWindowPoll = now;
        results = await this.pollWindows(now);
      }
      if (now - this.lastPrune >= Math.max(this.deps.tickMs, HOUR * this.deps.timeScale)) {
        this.lastPrune = now;
        await this.deps.events.deleteSli({ before: now - this.deps.retentionDays * DAY * this.deps.timeScale });
      }
      return results;
    };
    const next = this.ticking.then(run);
    this.ticking = next.catch(() => undefined);
    return next;
  }

  /**
   * Re-reads the definitions when they changed (an edit of slo.yaml, or another replica's API call on the shared
   * store: ReplicaSync calls this on the feed's 'slo' topic so it need not wait for the next tick).
   */
  async reload(): Promise<void> {
    const mtime = await this.file.mtime();
    if (mtime === this.fileMtime) return;
    await this.serialized(async () => {
      try {
        const state = await this.file.read();
        state.slos.forEach((s) => this.check(s));
        const before = new Map(this.slos.map((x) => [x.name, x.deployment]));
        await this.resetSeries(this.apply(state.slos));
        this.deps.logger.info({ file: this.file.file, slos: state.slos.length }, 'SLO file reloaded');
        await this.warnUnknownDeployments(state.slos.filter((x) => before.get(x.name) !== x.deployment));
      } catch (err) {
        this.deps.logger.error({ err, file: this.file.file }, 'SLO file changed but is invalid; keeping the previous definitions');
      }
      this.fileMtime = mtime;
    });
  }

  /**
   * Cost SLIs: at each bucket boundary, the process CPU time since the last sample priced at costPerCpuHour and
   * split across deployments (sli.ts costPer1k) gives each deployment's cost per 1,000 inferences; the bucket
   * just ended gets one event, good when that cost is within the SLO's maxCostPer1k.
   */
  private sampleCost(now: number, force: boolean): void {
    const price = this.deps.costPerCpuHour;
    const costSlos = this.slos.filter((s) => s.sli.kind === 'cost');
    const bucket = Math.floor(now / this.bucketMs) * this.bucketMs;
    if (this.costBucket === undefined) this.costBucket = bucket;
    if (price === undefined || (bucket === this.costBucket && !force)) return;
    const cpu = (this.deps.cpuSeconds ?? cpuFromProcess)();
    const costs = costPer1k(cpu - this.lastCpu, price, this.usage);
    for (const slo of costSlos) {
      if (slo.sli.kind !== 'cost') continue;
      const c = costs.get(slo.deployment);
      if (c === undefined) continue;
      this.lastCost.set(slo.deployment, { costPer1k: c, at: now });
      this.add({ slo: slo.name, ts: this.costBucket, source: 'traffic', good: c <= slo.sli.maxCostPer1k ? 1 : 0, total: 1 });
    }
    this.lastCpu = cpu;
    this.usage = new Map();
    this.costBucket = bucket;
  }

  /**
   * Feature freshness SLIs: every tick samples the staleness of each watched view in this replica's online cache and
   * keeps the bucket's worst; when the bucket ends it gets one event, good when that worst stayed within
   * maxStalenessMs. A view with no rows is as stale as can be (bad); a view this replica does not hold counts nothing.
   * With several replicas each adds its own minute, so the SLI is the share of replica-minutes that were fresh.
   */
  private sampleFreshness(now: number, force: boolean): void {
    const slos = this.slos.filter((s) => s.sli.kind === 'feature_freshness');
    const bucket = Math.floor(now / this.bucketMs) * this.bucketMs;
    this.freshBucket ??= bucket;
    const probe = this.deps.featureStaleness;
    if (bucket !== this.freshBucket) this.emitFreshness(slos);
    this.freshBucket = bucket;
    if (probe) {
      for (const slo of slos) {
        if (slo.sli.kind !== 'feature_freshness') continue;
        const ms = probe(slo.sli.view);
        if (ms === undefined) continue;
        this.lastStaleness.set(slo.name, { stalenessMs: Number.isFinite(ms) ? ms : null, at: now });
        this.freshWorst.set(slo.name, Math.max(this.freshWorst.get(slo.name) ?? -Infinity, ms));
      }
    }
    if (force) this.emitFreshness(slos);
  }

  private emitFreshness(slos: readonly SloDefinition[]): void {
    const ts = this.freshBucket;
    if (ts === undefined) return;
    for (const slo of slos) {
      if (slo.sli.kind !== 'feature_freshness') continue;
      const worst = this.freshWorst.get(slo.name);
      if (worst === undefined) continue;
      this.add({ slo: slo.name, ts, source: 'traffic', good: worst <= slo.sli.maxStalenessMs ? 1 : 0, total: 1 });
    }
    this.freshWorst = new Map();
  }

  /**
   * Window SLIs: reads evaluated windows from monitoring — the whole period the first time an SLO is seen,
   * then the last day (scaled), so windows re-evaluated after late labels are picked up — and sets one row per
   * window (replacing that window's earlier counts).
   */
  private async pollWindows(now: number): Promise<SloRunResult[]> {
    const fetch = this.deps.windows;
    if (!fetch) return [];
    const by = new Map<string, SloDefinition[]>();
    for (const s of this.slos) if (WINDOW_SLI_KINDS.includes(s.sli.kind)) by.set(s.deployment, [...(by.get(s.deployment) ?? []), s]);
    const lookback = Math.max(DAY * this.deps.timeScale, 3 * this.deps.tickMs);
    const results: SloRunResult[] = [];
    for (const [deployment, slos] of by) {
      try {
        const since = Math.min(...slos.map((s) => now - (this.backfilled.has(s.name) ? lookback : scaledPeriodMs(s, this.time))));
        const windows = await fetch(deployment, { since, until: now + 1 });
        const records: SliCountRecord[] = [];
        for (const slo of slos) {
          for (const w of windows) {
            if (slo.version !== undefined && w.version !== slo.version) continue;
            const c = windowCount(slo.sli, w);
            if (!c) continue;
            const ts = Math.floor((w.windowEnd - 1) / this.bucketMs) * this.bucketMs;
            records.push({ slo: slo.name, ts, source: `v${w.version}/${w.windowStart}-${w.windowEnd}`, good: c.good, total: c.total });
          }
        }
        await this.deps.events.setSliCounts(records);
        for (const s of slos) this.backfilled.add(s.name);
        results.push({ deployment, ok: true, windows: windows.length });
      } catch (err) {
        this.deps.logger.error({ err, deployment }, 'SLO window poll failed');
        results.push({ deployment, ok: false, error: (err as Error).message });
      }
    }
    return results;
  }

  /** Recorded buckets of an SLO in [since, until), this replica's unwritten counts included. */
  async series(name: string, q: { since: number; until: number }): Promise<SliPoint[]> {
    this.get(name);
    await this.flush().catch((err) => this.deps.logger.warn({ err }, 'SLO counts not written yet'));
    return this.deps.events.querySli({ slo: name, since: q.since, until: q.until });
  }

  /** How far back status and alerts read: the period, or the longest burn window if longer. */
  lookbackMs(slo: SloDefinition): number {
    return Math.max(scaledPeriodMs(slo, this.time), ...burnWindows(periodMs(slo), this.time).map((w) => w.longMs));
  }

  /** SLI, error budget and burn rates of one SLO now. */
  async status(name: string): Promise<SloStatus> {
    const slo = this.get(name);
    const now = this.now();
    // Sums of the period and of each burn window, added up in the store: a month of minute buckets stays there.
    const periodWindow = scaledPeriodMs(slo, this.time);
    const windows = [...new Set([periodWindow, ...burnWindows(periodMs(slo), this.time).flatMap((w) => [w.longMs, w.shortMs])])];
    // This replica's unwritten counts first, as series() does.
    await this.flush().catch((err) => this.deps.logger.warn({ err }, 'SLO counts not written yet'));
    const sums = await this.deps.events.sumSli({ slo: name, ranges: windows.map((ms) => ({ since: now - ms, until: now })) });
    const counts = (ms: number) => sums[windows.indexOf(ms)] ?? { good: 0, total: 0 };
    const burnRates = multiWindowAlertsOf(slo, counts, this.time);
    const status: SloStatus = {
      slo,
      measures: describeSli(slo.sli),
      now,
      timeScale: this.deps.timeScale,
      periodMs: periodWindow,
      budget: errorBudgetOf(slo, counts(periodWindow)),
      burnRates,
      firing: burnRates.filter((b) => b.firing).map((b) => b.name),
    };
    const cost = this.lastCost.get(slo.deployment);
    if (slo.sli.kind === 'cost' && cost) status.lastCost = cost;
    const stale = this.lastStaleness.get(slo.name);
    if (slo.sli.kind === 'feature_freshness' && stale) status.lastStaleness = stale;
    const { unknown } = await this.unknownDeployments([slo]).catch(() => ({ unknown: new Set<string>() }));
    if (unknown.size) status.warnings = [unregisteredText(slo)];
    return status;
  }

  /** The alert source to register with the alerting engine: SLOErrorBudgetBurn per SLO and policy row. */
  alertSource(): SloAlertSource {
    return new SloAlertSource({
      list: () => this.list(),
      series: (name, since, until) => this.series(name, { since, until }),
      lookbackMs: (slo) => this.lookbackMs(slo),
      timeScale: this.deps.timeScale,
    });
  }
}
