/**
 * The store the executive and on-call browser tests read, made only through the public API (plus the test
 * helper that makes one version's runtime throw, for real 5xx answers): two deployments from the reference
 * models, a monitoring reference with live performance for bike-busy, three past hours of keyed traffic and the
 * labels of two of them, a current window with refused null rows (a completeness failure) and server errors, an
 * availability SLO that burns, and a custom alert rule with an https runbook, then one alert evaluation.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import type { ConfigInput } from '../../src/config.ts';
import { createApiKey } from '../../src/security/index.ts';
import { BIKE_ROWS_2011 } from '../helpers/rollouts.ts';
import { fixturesDir, startTestServer, withCrashingRuntime, type TestServer } from '../helpers/server.ts';

export const BUSY = 'bike-busy';
export const DEMAND = 'bike-demand';
export const SLO_NAME = 'bike-busy-availability';
export const RULE_NAME = 'BikeBusyErrors';
export const RUNBOOK = 'https://runbooks.example.org/warden/bike-busy-errors';
const HOUR = 3_600_000;

const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[] };
export const FEATURES = probe.features;
const row = (i: number) => Object.fromEntries(FEATURES.map((f) => [f, Number(BIKE_ROWS_2011[i % BIKE_ROWS_2011.length]![f])]));
const busy = (i: number) => (Number(BIKE_ROWS_2011[i % BIKE_ROWS_2011.length]!.cnt) > 108 ? 1 : 0);

export type Role = 'admin' | 'deployer' | 'viewer';

export interface Seeded {
  srv: TestServer;
  keys: Record<Role, string>;
  as(role: Role): Record<string, string>;
  /** GET as admin; fails the test on a non-200. */
  get<T = any>(p: string): Promise<T>;
}

/** `labels: false` sends no label, so windows carry only the CBPE estimate. */
export async function seed(config: ConfigInput = {}, opts: { labels?: boolean } = {}): Promise<Seeded> {
  const srv = await startTestServer({
    auth: { required: true },
    predictionLog: { flushIntervalMs: 20 },
    monitoring: { tickMs: 100, idleCloseMs: 200 },
    // The loop stays out of the way (an hour); the test evaluates when it wants alerts to change.
    alerting: { evaluationIntervalMs: 3_600_000, groupWaitMs: 0 },
    ...config,
    slo: { tickMs: 50, ...config.slo },
  } as ConfigInput);
  const keys = {} as Record<Role, string>;
  for (const [role, name] of [
    ['admin', 'root'],
    ['deployer', 'dana'],
    ['viewer', 'vera'],
  ] as const) {
    keys[role] = (await createApiKey(srv.warden.stores.metadata, name, role)).secret;
  }
  await srv.warden.keys.reload();
  const as = (role: Role) => ({ authorization: `Bearer ${keys[role]}` });
  const call = async (method: string, p: string, body?: unknown) => {
    const r = await srv.json(method, p, body, as('admin'));
    expect(r.status, `${method} ${p}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
    return r.body;
  };
  const get = (p: string) => call('GET', p);

  const push = async (name: string, file: string, metrics: Record<string, number>) => {
    const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f, datatype: 'FP32' }))),
        'x-warden-metadata': JSON.stringify({ metrics }),
        ...as('admin'),
      },
      body: readFileSync(path.join(fixturesDir, 'models', file)),
    });
    expect(res.status, await res.clone().text()).toBe(201);
  };
  await push(BUSY, 'bike_busy_logreg.onnx', { accuracy: 0.87 });
  await push(DEMAND, 'bike_gbr.onnx', { rmse: 60 });
  await srv.warden.table.settled();

  // Reference: 2011 rows with the true count; Warden runs the model on them for the prediction column.
  const refRows = Array.from({ length: 1500 }, (_, i) => ({ ...row(i * 4), cnt: Number(BIKE_ROWS_2011[(i * 4) % BIKE_ROWS_2011.length]!.cnt) }));
  await call('PUT', `/api/v1/models/${BUSY}/versions/1/reference`, {
    rows: refRows,
    config: { window: { kind: 'time', sizeMs: HOUR }, performance: { task: 'binary', target: 'cnt', targetThreshold: 108 } },
  });
  // Request SLIs count from the SLO's creation, so it comes before the traffic.
  await call('PUT', `/api/v1/slos/${SLO_NAME}`, { deployment: BUSY, sli: { kind: 'availability' }, objective: 0.99, period: '30d' });
  await call('PUT', '/api/v1/alerts/rules', {
    rules: [
      {
        name: RULE_NAME,
        metric: 'warden_inference_errors_total',
        labels: { model: BUSY },
        op: '>',
        threshold: 0,
        severity: 'ticket',
        summary: 'Requests to {{ $labels.model }} fail with {{ $labels.code }}',
        runbook: RUNBOOK,
      },
    ],
  });

  // Three past hours of keyed traffic (event_time places them in their hourly windows), 60 rows each.
  const now = Date.now();
  const hourStart = Math.floor(now / HOUR) * HOUR;
  let n = 0;
  const keyed: { key: string; value: number }[][] = [];
  for (let h = 3; h >= 1; h--) {
    const hourKeys: { key: string; value: number }[] = [];
    for (let r = 0; r < 3; r++) {
      const idx = Array.from({ length: 20 }, () => n++);
      const ks = idx.map((i) => `row-${i}`);
      const res = await srv.json('POST', `/v1/models/${BUSY}:predict`, { instances: idx.map((i) => row(i * 7)), parameters: { event_time: hourStart - h * HOUR + r * 60_000, keys: ks } }, as('admin'));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      idx.forEach((i, j) => hourKeys.push({ key: ks[j]!, value: busy(i * 7) }));
    }
    keyed.push(hourKeys);
  }
  // Now: good requests, refused rows with a missing humidity (400 and a completeness drop), and server errors.
  for (let i = 0; i < 10; i++) expect((await srv.json('POST', `/v1/models/${BUSY}:predict`, { instances: [row(1000 + i)] }, as('admin'))).status).toBe(200);
  for (let i = 0; i < 2; i++) expect((await srv.json('POST', `/v1/models/${BUSY}:predict`, { instances: [{ ...row(2000 + i), hum: null }] }, as('admin'))).status).toBe(400);
  await withCrashingRuntime(srv, BUSY, 1, async () => {
    for (let i = 0; i < 3; i++) expect((await srv.json('POST', `/v1/models/${BUSY}:predict`, { instances: [row(3000 + i)] }, as('admin'))).status).toBe(500);
  });
  for (let i = 0; i < 5; i++) expect((await srv.json('POST', `/v1/models/${DEMAND}:predict`, { instances: [row(i)] }, as('admin'))).status).toBe(200);

  // The labels of the two oldest hours arrive; the newest past hour stays unlabelled (estimate only).
  if (opts.labels !== false) await call('POST', '/api/v1/labels', { labels: [...keyed[0]!, ...keyed[1]!].map((l) => ({ key: l.key, value: l.value })) });
  await call('POST', '/api/v1/monitoring/flush', {});
  await until(async () => {
    const w = (await get(`/api/v1/models/${BUSY}/versions/1/monitoring/windows?summary=true`)).windows as { performance?: { labelled: number } }[];
    if (opts.labels === false) return w.length >= 4 ? true : undefined;
    return w.filter((x) => (x.performance?.labelled ?? 0) > 0).length >= 2 ? true : undefined;
  }, 30_000, 'the evaluated windows');
  // The SLO's series reach the store every tickMs; wait until it counts the server errors, then evaluate alerts.
  await until(async () => ((await get(`/api/v1/slos/${SLO_NAME}/status`)).budget.bad >= 3 ? true : undefined), 30_000, 'the SLO to count the errors');
  await call('POST', '/api/v1/alerts/evaluate', {});
  return { srv, keys, as, get };
}

export async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Records CSP violations in the page (a blocked inline script or style shows here, not only in the console). */

/** Signs in through the page's form. The first GET /api/v1/session without a key is a 401 Chromium logs; it is dropped. */
export async function signIn(page: Page, problems: string[], url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('API key').waitFor();
  const keep = problems.filter((p) => !/status of 401/.test(p));
  problems.splice(0, problems.length, ...keep);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('session-role').waitFor();
}
