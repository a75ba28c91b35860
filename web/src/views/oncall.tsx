import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ViewProps } from '../app.tsx';
import { ApiError, api, query } from '../api.ts';
import { TimeChart, type Marker, type Series } from '../components/chart.tsx';
import {
  alertOrder,
  denseTraffic,
  eventLabel,
  eventMarkers,
  eventVersions,
  get,
  hasIsolated,
  historySince,
  newestWindow,
  runbookHref,
  settle,
  Toggle,
  trafficPath,
  useLoad,
  windowsPath,
  type Alert,
  type Deployment,
  type DeploymentEvent,
  type Result,
  type Silence,
  type Traffic,
  type WindowFull,
  type WindowSummary,
} from '../components/ops.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel, Stat } from '../components/ui.tsx';
import { DAY, HOUR, fmtAgo, fmtMs, fmtNum, fmtPct, fmtTime } from '../format.ts';
import { useApi } from '../refresh.ts';
import { navigate } from '../router.ts';
import { useCan, useSession } from '../session.ts';
import './oncall.css';

type Range = '1h' | '6h' | '24h';
const RANGES: { value: Range; label: string }[] = [
  { value: '1h', label: '1 h' },
  { value: '6h', label: '6 h' },
  { value: '24h', label: '24 h' },
];
const RANGE_MS: Record<Range, number> = { '1h': HOUR, '6h': 6 * HOUR, '24h': DAY };

interface OnCallData {
  since: number;
  until: number;
  traffic: Result<Traffic>;
  alerts: Result<{ alerts: Alert[] }>;
  history: Result<DeploymentEvent[]>;
  /** Null when no version serves. */
  latest: Result<{ summary: WindowSummary | null; full: WindowFull | null }> | null;
}

/**
 * The on-call view (`#/oncall?deployment=`): what is wrong with one deployment now. Latency and errors per
 * minute with deploys and rollout steps on the same time axis, its firing alerts (page apart from ticket) with
 * runbooks and a Silence action, and the newest monitoring window's drift, quality and completeness.
 */
export function OnCallView(props: ViewProps) {
  const list = useApi<{ deployments: Deployment[] }>('/api/v1/deployments');
  const range: Range = (['1h', '6h', '24h'] as const).find((r) => r === props.route.params.get('range')) ?? '6h';
  const deployments = list.data?.deployments ?? [];
  const asked = props.route.params.get('deployment');
  const d = deployments.find((x) => x.name === asked) ?? (asked ? undefined : deployments[0]);
  const go = (deployment: string | undefined, r: Range) => navigate('/oncall', { deployment, range: r === '6h' ? undefined : r });

  return (
    <>
      <div class="view-head">
        <h1>On-call</h1>
        {deployments.length > 0 ? (
          <label class="oncall-picker">
            Deployment{' '}
            <select data-testid="oncall-deployment" value={d?.name ?? ''} onChange={(e) => go((e.target as HTMLSelectElement).value, range)}>
              {!d ? <option value="">choose…</option> : null}
              {deployments.map((x) => (
                <option key={x.name} value={x.name}>
                  {x.name}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <Toggle label="Time range" value={range} options={RANGES} onChange={(r) => go(d?.name ?? asked ?? undefined, r)} testid="oncall-range" />
      </div>
      {!list.data ? (
        <Panel title="Deployments" wide>
          {list.error ? <ErrorNote error={list.error} what="Cannot list the deployments (GET /api/v1/deployments)" /> : <Loading what="deployments" />}
        </Panel>
      ) : deployments.length === 0 ? (
        <Panel title="Deployments" wide>
          <Empty>No deployments yet: push a model (warden push model.onnx --model NAME --alias champion) and it shows here.</Empty>
        </Panel>
      ) : !d ? (
        <Panel title="Deployments" wide>
          <p class="error" role="alert">
            No deployment named <code>{asked}</code>. Pick one of {deployments.map((x) => x.name).join(', ')} above.
          </p>
        </Panel>
      ) : (
        <DeploymentOnCall key={d.name} d={d} range={range} />
      )}
    </>
  );
}

function DeploymentOnCall(props: { d: Deployment; range: Range }) {
  const { d, range } = props;
  const v = d.stable?.version ?? null;
  const load = useLoad<OnCallData>(`${d.name}|${v}|${range}`, async (signal) => {
    const until = Date.now();
    const since = until - RANGE_MS[range];
    const latestWindow = async () => {
      if (v === null) return null;
      const summary = await newestWindow(d.name, v, signal);
      if (!summary) return { summary, full: null };
      // The full window of that summary (oldest first from its start), not whichever window is newest by now.
      const f = await get<{ windows: WindowFull[] }>(windowsPath(d.name, v, { since: summary.windowStart, limit: 1 }), signal);
      return { summary, full: f.windows[0] ?? null };
    };
    const [traffic, alerts, history, latest] = await Promise.all([
      settle(get<Traffic>(trafficPath(d.name, since, until, 'minute'), signal)),
      settle(get<{ alerts: Alert[] }>(`/api/v1/alerts${query({ deployment: d.name })}`, signal)),
      settle(historySince(d.name, since, signal)),
      v === null ? null : settle(latestWindow()),
    ]);
    return { since, until, traffic, alerts, history, latest: latest as OnCallData['latest'] };
  });
  const data = load.data;
  const markers = useMemo<Marker[]>(() => (data?.history.ok ? eventMarkers(data.history.data) : []), [data]);
  if (!data) {
    return (
      <Panel title={d.name} wide>
        {load.error ? <ErrorNote error={load.error} /> : <Loading what={`${d.name}'s last ${range}`} />}
      </Panel>
    );
  }
  const rangeText = RANGES.find((r) => r.value === range)!.label;
  return (
    <div class="ops-grid">
      <NowPanel d={d} data={data} rangeText={rangeText} />
      <AlertsPanel d={d} alerts={data.alerts} reload={load.reload} />
      <LatencyPanel data={data} markers={markers} rangeText={rangeText} />
      <ErrorRatePanel data={data} markers={markers} rangeText={rangeText} />
      <DriftPanel data={data} />
      <CompletenessPanel data={data} />
      <DeploysPanel d={d} data={data} rangeText={rangeText} />
    </div>
  );
}

function NowPanel(props: { d: Deployment; data: OnCallData; rangeText: string }) {
  const { data, d } = props;
  if (!data.traffic.ok) {
    return (
      <Panel title={`${d.name}: last ${props.rangeText}`} id="oncall-now" wide>
        <ErrorNote error={data.traffic.error} what={`Traffic (GET /api/v1/deployments/${d.name}/traffic)`} />
      </Panel>
    );
  }
  const t = data.traffic.data.totals;
  const none = t.requests === 0;
  return (
    <Panel
      title={`${d.name}: last ${props.rangeText}`}
      id="oncall-now"
      wide
      actions={
        <>
          {d.stable ? <Badge tone="info">stable v{d.stable.version}</Badge> : <Badge tone="muted">no version</Badge>}
          {d.candidate ? (
            <Badge tone="warn">
              {d.strategy} v{d.candidate.version} {d.candidate.state}, step {d.candidate.step}/{d.candidate.steps} · {d.candidate.weight} %
            </Badge>
          ) : null}
        </>
      }
    >
      {none ? <Empty>No traffic in the last {props.rangeText}: no request reached {d.name} (shadow copies are not counted).</Empty> : null}
      <div class="stats">
        <Stat label="Requests" value={fmtNum(t.requests)} hint={`${fmtNum(t.rows)} rows`} testid="oncall-requests" />
        <Stat
          label="Availability"
          value={none ? '—' : fmtPct(t.availability, 2)}
          hint="ok / (ok + server errors)"
          tone={t.availability == null ? undefined : t.availability >= 0.999 ? 'ok' : t.availability >= 0.99 ? 'warn' : 'bad'}
          testid="oncall-availability"
        />
        <Stat
          label="Error rate"
          value={none ? '—' : fmtPct(t.errorRate, 2)}
          hint={`${fmtNum(t.serverErrors)} server, ${fmtNum(t.clientErrors)} client`}
          tone={t.errorRate == null ? undefined : t.errorRate === 0 ? 'ok' : t.errorRate < 0.01 ? 'warn' : 'bad'}
          testid="oncall-error-rate"
        />
        <Stat label="p50 latency" value={fmtMs(t.p50Ms)} testid="oncall-p50" />
        <Stat label="p95 latency" value={fmtMs(t.p95Ms)} testid="oncall-p95" />
        <Stat label="p99 latency" value={fmtMs(t.p99Ms)} testid="oncall-p99" />
      </div>
      {t.errors.length > 0 ? (
        <table class="oncall-errors">
          <caption>Errors by code</caption>
          <thead>
            <tr>
              <th scope="col">code</th>
              <th scope="col" class="num">
                requests
              </th>
            </tr>
          </thead>
          <tbody>
            {t.errors.map((e) => (
              <tr key={e.code}>
                <td>
                  <code>{e.code}</code>
                </td>
                <td class="num" data-testid={`oncall-errors-${e.code}`}>
                  {fmtNum(e.count)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </Panel>
  );
}

function LatencyPanel(props: { data: OnCallData; markers: Marker[]; rangeText: string }) {
  const traffic = props.data.traffic.ok ? props.data.traffic.data : null;
  const chart = useMemo(() => {
    if (!traffic || traffic.points.length === 0) return null;
    const { ts, at } = denseTraffic(traffic);
    const line = (label: string, values: (number | null)[], color: string): Series => ({ label, values, color, fmt: fmtMs, points: hasIsolated(values) });
    const series: Series[] = [
      line('p50', at.map((p) => p?.p50Ms ?? null), '--c3'),
      line('p95', at.map((p) => p?.p95Ms ?? null), '--c1'),
      line('p99', at.map((p) => p?.p99Ms ?? null), '--c2'),
    ];
    const worst = traffic.points.reduce((m, p) => ((p.p99Ms ?? -1) > (m.p99Ms ?? -1) ? p : m), traffic.points[0]!);
    const t = traffic.totals;
    return {
      ts,
      series,
      summary: `Latency per minute over the last ${props.rangeText}: p95 ${fmtMs(t.p95Ms)} and p99 ${fmtMs(t.p99Ms)} overall; the slowest minute, ${fmtTime(worst.ts)}, had p99 ${fmtMs(worst.p99Ms)}. ${markerText(props.markers)}`,
    };
  }, [traffic, props.markers, props.rangeText]);
  return (
    <Panel title="Latency (p50, p95, p99)" id="oncall-latency">
      {!traffic ? (
        <Empty>Traffic unavailable (see above).</Empty>
      ) : chart ? (
        <TimeChart ts={chart.ts} series={chart.series} markers={props.markers} summary={chart.summary} yLabel="ms" testid="oncall-chart-latency" />
      ) : (
        <Empty>No traffic in the last {props.rangeText}.</Empty>
      )}
    </Panel>
  );
}

function ErrorRatePanel(props: { data: OnCallData; markers: Marker[]; rangeText: string }) {
  const traffic = props.data.traffic.ok ? props.data.traffic.data : null;
  const chart = useMemo(() => {
    if (!traffic || traffic.points.length === 0) return null;
    const { ts, at } = denseTraffic(traffic);
    const pct = (x: number) => `${x.toFixed(2)} %`;
    const all = at.map((p) => (p && p.requests > 0 ? (100 * (p.clientErrors + p.serverErrors)) / p.requests : null));
    const server = at.map((p) => (p && p.requests > 0 ? (100 * p.serverErrors) / p.requests : null));
    const series: Series[] = [
      { label: 'all errors %', values: all, color: '--c2', fmt: pct, points: hasIsolated(all) },
      { label: 'server errors %', values: server, color: '--c4', fmt: pct, points: hasIsolated(server) },
    ];
    const worst = traffic.points.reduce((m, p) => ((p.clientErrors + p.serverErrors) / p.requests > (m.clientErrors + m.serverErrors) / m.requests ? p : m), traffic.points[0]!);
    return {
      ts,
      series,
      summary: `Error rate per minute over the last ${props.rangeText}: ${fmtPct(traffic.totals.errorRate, 2)} overall (${fmtNum(traffic.totals.serverErrors)} server, ${fmtNum(traffic.totals.clientErrors)} client errors); worst minute ${fmtTime(worst.ts)} at ${fmtPct((worst.clientErrors + worst.serverErrors) / worst.requests, 1)}. ${markerText(props.markers)}`,
    };
  }, [traffic, props.markers, props.rangeText]);
  return (
    <Panel title="Error rate" id="oncall-errors">
      {!traffic ? (
        <Empty>Traffic unavailable (see above).</Empty>
      ) : chart ? (
        <TimeChart ts={chart.ts} series={chart.series} markers={props.markers} summary={chart.summary} yLabel="%" testid="oncall-chart-errors" />
      ) : (
        <Empty>No traffic in the last {props.rangeText}.</Empty>
      )}
    </Panel>
  );
}

function markerText(markers: Marker[]): string {
  if (markers.length === 0) return 'No deploy or rollout step in this range.';
  return `Marked: ${markers.map((m) => `${m.label} at ${fmtTime(m.ts)}`).join('; ')}.`;
}

function AlertsPanel(props: { d: Deployment; alerts: Result<{ alerts: Alert[] }>; reload: () => void }) {
  const [done, setDone] = useState<Record<string, Silence>>({});
  if (!props.alerts.ok) {
    return (
      <Panel title="Firing alerts" id="oncall-alerts" wide>
        <ErrorNote error={props.alerts.error} what="Alerts (GET /api/v1/alerts)" />
      </Panel>
    );
  }
  const all = props.alerts.data.alerts;
  const firing = all.filter((a) => a.state === 'firing').sort(alertOrder);
  const pending = all.length - firing.length;
  const group = (sev: 'page' | 'ticket') => firing.filter((a) => a.severity === sev);
  return (
    <Panel title="Firing alerts" id="oncall-alerts" wide actions={pending > 0 ? <span class="muted">{pending} pending (not firing yet)</span> : undefined}>
      <div class="oncall-alert-groups">
        {(['page', 'ticket'] as const).map((sev) => (
          <section key={sev} aria-labelledby={`oncall-${sev}-title`} data-testid={`oncall-${sev}-alerts`}>
            <h3 id={`oncall-${sev}-title`}>
              {sev === 'page' ? 'Page: wake someone' : 'Ticket: working hours'} <Badge tone={group(sev).length ? (sev === 'page' ? 'bad' : 'warn') : 'ok'}>{group(sev).length}</Badge>
            </h3>
            {group(sev).length === 0 ? (
              <Empty>No {sev} alert firing for {props.d.name}.</Empty>
            ) : (
              <ul class="oncall-alerts">
                {group(sev).map((a) => (
                  <AlertItem
                    key={a.fingerprint}
                    alert={a}
                    silence={done[a.fingerprint]}
                    onSilenced={(s) => {
                      setDone((m) => ({ ...m, [a.fingerprint]: s }));
                      props.reload();
                    }}
                  />
                ))}
              </ul>
            )}
          </section>
        ))}
      </div>
    </Panel>
  );
}

const STATUS_TONE: Record<Alert['status'], 'bad' | 'warn' | 'muted' | 'info'> = { firing: 'bad', pending: 'warn', silenced: 'muted', inhibited: 'muted', suppressed: 'info' };

function AlertItem(props: { alert: Alert; silence: Silence | undefined; onSilenced: (s: Silence) => void }) {
  const a = props.alert;
  const canSilence = useCan('deployer');
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const runbook = runbookHref(a.annotations.runbook_url);
  const formId = `silence-${a.fingerprint}`;
  const close = () => {
    setOpen(false);
    // Back to the button that opened the form, so the keyboard user keeps their place.
    setTimeout(() => button.current?.focus(), 0);
  };
  return (
    <li class="oncall-alert" data-testid={`alert-${a.fingerprint}`} data-alertname={a.alertname}>
      <div class="oncall-alert-head">
        <strong>{a.alertname}</strong> <Badge tone={STATUS_TONE[a.status]}>{a.status}</Badge>
        <span class="muted">
          {' '}
          since {fmtTime(a.firingAt ?? a.since)} ({fmtAgo(a.firingAt ?? a.since)}){a.value !== undefined ? ` · value ${fmtNum(a.value, 3)}` : ''}
        </span>
      </div>
      {a.annotations.summary ? <div>{a.annotations.summary}</div> : null}
      {a.annotations.description ? (
        <details class="oncall-desc">
          <summary>Details</summary>
          <p>{a.annotations.description}</p>
        </details>
      ) : null}
      <div class="row">
        {runbook ? (
          <a href={runbook} target="_blank" rel="noopener noreferrer" data-testid="runbook">
            Runbook: {a.annotations.runbook_url}
          </a>
        ) : a.annotations.runbook_url ? (
          <span data-testid="runbook">
            Runbook: <code>{a.annotations.runbook_url}</code> <span class="muted">(in the Warden repository; set alerting.runbookBaseUrl to link it)</span>
          </span>
        ) : (
          <span class="muted">No runbook.</span>
        )}
        {a.receivers.length === 0 && a.status === 'firing' ? <span class="muted">No receiver: nobody was notified.</span> : null}
        {canSilence && a.status !== 'silenced' ? (
          <button type="button" ref={button} onClick={() => (open ? close() : setOpen(true))} aria-expanded={open} aria-controls={open ? formId : undefined} data-testid="silence-open">
            Silence…
          </button>
        ) : null}
      </div>
      {a.silencedBy.length > 0 ? <div class="muted">Silenced by {a.silencedBy.join(', ')}</div> : null}
      {props.silence ? (
        <p role="status" class="oncall-silenced" data-testid="silence-done">
          Silenced until {fmtTime(props.silence.endsAt)} by {props.silence.createdBy} (silence <code>{props.silence.id}</code>).
        </p>
      ) : null}
      {open ? (
        <SilenceForm
          id={formId}
          alert={a}
          onCancel={close}
          onDone={(s) => {
            setOpen(false);
            props.onSilenced(s);
          }}
        />
      ) : null}
    </li>
  );
}

const DURATIONS = ['1h', '4h', '24h'] as const;

function SilenceForm(props: { id: string; alert: Alert; onCancel: () => void; onDone: (s: Silence) => void }) {
  const session = useSession();
  const a = props.alert;
  const labels = Object.entries(a.labels).sort(([x], [y]) => x.localeCompare(y));
  const [duration, setDuration] = useState<(typeof DURATIONS)[number]>('1h');
  const [comment, setComment] = useState('');
  const [by, setBy] = useState(session.key?.name ?? '');
  const [picked, setPicked] = useState<Record<string, boolean>>(() => Object.fromEntries(labels.map(([k]) => [k, true])));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);
  const submit = async () => {
    const matchers = labels.filter(([k]) => picked[k]).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    if (matchers.length === 0) {
      setError(new ApiError(0, 'CLIENT', 'pick at least one label to match: a silence without matchers would mute every alert'));
      return;
    }
    if (!comment.trim()) {
      setError(new ApiError(0, 'CLIENT', 'write a comment: why is this alert silenced (and a ticket, if there is one)?'));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const s = await api<Silence>('/api/v1/alerts/silences', { method: 'POST', body: { matchers, duration, comment: comment.trim(), ...(by.trim() ? { createdBy: by.trim() } : {}) } });
      // Alert states change at the next evaluation; run one now so the alert shows as silenced at once.
      await settle(api('/api/v1/alerts/evaluate', { method: 'POST' }));
      props.onDone(s);
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message));
    } finally {
      setBusy(false);
    }
  };
  const fid = (x: string) => `${props.id}-${x}`;
  return (
    <form
      id={props.id}
      class="silence-form"
      aria-label={`Silence ${a.alertname}`}
      data-testid="silence-form"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          props.onCancel();
        }
      }}
    >
      <fieldset>
        <legend>Duration</legend>
        {DURATIONS.map((x, i) => (
          <label key={x} class="inline">
            <input ref={i === 0 ? first : undefined} type="radio" name={fid('duration')} value={x} checked={duration === x} onChange={() => setDuration(x)} /> {x}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Match alerts with these labels</legend>
        {labels.map(([k, val]) => (
          <label key={k} class="inline">
            <input type="checkbox" checked={picked[k] ?? false} onChange={(e) => setPicked((p) => ({ ...p, [k]: (e.target as HTMLInputElement).checked }))} />{' '}
            <code>
              {k}="{val}"
            </code>
          </label>
        ))}
      </fieldset>
      <label for={fid('comment')}>Comment (why, and the ticket)</label>
      <textarea id={fid('comment')} rows={2} required value={comment} onInput={(e) => setComment((e.target as HTMLTextAreaElement).value)} />
      <label for={fid('by')}>Silenced by</label>
      <input id={fid('by')} type="text" value={by} placeholder={session.key ? session.key.name : 'your name'} onInput={(e) => setBy((e.target as HTMLInputElement).value)} required={!session.key} />
      <ErrorNote error={error} what="Cannot create the silence" />
      <div class="row">
        <button type="submit" class="primary" disabled={busy} data-testid="silence-submit">
          {busy ? 'Silencing…' : `Silence for ${duration}`}
        </button>
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <span class="muted">
          <kbd>Esc</kbd> cancels
        </span>
      </div>
    </form>
  );
}

function DriftPanel(props: { data: OnCallData }) {
  const latest = props.data.latest;
  return (
    <Panel title="Drift and data quality" id="oncall-drift">
      {!latest ? (
        <Empty>No version serves this deployment.</Empty>
      ) : !latest.ok ? (
        <ErrorNote error={latest.error} what="Monitoring windows" />
      ) : !latest.data.summary ? (
        <Empty>No monitoring window of this version has been evaluated yet. Register a reference (PUT /api/v1/models/&#123;name&#125;/versions/&#123;v&#125;/reference) to monitor drift and quality.</Empty>
      ) : (
        <DriftBody w={latest.data.summary} />
      )}
    </Panel>
  );
}

function DriftBody(props: { w: WindowSummary }) {
  const w = props.w;
  const features = w.features.filter((f) => f.role === 'feature');
  const drifted = features.filter((f) => f.drift);
  return (
    <>
      <p class="muted">
        Newest window {fmtTime(w.windowStart)} – {fmtTime(w.windowEnd)}, {fmtNum(w.rows)} rows.
      </p>
      <div class="stats">
        <Stat label="Dataset drift" value={w.datasetDrift ? 'yes' : 'no'} tone={w.datasetDrift ? 'bad' : 'ok'} testid="oncall-dataset-drift" />
        <Stat label="Drifted features" value={`${drifted.length} of ${features.length}`} hint={`share ${fmtPct(w.driftShare, 0)}`} tone={drifted.length ? 'warn' : 'ok'} testid="oncall-drifted" />
        <Stat label="Prediction drift" value={w.predictionDrift ? 'yes' : 'no'} tone={w.predictionDrift ? 'warn' : 'ok'} testid="oncall-prediction-drift" />
        <Stat label="Quality failures" value={fmtNum(w.qualityFailures)} tone={w.qualityFailures ? 'bad' : 'ok'} testid="oncall-quality-failures" />
      </div>
      {drifted.length > 0 ? (
        <table>
          <caption>Drifted features, worst first (a p-value drifts below its threshold, a distance above it)</caption>
          <thead>
            <tr>
              <th scope="col">feature</th>
              <th scope="col">test</th>
              <th scope="col" class="num">
                score
              </th>
              <th scope="col" class="num">
                threshold
              </th>
            </tr>
          </thead>
          <tbody>
            {drifted.map((f) => (
              <tr key={f.column}>
                <th scope="row">{f.column}</th>
                <td>
                  {f.test} <span class="muted">{f.scoreKind === 'p_value' ? 'p-value' : 'distance'}</span>
                </td>
                <td class="num" data-testid={`oncall-drift-score-${f.column}`}>
                  {fmtNum(f.score, 4)}
                </td>
                <td class="num">{fmtNum(f.threshold, 4)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p>No feature drifted in this window.</p>
      )}
    </>
  );
}

function CompletenessPanel(props: { data: OnCallData }) {
  const latest = props.data.latest;
  const full = latest?.ok ? latest.data.full : null;
  const checks = full?.quality.checks ?? [];
  const completeness = checks.filter((c) => c.metric === 'completeness').sort((x, y) => Number(y.failed) - Number(x.failed) || x.value - y.value);
  const otherFailed = checks.filter((c) => c.metric !== 'completeness' && c.failed);
  return (
    <Panel title="Feature completeness" id="oncall-completeness">
      {!full ? (
        <Empty>{latest && !latest.ok ? 'Monitoring windows unavailable (see drift).' : 'No evaluated window to read completeness from.'}</Empty>
      ) : completeness.length === 0 ? (
        <Empty>The newest window has no completeness check.</Empty>
      ) : (
        <>
          <table>
            <caption>
              Share of non-missing values per column, window ending {fmtTime(full.windowEnd)} (incomplete first)
            </caption>
            <thead>
              <tr>
                <th scope="col">column</th>
                <th scope="col" class="num">
                  complete
                </th>
                <th scope="col" class="num">
                  minimum
                </th>
                <th scope="col">check</th>
              </tr>
            </thead>
            <tbody>
              {completeness.map((c) => (
                <tr key={c.column}>
                  <th scope="row">{c.column}</th>
                  <td class="num" data-testid={`oncall-completeness-${c.column}`}>
                    {fmtPct(c.value, 1)}
                  </td>
                  <td class="num">{fmtPct(c.threshold, 0)}</td>
                  <td>{c.failed ? <Badge tone="bad">failed</Badge> : <Badge tone="ok">ok</Badge>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {otherFailed.length > 0 ? (
            <p>
              Other failing checks:{' '}
              {otherFailed.map((c, i) => (
                <span key={`${c.column}-${c.metric}`}>
                  {i ? ', ' : ''}
                  <code>{c.column}</code> {c.metric.replace(/_/g, ' ')} {fmtPct(c.value, 1)} (max {fmtPct(c.threshold, 1)})
                </span>
              ))}
            </p>
          ) : null}
        </>
      )}
    </Panel>
  );
}

function DeploysPanel(props: { d: Deployment; data: OnCallData; rangeText: string }) {
  const h = props.data.history;
  return (
    <Panel title="Deploys and rollout steps" id="oncall-deploys" wide>
      {!h.ok ? (
        <ErrorNote error={h.error} what="Deployment history" />
      ) : h.data.length === 0 ? (
        <Empty>
          No deploy, alias change or rollout step in the last {props.rangeText}
          {props.d.lastChange ? `; the last change was ${eventLabel(props.d.lastChange)} ${fmtAgo(props.d.lastChange.at)} by ${props.d.lastChange.actor}` : ''}.
        </Empty>
      ) : (
        <table data-testid="oncall-history">
          <caption>Newest first; each is a dashed marker on the charts above</caption>
          <thead>
            <tr>
              <th scope="col">time</th>
              <th scope="col">event</th>
              <th scope="col">versions</th>
              <th scope="col">by</th>
              <th scope="col">reason</th>
            </tr>
          </thead>
          <tbody>
            {[...h.data].reverse().map((e) => (
              <tr key={e.id}>
                <td>
                  {fmtTime(e.at)} <span class="muted">({fmtAgo(e.at)})</span>
                </td>
                <td>{eventLabel(e)}</td>
                <td>{eventVersions(e)}</td>
                <td>{e.actor}</td>
                <td>{e.reason ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}
