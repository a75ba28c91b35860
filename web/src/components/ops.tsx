/**
 * What the executive and on-call views share: the shapes of the public API answers they read, a loader that runs
 * several calls at once (Promise.all) and keeps each call's error to its own panel, and the small rules that turn
 * API numbers into a verdict (an SLO's state, a window's accuracy). Every number comes from a public route.
 */
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, enc, query } from '../api.ts';
import { RefreshContext } from '../refresh.ts';
import type { Marker } from './chart.tsx';
import './ops.css';

// ---- shapes of the answers (docs/api.md)

// One definition of the deployment shapes, shared with the delivery view.
import type { Deployment, DeploymentEvent } from './deployments.tsx';
export type { Deployment, DeploymentEvent };

export interface TrafficFigures {
  requests: number;
  ok: number;
  clientErrors: number;
  serverErrors: number;
  shadow: number;
  rows: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
  cpuMs: number;
}

export interface TrafficPoint extends TrafficFigures {
  ts: number;
}

export interface Traffic {
  deployment: string;
  since: number;
  until: number;
  stepMs: number;
  costPerCpuHour: number | null;
  points: TrafficPoint[];
  totals: TrafficFigures & {
    availability: number | null;
    errorRate: number | null;
    cpuMsPer1k: number | null;
    costPer1k: number | null;
    /** `status`: the HTTP status callers got for the code (5xx failing, 4xx refused). */
    errors: { code: string; count: number; status: number }[];
  };
  versions: { version: number; requests: number }[];
}

export interface Metrics {
  [metric: string]: number | undefined;
}

export interface WindowPerformance {
  task: 'binary' | 'regression';
  labelled: number;
  realized?: Metrics;
  estimated?: Metrics;
  offline?: { metric: string; offline: number; live: number; gap: number; healthy: boolean };
}

/** One window of `GET …/monitoring/windows?summary=true`. */
export interface WindowSummary {
  windowStart: number;
  windowEnd: number;
  rows: number;
  datasetDrift: boolean;
  driftShare: number;
  predictionDrift: boolean;
  qualityFailures: number;
  /** Every drift verdict, worst first (drifted, then by severity). */
  features: { column: string; role: 'feature' | 'prediction'; test: string; score: number | null; scoreKind: 'p_value' | 'distance'; threshold: number; drift: boolean; severity: number | null }[];
  performance?: WindowPerformance;
}

export interface QualityCheck {
  column: string;
  metric: string;
  value: number;
  threshold: number;
  failed: boolean;
}

/** The parts of a full window (`GET …/monitoring/windows` without summary) the on-call view reads. */
export interface WindowFull {
  windowStart: number;
  windowEnd: number;
  rows: number;
  quality: { rows: number; checks: QualityCheck[]; failed: number };
}

export interface Alert {
  fingerprint: string;
  alertname: string;
  labels: Record<string, string>;
  annotations: { summary?: string; description?: string; runbook_url?: string };
  severity: 'page' | 'ticket';
  source: string;
  value?: number;
  state: 'pending' | 'firing';
  status: 'pending' | 'firing' | 'silenced' | 'inhibited' | 'suppressed';
  since: number;
  activeAt: number;
  firingAt?: number;
  silencedBy: string[];
  inhibitedBy: string[];
  suppressedBy: string[];
  receivers: string[];
}

export interface Silence {
  id: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[];
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  state: 'pending' | 'active' | 'expired';
}

export interface Slo {
  name: string;
  deployment: string;
  description?: string;
  sli: { kind: string; [k: string]: unknown };
  objective: number;
  period: string;
  version?: number;
}

export interface SloStatus {
  slo: Slo;
  measures: string;
  now: number;
  budget: { sli: number; good: number; total: number; bad: number; budget: number; allowedBad: number; consumed: number; remaining: number };
  burnRates: { name: string; severity: string; factor: number; longBurnRate: number; shortBurnRate: number; longTotal: number; firing: boolean }[];
  firing: string[];
  warnings?: string[];
}

export interface VersionRecord {
  model: string;
  version: number;
  metadata: { metrics?: Metrics; description?: string };
  createdAt: number;
}

// ---- loading

/** One call's outcome: a failing call leaves the others' panels intact and shows its own error. */
export type Result<T> = { ok: true; data: T } | { ok: false; error: ApiError };

export async function settle<T>(p: Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, data: await p };
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    return { ok: false, error: e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message) };
  }
}

export interface Load<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs `load` when `key` changes and on every refresh tick (as useApi does for one path), so a view can fetch
 * several routes at once with Promise.all. The last good data stays on screen while a reload runs.
 */
export function useLoad<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Load<T> {
  const tick = useContext(RefreshContext);
  const [local, setLocal] = useState(0);
  const [state, setState] = useState<{ key: string | null; data?: T; error?: ApiError; loading: boolean }>({ key, loading: key !== null });
  const seq = useRef(0);
  const fn = useRef(load);
  fn.current = load;
  useEffect(() => {
    if (key === null) {
      setState({ key, loading: false });
      return;
    }
    const my = ++seq.current;
    const ctl = new AbortController();
    setState((s) => ({ ...(s.key === key ? s : { key }), loading: true }));
    fn.current(ctl.signal).then(
      (data) => {
        if (my === seq.current) setState({ key, data, loading: false });
      },
      (e: unknown) => {
        if ((e as Error).name === 'AbortError' || my !== seq.current) return;
        const error = e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message);
        setState((s) => ({ ...(s.key === key ? s : { key }), error, loading: false }));
      },
    );
    return () => ctl.abort();
  }, [key, tick, local]);
  const same = state.key === key;
  return { data: same ? state.data : undefined, error: same ? state.error : undefined, loading: !same || state.loading, reload: () => setLocal((n) => n + 1) };
}

export const get = <T,>(path: string, signal: AbortSignal) => api<T>(path, { signal });

export function trafficPath(name: string, since: number, until: number, step: 'minute' | 'hour'): string {
  return `/api/v1/deployments/${enc(name)}/traffic${query({ since, until, step })}`;
}

export function windowsPath(name: string, version: number, q: { since?: number; limit?: number; summary?: boolean; order?: 'newest' }): string {
  return `/api/v1/models/${enc(name)}/versions/${version}/monitoring/windows${query({ summary: q.summary ? 'true' : undefined, since: q.since, limit: q.limit, order: q.order })}`;
}

/** The summary of a version's newest evaluated window (`order=newest&limit=1`), however long ago; null when none. */
export async function newestWindow(name: string, version: number, signal: AbortSignal): Promise<WindowSummary | null> {
  const r = await get<{ windows: WindowSummary[] }>(windowsPath(name, version, { summary: true, order: 'newest', limit: 1 }), signal);
  return r.windows[0] ?? null;
}

/** The deployment's history events at or after `since`, oldest first (the route filters; pages through it). */
export async function historySince(name: string, since: number, signal: AbortSignal): Promise<DeploymentEvent[]> {
  const out: DeploymentEvent[] = [];
  let after: string | undefined;
  // A range's history is short (deploys, steps); 20 pages of 1,000 bound the reads if it is not.
  for (let page = 0; page < 20; page++) {
    const r = await get<{ events: DeploymentEvent[]; nextCursor: string | null }>(`/api/v1/deployments/${enc(name)}/history${query({ since, after, limit: 1000 })}`, signal);
    out.push(...r.events);
    if (!r.nextCursor || r.events.length < 1000) break;
    after = r.nextCursor;
  }
  return out;
}

// ---- verdicts

export type SloState = 'ok' | 'burning' | 'firing';

/**
 * `firing`: a burn-rate alert row fires (both its windows above the factor). `burning`: the budget is spent
 * faster than the objective allows over some row's long and short windows (burn rate above 1), or it is gone.
 */
export function sloState(s: SloStatus): SloState {
  if (s.firing.length > 0) return 'firing';
  if (s.budget.remaining <= 0 && s.budget.total > 0) return 'burning';
  if (s.burnRates.some((b) => b.longBurnRate > 1 && b.shortBurnRate > 1)) return 'burning';
  return 'ok';
}

export function worstState(states: SloState[]): SloState | null {
  if (states.length === 0) return null;
  if (states.includes('firing')) return 'firing';
  if (states.includes('burning')) return 'burning';
  return 'ok';
}

export const stateTone = (s: SloState | null) => (s === 'firing' ? 'bad' : s === 'burning' ? 'warn' : s === 'ok' ? 'ok' : 'muted');

export interface Quality {
  metric: 'accuracy' | 'rmse';
  /** `realized` from joined labels; `estimated` by CBPE (classifiers) or DLE (regression) before labels. */
  basis: 'realized' | 'estimated';
  method: 'CBPE' | 'DLE' | null;
  value: number;
  windowEnd: number;
  labelled: number;
  offline: number | null;
  /** Higher is better for accuracy, lower for RMSE. */
  higherIsBetter: boolean;
  healthy: boolean | null;
}

/**
 * The live model quality of the newest windows: the realized primary metric (accuracy for classifiers, RMSE for
 * regression) of the newest window with labels; before any label, the newest window's estimate.
 */
export function liveQuality(windows: WindowSummary[], offlineMetrics: Metrics | undefined): Quality | null {
  const withPerf = windows.filter((w) => w.performance);
  const last = withPerf.at(-1);
  if (!last?.performance) return null;
  const task = last.performance.task;
  const metric = task === 'binary' ? 'accuracy' : 'rmse';
  const labelled = [...withPerf].reverse().find((w) => w.performance?.realized?.[metric] !== undefined);
  const offlineOf = (w: WindowSummary | undefined) => offlineMetrics?.[metric] ?? w?.performance?.offline?.offline ?? null;
  const higherIsBetter = metric === 'accuracy';
  if (labelled?.performance?.realized) {
    const value = labelled.performance.realized[metric]!;
    return {
      metric,
      basis: 'realized',
      method: null,
      value,
      windowEnd: labelled.windowEnd,
      labelled: labelled.performance.labelled,
      offline: offlineOf(labelled),
      higherIsBetter,
      healthy: labelled.performance.offline?.healthy ?? null,
    };
  }
  const est = last.performance.estimated?.[metric];
  if (est === undefined) return null;
  const offline = offlineOf(last);
  // Without labels there is no tolerance from the server; 5 % is monitoring's default offlineTolerance.
  const gap = offline ? (est - offline) / Math.abs(offline) : null;
  return {
    metric,
    basis: 'estimated',
    method: task === 'binary' ? 'CBPE' : 'DLE',
    value: est,
    windowEnd: last.windowEnd,
    labelled: 0,
    offline,
    higherIsBetter,
    healthy: gap === null ? null : higherIsBetter ? gap >= -0.05 : gap <= 0.05,
  };
}

/** A runbook link only for http(s) URLs; a relative runbook (`docs/runbooks/…`) is shown as text. */
export function runbookHref(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

// ---- charts

/**
 * Every bucket of [since, until) on the step's grid, null where no traffic was served, so the chart's time axis
 * spans the whole range (markers line up, gaps show as gaps) even though the route returns only busy buckets.
 */
export function denseTraffic(t: Traffic): { ts: number[]; at: (TrafficPoint | null)[] } {
  const step = t.stepMs;
  const byTs = new Map(t.points.map((p) => [p.ts, p]));
  const first = Math.floor(t.since / step) * step;
  const ts: number[] = [];
  const at: (TrafficPoint | null)[] = [];
  // Points off the grid (a route that aligns differently) are kept at their own times.
  const grid = t.points.every((p) => p.ts % step === first % step);
  if (!grid) {
    for (const p of t.points) {
      ts.push(p.ts);
      at.push(p);
    }
    return { ts, at };
  }
  for (let x = first; x < t.until; x += step) {
    ts.push(x);
    at.push(byTs.get(x) ?? null);
  }
  return { ts, at };
}

/** True when some value has no value on either side: such a point draws no line, so the chart needs dots. */
export function hasIsolated(values: (number | null)[]): boolean {
  return values.some((v, i) => v !== null && (values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null);
}

/** Severity page first, then unmuted before muted, then oldest first. */
export function alertOrder(a: Alert, b: Alert): number {
  if (a.severity !== b.severity) return a.severity === 'page' ? -1 : 1;
  if ((a.status === 'firing') !== (b.status === 'firing')) return a.status === 'firing' ? -1 : 1;
  return (a.firingAt ?? a.since) - (b.firingAt ?? b.since);
}

export function eventLabel(e: DeploymentEvent): string {
  const to = e.toVersion !== null ? ` v${e.toVersion}` : '';
  if (e.kind === 'rollout-step') {
    // data.step is the step now entered (1-based), data.to its description ("weight 50%, 5m").
    const step = typeof e.data.step === 'number' ? ` ${e.data.step}` : '';
    const weight = typeof e.data.to === 'string' ? /weight (\d+(?:\.\d+)?)%/.exec(e.data.to)?.[1] : undefined;
    return `step${step}${weight !== undefined ? ` → ${weight}%` : ''}`;
  }
  // A rollout's events keep the stable version in from/to; the version being rolled out is data.candidate.
  const candidate = typeof e.data.candidate === 'number' ? ` v${e.data.candidate}` : to;
  return e.kind.startsWith('rollout-') ? `${e.kind.replace(/^rollout-/, 'rollout ')}${candidate}` : `${e.kind}${to}`;
}

/** The versions an event moved between, as shown in the deploys table. */
export function eventVersions(e: DeploymentEvent): string {
  const move = `${e.fromVersion !== null && e.fromVersion !== e.toVersion ? `v${e.fromVersion} → ` : ''}${e.toVersion !== null ? `v${e.toVersion}` : ''}`;
  return typeof e.data.candidate === 'number' ? `stable ${move} · candidate v${e.data.candidate}` : move;
}

export function eventMarkers(events: DeploymentEvent[]): Marker[] {
  return events.map((e) => ({ ts: e.at, label: eventLabel(e), kind: e.kind }));
}

// ---- controls

/** A group of toggle buttons (aria-pressed), e.g. a time range: each is a real button, reached with Tab. */
export function Toggle<T extends string>(props: { label: string; value: T; options: { value: T; label: string }[]; onChange: (v: T) => void; testid?: string }) {
  return (
    <div class="toggle" role="group" aria-label={props.label} data-testid={props.testid}>
      {props.options.map((o) => (
        <button key={o.value} type="button" aria-pressed={o.value === props.value} onClick={() => props.onChange(o.value)}>
          {o.label}
        </button>
      ))}
    </div>
  );
}
