import { useMemo } from 'preact/hooks';
import type { ViewProps } from '../app.tsx';
import { enc } from '../api.ts';
import { TimeChart, type Series } from '../components/chart.tsx';
import {
  alertOrder,
  denseTraffic,
  hasIsolated,
  get,
  liveQuality,
  newestWindow,
  settle,
  sloState,
  stateTone,
  Toggle,
  trafficPath,
  useLoad,
  windowsPath,
  worstState,
  type Alert,
  type Deployment,
  type Quality,
  type Result,
  type Slo,
  type SloStatus,
  type Traffic,
  type VersionRecord,
  type WindowSummary,
} from '../components/ops.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel, Stat } from '../components/ui.tsx';
import { DAY, fmtMs, fmtNum, fmtPct, fmtTime } from '../format.ts';
import { href, navigate } from '../router.ts';
import './executive.css';

type Range = '7d' | '30d';
const RANGES: { value: Range; label: string }[] = [
  { value: '7d', label: '7 days' },
  { value: '30d', label: '30 days' },
];

interface Overview {
  deployments: Deployment[];
  slos: Result<{ slos: Slo[] }>;
  alerts: Result<{ alerts: Alert[] }>;
}

/**
 * The executive view (`#/`): one card per deployment with its live model quality against offline, availability,
 * error budget, cost, traffic, SLO state and open incidents, and 7- or 30-day trends. It reads the deployments, SLOs
 * and alerts once, then each card reads its own traffic and window summaries (never raw rows), all at once.
 */
export function ExecutiveView(props: ViewProps) {
  const range: Range = props.route.params.get('range') === '30d' ? '30d' : '7d';
  const overview = useLoad<Overview>('overview', async (signal) => {
    const [deployments, slos, alerts] = await Promise.all([
      get<{ deployments: Deployment[] }>('/api/v1/deployments', signal),
      settle(get<{ slos: Slo[] }>('/api/v1/slos', signal)),
      settle(get<{ alerts: Alert[] }>('/api/v1/alerts', signal)),
    ]);
    return { deployments: deployments.deployments, slos, alerts };
  });
  const o = overview.data;
  return (
    <>
      <div class="view-head">
        <h1>Executive</h1>
        <Toggle label="Trend range" value={range} options={RANGES} onChange={(r) => navigate('/', { range: r === '7d' ? undefined : r })} testid="exec-range" />
        <span class="muted">Figures cover the last {range === '7d' ? '7 days' : '30 days'}; accuracy is the newest evaluated window's.</span>
      </div>
      {!o ? (
        overview.error ? (
          <Panel title="Deployments" wide>
            <ErrorNote error={overview.error} what="Cannot list the deployments (GET /api/v1/deployments)" />
          </Panel>
        ) : (
          <Panel title="Deployments" wide>
            <Loading what="deployments" />
          </Panel>
        )
      ) : o.deployments.length === 0 ? (
        <Panel title="Deployments" wide>
          <Empty>
            No deployments yet. Push a model with <code>warden push model.onnx --model NAME --alias champion</code>; each model is a deployment.
          </Empty>
        </Panel>
      ) : (
        <>
          {!o.slos.ok ? (
            <div class="wide-note">
              <ErrorNote error={o.slos.error} what="SLOs are not shown (GET /api/v1/slos)" />
            </div>
          ) : null}
          {!o.alerts.ok ? (
            <div class="wide-note">
              <ErrorNote error={o.alerts.error} what="Incidents are not shown (GET /api/v1/alerts)" />
            </div>
          ) : null}
          {o.deployments.map((d) => (
            <DeploymentCard
              key={d.name}
              deployment={d}
              range={range}
              slos={o.slos.ok ? o.slos.data.slos.filter((s) => s.deployment === d.name) : null}
              alerts={o.alerts.ok ? o.alerts.data.alerts.filter((a) => a.labels.deployment === d.name) : null}
            />
          ))}
        </>
      )}
    </>
  );
}

interface CardData {
  since: number;
  until: number;
  traffic: Result<Traffic>;
  /** The range's window summaries; `older` holds the newest window before it when the range has none. */
  windows: Result<{ windows: WindowSummary[]; older: WindowSummary[] }> | null;
  version: Result<VersionRecord> | null;
  statuses: { slo: Slo; status: Result<SloStatus> }[];
}

/** The range's window summaries, and when the range has none, the newest window before it (long windows, a quiet week). */
async function windowsOf(name: string, v: number, since: number, signal: AbortSignal): Promise<{ windows: WindowSummary[]; older: WindowSummary[] }> {
  const r = await get<{ windows: WindowSummary[] }>(windowsPath(name, v, { summary: true, since, limit: 10_000 }), signal);
  if (r.windows.length > 0) return { windows: r.windows, older: [] };
  const newest = await newestWindow(name, v, signal);
  return { windows: r.windows, older: newest ? [newest] : [] };
}

function DeploymentCard(props: { deployment: Deployment; range: Range; slos: Slo[] | null; alerts: Alert[] | null }) {
  const d = props.deployment;
  const v = d.stable?.version ?? null;
  const days = props.range === '30d' ? 30 : 7;
  const slos = props.slos ?? [];
  const key = `${d.name}|${v}|${days}|${slos.map((s) => s.name).join(',')}`;
  const load = useLoad<CardData>(key, async (signal) => {
    const until = Date.now();
    const since = until - days * DAY;
    const [traffic, windows, version, statuses] = await Promise.all([
      settle(get<Traffic>(trafficPath(d.name, since, until, 'hour'), signal)),
      v === null ? null : settle(windowsOf(d.name, v, since, signal)),
      v === null ? null : settle(get<VersionRecord>(`/api/v1/models/${enc(d.name)}/versions/${v}`, signal)),
      Promise.all(slos.map(async (slo) => ({ slo, status: await settle(get<SloStatus>(`/api/v1/slos/${enc(slo.name)}/status`, signal)) }))),
    ]);
    return { since, until, traffic, windows, version, statuses };
  });
  const data = load.data;
  const tid = (what: string) => `exec-${what}-${d.name}`;
  return (
    <Panel
      title={d.name}
      id={`deployment-${d.name}`}
      wide
      actions={
        <>
          {d.stable ? <Badge tone="info">stable v{d.stable.version}</Badge> : <Badge tone="muted">no version</Badge>}
          {d.candidate ? (
            <Badge tone="warn" title={`rollout ${d.candidate.rollout}, step ${d.candidate.step} of ${d.candidate.steps}`}>
              {d.strategy} v{d.candidate.version} {d.candidate.state} · {d.candidate.weight} %
            </Badge>
          ) : null}
          <a href={href('/oncall', { deployment: d.name })}>On-call view</a>
        </>
      }
    >
      {!data ? load.error ? <ErrorNote error={load.error} /> : <Loading what={`${d.name}'s figures`} /> : <CardBody d={d} data={data} alerts={props.alerts} slosShown={props.slos !== null} days={days} tid={tid} />}
    </Panel>
  );
}

function CardBody(props: { d: Deployment; data: CardData; alerts: Alert[] | null; slosShown: boolean; days: number; tid: (what: string) => string }) {
  const { d, data, tid } = props;
  const rangeText = `${props.days} d`;
  const traffic = data.traffic.ok ? data.traffic.data : null;
  const windows = data.windows?.ok ? data.windows.data.windows : null;
  const offlineMetrics = data.version?.ok ? data.version.data.metadata.metrics : undefined;
  const older = data.windows?.ok ? data.windows.data.older : [];
  const quality = windows ? (liveQuality(windows, offlineMetrics) ?? liveQuality(older, offlineMetrics)) : null;
  const statuses = data.statuses.flatMap((s) => (s.status.ok ? [{ slo: s.slo, status: s.status.data }] : []));
  const worstBudget = statuses.reduce<{ slo: Slo; status: SloStatus } | null>((w, s) => (!w || s.status.budget.remaining < w.status.budget.remaining ? s : w), null);
  const state = worstState(statuses.map((s) => sloState(s.status)));
  const firing = (props.alerts ?? []).filter((a) => a.state === 'firing').sort(alertOrder);
  const muted = firing.filter((a) => a.status !== 'firing').length;
  const t = traffic?.totals;

  return (
    <>
      <div class="stats exec-stats">
        <QualityStats quality={quality} windows={windows} data={data} rangeText={rangeText} since={data.since} tid={tid} />
        <Stat
          label="Availability"
          value={t && t.requests > 0 ? fmtPct(t.availability, 2) : '—'}
          hint={t ? (t.requests > 0 ? 'ok / (ok + server errors)' : `no traffic in the last ${rangeText}`) : 'traffic unavailable'}
          tone={t?.availability == null ? undefined : t.availability >= 0.999 ? 'ok' : t.availability >= 0.99 ? 'warn' : 'bad'}
          testid={tid('availability')}
        />
        <Stat
          label="Error budget left"
          value={worstBudget ? fmtPct(worstBudget.status.budget.remaining, 1) : '—'}
          hint={worstBudget ? (statuses.length > 1 ? `worst of ${statuses.length} SLOs: ${worstBudget.slo.name}` : worstBudget.slo.name) : props.slosShown ? 'no SLO for this deployment' : 'SLOs unavailable'}
          tone={worstBudget ? (worstBudget.status.budget.remaining <= 0 ? 'bad' : worstBudget.status.budget.remaining < 0.25 ? 'warn' : 'ok') : undefined}
          testid={tid('budget')}
        />
        {t && t.costPer1k !== null ? (
          <Stat label="Cost / 1,000 inferences" value={fmtNum(t.costPer1k, 4)} hint={`at slo.costPerCpuHour ${fmtNum(traffic?.costPerCpuHour, 2)}`} testid={tid('cost')} />
        ) : (
          <Stat
            label="CPU / 1,000 inferences"
            value={t?.cpuMsPer1k != null ? `${fmtNum(t.cpuMsPer1k, 1)} ms` : '—'}
            hint={t ? 'CPU time, not money: slo.costPerCpuHour is not set' : 'traffic unavailable'}
            testid={tid('cost')}
          />
        )}
        <Stat
          label={`Requests (${rangeText})`}
          value={t ? fmtNum(t.requests) : '—'}
          hint={t ? `${fmtNum(t.serverErrors)} server, ${fmtNum(t.clientErrors)} client errors · p99 ${fmtMs(t.p99Ms)}` : 'traffic unavailable'}
          testid={tid('requests')}
        />
        <Stat
          label="SLO status"
          value={state ?? '—'}
          hint={state ? `${statuses.length} SLO${statuses.length === 1 ? '' : 's'}` : props.slosShown ? 'no SLO for this deployment' : 'SLOs unavailable'}
          tone={state === 'firing' ? 'bad' : state === 'burning' ? 'warn' : state === 'ok' ? 'ok' : undefined}
          testid={tid('slo-state')}
        />
        <Stat
          label="Active incidents"
          value={props.alerts ? String(firing.length) : '—'}
          hint={props.alerts ? (firing.length === 0 ? 'no alert firing' : `${firing.filter((a) => a.severity === 'page').length} page${muted ? `, ${muted} muted` : ''}`) : 'alerts unavailable'}
          tone={props.alerts ? (firing.some((a) => a.status === 'firing' && a.severity === 'page') ? 'bad' : firing.length ? 'warn' : 'ok') : undefined}
          testid={tid('incidents')}
        />
      </div>
      {!data.traffic.ok ? <ErrorNote error={data.traffic.error} what={`Traffic (GET /api/v1/deployments/${d.name}/traffic)`} /> : null}
      {data.windows && !data.windows.ok ? <ErrorNote error={data.windows.error} what="Monitoring windows" /> : null}
      {data.statuses.map((s) => (!s.status.ok ? <ErrorNote key={s.slo.name} error={s.status.error} what={`SLO ${s.slo.name}`} /> : null))}
      {firing.length > 0 ? <Incidents alerts={firing} deployment={d.name} /> : null}
      {statuses.length > 0 ? <SloTable statuses={statuses} deployment={d.name} /> : null}
      <Trends d={d} data={data} quality={quality} rangeText={rangeText} />
    </>
  );
}

function fmtMetric(metric: 'accuracy' | 'rmse', v: number | null | undefined): string {
  return metric === 'accuracy' ? fmtPct(v, 1) : fmtNum(v, 2);
}

function QualityStats(props: { quality: Quality | null; windows: WindowSummary[] | null; data: CardData; rangeText: string; since: number; tid: (what: string) => string }) {
  const q = props.quality;
  const { tid } = props;
  if (!q) {
    const why = !props.data.windows
      ? 'no version serves'
      : !props.windows
        ? 'windows unavailable'
        : props.windows.length === 0 && (props.data.windows?.ok ? props.data.windows.data.older.length : 0) === 0
          ? 'no evaluated window yet (is a reference registered?)'
          : 'no performance config on the reference (docs/performance.md)';
    return <Stat label="Live accuracy" value="—" hint={why} testid={tid('accuracy')} />;
  }
  const name = q.metric === 'accuracy' ? 'accuracy' : 'RMSE';
  const label = q.basis === 'realized' ? `Live ${name} (realized)` : `Estimated ${name} (${q.method}, no labels yet)`;
  return (
    <>
      <Stat
        label={label}
        value={fmtMetric(q.metric, q.value)}
        hint={`window ending ${fmtTime(q.windowEnd)}${q.windowEnd < props.since ? ' (before this range)' : ''}${q.basis === 'realized' ? ` · ${fmtNum(q.labelled)} labels` : ''}`}
        tone={q.healthy === null ? undefined : q.healthy ? 'ok' : 'bad'}
        testid={tid('accuracy')}
      />
      <Stat label={`Offline ${name}`} value={fmtMetric(q.metric, q.offline)} hint={q.offline === null ? 'no offline metric in the version metadata' : 'from the version metadata'} testid={tid('offline')} />
    </>
  );
}

function Incidents(props: { alerts: Alert[]; deployment: string }) {
  return (
    <div class="exec-incidents">
      <h3>Firing alerts</h3>
      <ul>
        {props.alerts.map((a) => (
          <li key={a.fingerprint}>
            <Badge tone={a.severity === 'page' ? 'bad' : 'warn'}>{a.severity}</Badge> <strong>{a.alertname}</strong> {a.annotations.summary ? `— ${a.annotations.summary}` : ''}{' '}
            {a.status !== 'firing' ? <Badge tone="muted">{a.status}</Badge> : null}
          </li>
        ))}
      </ul>
      <a href={href('/oncall', { deployment: props.deployment })}>Open the on-call view to act on them</a>
    </div>
  );
}

function SloTable(props: { statuses: { slo: Slo; status: SloStatus }[]; deployment: string }) {
  return (
    <table class="exec-slos">
      <caption>SLOs of {props.deployment} (GET /api/v1/slos/&#123;name&#125;/status)</caption>
      <thead>
        <tr>
          <th scope="col">SLO</th>
          <th scope="col">SLI</th>
          <th scope="col" class="num">
            objective
          </th>
          <th scope="col" class="num">
            SLI now
          </th>
          <th scope="col" class="num">
            budget left
          </th>
          <th scope="col">state</th>
        </tr>
      </thead>
      <tbody>
        {props.statuses.map(({ slo, status }) => {
          const st = sloState(status);
          return (
            <tr key={slo.name}>
              <th scope="row">{slo.name}</th>
              <td>
                {slo.sli.kind}
                {slo.version !== undefined ? ` (v${slo.version})` : ''} over {slo.period}
              </td>
              <td class="num">{fmtPct(slo.objective, 2)}</td>
              <td class="num">{status.budget.total > 0 ? fmtPct(status.budget.sli, 2) : 'no events'}</td>
              <td class="num" data-testid={`exec-slo-budget-${slo.name}`}>
                {fmtPct(status.budget.remaining, 1)}
              </td>
              <td>
                <Badge tone={stateTone(st)}>{st}</Badge>
                {status.firing.length ? <span class="muted"> {status.firing.join(', ')}</span> : null}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Trends(props: { d: Deployment; data: CardData; quality: Quality | null; rangeText: string }) {
  const { data } = props;
  const traffic = data.traffic.ok ? data.traffic.data : null;
  const windows = data.windows?.ok ? data.windows.data.windows : null;
  const tr = useMemo(() => {
    if (!traffic || traffic.points.length === 0) return null;
    const { ts, at } = denseTraffic(traffic);
    const req = at.map((p) => (p ? p.requests : null));
    const avail = at.map((p) => (p && p.ok + p.serverErrors > 0 ? (100 * p.ok) / (p.ok + p.serverErrors) : null));
    const requests: Series[] = [{ label: 'requests', values: req, color: '--c1', fmt: (x) => fmtNum(x), points: hasIsolated(req) }];
    const availability: Series[] = [{ label: 'availability %', values: avail, color: '--c3', fmt: (x) => `${x.toFixed(2)} %`, points: hasIsolated(avail) }];
    const busiest = traffic.points.reduce((m, p) => (p.requests > m.requests ? p : m), traffic.points[0]!);
    const worst = traffic.points.filter((p) => p.ok + p.serverErrors > 0).reduce<(typeof traffic.points)[number] | null>((m, p) => (!m || p.ok / (p.ok + p.serverErrors) < m.ok / (m.ok + m.serverErrors) ? p : m), null);
    return {
      ts,
      requests,
      availability,
      requestsSummary: `Requests per hour over the last ${props.rangeText}: ${fmtNum(traffic.totals.requests)} in all, busiest hour ${fmtTime(busiest.ts)} with ${fmtNum(busiest.requests)}.`,
      availabilitySummary: worst
        ? `Availability per hour over the last ${props.rangeText}: ${fmtPct(traffic.totals.availability, 2)} overall, lowest ${fmtPct(worst.ok / (worst.ok + worst.serverErrors), 2)} in the hour from ${fmtTime(worst.ts)}.`
        : `Availability per hour: no request succeeded or failed with a server error in the last ${props.rangeText}.`,
    };
  }, [traffic, props.rangeText]);
  const acc = useMemo(() => {
    const perf = (windows ?? []).filter((w) => w.performance);
    if (perf.length === 0 || !props.quality) return null;
    const m = props.quality.metric;
    const scale = m === 'accuracy' ? 100 : 1;
    const fmt = (x: number) => (m === 'accuracy' ? `${x.toFixed(1)} %` : x.toFixed(2));
    const realized = perf.map((w) => (w.performance?.realized?.[m] !== undefined ? w.performance.realized[m]! * scale : null));
    const estimated = perf.map((w) => (w.performance?.estimated?.[m] !== undefined ? w.performance.estimated[m]! * scale : null));
    const offline = props.quality.offline;
    const series: Series[] = [
      { label: `realized ${m}`, values: realized, color: '--c1', fmt, points: true },
      { label: `estimated ${m} (${perf[0]!.performance!.task === 'binary' ? 'CBPE' : 'DLE'})`, values: estimated, color: '--c2', dash: [5, 3], fmt, points: true },
      ...(offline !== null ? [{ label: `offline ${m}`, values: perf.map(() => offline * scale), color: '--c5', dash: [2, 4], fmt }] : []),
    ];
    const labelled = realized.filter((x) => x !== null).length;
    return {
      ts: perf.map((w) => w.windowEnd),
      series,
      summary: `${m === 'accuracy' ? 'Accuracy' : 'RMSE'} per monitoring window over the last ${props.rangeText}: ${perf.length} windows, ${labelled} with labels (realized); latest ${props.quality.basis} ${fmtMetric(m, props.quality.value)}${offline !== null ? ` against offline ${fmtMetric(m, offline)}` : ''}.`,
    };
  }, [windows, props.quality, props.rangeText]);
  return (
    <div class="exec-charts">
      <div>
        <h3>Traffic</h3>
        {tr ? <TimeChart ts={tr.ts} series={tr.requests} summary={tr.requestsSummary} height={150} testid={`exec-chart-traffic-${props.d.name}`} /> : <Empty>No traffic in the last {props.rangeText}.</Empty>}
      </div>
      <div>
        <h3>Availability</h3>
        {tr ? <TimeChart ts={tr.ts} series={tr.availability} summary={tr.availabilitySummary} height={150} testid={`exec-chart-availability-${props.d.name}`} /> : <Empty>No traffic in the last {props.rangeText}.</Empty>}
      </div>
      <div>
        <h3>{props.quality?.metric === 'rmse' ? 'RMSE' : 'Accuracy'}</h3>
        {acc ? (
          <TimeChart ts={acc.ts} series={acc.series} summary={acc.summary} height={150} testid={`exec-chart-accuracy-${props.d.name}`} />
        ) : (
          <Empty>No window with performance in the last {props.rangeText}: register a reference with a performance block to measure accuracy.</Empty>
        )}
      </div>
    </div>
  );
}
