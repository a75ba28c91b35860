import { enc, query } from '../api.ts';
import type { ViewProps } from '../app.tsx';
import '../components/deployments.css';
import './request.css';
import { RequestSearch, parseError, type PredictionEvent } from '../components/predictions.tsx';
import { Badge, Empty, ErrorNote, Loading, Panel } from '../components/ui.tsx';
import { fmtAgo, fmtMs, fmtTime } from '../format.ts';
import { useApi } from '../refresh.ts';
import { href } from '../router.ts';

function requestIdOf(path: string): string {
  const raw = path.replace(/^\/requests\/?/, '');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export function RequestView({ route }: ViewProps) {
  const id = requestIdOf(route.path);
  const res = useApi<{ events: PredictionEvent[] }>(id ? `/api/v1/predictions${query({ requestId: id, limit: 100 })}` : null);
  const events = res.data?.events ?? [];
  const served = events.filter((e) => e.status !== 'shadow');
  const shadows = events.filter((e) => e.status === 'shadow');
  return (
    <>
      <div class="view-head">
        <h1>
          Request <span class="mono">{id || '—'}</span>
        </h1>
        <a href={href('/debug')}>Back to the debug view</a>
        <RequestSearch />
      </div>
      {!id ? (
        <Panel title="No request id" wide>
          <Empty>
            Open a request from the debug view, or go to <code>#/requests/&lt;x-request-id&gt;</code>.
          </Empty>
        </Panel>
      ) : null}
      {res.error ? <ErrorNote error={res.error} what="Could not read the prediction log" /> : null}
      {id && !res.data && res.loading ? <Loading what="request" /> : null}
      {res.data && events.length === 0 ? (
        <Panel title="Not in the prediction log" wide>
          <Empty>
            No logged prediction has request id <code>{id}</code>. Check the id (the <code>x-request-id</code> response header); the log is written in batches, so a request
            from the last second may not be there yet, and the log may have dropped events under load (<code>GET /api/v1/predictions/stats</code>).
          </Empty>
        </Panel>
      ) : null}
      {served.map((e) => (
        <EventPanels key={e.seq} e={e} title={served.length > 1 ? `Logged event #${e.seq}` : 'Request'} />
      ))}
      {shadows.length > 0 ? (
        <Panel title={`Shadow copies (${shadows.length})`} id="shadows" wide>
          <p class="muted">A candidate answered a mirrored copy of this request; the caller never saw these answers. Their inputs are those of the request above.</p>
          <table data-testid="shadow-copies">
            <thead>
              <tr>
                <th scope="col">version</th>
                <th scope="col">time</th>
                <th scope="col" class="num">model run</th>
                <th scope="col">outputs</th>
                <th scope="col">error</th>
              </tr>
            </thead>
            <tbody>
              {shadows.map((s) => (
                <tr key={s.seq} data-shadow={s.seq}>
                  <td>
                    <a href={href('/debug', { deployment: s.model, version: String(s.version) })}>v{s.version}</a>
                  </td>
                  <td>{fmtTime(s.ts)}</td>
                  <td class="num" data-testid="shadow-latency">
                    {fmtMs(s.latencyMs)}
                  </td>
                  <td>
                    <Value v={s.outputs} where={`shadow copy #${s.seq} outputs`} />
                  </td>
                  <td>{s.error ? <code>{s.error}</code> : <span class="muted">none</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Panel>
      ) : null}
    </>
  );
}

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

const isTensorList = (v: unknown): v is Tensor[] =>
  Array.isArray(v) && v.length > 0 && v.every((t) => typeof t === 'object' && t !== null && typeof (t as Tensor).name === 'string' && Array.isArray((t as Tensor).shape) && Array.isArray((t as Tensor).data));

function EventPanels(props: { e: PredictionEvent; title: string }) {
  const { e } = props;
  // Feature names label the input tensor's columns; a version that is gone just leaves them numbered.
  const sig = useApi<{ signature: { features?: { name: string }[] } }>(e.version && isTensorList(e.inputs) ? `/api/v1/models/${enc(e.model)}/versions/${e.version}` : null);
  const features = sig.data?.signature.features?.map((f) => f.name);
  const err = e.status === 'error' ? parseError(e.error) : undefined;
  return (
    <>
      <Panel title={props.title} id={`event-${e.seq}`} wide>
        <dl class="kv" data-testid="request-detail">
          <dt>status</dt>
          <dd data-testid="request-status">{e.status === 'ok' ? <Badge tone="ok">ok</Badge> : <Badge tone="bad">error</Badge>}</dd>
          <dt>model</dt>
          <dd>
            <a href={href('/debug', { deployment: e.model, ...(e.version ? { version: String(e.version) } : {}) })}>{e.model}</a>
          </dd>
          <dt>version</dt>
          <dd data-testid="request-version">{e.version ? `v${e.version}` : 'unresolved (the request named no version that exists)'}</dd>
          {e.route ? (
            <>
              <dt>rollout route</dt>
              <dd>{e.route}</dd>
            </>
          ) : null}
          <dt>received</dt>
          <dd data-testid="request-time">
            {fmtTime(e.ts)} <span class="muted">({fmtAgo(e.ts)})</span>
          </dd>
          <dt>latency</dt>
          <dd data-testid="request-latency">{fmtMs(e.latencyMs)}</dd>
          <dt>trace id</dt>
          <dd data-testid="request-trace">{e.traceId ? <span class="mono">{e.traceId}</span> : <span class="muted">none (tracing was off for this request)</span>}</dd>
          {e.keys?.length ? (
            <>
              <dt>caller keys</dt>
              <dd class="mono">{e.keys.join(', ')}</dd>
            </>
          ) : null}
          {err ? (
            <>
              <dt>error</dt>
              <dd data-testid="request-error">
                <code>{err.code}</code> {err.message}
              </dd>
            </>
          ) : e.error ? (
            <>
              <dt>note</dt>
              <dd>
                <code>{e.error}</code>
              </dd>
            </>
          ) : null}
        </dl>
      </Panel>
      <Panel title="Inputs" id={`inputs-${e.seq}`} wide>
        <div data-testid="request-inputs">
          <Value v={e.inputs} columns={features} where={`event #${e.seq} inputs`} />
        </div>
      </Panel>
      <Panel title="Outputs" id={`outputs-${e.seq}`} wide>
        <div data-testid="request-outputs">{e.outputs === null || e.outputs === undefined ? <Empty>No outputs: the request failed before the model answered.</Empty> : <Value v={e.outputs} where={`event #${e.seq} outputs`} />}</div>
      </Panel>
    </>
  );
}

function TensorView(props: { t: Tensor; columns: string[] | undefined; where: string }) {
  const { t } = props;
  const n = t.shape.length === 0 ? 1 : t.shape[0]!;
  const k = t.shape.length === 2 ? t.shape[1]! : 1;
  if (n * k !== t.data.length || n > 200 || k > 64) return <pre tabIndex={0}>{JSON.stringify(t, null, 2)}</pre>;
  const cols = props.columns?.length === k ? props.columns : k === 1 ? [t.name] : Array.from({ length: k }, (_, j) => `${t.name}[${j}]`);
  return (
    <div class="table-scroll" tabIndex={0} role="region" aria-label={`${props.where}: tensor ${t.name}`}>
      <table class="value-table" data-tensor={t.name}>
        <caption>
          <code>{t.name}</code> {t.datatype} [{t.shape.join(', ')}]
        </caption>
        <thead>
          <tr>
            <th scope="col">row</th>
            {cols.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {Array.from({ length: n }, (_, r) => (
            <tr key={r}>
              <th scope="row">{r}</th>
              {cols.map((c, j) => (
                <td key={c} class="mono num">
                  {fmtCell(t.data[r * k + j])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** float32 values arrive widened (0.23999999463558197): 7 significant digits is what the model saw. */
function fmtCell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(7)));
  return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

type Scalar = string | number | boolean | null;
const isScalar = (v: unknown): v is Scalar => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const isFlat = (v: unknown): v is Record<string, Scalar> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isScalar);
const show = (v: Scalar) => (v === null ? 'null' : String(v));

/** Tensors as tables (one row per batch row), rows of named values as a table, anything else as JSON. */
function Value(props: { v: unknown; columns?: string[] | undefined; where: string }) {
  const { v } = props;
  if (isTensorList(v) && v.every((t) => t.shape.length <= 2)) {
    return (
      <>
        {v.map((t, i) => (
          <TensorView key={t.name} t={t} columns={i === 0 ? props.columns : undefined} where={props.where} />
        ))}
      </>
    );
  }
  const rows = Array.isArray(v) && v.length > 0 && v.length <= 200 && v.every(isFlat) ? (v as Record<string, Scalar>[]) : isFlat(v) && Object.keys(v).length > 0 ? [v] : null;
  if (rows) {
    const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    if (cols.length <= 40) {
      return (
        <div class="table-scroll" tabIndex={0} role="region" aria-label={props.where}>
          <table class="value-table">
            <thead>
              <tr>
                {rows.length > 1 ? <th scope="col">row</th> : null}
                {cols.map((c) => (
                  <th key={c} scope="col">
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={i}>
                  {rows.length > 1 ? <th scope="row">{i}</th> : null}
                  {cols.map((c) => (
                    <td key={c} class="mono">
                      {r[c] === undefined ? '' : show(r[c])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    }
  }
  return <pre tabIndex={0}>{JSON.stringify(v, null, 2)}</pre>;
}

