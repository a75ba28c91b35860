import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import { WardenError } from '../errors.ts';
import type { Registry } from '../registry/index.ts';
import type { ModelTable } from '../serving/index.ts';
import type { EventStore, LabelledRow, MetadataStore, MonitorResultRecord, PredictionEvent, ReferenceRecord } from '../storage/index.ts';
import { WindowCollector, type ClosedWindow, type WindowSpec } from './collector.ts';
import { columnLayout, eventRows, MAX_MONITORED_COLUMNS, type ColumnLayout } from './columns.ts';
import { alignedCounts, checkDriftConfig, evaluateDrift, type DriftReport } from './drift/engine.ts';
import { createMonitoringMetrics, publishWindow, type MonitoringMetrics } from './metrics.ts';
import { parseMonitoringConfig, type MonitoringConfig } from './monitor-config.ts';
import { ProfileBuilder, inferSchema, mergeProfiles, type DatasetProfile, type ProfileSchema, type Table } from './profile/index.ts';
import { evaluateQuality, type QualityReport } from './quality.ts';
import { summarizeWindow } from './summary.ts';
import { backgroundDigest, IMPORTANCE_BACKGROUND_ROWS, importanceColumns, importanceRows, meanAbsShap, type ExplainRows, type WindowImportance } from './importance.ts';
import { atTensorPrecision, checkNumericCells, signatureRanges } from './reference-table.ts';
import { estimatePerformance, fitPerformance, realizedPerformance, type PerformanceModel, type WindowPerformance } from './performance-window.ts';
import {
  checkEmbeddingConfig,
  embeddingDrift,
  fitMultivariate,
  multivariateDrift,
  type EmbeddingDrift,
  type MultivariateDrift,
  type MultivariateModel,
} from './vector-drift.ts';

export interface MonitoringDefaults {
  /** Default tumbling window (ms of event time). */
  windowMs: number;
  /** How often closed windows are stored and evaluated. */
  tickMs: number;
  /** A window past its end closes after this long without events. */
  idleCloseMs: number;
}

export interface MonitoringServiceDeps {
  metadata: MetadataStore;
  events: EventStore;
  registry: Registry;
  table: ModelTable;
  promRegistry: PromRegistry;
  logger: Logger;
  /** Names this process in stored profiles. */
  replica: string;
  defaults: MonitoringDefaults;
  now?: () => number;
  /**
   * Whether this replica leads the late-label re-evaluation (a lease among replicas sharing the store): every replica
   * evaluates the windows it closes, but re-evaluating windows for labels that arrived later is done once. Default:
   * always (one process).
   */
  leader?: () => Promise<boolean>;
  /**
   * Global feature importance per window (docs/monitoring.md): `rows` rows of each window's sample (chosen by their
   * values) explained by `explain` (the ExplainService, wired in app.ts), KernelSHAP within `budget` coalitions per
   * row. Absent: none.
   */
  importance?: { explain: ExplainRows; rows: number; budget: number };
}

/** The reference of a version as monitoring uses it. */
export interface ActiveReference {
  record: ReferenceRecord;
  schema: ProfileSchema;
  profile: StoredReferenceProfile;
  config: MonitoringConfig;
  layout: ColumnLayout;
  window: WindowSpec;
}

/** The reference profile as stored: the profile plus the fitted multivariate model, when configured. */
type StoredReferenceProfile = DatasetProfile & { multivariate?: MultivariateModel; performance?: PerformanceModel };

/** What a window's stored profile carries besides the profile itself. */
interface StoredWindowProfile {
  /** createdAt of the reference the profile was built against: profiles of an older reference are not merged. */
  referenceId: number;
  profile: DatasetProfile;
  extraFeatures: Record<string, number>;
}

/** One evaluated window as the API serves it. */
export interface WindowResult {
  model: string;
  version: number;
  windowStart: number;
  windowEnd: number;
  rows: number;
  drift: DriftReport;
  quality: QualityReport;
  extraFeatures: Record<string, number>;
  embeddings?: EmbeddingDrift[];
  multivariate?: MultivariateDrift;
  /** Realized (from joined labels) and estimated (CBPE / DLE) performance, concept drift, offline gap. */
  performance?: WindowPerformance;
  /** Mean |SHAP| per feature over some of the window's sample rows (absent when off, or the version cannot be explained). */
  importance?: WindowImportance;
  /** Histograms of the window per column (for reports; no raw rows). */
  histograms: { column: string; labels: string[]; reference: number[]; current: number[] }[];
}

export type ReferenceSource = { kind: 'table'; table: Table; name: string; sha256?: string } | { kind: 'traffic'; since: number; until: number };

export { MAX_MONITORED_COLUMNS };

/**
 * Continuous data-quality and drift monitoring: references per model version, window profiles built from
 * the prediction log's batches, and a loop that stores closed windows, merges replicas' partial profiles,
 * evaluates drift and quality, stores the verdicts and exports them as Prometheus gauges.
 */
export class MonitoringService {
  private readonly refs = new Map<string, ActiveReference>();
  /** Label count at the last refresh; a change means late labels to fold into realized performance. */
  private labelsSeen = -1;
  private readonly collector: WindowCollector;
  private readonly metrics: MonitoringMetrics;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** End of the last count window closed per version (see disjointCountWindows). */
  private readonly countWindowEnd = new Map<string, number>();
  /** Why a version (under a given reference) has no feature importance: found once, logged once, not tried again. */
  private readonly unexplainable = new Map<string, string>();

  constructor(private readonly deps: MonitoringServiceDeps) {
    this.collector = new WindowCollector({ idleCloseMs: deps.defaults.idleCloseMs, ...(deps.now ? { now: deps.now } : {}) });
    this.metrics = createMonitoringMetrics(deps.promRegistry);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(): Promise<void> {
    for (const r of await this.deps.metadata.listReferences()) {
      try {
        this.activate(r);
        // Gauges show the latest verdict from the moment the server is up, not only after new traffic.
        const [latest] = await this.results(r.model, r.version, { limit: 1, order: 'newest' });
        if (latest) publishWindow(this.metrics, r.model, r.version, latest.rows, latest.drift, latest.quality, latest);
      } catch (err) {
        this.deps.logger.error({ err, model: r.model, version: r.version }, 'monitoring reference could not be activated');
      }
    }
    this.timer = setInterval(() => void this.tick().catch((err) => this.deps.logger.error({ err }, 'monitoring tick failed')), this.deps.defaults.tickMs);
    this.timer.unref();
  }

  /** Called with each batch the prediction log flushes: profiles are built here, never on the request path. */
  onEvents(batch: readonly PredictionEvent[]): void {
    this.collector.add(batch);
  }

  private activate(record: ReferenceRecord): ActiveReference {
    const config = parseMonitoringConfig(record.config);
    const schema = record.schema as ProfileSchema;
    const active: ActiveReference = {
      record,
      schema,
      profile: record.profile as StoredReferenceProfile,
      config,
      layout: record.source.layout as ColumnLayout,
      window: config.window ?? { kind: 'time', sizeMs: this.deps.defaults.windowMs },
    };
    this.refs.set(`${record.model}\u0000${record.version}`, active);
    this.collector.setTarget({ model: record.model, version: record.version, schema, layout: active.layout, window: active.window });
    return active;
  }

  /** Version number of a reference (number, alias or latest). */
  async resolveVersion(model: string, ref: string): Promise<number> {
    return (await this.deps.registry.resolve(model, ref)).version;
  }

  reference(model: string, version: number): ActiveReference | undefined {
    return this.refs.get(`${model}\u0000${version}`);
  }

  /** Profiles a reference (from a table or from logged traffic) and starts monitoring the version against it. */
  async setReference(model: string, versionRef: string, source: ReferenceSource, rawConfig: unknown): Promise<ReferenceRecord> {
    const config = parseMonitoringConfig(rawConfig);
    const version = await this.deps.registry.resolve(model, versionRef);
    const layout = columnLayout(version.signature);
    if (layout.features.length === 0) {
      throw new WardenError('WARDEN_BAD_REQUEST', `model ${model} v${version.version} has no tabular inputs to monitor (needs a 1-D or 2-D input with a fixed width)`);
    }
    const known = [...layout.features, ...layout.predictions];
    const unknown = (config.columns ?? []).filter((c) => !known.includes(c));
    if (unknown.length) {
      throw new WardenError('WARDEN_BAD_REQUEST', `monitoring config names column(s) ${unknown.join(', ')}, which model ${model} v${version.version} does not have; its columns are ${known.slice(0, 40).join(', ')}`);
    }
    let table: Table;
    let sourceInfo: Record<string, unknown>;
    if (source.kind === 'table') {
      checkNumericCells(source.table, layout, version.signature);
      table = await this.withPredictions(model, version.version, layout, atTensorPrecision(source.table, layout, version.signature));
      sourceInfo = { kind: 'file', name: source.name, ...(source.sha256 ? { sha256: source.sha256 } : {}), rows: source.table.rows.length };
    } else {
      table = await this.tableFromTraffic(model, version.version, layout, source.since, source.until);
      sourceInfo = { kind: 'traffic', since: source.since, until: source.until, rows: table.rows.length };
    }
    if (table.rows.length < 2) throw new WardenError('WARDEN_BAD_REQUEST', `the reference has ${table.rows.length} rows; it needs at least 2`);
    const wanted = config.columns ?? [...layout.features, ...layout.predictions.filter((p) => table.names.includes(p))];
    const missing = layout.features.filter((f) => wanted.includes(f) && !table.names.includes(f));
    if (missing.length) {
      throw new WardenError('WARDEN_BAD_REQUEST', `the reference lacks feature column(s) ${missing.join(', ')}; it has ${table.names.slice(0, 40).join(', ')}`);
    }
    // Features first, then predictions: refused requests count only the leading feature columns.
    const ordered = [...layout.features.filter((c) => wanted.includes(c)), ...layout.predictions.filter((c) => wanted.includes(c))];
    if (ordered.length > MAX_MONITORED_COLUMNS) throw new WardenError('WARDEN_BAD_REQUEST', `at most ${MAX_MONITORED_COLUMNS} columns can be monitored per version`);
    const ranges = signatureRanges(version.signature);
    const schema = inferSchema(table, {
      columns: ordered,
      predictionColumns: layout.predictions.filter((c) => ordered.includes(c)),
      ...(config.categorical ? { categorical: config.categorical } : {}),
      ...(config.numeric ? { numeric: config.numeric } : {}),
      ...(config.bins ? { bins: config.bins } : {}),
      ...(config.sampleSize ? { sampleSize: config.sampleSize } : {}),
      ranges,
    });
    if (config.drift) checkDriftConfig(schema, config.drift);
    if (config.embeddings) checkEmbeddingConfig(schema, config.embeddings);
    const idx = ordered.map((c) => table.names.indexOf(c));
    const builder = new ProfileBuilder(schema);
    table.rows.forEach((row, i) => builder.add(idx.map((j) => row[j]), `ref:${i}`));
    const profile: StoredReferenceProfile = builder.finish();
    if (config.multivariate) profile.multivariate = fitMultivariate(schema, profile.sample, config.multivariate);
    if (config.performance) {
      if (source.kind !== 'table') throw new WardenError('WARDEN_BAD_REQUEST', 'performance estimation needs a reference file with the target column');
      profile.performance = fitPerformance(config.performance, table, schema);
    }
    const record: ReferenceRecord = {
      model,
      version: version.version,
      schema,
      profile,
      config,
      source: { ...sourceInfo, layout },
      createdAt: this.now(),
    };
    await this.deps.metadata.saveReference(record);
    this.activate(record);
    this.deps.logger.info({ model, version: version.version, rows: table.rows.length, columns: ordered.length }, 'monitoring reference registered');
    return record;
  }

  /**
   * Gives a new version of a deployment the monitoring of the version it replaces: the same config, on the old
   * reference's sample of rows, with predictions re-profiled by running the new version on them. Undefined when the
   * old version has no reference or the new one already has its own (kept). Performance estimation is not carried:
   * it is fitted on the old version's predictions and needs the reference's ground truth, which a sample lacks.
   */
  async inheritReference(model: string, fromVersion: number, toVersion: number): Promise<{ rows: number; dropped: string[] } | undefined> {
    const from = this.reference(model, fromVersion);
    if (!from || this.reference(model, toVersion)) return undefined;
    const target = await this.deps.registry.getVersion(model, toVersion);
    const features = columnLayout(target.signature).features;
    const names = from.schema.columns.map((c) => c.name);
    const keep = features.filter((f) => names.includes(f));
    const idx = keep.map((f) => names.indexOf(f));
    // Categorical columns keep their sampled values as category keys ("1"); the model takes them as numbers.
    const cell = (c: unknown) => (typeof c === 'string' && c.trim() !== '' && Number.isFinite(Number(c)) ? Number(c) : (c ?? null));
    const rows = from.profile.sample.map((r) => idx.map((j) => cell(r[j])));
    const { performance: _performance, ...config } = from.config;
    const dropped = _performance ? ['performance (fitted on the old version; set a reference with the target to estimate it)'] : [];
    await this.setReference(model, String(toVersion), { kind: 'table', table: { names: keep, rows }, name: `inherited from v${fromVersion}` }, config);
    return { rows: rows.length, dropped };
  }

  /**
   * Brings the active references in line with the store: references another replica set, replaced or deleted
   * (replica sync calls it when the store reports a change). Unchanged ones (same createdAt) are left alone, so
   * their open windows keep collecting.
   */
  async reloadReferences(): Promise<{ activated: number; removed: number }> {
    const stored = await this.deps.metadata.listReferences();
    const keep = new Set<string>();
    let activated = 0;
    let removed = 0;
    for (const r of stored) {
      const k = `${r.model}\u0000${r.version}`;
      keep.add(k);
      if (this.refs.get(k)?.record.createdAt === r.createdAt) continue;
      try {
        this.activate(r);
        activated++;
      } catch (err) {
        this.deps.logger.error({ err, model: r.model, version: r.version }, 'monitoring reference could not be activated');
      }
    }
    for (const [k, ref] of this.refs) {
      if (keep.has(k)) continue;
      this.refs.delete(k);
      this.collector.removeTarget(ref.record.model, ref.record.version);
      removed++;
    }
    return { activated, removed };
  }

  async deleteReference(model: string, version: number): Promise<void> {
    if (!(await this.deps.metadata.deleteReference(model, version))) {
      throw new WardenError('WARDEN_NOT_FOUND', `model ${model} v${version} has no monitoring reference`);
    }
    this.refs.delete(`${model}\u0000${version}`);
    this.collector.removeTarget(model, version);
  }

  /** Adds prediction columns by running the model on the reference rows when the table has none. */
  private async withPredictions(model: string, version: number, layout: ColumnLayout, table: Table): Promise<Table> {
    if (layout.predictions.every((p) => table.names.includes(p))) return table;
    const input = layout.inputs[0];
    if (layout.inputs.length !== 1 || !input || !input.columns.every((c) => table.names.includes(c))) return table;
    const lv = this.deps.table.peek(model, version) ?? (await this.deps.table.load(model, version));
    const spec = lv.record.signature.inputs[0]!;
    if (spec.datatype !== 'FP32' && spec.datatype !== 'FP64') return table;
    const idx = input.columns.map((c) => table.names.indexOf(c));
    const valid = table.rows.map((r) => idx.every((j) => typeof r[j] === 'number' && Number.isFinite(r[j] as number)));
    const preds: (number | null)[][] = table.rows.map(() => new Array(layout.predictions.length).fill(null));
    const rowsIdx = table.rows.map((_, i) => i).filter((i) => valid[i]);
    const k = idx.length;
    for (let s = 0; s < rowsIdx.length; s += 1000) {
      const chunk = rowsIdx.slice(s, s + 1000);
      const data = spec.datatype === 'FP32' ? new Float32Array(chunk.length * k) : new Float64Array(chunk.length * k);
      chunk.forEach((ri, r) => idx.forEach((j, c) => (data[r * k + c] = table.rows[ri]![j] as number)));
      const outputs = await lv.runtime.run([{ name: input.name, datatype: spec.datatype, dims: [chunk.length, k], data }]);
      let col = 0;
      for (const o of layout.outputs) {
        const t = outputs.find((x) => x.name === o.name);
        const w = o.columns.length;
        if (t && t.data.length === chunk.length * w) {
          chunk.forEach((ri, r) => {
            for (let j = 0; j < w; j++) preds[ri]![col + j] = Number(t.data[r * w + j]);
          });
        }
        col += w;
      }
    }
    return { names: [...table.names, ...layout.predictions], rows: table.rows.map((r, i) => [...r, ...preds[i]!]) };
  }

  private async tableFromTraffic(model: string, version: number, layout: ColumnLayout, since: number, until: number): Promise<Table> {
    const names = [...layout.features, ...layout.predictions];
    const rows: unknown[][] = [];
    let after = 0;
    for (;;) {
      const page = await this.deps.events.queryPredictions({ model, version, status: 'ok', since, until, afterSeq: after, limit: 1000 });
      for (const e of page) rows.push(...eventRows(layout, names, e).rows);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
      if (rows.length > 2_000_000) throw new WardenError('WARDEN_BAD_REQUEST', 'the time range holds more than 2,000,000 rows; choose a shorter one');
    }
    return { names, rows };
  }

  /**
   * Windows are identified by their event-time range, and a count window takes its range from its events:
   * consecutive count windows of replayed traffic sharing one event_time would get the same range and be
   * merged into one when evaluated. Each count window therefore starts where the previous one ended.
   */
  private disjointCountWindows(closed: ClosedWindow[]): ClosedWindow[] {
    for (const w of closed) {
      if (this.reference(w.model, w.version)?.window.kind !== 'count') continue;
      const k = `${w.model}\u0000${w.version}`;
      const last = this.countWindowEnd.get(k);
      if (last !== undefined && w.windowStart < last) {
        w.windowStart = last;
        w.windowEnd = Math.max(w.windowEnd, last + 1);
      }
      this.countWindowEnd.set(k, w.windowEnd);
    }
    return closed;
  }

  /** Closes due windows (all with `flush`), stores their profiles and evaluates each. */
  tick(opts: { flush?: boolean } = {}): Promise<void> {
    const run = async () => {
      const closed = this.disjointCountWindows(this.collector.takeClosed({ all: opts.flush ?? false }));
      if (closed.length === 0) {
        if (!this.deps.leader || (await this.deps.leader())) await this.refreshForLabels();
        return;
      }
      await this.deps.events.appendProfiles(
        closed.map((w) => ({
          model: w.model,
          version: w.version,
          windowStart: w.windowStart,
          windowEnd: w.windowEnd,
          replica: this.deps.replica,
          rows: w.rows,
          profile: { referenceId: this.reference(w.model, w.version)?.record.createdAt ?? 0, profile: w.profile, extraFeatures: w.extraFeatures } satisfies StoredWindowProfile,
          createdAt: this.now(),
        })),
      );
      const keys = new Map<string, ClosedWindow>();
      for (const w of closed) keys.set(`${w.model}\u0000${w.version}\u0000${w.windowStart}\u0000${w.windowEnd}`, w);
      for (const w of keys.values()) {
        try {
          await this.evaluate(w.model, w.version, w.windowStart, w.windowEnd);
        } catch (err) {
          this.deps.logger.error({ err, model: w.model, version: w.version, windowStart: w.windowStart }, 'window evaluation failed');
        }
      }
    };
    // One tick at a time; a flush waits for the running tick, then runs.
    const next = (this.ticking ?? Promise.resolve()).then(run);
    this.ticking = next.finally(() => {
      if (this.ticking === guarded) this.ticking = undefined;
    });
    const guarded = this.ticking;
    return next;
  }

  /** Merges every stored partial profile of a window and evaluates drift and quality against the reference. */
  async evaluate(model: string, version: number, windowStart: number, windowEnd: number): Promise<WindowResult> {
    const ref = this.reference(model, version);
    if (!ref) throw new WardenError('WARDEN_NOT_FOUND', `model ${model} v${version} has no monitoring reference`);
    const stored = (await this.deps.events.listProfiles({ model, version, since: windowStart, until: windowStart + 1 })).filter((p) => p.windowEnd === windowEnd);
    const parts = stored.map((p) => p.profile as StoredWindowProfile).filter((p) => p.referenceId === ref.record.createdAt);
    const merged = mergeProfiles(ref.schema, parts.map((p) => p.profile));
    const extra: Record<string, number> = {};
    for (const p of parts) for (const [k, n] of Object.entries(p.extraFeatures)) extra[k] = (extra[k] ?? 0) + n;
    const drift = evaluateDrift(ref.schema, ref.profile, merged, ref.config.drift ?? {});
    const quality = evaluateQuality(ref.schema, merged, ref.config.quality ?? {});
    const histograms = windowHistograms(ref, merged);
    const vectors: Pick<WindowResult, 'embeddings' | 'multivariate' | 'performance' | 'importance'> = {};
    if (ref.profile.performance) vectors.performance = await this.performance(ref, merged, windowStart, windowEnd);
    if (ref.config.embeddings) vectors.embeddings = embeddingDrift(ref.schema, ref.config.embeddings, ref.profile.sample, merged.sample);
    if (ref.profile.multivariate) {
      const mv = multivariateDrift(ref.schema, ref.profile.multivariate, merged.sample);
      if (mv) vectors.multivariate = mv;
    }
    const importance = await this.importance(ref, merged, windowStart, windowEnd);
    if (importance) vectors.importance = importance;
    const result: WindowResult = { model, version, windowStart, windowEnd, rows: merged.rows, drift, quality, extraFeatures: extra, ...vectors, histograms };
    const record: MonitorResultRecord = {
      model,
      version,
      windowStart,
      windowEnd,
      rows: merged.rows,
      datasetDrift: drift.datasetDrift,
      qualityFailures: quality.failed + Object.keys(extra).length,
      report: { drift, quality, extraFeatures: extra, ...vectors, histograms },
      createdAt: this.now(),
    };
    record.summary = summarizeWindow(record, record.report);
    await this.deps.events.saveMonitorResult(record);
    publishWindow(this.metrics, model, version, merged.rows, drift, quality, vectors);
    return result;
  }

  /**
   * Mean |φ| per feature over rows of the window's merged sample chosen by their values (importanceRows), so one
   * process and a fleet whose partial samples merge to the same rows explain the same ones. Computed once per window:
   * a re-evaluation (late labels, a late partial profile) whose rows, reference and settings hash to the stored
   * fingerprint keeps the stored values. Never fails the window: a version that cannot be explained has none (logged once), and any other failure
   * is logged and leaves this window without one.
   */
  private async importance(ref: ActiveReference, merged: DatasetProfile, windowStart: number, windowEnd: number): Promise<WindowImportance | undefined> {
    const imp = this.deps.importance;
    if (!imp || imp.rows <= 0) return undefined;
    const { model, version, createdAt } = ref.record;
    const key = `${model}\u0000${version}\u0000${createdAt}`;
    if (this.unexplainable.has(key)) return undefined;
    const unexplainable = (reason: string) => {
      this.unexplainable.set(key, reason);
      this.deps.logger.info({ model, version, reason }, 'monitoring windows of this version get no feature importance');
      return undefined;
    };
    try {
      const cols = importanceColumns(ref.layout, ref.schema);
      if (typeof cols === 'string') return unexplainable(cols);
      const background = IMPORTANCE_BACKGROUND_ROWS;
      // The salt names the reference by its content (the background's rows), not by when it was registered: the
      // same traffic against the same reference gives the same fingerprint in any process.
      const salt = `${backgroundDigest(cols, ref.profile.sample, background)}:${imp.rows}:${background}:${imp.budget}`;
      const picked = importanceRows(cols, merged.sample, imp.rows, salt);
      if (!picked) {
        this.deps.logger.debug({ model, version, windowStart }, 'window has no served sample row to explain');
        return undefined;
      }
      const stored = (await this.deps.events.listMonitorResults({ model, version, since: windowStart, until: windowStart + 1 })).find((r) => r.windowEnd === windowEnd);
      const before = (stored?.report as { importance?: WindowImportance } | undefined)?.importance;
      if (before?.fingerprint === picked.fingerprint) return before;
      const started = performance.now();
      const r = await imp.explain(await this.deps.registry.getVersion(model, version), picked.rows, { background, budget: imp.budget });
      const out: WindowImportance = {
        method: r.method,
        output: r.output,
        space: r.space,
        rows: r.explanations.length,
        background: r.background.rows,
        ...(r.kernel ? { budget: r.kernel.budget, exact: r.kernel.exact } : {}),
        expected: r.expected,
        features: meanAbsShap(r.features, r.explanations),
        fingerprint: picked.fingerprint,
      };
      this.deps.logger.debug({ model, version, windowStart, rows: out.rows, method: out.method, ms: Math.round(performance.now() - started) }, 'window feature importance');
      return out;
    } catch (err) {
      if (err instanceof WardenError && err.code === 'WARDEN_BAD_REQUEST') return unexplainable(err.message);
      this.deps.logger.warn({ err, model, version, windowStart }, 'window feature importance failed; the window is evaluated without it');
      return undefined;
    }
  }

  /** Realized performance from the labels joined so far, and the estimate from the window's sample. */
  private async performance(ref: ActiveReference, merged: DatasetProfile, windowStart: number, windowEnd: number): Promise<WindowPerformance> {
    const pm = ref.profile.performance!;
    const { model, version } = ref.record;
    const rows: LabelledRow[] = [];
    let afterId = 0;
    for (;;) {
      const page = await this.deps.events.queryLabelled({ model, version, since: windowStart, until: windowEnd, afterId, limit: 5000 });
      rows.push(...page);
      if (page.length < 5000) break;
      afterId = page[page.length - 1]!.id;
    }
    const out = ref.layout.outputs.find((o) => o.columns.includes(pm.prediction));
    const tensor = { name: out?.name ?? pm.prediction, column: Math.max(0, out?.columns.indexOf(pm.prediction) ?? 0) };
    const offline = (await this.deps.registry.getVersion(model, version)).metadata.metrics;
    const perf = realizedPerformance(pm, rows, offline, ref.layout.inputs[0]?.columns ?? [], tensor);
    const estimated = estimatePerformance(pm, ref.schema, merged.sample);
    if (estimated) perf.estimated = estimated;
    return perf;
  }

  /**
   * Labels arrive late: when the store holds labels this process has not evaluated yet, re-evaluate the
   * windows of versions that measure performance (newest 500 per version), so realized figures catch up.
   */
  private async refreshForLabels(): Promise<void> {
    const withPerformance = [...this.refs.values()].filter((r) => r.profile.performance);
    if (withPerformance.length === 0) return;
    const stats = await this.deps.events.labelStats();
    const seen = stats.total + stats.duplicates;
    if (seen === this.labelsSeen) return;
    this.labelsSeen = seen;
    for (const ref of withPerformance) {
      const { model, version } = ref.record;
      // Only the newest 500 are read (newest first, then put back in time order): reading every stored report to keep
      // the last 500 parsed a year of hourly reports (~100 MB) on the serving thread at each start (≈ 3 s stall).
      // Their summaries give the window bounds without reading (and parsing) the full reports.
      const windows = (await this.deps.events.listMonitorSummaries({ model, version, order: 'newest', limit: 500 })).reverse();
      for (const w of windows) {
        // A window whose profiles are gone (pruned, or a store filled without them) would be re-evaluated as empty
        // and its stored verdict overwritten with nothing: keep it.
        const profiles = await this.deps.events.listProfiles({ model, version, since: w.windowStart, until: w.windowStart + 1, limit: 1 });
        if (profiles.length === 0) continue;
        await this.evaluate(model, version, w.windowStart, w.windowEnd);
      }
    }
  }

  /** Stored verdicts of a version's windows, oldest first (or newest first with order: 'newest'). */
  async results(model: string, version: number, q: { since?: number; until?: number; limit?: number; order?: 'oldest' | 'newest' } = {}): Promise<WindowResult[]> {
    const rows = await this.deps.events.listMonitorResults({ model, version, ...q });
    return rows.map((r) => ({
      model: r.model,
      version: r.version,
      windowStart: r.windowStart,
      windowEnd: r.windowEnd,
      rows: r.rows,
      ...(r.report as Pick<WindowResult, 'drift' | 'quality' | 'extraFeatures' | 'histograms' | 'embeddings' | 'multivariate' | 'performance' | 'importance'>),
    }));
  }

  /**
   * Windows without histograms (GET …/monitoring/windows?summary=true) as a JSON array's text: each window's stored
   * summary passed through unparsed, so a year of hourly windows is read without parsing 8,760 full reports;
   * windows stored before summaries are summarised here.
   */
  async summariesJson(model: string, version: number, q: { since?: number; until?: number; limit?: number; order?: 'oldest' | 'newest' } = {}): Promise<string> {
    const rows = await this.deps.events.listMonitorSummaries({ model, version, ...q });
    return `[${rows.map((r) => r.summaryJson ?? JSON.stringify(summarizeWindow(r.result!, r.result!.report))).join(',')}]`;
  }

  openWindows(): number {
    return this.collector.openWindows();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Store what is open so a restart loses no profiled traffic.
    await this.tick({ flush: true }).catch((err) => this.deps.logger.error({ err }, 'final monitoring flush failed'));
  }
}

function windowHistograms(ref: ActiveReference, cur: DatasetProfile): WindowResult['histograms'] {
  return ref.schema.columns.map((spec, i) => {
    const c = alignedCounts(spec, ref.profile.columns[i]!, cur.columns[i]!);
    return { column: spec.name, labels: c.labels, reference: c.ref, current: c.cur };
  });
}
