import { useState } from 'preact/hooks';
import { ApiError, api, enc, query } from '../api.ts';
import type { ViewProps } from '../app.tsx';
import { DeploymentSelect, paramsOf, useDeployments, useNewestFirst, type Deployment, type DeploymentEvent, type NewestFirst } from '../components/deployments.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel } from '../components/ui.tsx';
import { fmtAgo, fmtDuration, fmtNum, fmtTime } from '../format.ts';
import { useApi } from '../refresh.ts';
import { href, navigate } from '../router.ts';
import { useCan } from '../session.ts';
import '../components/deployments.css';
import './delivery.css';

/** `<rollout>` of GET /api/v1/deployments/{name}/rollout (src/rollouts/rollouts.ts RolloutView). */
interface Rollout {
  id: number;
  deployment: string;
  strategy: string;
  state: 'running' | 'paused' | 'promoted' | 'aborted';
  stable: number;
  candidate: number;
  step: number;
  steps: { weight: number; mirror: number; pauseMs: number | null; description: string }[];
  weight: number;
  mirror: number;
  stepStartedAt: number;
  stepEndsAt: number | null;
  status: { runs?: number; lastRunAt?: number | null; stepRuns?: number; lastVerdict?: string | null; lastSummary?: string | null; outcome?: string | null };
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
  actor: string;
  reason: string;
}

interface Decision {
  id: number;
  rolloutId: number;
  at: number;
  step: number;
  metric: string;
  verdict: 'success' | 'failure' | 'inconclusive';
  value: number | null;
  threshold: number | null;
  nStable: number;
  nCandidate: number;
  detail: Record<string, unknown>;
}

interface Arm {
  version: number;
  requests: number;
  units: number;
  mean: number | null;
  sd: number | null;
  observations: number;
}

/** GET /api/v1/deployments/{name}/experiment (src/rollouts/experiment.ts ExperimentResult). */
interface Experiment {
  rollout: number;
  state: string;
  stable: number;
  candidate: number;
  weight: number;
  since: number;
  until: number;
  sampleRatio: { pValue: number; chi2PValue: number; observedShares: number[]; expectedShares: number[]; mismatch: boolean };
  correction: string;
  alpha: number;
  metrics: {
    metric: string;
    source: 'outcomes' | 'labels';
    stable: Arm;
    candidate: Arm;
    difference: number | null;
    lower: number | null;
    upper: number | null;
    relativeDifference: number | null;
    pValue: number;
    adjustedPValue: number;
    significant: boolean;
    requiredPerArm: number | null;
    detectableNow: number | null;
    warnings: string[];
  }[];
  unmatchedOutcomes: number;
  warnings: string[];
  verdict: string;
}

type Action = 'promote' | 'pause' | 'resume' | 'abort';

/** Rows read at first, and added by each "Show older" (one page of the route, newest first). */
const SHOWN = 200;

/** A measured value: rates and distances are small, latencies and counts are not. */
export function fmtValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

const stateTone = (s: string) => (s === 'running' ? 'info' : s === 'paused' ? 'warn' : s === 'promoted' ? 'ok' : s === 'aborted' ? 'bad' : 'muted');
const verdictTone = (v: string) => (v === 'success' ? 'ok' : v === 'failure' ? 'bad' : 'warn');

export function DeliveryView({ route }: ViewProps) {
  const deps = useDeployments();
  const list = deps.data?.deployments ?? [];
  const name = route.params.get('deployment') || list[0]?.name || '';
  const set = (changes: Record<string, string | undefined>) => {
    const p = paramsOf(route.params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined) delete p[k];
      else p[k] = v;
    }
    navigate('/delivery', p);
  };
  return (
    <>
      <div class="view-head">
        <h1>Delivery</h1>
        {list.length > 0 ? <DeploymentSelect id="delivery-deployment" deployments={list} value={name} onChange={(d) => set({ deployment: d, rollout: undefined })} /> : null}
      </div>
      <Panel title="Deployments" id="deployments" wide>
        <ErrorNote error={deps.error} what="Could not list deployments" />
        {!deps.data && deps.loading ? <Loading what="deployments" /> : null}
        {deps.data && list.length === 0 ? (
          <Empty>
            No deployments: every registered model is one. Push a model with <code>warden push model.onnx --model NAME --alias champion</code>.
          </Empty>
        ) : null}
        {list.length > 0 ? <DeploymentTable list={list} selected={name} /> : null}
      </Panel>
      {name ? <DeploymentDetail key={name} name={name} rolloutParam={route.params.get('rollout')} onRollout={(id) => set({ rollout: id })} onChanged={deps.reload} /> : null}
    </>
  );
}

function DeploymentTable(props: { list: Deployment[]; selected: string }) {
  return (
    <table data-testid="deployments">
      <thead>
        <tr>
          <th scope="col">deployment</th>
          <th scope="col">stable</th>
          <th scope="col">candidate</th>
          <th scope="col">strategy</th>
          <th scope="col">last change</th>
        </tr>
      </thead>
      <tbody>
        {props.list.map((d) => (
          <tr key={d.name} class={d.name === props.selected ? 'selected' : undefined} data-deployment={d.name}>
            <th scope="row">
              <a href={href('/delivery', { deployment: d.name })} aria-current={d.name === props.selected ? 'true' : undefined}>
                {d.name}
              </a>
            </th>
            <td data-testid={`stable-${d.name}`}>
              {d.stable ? `v${d.stable.version}` : '—'}
              {d.stable && !d.stable.pinned ? <span class="muted"> (latest; no champion alias)</span> : null}
            </td>
            <td data-testid={`candidate-${d.name}`}>
              {d.candidate ? (
                <>
                  v{d.candidate.version} <Badge tone={stateTone(d.candidate.state)}>{d.candidate.state}</Badge> {d.candidate.weight} %{d.candidate.mirror ? `, ${d.candidate.mirror} % mirrored` : ''} · step {d.candidate.step}/{d.candidate.steps}
                </>
              ) : (
                <span class="muted">none</span>
              )}
            </td>
            <td>{d.strategy}</td>
            <td>{d.lastChange ? `${d.lastChange.kind} ${fmtAgo(d.lastChange.at)} by ${d.lastChange.actor}` : <span class="muted">never changed</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DeploymentDetail(props: { name: string; rolloutParam: string | null; onRollout: (id: string) => void; onChanged: () => void }) {
  const base = `/api/v1/deployments/${enc(props.name)}`;
  const rollouts = useApi<{ rollouts: Rollout[] }>(`/api/v1/rollouts${query({ deployment: props.name, limit: 20 })}`);
  // …/rollout answers 404 for a deployment that never had one; the list says so first, without an error.
  const any = (rollouts.data?.rollouts.length ?? 0) > 0;
  const status = useApi<{ rollout: Rollout; decisions: Decision[] }>(any ? `${base}/rollout` : null);
  const history = useNewestFirst<DeploymentEvent>(`${base}/history`, 'events', SHOWN);
  const none = (rollouts.data && !any) || status.error?.status === 404;
  const current = status.data?.rollout;
  const chosenId = props.rolloutParam ?? (current ? String(current.id) : null);
  const decisions = useNewestFirst<Decision>(chosenId ? `${base}/rollout/decisions${query({ rollout: chosenId })}` : null, 'decisions', SHOWN);
  const reloadAll = () => {
    status.reload();
    rollouts.reload();
    history.reload();
    decisions.reload();
    props.onChanged();
  };
  return (
    <>
      <Panel title={`${props.name}: rollout`} id="rollout" wide>
        {status.error && !none ? <ErrorNote error={status.error} what="Could not read the rollout" /> : null}
        <ErrorNote error={rollouts.error} what="Could not list the rollouts" />
        {!status.data && (status.loading || rollouts.loading) && !none ? <Loading what="rollout" /> : null}
        {none ? (
          <Empty>
            {props.name} never had a rollout. Start one with <code>warden deploy {props.name} --version N --strategy canary</code>.
          </Empty>
        ) : null}
        {current ? <RolloutSummary r={current} /> : null}
        {current && (current.state === 'running' || current.state === 'paused') ? <Actions deployment={props.name} r={current} onDone={reloadAll} /> : null}
      </Panel>
      {current?.strategy === 'ab' ? <ExperimentPanel path={`${base}/experiment`} /> : null}
      {current && !(current.strategy === 'ab' && status.data?.decisions.length === 0) ? (
        <Panel title={`Last analysis run of rollout #${current.id}`} id="last-run" wide>
          {status.data && status.data.decisions.length === 0 ? <Empty>No analysis has run yet in this rollout; the controller analyses at every interval once traffic arrives.</Empty> : <DecisionTable decisions={status.data?.decisions ?? []} testid="last-run" label="Decisions of the last analysis run" />}
        </Panel>
      ) : null}
      {chosenId ? (
        <Panel
          title={`Every analysis decision of rollout #${chosenId}`}
          id="decisions"
          wide
          actions={
            (rollouts.data?.rollouts.length ?? 0) > 1 ? (
              <span class="inline-field">
                <label for="delivery-rollout">Rollout</label>
                <select id="delivery-rollout" value={chosenId} onChange={(e) => props.onRollout((e.target as HTMLSelectElement).value)}>
                  {rollouts.data!.rollouts.map((r) => (
                    <option key={r.id} value={String(r.id)}>
                      #{r.id} v{r.candidate} {r.strategy} {r.state} ({fmtTime(r.createdAt)})
                    </option>
                  ))}
                </select>
              </span>
            ) : undefined
          }
        >
          <ErrorNote error={decisions.error} what="Could not read the decisions" />
          {decisions.items.length === 0 && decisions.loading ? <Loading what="decisions" /> : null}
          {!decisions.loading && !decisions.error && decisions.items.length === 0 ? <Empty>No analysis decisions recorded for rollout #{chosenId}.</Empty> : null}
          {decisions.items.length > 0 ? (
            <>
              <p class="muted">
                {decisions.more ? `The newest ${fmtNum(decisions.items.length)} decisions` : `${fmtNum(decisions.items.length)} decisions`}, newest first. Each row is one metric of one analysis run: the candidate measured
                against the stable version.
              </p>
              <DecisionTable decisions={decisions.items} testid="decisions" label={`Every decision of rollout #${chosenId}`} />
              <OlderButton list={decisions} />
            </>
          ) : null}
        </Panel>
      ) : null}
      <Panel title={`${props.name}: history`} id="history" wide>
        <ErrorNote error={history.error} what="Could not read the deployment history" />
        {history.items.length === 0 && history.loading ? <Loading what="history" /> : null}
        {!history.loading && !history.error && history.items.length === 0 ? <Empty>No deploys, rollbacks or rollout actions recorded for {props.name} yet.</Empty> : null}
        {history.items.length > 0 ? <HistoryTable history={history} /> : null}
      </Panel>
    </>
  );
}

function ExperimentPanel(props: { path: string }) {
  const exp = useApi<Experiment>(props.path);
  const e = exp.data;
  const pct = (xs: number[]) => xs.map((x) => `${(x * 100).toFixed(1)} %`).join(' / ');
  return (
    <Panel title={e ? `A/B experiment of rollout #${e.rollout}: v${e.candidate} against v${e.stable}` : 'A/B experiment'} id="experiment" wide>
      <ErrorNote error={exp.error} what="Could not read the experiment" />
      {!e && exp.loading ? <Loading what="experiment" /> : null}
      {e ? (
        <>
          <p data-testid="exp-verdict">{e.verdict}</p>
          <dl class="kv">
            <dt>split</dt>
            <dd>
              {e.weight} % of callers (by key) on v{e.candidate}, since {fmtTime(e.since)}
            </dd>
            <dt>sample ratio</dt>
            <dd data-testid="exp-srm">
              observed {pct(e.sampleRatio.observedShares)} against expected {pct(e.sampleRatio.expectedShares)} (stable / candidate), p = {fmtValue(e.sampleRatio.pValue)}{' '}
              {e.sampleRatio.mismatch ? <Badge tone="bad">mismatch: the split is broken, do not trust the metrics</Badge> : <Badge tone="ok">ok</Badge>}
            </dd>
            <dt>tests</dt>
            <dd>
              always-valid, α = {e.alpha}, {e.correction} correction across {e.metrics.length} metrics
            </dd>
            {e.unmatchedOutcomes ? (
              <>
                <dt>unmatched outcomes</dt>
                <dd>{fmtNum(e.unmatchedOutcomes)}</dd>
              </>
            ) : null}
          </dl>
          {e.warnings.length ? (
            <ul class="warnings">
              {e.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          ) : null}
          {e.metrics.length === 0 ? (
            <Empty>The experiment names no metric.</Empty>
          ) : (
            <div class="table-wrap" tabIndex={0} role="region" aria-label="Experiment metrics">
              <table data-testid="experiment">
                <thead>
                  <tr>
                    <th scope="col">metric</th>
                    <th scope="col" class="num">stable mean (units)</th>
                    <th scope="col" class="num">candidate mean (units)</th>
                    <th scope="col" class="num">difference [bounds]</th>
                    <th scope="col" class="num">relative</th>
                    <th scope="col" class="num">p (adjusted)</th>
                    <th scope="col">result</th>
                    <th scope="col" class="num">units needed per arm</th>
                    <th scope="col" class="num">detectable now</th>
                  </tr>
                </thead>
                <tbody>
                  {e.metrics.map((m) => (
                    <tr key={m.metric} data-metric={m.metric}>
                      <th scope="row">
                        {m.metric} <span class="muted">({m.source})</span>
                      </th>
                      <td class="num" data-field="stableMean">
                        {fmtValue(m.stable.mean)} ({fmtNum(m.stable.units)})
                      </td>
                      <td class="num" data-field="candidateMean">
                        {fmtValue(m.candidate.mean)} ({fmtNum(m.candidate.units)})
                      </td>
                      <td class="num nowrap" data-field="difference">
                        {fmtValue(m.difference)} [{fmtValue(m.lower)}, {fmtValue(m.upper)}]
                      </td>
                      <td class="num">{m.relativeDifference === null ? '—' : `${(m.relativeDifference * 100).toFixed(1)} %`}</td>
                      <td class="num" data-field="p">
                        {fmtValue(m.pValue)} ({fmtValue(m.adjustedPValue)})
                      </td>
                      <td>{m.significant ? <Badge tone={(m.difference ?? 0) >= 0 ? 'ok' : 'bad'}>significant</Badge> : <Badge tone="muted">not yet</Badge>}</td>
                      <td class="num">{fmtNum(m.requiredPerArm)}</td>
                      <td class="num">{fmtValue(m.detectableNow)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      ) : null}
    </Panel>
  );
}

function RolloutSummary(props: { r: Rollout }) {
  const { r } = props;
  const active = r.state === 'running' || r.state === 'paused';
  const stepNo = Math.min(r.step + 1, r.steps.length);
  return (
    <>
      <p class="rollout-line">
        <strong>
          #{r.id} {r.strategy}
        </strong>{' '}
        of v{r.candidate} beside v{r.stable}:{' '}
        <span data-testid="rollout-state">
          <Badge tone={stateTone(r.state)}>{r.state}</Badge>
        </span>
        {r.endedAt ? <span class="muted"> ended {fmtTime(r.endedAt)}</span> : null}
      </p>
      <dl class="kv">
        <dt>traffic</dt>
        <dd>
          <span data-testid="rollout-weight">{r.weight}</span> % to v{r.candidate}, {100 - r.weight} % to v{r.stable}
          {r.mirror ? `; ${r.mirror} % mirrored to v${r.candidate} as shadow` : ''}
        </dd>
        <dt>step</dt>
        <dd>
          <span data-testid="rollout-step">{stepNo}</span> of {r.steps.length}: {r.steps[Math.min(r.step, r.steps.length - 1)]?.description}
        </dd>
        <dt>step started</dt>
        <dd>{fmtTime(r.stepStartedAt)}</dd>
        <dt>step ends</dt>
        <dd data-testid="rollout-step-ends">
          {!active ? '—' : r.stepEndsAt === null ? 'held until promoted' : r.state === 'paused' ? `paused (pause was due to end ${fmtTime(r.stepEndsAt)})` : `${fmtTime(r.stepEndsAt)} (${fmtAgo(r.stepEndsAt)}), once the analysis passes`}
        </dd>
        <dt>analysis</dt>
        <dd>
          {r.status.runs ? `${fmtNum(r.status.runs)} runs, last ${fmtAgo(r.status.lastRunAt ?? null)}: ` : r.strategy === 'ab' ? 'an A/B experiment is read from its outcomes (below), not analysed step by step' : 'no run yet'}
          {r.status.lastVerdict ? <Badge tone={verdictTone(r.status.lastVerdict)}>{r.status.lastVerdict}</Badge> : null} {r.status.lastSummary ?? ''}
        </dd>
        {r.status.outcome ? (
          <>
            <dt>outcome</dt>
            <dd data-testid="rollout-outcome">{r.status.outcome}</dd>
          </>
        ) : null}
        <dt>started</dt>
        <dd>
          {fmtTime(r.createdAt)} by {r.actor}
          {r.reason ? ` — ${r.reason}` : ''}
        </dd>
      </dl>
      <ol class="steps" aria-label="Rollout steps">
        {r.steps.map((s, i) => {
          const cls = i < r.step || r.state === 'promoted' ? 'done' : i === r.step && active ? 'current' : '';
          return (
            <li key={i} class={cls} aria-current={cls === 'current' ? 'step' : undefined}>
              <span class="step-weight">{s.weight} %</span>
              {s.mirror ? <span class="muted"> +{s.mirror} % mirror</span> : null}
              <span class="muted"> · {s.pauseMs === null ? 'until promoted' : fmtDuration(s.pauseMs)}</span>
            </li>
          );
        })}
      </ol>
    </>
  );
}

function Actions(props: { deployment: string; r: Rollout; onDone: () => void }) {
  const can = useCan('deployer');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState<Action | null>(null);
  const [confirmAbort, setConfirmAbort] = useState(false);
  const [error, setError] = useState<ApiError | undefined>();
  const [done, setDone] = useState<string | null>(null);
  if (!can) return null;
  const run = async (action: Action) => {
    setBusy(action);
    setError(undefined);
    setDone(null);
    try {
      const out = await api<{ rollout: Rollout }>(`/api/v1/deployments/${enc(props.deployment)}/rollout/${action}`, { method: 'POST', body: reason.trim() ? { reason: reason.trim() } : {} });
      setDone(`${action}: rollout #${out.rollout.id} is ${out.rollout.state}${out.rollout.state === 'running' || out.rollout.state === 'paused' ? `, step ${Math.min(out.rollout.step + 1, out.rollout.steps.length)} at ${out.rollout.weight} %` : ''}.`);
      setReason('');
      setConfirmAbort(false);
      props.onDone();
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message));
    } finally {
      setBusy(null);
    }
  };
  const { state } = props.r;
  return (
    <div class="actions" role="group" aria-label="Rollout actions">
      <label for="rollout-reason">Reason (kept in the history)</label>
      <input id="rollout-reason" type="text" value={reason} maxLength={1000} placeholder="why" onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
      <div class="row">
        <button type="button" class="primary" disabled={busy !== null} onClick={() => void run('promote')} title="Skip the current pause to the next step; from the last step the candidate becomes stable">
          Promote
        </button>
        {state === 'running' ? (
          <button type="button" disabled={busy !== null} onClick={() => void run('pause')} title="Hold the current step with its split">
            Pause
          </button>
        ) : (
          <button type="button" disabled={busy !== null} onClick={() => void run('resume')} title="Continue; the step's counts restart">
            Resume
          </button>
        )}
        {!confirmAbort ? (
          <button type="button" class="danger" disabled={busy !== null} onClick={() => setConfirmAbort(true)}>
            Abort…
          </button>
        ) : (
          <span class="confirm" role="alert">
            All traffic goes back to v{props.r.stable}.{' '}
            <button type="button" class="danger" disabled={busy !== null} onClick={() => void run('abort')} autoFocus>
              Confirm abort
            </button>{' '}
            <button type="button" onClick={() => setConfirmAbort(false)}>
              Cancel
            </button>
          </span>
        )}
      </div>
      {busy ? <p class="muted">Sending {busy}…</p> : null}
      {done ? (
        <p class="ok-note" role="status" data-testid="action-result">
          {done}
        </p>
      ) : null}
      <ErrorNote error={error} what="The rollout action was refused" />
    </div>
  );
}

function DecisionTable(props: { decisions: Decision[]; testid: string; label: string }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={props.label}>
      <table data-testid={props.testid} class="decisions">
        <thead>
          <tr>
            <th scope="col">time</th>
            <th scope="col" class="num">step</th>
            <th scope="col">metric</th>
            <th scope="col">verdict</th>
            <th scope="col" class="num">value</th>
            <th scope="col" class="num">threshold</th>
            <th scope="col" class="num">n stable</th>
            <th scope="col" class="num">n candidate</th>
            <th scope="col">detail</th>
          </tr>
        </thead>
        <tbody>
          {props.decisions.map((d) => (
            <tr key={d.id} data-decision={d.id} data-metric={d.metric}>
              <td class="nowrap">{fmtTime(d.at)}</td>
              <td class="num">{d.step + 1}</td>
              <th scope="row">{d.metric}</th>
              <td>
                <Badge tone={verdictTone(d.verdict)}>{d.verdict}</Badge>
              </td>
              <td class="num" data-field="value">
                {fmtValue(d.value)}
              </td>
              <td class="num" data-field="threshold">
                {fmtValue(d.threshold)}
              </td>
              <td class="num" data-field="nStable">
                {fmtNum(d.nStable)}
              </td>
              <td class="num" data-field="nCandidate">
                {fmtNum(d.nCandidate)}
              </td>
              <td>
                <Detail d={d.detail} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The detail behind a decision (bounds, p-values, reason) as short `key value` text. */
function Detail(props: { d: Record<string, unknown> | null | undefined }) {
  const entries = Object.entries(props.d ?? {});
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <span class="detail">
      {entries.map(([k, v]) => (
        <span key={k}>
          <span class="muted">{k}</span> {typeof v === 'number' ? fmtValue(v) : typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'number') ? `[${v.map((x: number) => fmtValue(x)).join(', ')}]` : JSON.stringify(v)}
        </span>
      ))}
    </span>
  );
}

/** A rollout action leaves the stable version where it is: name its candidate; other changes move stable. */
function versionsOf(e: DeploymentEvent): string {
  const v = (n: number | null) => (n === null ? '—' : `v${n}`);
  const candidate = typeof e.data?.candidate === 'number' ? e.data.candidate : null;
  if (e.kind.startsWith('rollout-') && candidate !== null) {
    if (e.kind === 'rollout-promote') return `${v(e.fromVersion)} → ${v(e.toVersion)} (candidate promoted)`;
    if (e.kind === 'rollout-abort') return `candidate v${candidate} aborted, ${v(e.toVersion)} stable`;
    return `candidate v${candidate} beside ${v(e.fromVersion)}`;
  }
  return `${v(e.fromVersion)} → ${v(e.toVersion)}`;
}

/** "Show 200 older": reads the page before the oldest row shown, while the route says there is one. */
function OlderButton<T>(props: { list: NewestFirst<T> }) {
  const l = props.list;
  if (!l.more) return null;
  return (
    // Not disabled while loading: a disabled button would drop the keyboard focus.
    <button type="button" onClick={() => (l.loadingOlder ? undefined : l.loadOlder())} aria-busy={l.loadingOlder}>
      {l.loadingOlder ? 'Loading older…' : `Show ${fmtNum(SHOWN)} older`}
    </button>
  );
}

function HistoryTable(props: { history: NewestFirst<DeploymentEvent> }) {
  const events = props.history.items;
  return (
    <>
      <table data-testid="history">
        <thead>
          <tr>
            <th scope="col">time</th>
            <th scope="col">change</th>
            <th scope="col">versions</th>
            <th scope="col">strategy</th>
            <th scope="col">by</th>
            <th scope="col">reason</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-kind={e.kind}>
              <td class="nowrap">{fmtTime(e.at)}</td>
              <th scope="row">{e.kind}</th>
              <td>{versionsOf(e)}</td>
              <td>{e.strategy ?? ''}</td>
              <td>{e.actor}</td>
              <td>
                {e.reason ?? ''}
                {typeof e.data?.monitoring === 'string' ? <div class="muted">{e.data.monitoring}</div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <OlderButton list={props.history} />
    </>
  );
}
