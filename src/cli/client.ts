import { CliError } from './output.ts';

export interface ClientOptions {
  url?: string;
  apiKey?: string;
}

/** Talks to a running Warden over its REST API; the URL and key come from flags or WARDEN_URL / WARDEN_API_KEY. */
export class WardenClient {
  readonly base: string;
  private readonly apiKey: string | undefined;

  constructor(opts: ClientOptions = {}) {
    this.base = (opts.url ?? process.env.WARDEN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.apiKey = opts.apiKey ?? process.env.WARDEN_API_KEY;
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const text = await (await this.open(method, path, body, headers)).text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The response of a successful call, its body unread (to stream it); a failed one throws as request() does. */
  async open(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.apiKey) h.authorization = `Bearer ${this.apiKey}`;
    let payload: BodyInit | undefined;
    if (body instanceof Uint8Array) {
      payload = new Blob([body as Uint8Array<ArrayBuffer>]);
      h['content-type'] ??= 'application/octet-stream';
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers: h, ...(payload !== undefined ? { body: payload } : {}) });
    } catch (e) {
      // fetch's own message is always "fetch failed"; the reason (ECONNREFUSED, bad port, …) is in its cause.
      const c = (e as { cause?: { code?: string; message?: string } }).cause;
      const cause = c?.code ?? c?.message ?? (e as Error).message;
      throw new CliError(`cannot reach Warden at ${this.base} (${cause}); start it with 'warden serve' or set WARDEN_URL`);
    }
    if (!res.ok) {
      const text = await res.text();
      let msg = text;
      try {
        const parsed = JSON.parse(text) as { error?: string; code?: string };
        msg = parsed.code ? `${parsed.code}: ${parsed.error}` : (parsed.error ?? text);
      } catch {
        /* not JSON: show as is */
      }
      throw new CliError(`${method} ${path} → ${res.status}: ${msg}`, res.status < 500 ? 2 : 1);
    }
    return res;
  }
}
