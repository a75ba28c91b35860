import { useEffect, useState } from 'preact/hooks';
import { enc, storedKey } from '../api.ts';
import type { ViewProps } from '../app.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel } from '../components/ui.tsx';
import { fmtNum, fmtTime } from '../format.ts';
import { useApi } from '../refresh.ts';
import { href } from '../router.ts';
import './card.css';

/** The JSON card as GET …/card answers it (src/registry/model-card.ts), as far as this view reads it. */
interface Sourced {
  value: string;
  from: string;
}

interface Card {
  model: string;
  version: number;
  generatedAt: number;
  bounds: { windows: number; deploymentEvents: number; alerts: number };
  overview: { modelDescription: string | null; description: string | null; intendedUse: Sourced | null; owner: Sourced | null; createdAt: number; sha256: string; sizeBytes: number; aliases: string[] };
  signature: { inputs: { name: string; datatype: string; shape: number[] }[]; outputs: { name: string; datatype: string; shape: number[] }[]; features: { name: string; datatype: string }[] | null };
  lineage: { trainingDataSha256: string | null; parentVersion: number | null; sourceCommit: string | null; trigger: string | null; retrainJob: number | null; datasetSha256: string | null; gate: string | null };
  offlineMetrics: Record<string, number> | null;
  performance: {
    task: string;
    metric: string;
    windows: { windowStart: number; rows: number; labelled: number; realized: number | null; estimated: number | null }[];
    latest: { realized: number | null; estimated: number | null; offline: number | null; healthy: boolean | null };
    trend: { basis: string; windows: number; earlier: number; recent: number; change: number; direction: 'improving' | 'worsening' | 'stable' } | null;
  } | null;
  drift: { windows: number; driftedWindows: number; columns: { column: string; driftedWindows: number }[]; history: { windowStart: number; rows: number; datasetDrift: boolean; driftShare: number; drifted: string[] }[] } | null;
  segments: { windowStart: number; metric: string; rows: { column: string; value: string; labelled: number; metricValue: number | null }[] } | null;
  importance: { method: string; windows: number; features: { feature: string; meanAbsShap: number }[] } | null;
  deployments: { servingNow: string | null; events: { at: number; kind: string; fromVersion: number | null; toVersion: number | null; candidate: number | null; actor: string; reason: string }[] };
  alerts: { alertname: string; severity: string; status: string; since: number; summary: string }[] | null;
  gaps: { field: string; why: string; fill: string }[];
}

/** Four significant digits, as the Markdown card shows them. */
const n4 = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(Number(v.toPrecision(4))));
const ver = (v: number | null) => (v === null ? '—' : `v${v}`);

/** A field the card could not fill; the Gaps panel says why and what fills it (no in-page anchor: the hash is the route). */
function Gap(props: { field: string }) {
  return (
    <Empty>
      Not filled: <code>{props.field}</code> is listed under Gaps below.
    </Empty>
  );
}

/** The Markdown form, fetched as text (the JSON helper would refuse it). */
function useMarkdown(path: string | null, show: boolean): { text?: string; error?: string } {
  const [state, setState] = useState<{ text?: string; error?: string }>({});
  useEffect(() => {
    if (!path || !show) return;
    const key = storedKey();
    const ctl = new AbortController();
    fetch(path, { headers: { accept: 'text/markdown', ...(key ? { authorization: `Bearer ${key}` } : {}) }, credentials: 'omit', cache: 'no-store', signal: ctl.signal })
      .then(async (r) => (r.ok ? setState({ text: await r.text() }) : setState({ error: `${path} answered ${r.status}` })))
      .catch((e: Error) => e.name !== 'AbortError' && setState({ error: e.message }));
    return () => ctl.abort();
  }, [path, show]);
  return state;
}

export function CardView({ route }: ViewProps) {
  const model = route.params.get('model') ?? '';
  const version = route.params.get('version') ?? 'latest';
  const path = model ? `/api/v1/models/${enc(model)}/versions/${enc(version)}/card` : null;
  const card = useApi<Card>(path);
  const [showMd, setShowMd] = useState(false);
  const md = useMarkdown(path, showMd);
  const c = card.data;
  return (
    <>
      <div class="view-head">
        <h1>Model card{c ? `: ${c.model} v${c.version}` : model ? `: ${model}` : ''}</h1>
        <span class="muted">
          Generated from the registry, monitoring, deployment history and alerts{c ? ` at ${fmtTime(c.generatedAt)}` : ''} · <a href={href('/registry', { model, version: c ? String(c.version) : undefined })}>back to the registry</a>
        </span>
      </div>
      {!model ? <Empty>Choose a version in the <a href={href('/registry')}>registry</a>.</Empty> : null}
      <ErrorNote error={card.error} what="Could not generate the model card" />
      {!c && card.loading ? <Loading what="model card" /> : null}
      {c ? <CardPanels c={c} /> : null}
      {c ? (
        <Panel title="Markdown" id="card-markdown" wide actions={<button type="button" onClick={() => setShowMd((s) => !s)} aria-expanded={showMd}>{showMd ? 'Hide' : 'Show Markdown'}</button>}>
          {showMd ? md.error ? <p class="error">{md.error}</p> : md.text === undefined ? <Loading what="Markdown" /> : <pre class="card-md" data-testid="card-markdown" tabIndex={0} aria-label="The model card as Markdown">{md.text}</pre> : <p class="muted">The same card as Markdown (<code>?format=md</code>, or <code>warden models card {c.model} {c.version}</code>).</p>}
        </Panel>
      ) : null}
    </>
  );
}

function CardPanels({ c }: { c: Card }) {
  const o = c.overview;
  const l = c.lineage;
  const p = c.performance;
  return (
    <div class="card-grid">
      <Panel title="Overview" id="card-overview">
        <dl class="kv">
          <dt>intended use</dt>
          <dd data-testid="card-intended-use">{o.intendedUse ? <>{o.intendedUse.value} <span class="muted">({o.intendedUse.from})</span></> : <span class="muted">gap</span>}</dd>
          <dt>owner</dt>
          <dd data-testid="card-owner">{o.owner ? <>{o.owner.value} <span class="muted">({o.owner.from})</span></> : <span class="muted">gap</span>}</dd>
          {o.description ? (
            <>
              <dt>description</dt>
              <dd>{o.description}</dd>
            </>
          ) : null}
          <dt>created</dt>
          <dd>{fmtTime(o.createdAt)}</dd>
          <dt>sha256</dt>
          <dd class="mono">{o.sha256}</dd>
          <dt>serving now</dt>
          <dd data-testid="card-serving">{c.deployments.servingNow ?? 'no'}</dd>
          <dt>aliases</dt>
          <dd>{o.aliases.length ? o.aliases.map((a) => <Badge key={a} tone="info">{a}</Badge>) : <span class="muted">none</span>}</dd>
        </dl>
      </Panel>
      <Panel title="Lineage and offline metrics" id="card-lineage">
        <dl class="kv">
          <dt>training data sha256</dt>
          <dd class="mono" data-testid="card-data-sha">{l.trainingDataSha256 ?? '—'}</dd>
          <dt>parent version</dt>
          <dd data-testid="card-parent">{l.parentVersion === null ? '—' : <a href={href('/card', { model: c.model, version: String(l.parentVersion) })}>v{l.parentVersion}</a>}</dd>
          <dt>source commit</dt>
          <dd class="mono" data-testid="card-commit">{l.sourceCommit ?? '—'}</dd>
          <dt>trigger</dt>
          <dd data-testid="card-trigger">{l.trigger ?? '—'}{l.retrainJob !== null ? ` (job #${l.retrainJob})` : ''}</dd>
        </dl>
        {c.offlineMetrics ? (
          <table class="kv-table">
            <tbody>
              {Object.entries(c.offlineMetrics).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td class="mono" data-testid={`card-offline-${k}`}>{n4(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : <Gap field="offlineMetrics" />}
      </Panel>
      <Panel title="Signature" id="card-signature">
        <table>
          <thead>
            <tr>
              <th scope="col">tensor</th>
              <th scope="col">role</th>
              <th scope="col">datatype</th>
              <th scope="col">shape</th>
            </tr>
          </thead>
          <tbody>
            {[...c.signature.inputs.map((t) => ({ ...t, role: 'input' })), ...c.signature.outputs.map((t) => ({ ...t, role: 'output' }))].map((t) => (
              <tr key={`${t.role}-${t.name}`}>
                <th scope="row">{t.name}</th>
                <td>{t.role}</td>
                <td>{t.datatype}</td>
                <td class="mono">[{t.shape.map((d) => (d < 0 ? 'N' : String(d))).join(', ')}]</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p data-testid="card-features">{c.signature.features ? `Features: ${c.signature.features.map((f) => f.name).join(', ')}` : 'No named features.'}</p>
      </Panel>
      <Panel title="Live and estimated performance" id="card-performance">
        {!p ? <Gap field="performance" /> : (
          <>
            <p>
              {p.task}, {p.metric}: realized <strong data-testid="card-realized">{n4(p.latest.realized)}</strong>, estimated <strong data-testid="card-estimated">{n4(p.latest.estimated)}</strong>, offline {n4(p.latest.offline)}{' '}
              {p.latest.healthy === null ? null : <Badge tone={p.latest.healthy ? 'ok' : 'bad'}>{p.latest.healthy ? 'within tolerance' : 'outside tolerance'}</Badge>}
            </p>
            {p.trend ? (
              <p data-testid="card-trend">
                Trend ({p.trend.basis}, {p.trend.windows} windows): {n4(p.trend.earlier)} → {n4(p.trend.recent)}{' '}
                <Badge tone={p.trend.direction === 'worsening' ? 'warn' : p.trend.direction === 'improving' ? 'ok' : 'muted'}>{p.trend.direction}</Badge>
              </p>
            ) : null}
            <table data-testid="card-perf-windows">
              <thead>
                <tr>
                  <th scope="col">window</th>
                  <th scope="col" class="num">rows</th>
                  <th scope="col" class="num">labelled</th>
                  <th scope="col" class="num">realized</th>
                  <th scope="col" class="num">estimated</th>
                </tr>
              </thead>
              <tbody>
                {p.windows.slice(0, 24).map((w) => (
                  <tr key={w.windowStart} data-window={w.windowStart}>
                    <th scope="row">{fmtTime(w.windowStart)}</th>
                    <td class="num">{fmtNum(w.rows)}</td>
                    <td class="num">{fmtNum(w.labelled)}</td>
                    <td class="num" data-field="realized">{n4(w.realized)}</td>
                    <td class="num" data-field="estimated">{n4(w.estimated)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Panel>
      <Panel title="Drift history" id="card-drift">
        {!c.drift ? <Gap field="drift" /> : (
          <>
            <p data-testid="card-drifted-windows">
              {c.drift.driftedWindows} of the newest {c.drift.windows} windows drifted.
            </p>
            <table data-testid="card-drift-history">
              <thead>
                <tr>
                  <th scope="col">window</th>
                  <th scope="col" class="num">rows</th>
                  <th scope="col" class="num">drift share</th>
                  <th scope="col">drifted columns</th>
                </tr>
              </thead>
              <tbody>
                {c.drift.history.slice(0, 24).map((w) => (
                  <tr key={w.windowStart}>
                    <th scope="row">{fmtTime(w.windowStart)}</th>
                    <td class="num">{fmtNum(w.rows)}</td>
                    <td class="num">{w.datasetDrift ? <Badge tone="warn">{n4(w.driftShare)}</Badge> : n4(w.driftShare)}</td>
                    <td data-field="drifted">{w.drifted.join(', ') || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Panel>
      <Panel title="Segments and feature importance" id="card-segments">
        <h3>Segments</h3>
        {!c.segments ? <Gap field="segments" /> : (
          <table data-testid="card-segments-table">
            <thead>
              <tr>
                <th scope="col">column</th>
                <th scope="col">value</th>
                <th scope="col" class="num">labelled</th>
                <th scope="col" class="num">{c.segments.metric}</th>
              </tr>
            </thead>
            <tbody>
              {c.segments.rows.map((r) => (
                <tr key={`${r.column}=${r.value}`}>
                  <th scope="row">{r.column}</th>
                  <td>{r.value}</td>
                  <td class="num">{fmtNum(r.labelled)}</td>
                  <td class="num">{n4(r.metricValue)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <h3>Global feature importance</h3>
        {!c.importance ? <Gap field="importance" /> : (
          <table data-testid="card-importance">
            <caption class="muted">mean |SHAP| ({c.importance.method}) over {c.importance.windows} windows</caption>
            <tbody>
              {c.importance.features.map((f) => (
                <tr key={f.feature}>
                  <th scope="row">{f.feature}</th>
                  <td class="num" data-field="shap">{n4(f.meanAbsShap)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      <Panel title="Deployment history" id="card-deployments">
        {c.deployments.events.length === 0 ? <Empty>No recorded change of the stable version involves this version.</Empty> : (
          <table data-testid="card-deploy-events">
            <thead>
              <tr>
                <th scope="col">time</th>
                <th scope="col">kind</th>
                <th scope="col">stable</th>
                <th scope="col">candidate</th>
                <th scope="col">actor</th>
                <th scope="col">reason</th>
              </tr>
            </thead>
            <tbody>
              {c.deployments.events.map((e, i) => (
                <tr key={i} data-kind={e.kind}>
                  <th scope="row">{fmtTime(e.at)}</th>
                  <td>{e.kind}</td>
                  <td data-field="stable">{ver(e.fromVersion)} → {ver(e.toVersion)}</td>
                  <td>{ver(e.candidate)}</td>
                  <td>{e.actor}</td>
                  <td>{e.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      <Panel title="Open alerts" id="card-alerts">
        {!c.alerts ? <Gap field="alerts" /> : c.alerts.length === 0 ? <Empty>None.</Empty> : (
          <table data-testid="card-alerts-table">
            <thead>
              <tr>
                <th scope="col">alert</th>
                <th scope="col">severity</th>
                <th scope="col">status</th>
                <th scope="col">summary</th>
              </tr>
            </thead>
            <tbody>
              {c.alerts.map((a, i) => (
                <tr key={i}>
                  <th scope="row">{a.alertname}</th>
                  <td>
                    <Badge tone={a.severity === 'page' ? 'bad' : 'warn'}>{a.severity}</Badge>
                  </td>
                  <td>{a.status}</td>
                  <td>{a.summary}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Panel>
      <Panel title={`Gaps (${c.gaps.length})`} id="card-gaps" wide>
        {c.gaps.length === 0 ? <Empty>None: every field is filled.</Empty> : (
          <table data-testid="card-gaps-table">
            <thead>
              <tr>
                <th scope="col">field</th>
                <th scope="col">why</th>
                <th scope="col">what fills it</th>
              </tr>
            </thead>
            <tbody>
              {c.gaps.map((g) => (
                <tr key={g.field} data-gap={g.field}>
                  <th scope="row" class="mono">{g.field}</th>
                  <td>{g.why}</td>
                  <td>{g.fill}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p class="muted">
          Read: the newest {c.bounds.windows} monitoring windows, {c.bounds.deploymentEvents} deployment events and {c.bounds.alerts} alerts.
        </p>
      </Panel>
    </div>
  );
}
