/**
 * The dashboard's only way to the server: Warden's public API, with the API key in an `authorization` header.
 * The key lives in sessionStorage (gone when the tab closes), never in a URL or a cookie, so a link or a
 * cross-site request carries no credential.
 */
const KEY = 'warden.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setStoredKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

let onRefused: ((e: ApiError) => void) | undefined;

/** Called when the stored key is refused (401) by any call: the key was revoked, or the server's keys changed. */
export function onKeyRefused(fn: ((e: ApiError) => void) | undefined): void {
  onRefused = fn;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  signal?: AbortSignal;
  /** A key to try instead of the stored one (sign-in). */
  key?: string;
}

/** Calls `path` (e.g. `/api/v1/models`) and returns its JSON; a non-2xx answer throws ApiError with Warden's code. */
export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const key = opts.key ?? storedKey();
  if (key) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method: opts.method ?? 'GET', headers, body, signal: opts.signal, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', `cannot reach Warden (${(e as Error).message}); is the server running?`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new ApiError(res.status, 'BAD_RESPONSE', `${path} answered ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) {
    const err = json as { error?: string; code?: string } | undefined;
    const e = new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.error ?? `${path} answered ${res.status}`);
    if (res.status === 401 && opts.key === undefined && key) onRefused?.(e);
    throw e;
  }
  return json as T;
}

/** `?a=1&b=x` from the defined entries of `q`. */
export function query(q: Record<string, string | number | boolean | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
