import './deployments.css';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, enc } from '../api.ts';
import { RefreshContext, useApi } from '../refresh.ts';

/** `GET /api/v1/deployments` → one of `deployments` (src/rollouts/deployments.ts DeploymentState). */
export interface Deployment {
  name: string;
  stable: { version: number; since: number | null; pinned: boolean } | null;
  candidate: { version: number; rollout: number; state: 'running' | 'paused'; weight: number; mirror: number; step: number; steps: number } | null;
  strategy: string;
  versions: number[];
  lastChange: DeploymentEvent | null;
}

/** `GET /api/v1/deployments/{name}/history` → one of `events`. */
export interface DeploymentEvent {
  id: number;
  deployment: string;
  at: number;
  kind: string;
  fromVersion: number | null;
  toVersion: number | null;
  strategy: string | null;
  actor: string;
  reason: string | null;
  data: Record<string, unknown> | null;
}

export function useDeployments() {
  return useApi<{ deployments: Deployment[] }>('/api/v1/deployments');
}

/** A labelled select of deployments; `onChange` gets the chosen name. */
export function DeploymentSelect(props: { id: string; deployments: Deployment[]; value: string; onChange: (name: string) => void }) {
  return (
    <span class="inline-field">
      <label for={props.id}>Deployment</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.deployments.length === 0 ? <option value="">none</option> : null}
        {props.deployments.map((d) => (
          <option key={d.name} value={d.name}>
            {d.name}
          </option>
        ))}
      </select>
    </span>
  );
}

/** The route's params as a plain object, to change one and navigate. */
export function paramsOf(p: URLSearchParams): Record<string, string> {
  return Object.fromEntries(p.entries());
}

export interface AppendOnly<T> {
  items: T[];
  error: ApiError | undefined;
  loading: boolean;
  /** More pages than `maxPages` were waiting: the oldest `items` are shown, not the newest. */
  capped: boolean;
  reload: () => void;
}

/**
 * Every record of an append-only list the API pages oldest first (`after=<cursor>&limit=`), such as a deployment's
 * history or a rollout's decisions: the first load follows the cursor to the end, and each refresh reads only what
 * was appended since. `path` carries the other query parameters (`?rollout=3`); null loads nothing.
 */
export function useAppendOnly<T>(path: string | null, field: string, pageLimit: number, maxPages = 20): AppendOnly<T> {
  const tick = useContext(RefreshContext);
  const [local, setLocal] = useState(0);
  const [state, setState] = useState<{ path: string | null; items: T[]; cursor: string | null; error?: ApiError; loading: boolean; capped: boolean }>({ path, items: [], cursor: null, loading: path !== null, capped: false });
  const cur = useRef(state);
  cur.current = state;
  useEffect(() => {
    if (path === null) return;
    const ctl = new AbortController();
    const fresh = cur.current.path !== path;
    let items = fresh ? [] : cur.current.items;
    let cursor = fresh ? null : cur.current.cursor;
    setState((s) => (fresh ? { path, items: [], cursor: null, loading: true, capped: false } : { ...s, loading: true }));
    void (async () => {
      try {
        for (let page = 0; ; page++) {
          if (page >= maxPages) {
            setState({ path, items, cursor, loading: false, capped: true });
            return;
          }
          const sep = path.includes('?') ? '&' : '?';
          const body = await api<Record<string, unknown> & { nextCursor: string | null }>(`${path}${sep}limit=${pageLimit}${cursor ? `&after=${enc(cursor)}` : ''}`, { signal: ctl.signal });
          const got = (body[field] as T[] | undefined) ?? [];
          items = got.length ? [...items, ...got] : items;
          if (body.nextCursor) cursor = body.nextCursor;
          if (got.length < pageLimit) break;
        }
        setState({ path, items, cursor, loading: false, capped: false });
      } catch (e) {
        if ((e as Error).name === 'AbortError') return;
        const err = e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message);
        setState((s) => ({ ...s, path, error: err, loading: false }));
      }
    })();
    return () => ctl.abort();
  }, [path, tick, local, field, pageLimit, maxPages]);
  const same = state.path === path;
  return { items: same ? state.items : [], error: same ? state.error : undefined, loading: path !== null && (!same || state.loading), capped: same && state.capped, reload: () => setLocal((n) => n + 1) };
}
