import { useContext, useMemo } from 'preact/hooks';
import { enc, query, type ApiError } from '../api.ts';
import type { ViewProps } from '../app.tsx';
import { HistogramBars, TimeChart, type Series } from '../components/chart.tsx';
import { DeploymentSelect, paramsOf, useDeployments } from '../components/deployments.tsx';
import { RequestSearch, errorKind, fmtScore, parseError, type PredictionEvent } from '../components/predictions.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel } from '../components/ui.tsx';
import { DAY, fmtMs, fmtNum, fmtPct, fmtTime } from '../format.ts';
import { RefreshContext, useApi } from '../refresh.ts';
import { href, navigate } from '../router.ts';
import './debug.css';

/** One window of `…/monitoring/windows?summary=true` (no histograms). */
interface WindowSummary {
  windowStart: number;
  windowEnd: number;
  rows: number;
  datasetDrift: boolean;
  driftShare: number;
  qualityFailures: number;
  features: { column: string; test: string; score: number; drift: boolean }[];
}

interface ColumnDrift {
  column: string;
  role: 'feature' | 'prediction';
  kind: 'numeric' | 'categorical';
  test: string;
  scoreKind: 'p_value' | 'distance';
  score: number;
  statistic: number;
  threshold: number;
  drift: boolean;
  referenceRows: number;
  currentRows: number;
  skipped?: string;
}

/** One window of `…/monitoring/windows` in full. */
interface FullWindow {
  windowStart: number;
  windowEnd: number;
  rows: number;
  drift: { columns: ColumnDrift[]; driftShare: number; datasetDrift: boolean; predictionDrift: boolean };
  quality: { checks: { column: string; metric: string; value: number; threshold: number; failed: boolean }[]; failed: number };
  histograms: { column: string; labels: string[]; reference: number[]; current: number[] }[];
}

/** `GET /api/v1/deployments/{name}/traffic` (the parts read here). */
interface Traffic {
  since: number;
  until: number;
  totals: { requests: number; clientErrors: number; serverErrors: number; errorRate: number | null; errors: { code: string; count: number; status: number }[] };
}

const RANGES: { key: string; label: string; ms: number | null }[] = [
  { key: '24h', label: 'last 24 h', ms: DAY },
  { key: '7d', label: 'last 7 days', ms: 7 * DAY },
  { key: '30d', label: 'last 30 days', ms: 30 * DAY },
  { key: '1y', label: 'last year', ms: 365 * DAY },
  { key: 'all', label: 'all windows', ms: null },
];

/**
 * How far past its threshold a column's drift is, on one scale for every test (as the windows summary's
 * `severity`): distance / threshold, or threshold / p-value; above 1 is drift. Sorted as the summary's `features`: drifted first,
 * then by severity, skipped last.
 */
export function severity(c: Pick<ColumnDrift, 'score' | 'threshold' | 'scoreKind' | 'skipped'>): number {
  if (c.skipped || !Number.isFinite(c.score)) return -1;
  const s = c.scoreKind === 'p_value' ? (c.score > 0 ? c.threshold / c.score : 1e9) : c.threshold > 0 ? c.score / c.threshold : c.score > 0 ? 1e9 : 0;
  return Math.min(1e9, s);
}

/** A summary window from either answer shape (the summary, or a full window when the server predates it). */
function asSummary(w: WindowSummary | FullWindow): WindowSummary {
  if ('features' in w && Array.isArray(w.features)) return w;
  const f = w as FullWindow;
  return {
    windowStart: f.windowStart,
    windowEnd: f.windowEnd,
    rows: f.rows,
    datasetDrift: f.drift.datasetDrift,
    driftShare: f.drift.driftShare,
    qualityFailures: f.quality?.failed ?? 0,
    features: f.drift.columns.map((c) => ({ column: c.column, test: c.test, score: c.score, drift: c.drift })),
  };
}

/**
 * Bin edges arrive as float32 values widened to doubles (`≥ 0.019999999552965164`); 4 significant digits is
 * what they were. Category labels pass through.
 */
export function binLabel(label: string): string {
  return label.replace(/-?\d+\.\d{5,}(?:e[-+]?\d+)?/g, (n) => String(Number(Number(n).toPrecision(4))));
}

/** Epoch ms rounded down to the minute, so a path built from "now" stays the same between refreshes. */
function minuteAgo(ms: number, tick: number): number {
  void tick;
  return Math.floor((Date.now() - ms) / 60_000) * 60_000;
}

/** Failed requests read from the log for examples. */
const EXAMPLES = 200;

export function DebugView({ route }: ViewProps) {
  const deps = useDeployments();
  const tick = useContext(RefreshContext);
  const list = deps.data?.deployments ?? [];
  const deployment = route.params.get('deployment') || list[0]?.name || '';
  const dep = list.find((d) => d.name === deployment);
  const version = route.params.get('version') || String(dep?.stable?.version ?? dep?.versions.at(-1) ?? '');
  const rangeKey = route.params.get('range') || '30d';
  const range = RANGES.find((r) => r.key === rangeKey) ?? RANGES[2]!;
  const set = (changes: Record<string, string | undefined>) => {
    const p = paramsOf(route.params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete p[k];
      else p[k] = v;
    }
    navigate('/debug', p);
  };

  const since = useMemo(() => (range.ms === null ? undefined : minuteAgo(range.ms, tick)), [range.ms, tick]);
  const base = deployment && version ? `/api/v1/models/${enc(deployment)}/versions/${enc(version)}/monitoring/windows` : null;
  const summaries = useApi<{ windows: (WindowSummary | FullWindow)[] }>(base ? `${base}${query({ summary: true, since, limit: 10000 })}` : null);
  const windows = useMemo(() => (summaries.data?.windows ?? []).map(asSummary), [summaries.data]);
  const windowParam = route.params.get('window');
  const chosen = windows.find((w) => String(w.windowStart) === windowParam) ?? windows.at(-1);
  // Only the one window on screen is read in full (histograms and all); the chart uses the summaries.
  const full = useApi<{ windows: FullWindow[] }>(base && chosen ? `${base}${query({ since: chosen.windowStart, until: chosen.windowStart + 1, limit: 1 })}` : null);
  const win = full.data?.windows[0];

  return (
    <>
      <div class="view-head">
        <h1>Debug</h1>
        {list.length > 0 ? <DeploymentSelect id="debug-deployment" deployments={list} value={deployment} onChange={(d) => set({ deployment: d, version: undefined, column: undefined, window: undefined })} /> : null}
        {dep ? (
          <span class="inline-field">
            <label for="debug-version">Version</label>
            <select id="debug-version" value={version} onChange={(e) => set({ version: (e.target as HTMLSelectElement).value, column: undefined, window: undefined })}>
              {[...dep.versions].reverse().map((v) => (
                <option key={v} value={String(v)}>
                  v{v}
                  {v === dep.stable?.version ? ' (stable)' : v === dep.candidate?.version ? ' (candidate)' : ''}
                </option>
              ))}
            </select>
          </span>
        ) : null}
        <span class="inline-field">
          <label for="debug-range">Windows</label>
          <select id="debug-range" value={range.key} onChange={(e) => set({ range: (e.target as HTMLSelectElement).value, window: undefined })}>
            {RANGES.map((r) => (
              <option key={r.key} value={r.key}>
                {r.label}
              </option>
            ))}
          </select>
        </span>
        <RequestSearch />
      </div>
      {deps.error ? <ErrorNote error={deps.error} what="Could not list deployments" /> : null}
      {!deps.data && deps.loading ? <Loading what="deployments" /> : null}
      {deps.data && list.length === 0 ? (
        <Panel title="Nothing deployed" wide>
          <Empty>No model is registered yet: push one with <code>warden push model.onnx --model NAME</code>, then come back.</Empty>
        </Panel>
      ) : null}
      {deployment && version ? (
        <>
          <DriftPanels
            deployment={deployment}
            version={version}
            rangeLabel={range.label}
            windows={windows}
            summaries={summaries}
            chosen={chosen}
            win={win}
            fullError={full.error}
            fullLoading={full.loading && !win}
            column={route.params.get('column') || ''}
            onColumn={(c) => set({ column: c })}
            onWindow={(w) => set({ window: w })}
          />
          <FailingRequests deployment={deployment} tick={tick} />
        </>
      ) : null}
    </>
  );
}


function DriftPanels(props: {
  deployment: string;
  version: string;
  rangeLabel: string;
  windows: WindowSummary[];
  summaries: { error: ApiError | undefined; loading: boolean; data: unknown };
  chosen: WindowSummary | undefined;
  win: FullWindow | undefined;
  fullError: ApiError | undefined;
  fullLoading: boolean;
  column: string;
  onColumn: (c: string) => void;
  onWindow: (windowStart: string) => void;
}) {
  const { windows, win, chosen } = props;
  const who = `${props.deployment} v${props.version}`;
  const ranked = useMemo(() => (win ? [...win.drift.columns].sort((a, b) => Number(b.drift) - Number(a.drift) || severity(b) - severity(a) || a.column.localeCompare(b.column)) : []), [win]);
  const column = ranked.find((c) => c.column === props.column) ?? ranked[0];

  if (props.summaries.error) {
    const noRef = props.summaries.error.status === 404;
    return (
      <Panel title="Drift" wide>
        <ErrorNote error={props.summaries.error} what={`Could not read the monitoring windows of ${who}`} />
        {noRef ? <p>Check the version exists and has a reference: <code>GET /api/v1/models/{props.deployment}/versions/{props.version}/reference</code>.</p> : null}
      </Panel>
    );
  }
  if (!props.summaries.data) return <Panel title="Drift" wide><Loading what="monitoring windows" /></Panel>;
  if (windows.length === 0) {
    return (
      <Panel title="Drift" wide>
        <Empty>
          No evaluated monitoring windows for {who} in the {props.rangeLabel}. Choose a longer range above, or register a reference (
          <code>PUT /api/v1/models/{props.deployment}/versions/{props.version}/reference</code>) so its traffic is checked; a window is evaluated when it closes
          (<code>POST /api/v1/monitoring/flush</code> closes them now).
        </Empty>
      </Panel>
    );
  }

  return (
    <>
      <Panel
        title={`Features, worst first · ${who}`}
        id="drift-features"
        wide
        actions={
          <span class="inline-field">
            <label for="debug-window">Window</label>
            <select id="debug-window" value={chosen ? String(chosen.windowStart) : ''} onChange={(e) => props.onWindow((e.target as HTMLSelectElement).value)}>
              {[...windows].reverse().map((w) => (
                <option key={w.windowStart} value={String(w.windowStart)}>
                  {fmtTime(w.windowStart)} ({fmtNum(w.rows)} rows{w.datasetDrift ? ', drift' : ''})
                </option>
              ))}
            </select>
          </span>
        }
      >
        {props.fullError ? <ErrorNote error={props.fullError} what="Could not read the window" /> : null}
        {props.fullLoading ? <Loading what="window" /> : null}
        {win ? (
          <>
            <p class="muted" data-testid="window-summary">
              Window {fmtTime(win.windowStart)} → {fmtTime(win.windowEnd)}: {fmtNum(win.rows)} rows, {fmtPct(win.drift.driftShare)} of features drifted
              {win.drift.datasetDrift ? ' (dataset drift)' : ''}, {fmtNum(win.quality?.failed ?? 0)} quality checks failed.
            </p>
            <table class="drift-table" data-testid="drift-features">
              <thead>
                <tr>
                  <th scope="col">column</th>
                  <th scope="col">test</th>
                  <th scope="col" class="num">score</th>
                  <th scope="col" class="num">threshold</th>
                  <th scope="col">verdict</th>
                  <th scope="col">quality</th>
                </tr>
              </thead>
              <tbody>
                {ranked.map((c) => {
                  const failed = win.quality?.checks.filter((q) => q.column === c.column && q.failed) ?? [];
                  const selected = c.column === column?.column;
                  return (
                    <tr key={c.column} class={selected ? 'selected' : undefined} data-column={c.column}>
                      <th scope="row">
                        <a href={href('/debug', { deployment: props.deployment, version: props.version, column: c.column, window: String(win.windowStart) })} aria-current={selected ? 'true' : undefined} onClick={(e) => (e.preventDefault(), props.onColumn(c.column))}>
                          {c.column}
                        </a>
                        {c.role === 'prediction' ? <span class="muted"> (prediction)</span> : null}
                      </th>
                      <td>
                        {c.test} <span class="muted">{c.scoreKind === 'p_value' ? 'p-value' : 'distance'}</span>
                      </td>
                      <td class="num" data-testid={`drift-score-${c.column}`}>
                        {c.skipped ? '—' : fmtScore(c.score)}
                      </td>
                      <td class="num">{fmtScore(c.threshold)}</td>
                      <td>{c.skipped ? <Badge tone="muted" title={c.skipped}>skipped</Badge> : c.drift ? <Badge tone="bad">drift</Badge> : <Badge tone="ok">ok</Badge>}</td>
                      <td>{failed.length ? failed.map((q) => <Badge key={q.metric} tone="warn" title={`${q.metric} ${fmtScore(q.value)} (threshold ${fmtScore(q.threshold)})`}>{q.metric}</Badge>) : <span class="muted">ok</span>}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </>
        ) : null}
      </Panel>
      {column && win ? <ColumnPanel column={column} win={win} windows={windows} who={who} /> : null}
    </>
  );
}

function ColumnPanel(props: { column: ColumnDrift; win: FullWindow; windows: WindowSummary[]; who: string }) {
  const { column: c, win, windows } = props;
  const hist = win.histograms.find((h) => h.column === c.column);
  const ts = useMemo(() => windows.map((w) => w.windowStart), [windows]);
  const series = useMemo<Series[]>(() => {
    const scores = windows.map((w) => w.features.find((f) => f.column === c.column)?.score ?? null);
    return [
      { label: `${c.column} score`, values: scores, fmt: fmtScore },
      { label: 'threshold', values: windows.map(() => c.threshold), color: '--bad', dash: [6, 4], fmt: fmtScore },
    ];
  }, [windows, c.column, c.threshold]);
  const drifted = windows.filter((w) => w.features.find((f) => f.column === c.column)?.drift).length;
  const latest = windows.at(-1)?.features.find((f) => f.column === c.column);
  const summary = `Drift score of ${c.column} (${c.test}, ${c.scoreKind === 'p_value' ? 'p-value: drift below' : 'distance: drift at or above'} ${fmtScore(c.threshold)}) over ${windows.length} windows from ${fmtTime(windows[0]?.windowStart)} to ${fmtTime(windows.at(-1)?.windowEnd)}: drifted in ${drifted}, latest score ${latest ? fmtScore(latest.score) : 'none'}.`;
  return (
    <div class="debug-pair">
      <Panel title={`${c.column}: reference vs current`} id="drift-histogram">
        <p class="muted">
          {c.kind} column, {fmtNum(c.referenceRows)} reference rows against {fmtNum(c.currentRows)} in the window of {fmtTime(win.windowStart)}. Bars are each bin's share of its side.
        </p>
        {hist ? (
          <div data-testid="histogram">
            <HistogramBars labels={hist.labels.map(binLabel)} reference={hist.reference} current={hist.current} caption={`${c.column}: share of rows per bin, reference against the window`} />
          </div>
        ) : (
          <Empty>The window has no histogram for {c.column}.</Empty>
        )}
      </Panel>
      <Panel title={`${c.column}: drift score over time`} id="drift-history">
        {windows.length < 2 ? <p class="muted">Only one window so far; the line needs two.</p> : null}
        <TimeChart ts={ts} series={series} summary={summary} testid="drift-chart" height={220} />
        <p class="muted">{summary}</p>
      </Panel>
    </div>
  );
}

function FailingRequests(props: { deployment: string; tick: number }) {
  const since = useMemo(() => minuteAgo(DAY, props.tick), [props.tick]);
  const traffic = useApi<Traffic>(`/api/v1/deployments/${enc(props.deployment)}/traffic${query({ since })}`);
  // The newest failures of the day, newest first (one index read however busy the day was).
  const errors = useApi<{ events: PredictionEvent[] }>(`/api/v1/predictions${query({ model: props.deployment, status: 'error', order: 'newest', since, limit: EXAMPLES })}`);
  const events = errors.data?.events ?? [];
  const byCode = new Map<string, PredictionEvent[]>();
  for (const e of events) {
    const code = parseError(e.error).code;
    byCode.set(code, [...(byCode.get(code) ?? []), e]);
  }
  // Without the traffic counts, the log's examples are counted instead; their HTTP status is then unknown.
  const counts: { code: string; count: number; status?: number }[] = traffic.data?.totals.errors ?? [...byCode.entries()].map(([code, es]) => ({ code, count: es.length }));
  const sorted = [...counts].sort((a, b) => b.count - a.count);
  const latest = events.slice(0, 15);
  const truncated = events.length >= EXAMPLES;
  return (
    <>
      <Panel title="Failing and refused requests, last 24 h" id="failing" wide>
        {traffic.error ? <ErrorNote error={traffic.error} what="Could not read the traffic counts (showing counts from the prediction log instead)" /> : null}
        {errors.error ? <ErrorNote error={errors.error} what="Could not read failed requests from the prediction log" /> : null}
        {traffic.data ? (
          <p class="muted">
            <span data-testid="traffic-requests">{fmtNum(traffic.data.totals.requests)}</span> requests: <span data-testid="traffic-server-errors">{fmtNum(traffic.data.totals.serverErrors)}</span> failed (server errors),{' '}
            <span data-testid="traffic-client-errors">{fmtNum(traffic.data.totals.clientErrors)}</span> refused (client errors), error rate {fmtPct(traffic.data.totals.errorRate, 2)}.
          </p>
        ) : null}
        {!traffic.data && !errors.data && (traffic.loading || errors.loading) ? <Loading what="errors" /> : null}
        {(traffic.data || errors.data) && sorted.length === 0 ? <Empty>No failed or refused requests to {props.deployment} in the last 24 h.</Empty> : null}
        {sorted.length > 0 ? (
          <table data-testid="error-codes">
            <thead>
              <tr>
                <th scope="col">reason</th>
                <th scope="col">kind</th>
                <th scope="col" class="num">requests</th>
                <th scope="col">latest message</th>
                <th scope="col">examples</th>
              </tr>
            </thead>
            <tbody>
              {sorted.map(({ code, count, status }) => {
                const ex = (byCode.get(code) ?? []).slice(0, 3);
                const kind = errorKind(status);
                return (
                  <tr key={code} data-code={code}>
                    <th scope="row">
                      <code>{code}</code>
                    </th>
                    <td>{kind === 'failing' ? <Badge tone="bad">failing</Badge> : kind === 'refused' ? <Badge tone="warn">refused</Badge> : <Badge tone="muted">unknown</Badge>}</td>
                    <td class="num" data-testid={`error-count-${code}`}>
                      {fmtNum(count)}
                    </td>
                    <td>{ex[0] ? parseError(ex[0].error).message : <span class="muted">{truncated ? `not among the newest ${fmtNum(EXAMPLES)} failures` : 'no example in the log'}</span>}</td>
                    <td>
                      {ex.map((e) => (
                        <a key={e.seq} class="mono req-link" href={href(`/requests/${enc(e.requestId)}`)}>
                          {e.requestId}
                        </a>
                      ))}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        ) : null}
      </Panel>
      {latest.length > 0 ? (
        <Panel title="Latest failed and refused requests" id="latest-errors" wide>
          <p class="muted">
            The newest failures of the last 24 h in the prediction log
            {truncated ? ` (examples above come from the newest ${fmtNum(EXAMPLES)})` : ''}.
          </p>
          <table data-testid="latest-errors">
            <thead>
              <tr>
                <th scope="col">time</th>
                <th scope="col">request</th>
                <th scope="col">version</th>
                <th scope="col">reason</th>
                <th scope="col" class="num">latency</th>
              </tr>
            </thead>
            <tbody>
              {latest.map((e) => {
                const err = parseError(e.error);
                return (
                  <tr key={e.seq}>
                    <td>{fmtTime(e.ts)}</td>
                    <td>
                      <a class="mono" href={href(`/requests/${enc(e.requestId)}`)}>
                        {e.requestId}
                      </a>
                    </td>
                    <td>{e.version ? `v${e.version}` : <span class="muted">unresolved</span>}</td>
                    <td>
                      <code>{err.code}</code> {err.message}
                    </td>
                    <td class="num">{fmtMs(e.latencyMs)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </Panel>
      ) : null}
    </>
  );
}

