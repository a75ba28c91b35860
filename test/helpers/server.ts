import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { createWarden, type Warden } from '../../src/app.ts';
import { parseConfig, type ConfigInput } from '../../src/config.ts';
import { openConfiguredStores } from '../../src/storage/index.ts';

export interface TestServer {
  warden: Warden;
  url: string;
  dataDir: string;
  /** fetch against the server with JSON in and out. */
  json(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** Starts a real Warden on an ephemeral loopback port with a fresh data directory; `opts.logger` captures its logs. */
export async function startTestServer(config: ConfigInput = {}, opts: { logger?: Logger } = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-test-'));
  const cfg = parseConfig({
    ...config,
    server: { host: '127.0.0.1', port: 0, ...config.server },
    storage: { dataDir, ...config.storage },
    auth: { required: false, ...config.auth },
    logLevel: config.logLevel ?? 'silent',
  });
  // With storage.url (a PostgreSQL schema), the stores open as `warden serve` opens them.
  const stores = cfg.storage.url ? await openConfiguredStores(cfg.storage) : undefined;
  const warden = createWarden(cfg, { logger: opts.logger ?? pino({ level: cfg.logLevel }), ...(stores ? { stores, ownStores: true } : {}) });
  const url = await warden.listen();
  return {
    warden,
    url,
    dataDir,
    async json(method, urlPath, body, headers = {}) {
      const res = await fetch(`${url}${urlPath}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* keep text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await warden.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Repo-relative paths used by tests: every file a test reads lives in the repo (test/fixtures, data/). */
export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');

/** Runs `fn` while the loaded version's model run throws (a crashed session), so its requests answer 500. */
export async function withCrashingRuntime(srv: TestServer, model: string, version: number, fn: () => Promise<void>): Promise<void> {
  const lv = srv.warden.table.peek(model, version);
  if (!lv) throw new Error(`${model} v${version} is not loaded`);
  const run = lv.runtime.run;
  lv.runtime.run = async () => {
    throw new Error('session crashed');
  };
  try {
    await fn();
  } finally {
    lv.runtime.run = run;
  }
}
