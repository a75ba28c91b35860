/**
 * Model cards: one version's documentation generated from what Warden already stores (registry metadata, the
 * monitoring reference and windows, the deployment history, open alerts), never written by hand, so it cannot go
 * stale. Whatever cannot be filled is listed under `gaps` with what would fill it. Every read is bounded.
 */
import type { AlertView } from '../alerting/index.ts';
import { summarizeWindow, type MonitoringConfig, type WindowSummary } from '../monitoring/index.ts';
import type { DeploymentEventRecord, EventStore, FeatureSpec, MetadataStore, ModelVersionRecord, TensorSpec } from '../storage/index.ts';
import type { Registry } from './registry.ts';

/** The newest windows a card reads: enough for a trend and a drift history, small enough to build per request. */
export const CARD_WINDOWS = 100;
/** The newest deployment events of the deployment scanned for this version's. */
export const CARD_EVENTS_SCANNED = 1000;
/** The newest of this version's deployment events kept on the card. */
export const CARD_EVENTS = 50;
export const CARD_ALERTS = 50;
/** How far up the lineage owner and intended use are inherited (a retrained version carries neither tag). */
const MAX_ANCESTORS = 20;

/** Tags a version's metadata may carry for its card; retraining writes the `lineage.*` ones (lifecycle/retrain/runner.ts). */
export const CARD_TAGS = {
  owner: 'owner',
  intendedUse: 'intended_use',
  parent: 'lineage.parent',
  trigger: 'lineage.trigger',
  job: 'lineage.job',
  datasetSha256: 'lineage.dataset_sha256',
  gate: 'lineage.gate',
} as const;

export interface CardGap {
  /** The card field left empty, as a JSON path (`lineage.sourceCommit`). */
  field: string;
  why: string;
  /** What would fill it. */
  fill: string;
}

/** A value and where the card took it from (`v1 tags.owner`, `model description`). */
export interface Sourced {
  value: string;
  from: string;
}

export interface CardWindowPerformance {
  windowStart: number;
  windowEnd: number;
  rows: number;
  labelled: number;
  /** The primary metric (accuracy for binary tasks, RMSE for regression) measured from joined labels. */
  realized: number | null;
  /** The same metric estimated without labels (CBPE for binary, DLE for regression). */
  estimated: number | null;
}

export interface CardTrend {
  metric: string;
  basis: 'realized' | 'estimated';
  /** Windows with a value of the basis. */
  windows: number;
  /** Mean over the older half of those windows, and over the newer half. */
  earlier: number;
  recent: number;
  change: number;
  direction: 'improving' | 'worsening' | 'stable';
}

export interface ModelCard {
  kind: 'warden.model-card';
  schemaVersion: 1;
  model: string;
  version: number;
  generatedAt: number;
  /** How much of each history was read: the card describes at most these. */
  bounds: { windows: number; deploymentEvents: number; alerts: number };
  overview: {
    modelDescription: string | null;
    description: string | null;
    intendedUse: Sourced | null;
    owner: Sourced | null;
    createdAt: number;
    sha256: string;
    sizeBytes: number;
    format: string;
    aliases: string[];
  };
  signature: { inputs: TensorSpec[]; outputs: TensorSpec[]; features: FeatureSpec[] | null };
  lineage: {
    trainingDataSha256: string | null;
    parentVersion: number | null;
    sourceCommit: string | null;
    trigger: string | null;
    retrainJob: number | null;
    datasetSha256: string | null;
    gate: string | null;
  };
  training: { params: Record<string, string | number | boolean> | null; tags: Record<string, string> };
  offlineMetrics: Record<string, number> | null;
  monitoring: {
    reference: { createdAt: number; source: Record<string, unknown>; rows: number | null } | null;
    windows: number;
    firstWindowStart: number | null;
    lastWindowEnd: number | null;
  };
  performance: {
    task: 'binary' | 'regression';
    metric: string;
    /** Newest first. */
    windows: CardWindowPerformance[];
    latest: { realized: number | null; estimated: number | null; offline: number | null; healthy: boolean | null };
    trend: CardTrend | null;
  } | null;
  drift: {
    windows: number;
    driftedWindows: number;
    /** Columns by the number of windows they drifted in, most first. */
    columns: { column: string; driftedWindows: number }[];
    /** Newest first. */
    history: { windowStart: number; windowEnd: number; rows: number; datasetDrift: boolean; driftShare: number; predictionDrift: boolean; qualityFailures: number; drifted: string[] }[];
  } | null;
  segments: { windowStart: number; windowEnd: number; metric: string; rows: { column: string; value: string; labelled: number; metricValue: number | null }[] } | null;
  importance: {
    method: string;
    /** Windows with importance the mean is over. */
    windows: number;
    /** Mean |SHAP| per feature over those windows, most important first. */
    features: { feature: string; meanAbsShap: number }[];
  } | null;
  /** Changes of the deployment's stable version that involved this version, newest first. */
  deployments: {
    servingNow: 'stable' | 'candidate' | null;
    events: { at: number; kind: string; fromVersion: number | null; toVersion: number | null; candidate: number | null; strategy: string; actor: string; reason: string }[];
  };
  alerts: { alertname: string; severity: string; status: string; since: number; summary: string; runbook: string; labels: Record<string, string> }[] | null;
  gaps: CardGap[];
}

export interface ModelCardSources {
  registry: Registry;
  metadata: Pick<MetadataStore, 'getReference' | 'listDeploymentEvents' | 'getAlias' | 'activeRollout'>;
  /** Absent when monitoring is off: there are no windows to read. */
  events?: Pick<EventStore, 'listMonitorSummaries'>;
  /** Absent when alerting is off. */
  alerts?: () => AlertView[];
  now?: () => number;
}

const tagNumber = (v: string | undefined): number | null => (v !== undefined && /^[0-9]{1,9}$/.test(v) ? Number(v) : null);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Six significant digits: a card is read by people and diffed by machines; more digits are noise in both. */
const sig = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(6)) : v);
const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? sig(v) : null);

/** Builds the card of one version from the stores as they are now. */
export async function buildModelCard(src: ModelCardSources, model: string, versionRef: string): Promise<ModelCard> {
  const m = await src.registry.getModel(model);
  const v = await src.registry.resolve(model, versionRef);
  const gaps: CardGap[] = [];
  const gap = (field: string, why: string, fill: string) => gaps.push({ field, why, fill });
  const tags = v.metadata.tags ?? {};
  const aliases = (await src.registry.listAliases(model)).filter((a) => a.version === v.version).map((a) => a.alias);
  // A push of the same bytes adds metadata fields the version lacks, but a field it has (tags, once any tag is set)
  // cannot change: then only the next version can carry it.
  const fill = (key: keyof typeof v.metadata, json: string, note = '') =>
    v.metadata[key] === undefined
      ? `push the same file again with --metadata '${json}' (adds what the version lacks)${note}`
      : `v${v.version}'s ${key} are fixed once set: push the next version with --metadata '${json}'${note}`;

  const ancestors = await lineageOf(src.registry, v);
  const inherited = (tag: string): Sourced | null => {
    for (const a of ancestors) {
      const value = a.metadata.tags?.[tag];
      if (value) return { value, from: `v${a.version} tags.${tag}` };
    }
    return null;
  };
  const owner = inherited(CARD_TAGS.owner);
  if (!owner) gap('overview.owner', `no tags.${CARD_TAGS.owner} on v${v.version} or the versions it was retrained from`, fill('tags', `{"tags": {"${CARD_TAGS.owner}": "team or person"}}`));
  const intendedUse = inherited(CARD_TAGS.intendedUse) ?? (m.description ? { value: m.description, from: 'model description' } : null);
  if (!intendedUse) gap('overview.intendedUse', `no tags.${CARD_TAGS.intendedUse} on v${v.version} or its parents, and the model has no description`, fill('tags', `{"tags": {"${CARD_TAGS.intendedUse}": "…"}}`, ', or give the model a description when it is created'));

  const features = v.signature.features ?? null;
  if (!features) gap('signature.features', 'the version has no named features (callers send raw tensors)', 'push with --features features.json ([{"name", "datatype", "min", "max"}] in input column order)');

  const lineage: ModelCard['lineage'] = {
    trainingDataSha256: v.metadata.trainingDataSha256 ?? null,
    parentVersion: tagNumber(tags[CARD_TAGS.parent]),
    sourceCommit: v.metadata.sourceCommit ?? null,
    trigger: tags[CARD_TAGS.trigger] || null,
    retrainJob: tagNumber(tags[CARD_TAGS.job]),
    datasetSha256: tags[CARD_TAGS.datasetSha256] || null,
    gate: tags[CARD_TAGS.gate] || null,
  };
  if (!lineage.trainingDataSha256) gap('lineage.trainingDataSha256', 'no training-data hash recorded', fill('trainingDataSha256', '{"trainingDataSha256": "<sha256 of the training file>"}', ' (warden train and retraining record it)'));
  if (lineage.parentVersion === null) gap('lineage.parentVersion', `no tags.${CARD_TAGS.parent}: the version was pushed by hand, not retrained`, fill('tags', `{"tags": {"${CARD_TAGS.parent}": "<version>"}}`, ' (retraining records it)'));
  if (!lineage.sourceCommit) gap('lineage.sourceCommit', 'no source commit recorded', fill('sourceCommit', '{"sourceCommit": "<git commit of the training code>"}'));
  if (!lineage.trigger) gap('lineage.trigger', `no tags.${CARD_TAGS.trigger}`, fill('tags', `{"tags": {"${CARD_TAGS.trigger}": "manual"}}`, ' (retraining records drift, schedule, …)'));

  const offlineMetrics = v.metadata.metrics && Object.keys(v.metadata.metrics).length ? v.metadata.metrics : null;
  if (!offlineMetrics) gap('offlineMetrics', 'no offline (holdout) metrics recorded', fill('metrics', '{"metrics": {"accuracy": 0.91}}', ' (warden train records them)'));

  const card: ModelCard = {
    kind: 'warden.model-card',
    schemaVersion: 1,
    model,
    version: v.version,
    generatedAt: (src.now ?? Date.now)(),
    bounds: { windows: CARD_WINDOWS, deploymentEvents: CARD_EVENTS, alerts: CARD_ALERTS },
    overview: {
      modelDescription: m.description || null,
      description: v.metadata.description ?? null,
      intendedUse,
      owner,
      createdAt: v.createdAt,
      sha256: v.sha256,
      sizeBytes: v.sizeBytes,
      format: v.format,
      aliases,
    },
    signature: { inputs: v.signature.inputs, outputs: v.signature.outputs, features },
    lineage,
    training: { params: v.metadata.params ?? null, tags },
    offlineMetrics,
    monitoring: { reference: null, windows: 0, firstWindowStart: null, lastWindowEnd: null },
    performance: null,
    drift: null,
    segments: null,
    importance: null,
    deployments: await deploymentsOf(src, model, v.version),
    alerts: null,
    gaps,
  };
  await fillMonitoring(src, card, gap);

  if (src.alerts) {
    card.alerts = src
      .alerts()
      .filter((a) => (a.labels.model === model || a.labels.deployment === model) && (a.labels.version === undefined || a.labels.version === String(v.version)))
      .slice(0, CARD_ALERTS)
      .map((a) => ({ alertname: a.alertname, severity: a.severity, status: a.status, since: a.activeAt, summary: a.annotations.summary, runbook: a.annotations.runbook_url, labels: a.labels }));
  } else {
    gap('alerts', 'alerting is off on this server', 'set alerting.enabled: true');
  }
  return card;
}

/** The version, then the one it was retrained from, and so on (a cycle or a deleted parent ends the walk). */
async function lineageOf(registry: Registry, v: ModelVersionRecord): Promise<ModelVersionRecord[]> {
  const out = [v];
  const seen = new Set([v.version]);
  let cur = v;
  while (out.length < MAX_ANCESTORS) {
    const parent = tagNumber(cur.metadata.tags?.[CARD_TAGS.parent]);
    if (parent === null || seen.has(parent)) break;
    const p = await registry.getVersion(v.model, parent).catch(() => undefined);
    if (!p) break;
    out.push(p);
    seen.add(parent);
    cur = p;
  }
  return out;
}

async function deploymentsOf(src: ModelCardSources, model: string, version: number): Promise<ModelCard['deployments']> {
  const scanned = await src.metadata.listDeploymentEvents(model, { limit: CARD_EVENTS_SCANNED, newestFirst: true });
  const candidateOf = (e: DeploymentEventRecord) => (typeof e.data.candidate === 'number' ? e.data.candidate : null);
  const events = scanned
    .filter((e) => e.toVersion === version || e.fromVersion === version || candidateOf(e) === version)
    .slice(0, CARD_EVENTS)
    .map((e) => ({ at: e.at, kind: e.kind, fromVersion: e.fromVersion, toVersion: e.toVersion, candidate: candidateOf(e), strategy: e.strategy, actor: e.actor, reason: e.reason }));
  const stable = await src.metadata.getAlias(model, 'champion');
  const active = await src.metadata.activeRollout(model);
  // Without a champion alias the latest version serves requests that name none.
  const stableVersion = stable?.version ?? (await src.registry.listVersions(model)).at(-1)?.version;
  const servingNow = stableVersion === version ? 'stable' : active?.candidateVersion === version ? 'candidate' : null;
  return { servingNow, events };
}

/** Reads the reference and the newest windows' summaries; fills performance, drift, segments and importance. */
async function fillMonitoring(src: ModelCardSources, card: ModelCard, gap: (field: string, why: string, fill: string) => void): Promise<void> {
  const { model, version } = card;
  const refPath = `PUT /api/v1/models/${model}/versions/${version}/reference (warden reference set ${model} ${version})`;
  const ref = await src.metadata.getReference(model, version);
  if (!src.events || !ref) {
    const why = !src.events ? 'monitoring is off on this server' : 'the version has no monitoring reference';
    const fill = !src.events ? 'set monitoring.enabled: true and register a reference' : `register one: ${refPath}`;
    for (const f of ['monitoring.reference', 'performance', 'drift', 'segments', 'importance']) gap(f, why, fill);
    return;
  }
  const profileRows = (ref.profile as { rows?: unknown } | null)?.rows;
  card.monitoring.reference = { createdAt: ref.createdAt, source: ref.source, rows: typeof profileRows === 'number' ? profileRows : null };
  const config = (ref.config ?? {}) as MonitoringConfig;
  const rows = await src.events.listMonitorSummaries({ model, version, order: 'newest', limit: CARD_WINDOWS });
  const windows: WindowSummary[] = rows.map((r) => (r.summaryJson ? (JSON.parse(r.summaryJson) as WindowSummary) : summarizeWindow(r.result!, r.result!.report)));
  card.monitoring.windows = windows.length;
  card.monitoring.firstWindowStart = windows.at(-1)?.windowStart ?? null;
  card.monitoring.lastWindowEnd = windows[0]?.windowEnd ?? null;
  const noWindows = `no monitoring window of v${version} has been evaluated yet`;
  const sendTraffic = 'send predictions to the version; windows are evaluated as they close (POST /api/v1/monitoring/flush closes them now)';

  if (windows.length === 0) {
    gap('drift', noWindows, sendTraffic);
  } else {
    const counts = new Map<string, number>();
    for (const w of windows) for (const f of w.features) if (f.drift) counts.set(f.column, (counts.get(f.column) ?? 0) + 1);
    card.drift = {
      windows: windows.length,
      driftedWindows: windows.filter((w) => w.datasetDrift).length,
      columns: [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([column, driftedWindows]) => ({ column, driftedWindows })),
      history: windows.map((w) => ({
        windowStart: w.windowStart,
        windowEnd: w.windowEnd,
        rows: w.rows,
        datasetDrift: w.datasetDrift,
        driftShare: sig(w.driftShare),
        predictionDrift: w.predictionDrift,
        qualityFailures: w.qualityFailures,
        drifted: w.features.filter((f) => f.drift).map((f) => f.column),
      })),
    };
  }

  const perf = config.performance;
  if (!perf) {
    const fill = `give "performance": {"task": "binary"|"regression", "target": "<ground-truth column>"} in the reference's monitoring config: ${refPath}`;
    gap('performance', "the reference's monitoring config measures no performance", fill);
    gap('segments', "the reference's monitoring config measures no performance", fill);
  } else {
    fillPerformance(card, windows, perf.task, gap, windows.length === 0 ? noWindows : undefined);
    if (!perf.segments?.length) gap('segments', 'the monitoring config names no segment columns', `add "performance": {"segments": ["<feature>"]} to the reference's monitoring config: ${refPath}`);
    else fillSegments(card, windows, gap);
  }

  const withImportance = windows.filter((w) => w.importance);
  if (withImportance.length === 0) {
    gap('importance', windows.length === 0 ? noWindows : 'no evaluated window has feature importance', 'keep monitoring.importanceRows above 0 and give the version named features; the model must be explainable (docs/monitoring.md#feature-importance-per-window)');
  } else {
    const sums = new Map<string, number[]>();
    for (const w of withImportance) for (const [f, x] of Object.entries(w.importance!.features)) sums.set(f, [...(sums.get(f) ?? []), x]);
    card.importance = {
      method: withImportance[0]!.importance!.method,
      windows: withImportance.length,
      features: [...sums].map(([feature, xs]) => ({ feature, meanAbsShap: sig(mean(xs)) })).sort((a, b) => b.meanAbsShap - a.meanAbsShap || a.feature.localeCompare(b.feature)),
    };
  }
}

function fillPerformance(card: ModelCard, windows: WindowSummary[], task: 'binary' | 'regression', gap: (field: string, why: string, fill: string) => void, noWindows: string | undefined): void {
  const metric = task === 'binary' ? 'accuracy' : 'rmse';
  const pick = (x: unknown) => finite((x as Record<string, unknown> | undefined)?.[metric]);
  const per: CardWindowPerformance[] = windows
    .filter((w) => w.performance)
    .map((w) => ({ windowStart: w.windowStart, windowEnd: w.windowEnd, rows: w.rows, labelled: w.performance!.labelled, realized: pick(w.performance!.realized), estimated: pick(w.performance!.estimated) }));
  const newest = windows.find((w) => w.performance)?.performance;
  const newestOffline = windows.find((w) => w.performance?.offline)?.performance?.offline;
  card.performance = {
    task,
    metric,
    windows: per,
    latest: {
      realized: per.find((p) => p.realized !== null)?.realized ?? null,
      estimated: pick(newest?.estimated),
      offline: finite(newestOffline?.offline) ?? finite(card.offlineMetrics?.[metric]),
      healthy: newestOffline?.healthy ?? null,
    },
    trend: trendOf(per, metric),
  };
  if (noWindows) gap('performance', noWindows, 'send predictions to the version; windows are evaluated as they close');
  if (card.performance.latest.realized === null) gap('performance.latest.realized', `no label has been joined to v${card.version}'s predictions in the newest ${windows.length} windows`, 'send ground truth: POST /api/v1/labels (warden labels import), keyed by request id or by the keys given at prediction time');
  if (card.performance.latest.estimated === null) gap('performance.latest.estimated', `no window has a ${task === 'binary' ? 'CBPE' : 'DLE'} estimate`, 'the reference needs the prediction column and the target; send predictions so windows close with a sample');
  if (!card.performance.trend) gap('performance.trend', 'fewer than 2 windows have a value of the primary metric', 'let more windows close with predictions (and labels for a realized trend)');
}

/** The newer half of the windows against the older half: a trend that one noisy window does not flip. */
function trendOf(per: CardWindowPerformance[], metric: string): CardTrend | null {
  const realized = per.filter((p) => p.realized !== null);
  const basis = realized.length >= 2 ? 'realized' : 'estimated';
  const values = (basis === 'realized' ? realized.map((p) => p.realized!) : per.filter((p) => p.estimated !== null).map((p) => p.estimated!)).reverse();
  if (values.length < 2) return null;
  const half = Math.floor(values.length / 2);
  const earlier = mean(values.slice(0, half));
  const recent = mean(values.slice(values.length - half));
  const change = recent - earlier;
  // Within 1 % of the earlier level is noise for both accuracy and RMSE; RMSE improves as it falls.
  const better = metric === 'rmse' ? change < 0 : change > 0;
  const direction = Math.abs(change) <= 0.01 * Math.abs(earlier) ? 'stable' : better ? 'improving' : 'worsening';
  return { metric, basis, windows: values.length, earlier: sig(earlier), recent: sig(recent), change: sig(change), direction };
}

function fillSegments(card: ModelCard, windows: WindowSummary[], gap: (field: string, why: string, fill: string) => void): void {
  const metric = card.performance!.metric;
  const w = windows.find((x) => x.performance?.segments?.length);
  if (!w) {
    gap('segments', 'no window has labelled rows to break down by segment', 'send ground truth: POST /api/v1/labels');
    return;
  }
  card.segments = {
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    metric,
    rows: w.performance!.segments!.map((s) => ({ column: s.column, value: s.value, labelled: s.labelled, metricValue: finite((s.metrics as unknown as Record<string, unknown>)[metric]) })),
  };
}
