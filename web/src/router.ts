import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/oncall?deployment=bike`): the server serves one index.html, and a link to any view or to one
 * request (`#/requests/<id>`) survives a reload. No credential is ever part of a route.
 */
export interface Route {
  path: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  return { path: path || '/', params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

export function useRoute(): Route {
  const [state, setState] = useState(() => ({ hash: location.hash, route: parseHash(location.hash) }));
  useEffect(() => {
    const on = () => setState((s) => (s.hash === location.hash ? s : { hash: location.hash, route: parseHash(location.hash) }));
    addEventListener('hashchange', on);
    // The hash may have changed between the first render and this effect (a link followed at once): catch up.
    on();
    return () => removeEventListener('hashchange', on);
  }, []);
  return state.route;
}

/** `#/path?k=v` for a link. */
export function href(path: string, params: Record<string, string | number | undefined> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export function navigate(path: string, params: Record<string, string | number | undefined> = {}): void {
  location.hash = href(path, params).slice(1);
}
