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
  strategy: string;
  actor: string;
  reason: string | null;
  data: Record<string, unknown>;
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

export interface NewestFirst<T> {
  /** Newest first: the first page, then every page of older ones asked for, with each refresh's new ones on top. */
  items: T[];
  error: ApiError | undefined;
  loading: boolean;
  /** Older records wait beyond the last page read (the route gave a `nextCursor`). */
  more: boolean;
  loadingOlder: boolean;
  loadOlder: () => void;
  reload: () => void;
}

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * An append-only list the API pages both ways (a deployment's history, a rollout's decisions): the first load is
 * its newest page (`order=newest&limit=`), `loadOlder` reads the page before it (`before=<nextCursor>`), and each
 * refresh reads only what was appended since the newest one shown (`after=<its id>`, oldest first). `path`
 * carries the other query parameters (`?rollout=3`); null loads nothing.
 */
export function useNewestFirst<T extends { id: number }>(path: string | null, field: string, pageLimit: number): NewestFirst<T> {
  const tick = useContext(RefreshContext);
  const [local, setLocal] = useState(0);
  const [older, setOlder] = useState(0);
  const [state, setState] = useState<{ path: string | null; items: T[]; before: string | null; error?: ApiError; loading: boolean; loadingOlder: boolean }>({
    path,
    items: [],
    before: null,
    loading: path !== null,
    loadingOlder: false,
  });
  const cur = useRef(state);
  cur.current = state;
  const read = async (q: string, signal: AbortSignal): Promise<Page<T>> => {
    const body = await api<Record<string, unknown> & { nextCursor: string | null }>(`${path}${path!.includes('?') ? '&' : '?'}${q}`, { signal });
    return { items: (body[field] as T[] | undefined) ?? [], nextCursor: body.nextCursor };
  };
  const fail = (e: unknown) => {
    if ((e as Error).name === 'AbortError') return;
    const err = e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message);
    setState((s) => ({ ...s, path, error: err, loading: false, loadingOlder: false }));
  };
  useEffect(() => {
    if (path === null) return;
    const ctl = new AbortController();
    const known = cur.current.path === path ? cur.current : undefined;
    setState((s) => (known ? { ...s, loading: true } : { path, items: [], before: null, loading: true, loadingOlder: false }));
    void (async () => {
      try {
        if (!known || known.items.length === 0) {
          const first = await read(`order=newest&limit=${pageLimit}`, ctl.signal);
          setState({ path, items: first.items, before: first.nextCursor, loading: false, loadingOlder: false });
          return;
        }
        // What was appended since the newest shown, oldest first; a burst longer than 20 pages waits for the next tick.
        let added: T[] = [];
        let after = String(known.items[0]!.id);
        for (let page = 0; page < 20; page++) {
          const next = await read(`after=${enc(after)}&limit=${pageLimit}`, ctl.signal);
          added = [...added, ...next.items];
          if (next.items.length < pageLimit || !next.nextCursor) break;
          after = next.nextCursor;
        }
        setState((s) => ({ ...s, path, items: added.length ? [...added.reverse(), ...s.items] : s.items, error: undefined, loading: false }));
      } catch (e) {
        fail(e);
      }
    })();
    return () => ctl.abort();
    // `read` and `fail` close over path, field and pageLimit only, which are listed.
  }, [path, tick, local, field, pageLimit]);
  useEffect(() => {
    const before = cur.current.before;
    if (path === null || older === 0 || cur.current.path !== path || before === null) return;
    const ctl = new AbortController();
    setState((s) => ({ ...s, loadingOlder: true }));
    read(`order=newest&before=${enc(before)}&limit=${pageLimit}`, ctl.signal).then(
      (page) => setState((s) => (s.path === path && s.before === before ? { ...s, items: [...s.items, ...page.items], before: page.nextCursor, loadingOlder: false } : s)),
      fail,
    );
    return () => ctl.abort();
  }, [older]);
  const same = state.path === path;
  return {
    items: same ? state.items : [],
    error: same ? state.error : undefined,
    loading: path !== null && (!same || state.loading),
    more: same && state.before !== null,
    loadingOlder: same && state.loadingOlder,
    loadOlder: () => setOlder((n) => n + 1),
    reload: () => setLocal((n) => n + 1),
  };
}
