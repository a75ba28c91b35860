import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api } from './api.ts';

/** Bumped on every auto-refresh (and by the refresh button): data hooks reload when it changes. */
export const RefreshContext = createContext(0);

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads `path` from the API and again on every refresh tick or when `path` changes; the last good data stays on
 * screen while a reload runs (no flashing at each refresh). `path` null: load nothing.
 */
export function useApi<T>(path: string | null): Loaded<T> {
  const tick = useContext(RefreshContext);
  const [local, setLocal] = useState(0);
  const [state, setState] = useState<{ path: string | null; data?: T; error?: ApiError; loading: boolean }>({ path, loading: path !== null });
  const seq = useRef(0);
  useEffect(() => {
    if (path === null) {
      setState({ path, loading: false });
      return;
    }
    const my = ++seq.current;
    const ctl = new AbortController();
    setState((s) => ({ ...(s.path === path ? s : { path }), loading: true }));
    api<T>(path, { signal: ctl.signal }).then(
      (data) => {
        if (my === seq.current) setState({ path, data, loading: false });
      },
      (e: unknown) => {
        if ((e as Error).name === 'AbortError' || my !== seq.current) return;
        const err = e instanceof ApiError ? e : new ApiError(0, 'CLIENT', (e as Error).message);
        setState((s) => ({ ...(s.path === path ? s : { path }), error: err, loading: false }));
      },
    );
    return () => ctl.abort();
  }, [path, tick, local]);
  const same = state.path === path;
  return { data: same ? state.data : undefined, error: same ? state.error : undefined, loading: !same || state.loading, reload: () => setLocal((n) => n + 1) };
}

/** Runs `fn` every `ms` while the tab is visible. */
export function useInterval(fn: () => void, ms: number | null): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const id = setInterval(() => {
      if (document.visibilityState === 'visible') saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}
