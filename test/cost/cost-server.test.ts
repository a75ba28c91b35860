/**
 * Cost on a real server with an injected price and real load: a price so high that a few requests' CPU time spends
 * the budget; the throttle cap then answers 429 WARDEN_BUDGET_EXCEEDED before the body is read, the route cap
 * serves the cheaper version, budget alerts fire with their runbook, the metrics say so, the audit log records who
 * set each budget, and bad budgets get clear errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { runWarden } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const FEATURES = JSON.stringify([{ name: 'a' }, { name: 'b' }]);

async function push(srv: TestServer, name: string, bias = 0, alias?: string): Promise<void> {
  const model = writeOnnx({ kind: 'linear', featureCount: 2, weights: Float32Array.from([1, 2]), bias, metadata: {} });
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions${alias ? `?alias=${alias}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': FEATURES },
    body: new Uint8Array(model),
  });
  expect(res.status, await res.text()).toBe(201);
}

const predict = (srv: TestServer, name: string, version?: number) =>
  srv.json('POST', version === undefined ? `/v1/models/${name}:predict` : `/v1/models/${name}/versions/${version}:predict`, { instances: [{ a: 1, b: 2 }] });

describe('cost on a real server', () => {
  let srv: TestServer;
  let off: TestServer;
  beforeAll(async () => {
    // 1e9 per CPU-hour: one millisecond of CPU costs about 278, so the first requests spend any small budget.
    srv = await startTestServer({ cost: { pricePerCpuHour: 1e9, currency: 'EUR', refreshMs: 60_000 }, traffic: { flushIntervalMs: 60_000 } });
    off = await startTestServer({});
    for (const name of ['fare', 'tips']) await push(srv, name);
    await push(srv, 'fare', 1); // version 2, the latest
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await off?.close();
  });

  it('prices what was served: spend, cost per 1,000 and by version, also as metrics', async () => {
    for (let i = 0; i < 20; i++) expect((await predict(srv, 'fare')).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await predict(srv, 'fare', 1)).status).toBe(200);
    const r = await srv.json('GET', '/api/v1/cost');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ enabled: true, currency: 'EUR', model: { kind: 'cpu', pricePerCpuHour: 1e9 } });
    const fare = r.body.deployments.find((d: { deployment: string }) => d.deployment === 'fare');
    expect(fare.inferences.today).toBe(25);
    expect(fare.spend.today).toBeGreaterThan(0);
    expect(fare.spend.month).toBeGreaterThanOrEqual(fare.spend.today);
    expect(fare.costPer1k).toBeCloseTo((fare.spend.last24h / 25) * 1000, 6);
    expect(fare.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/warden_cost_spend\{deployment="fare",period="day"\} [0-9.e+]+/);
    expect(metrics).toMatch(/warden_cost_per_1k_inferences\{deployment="fare"\} [0-9.e+]+/);
    expect(metrics).toMatch(/warden_cost_per_inference\{deployment="fare"\} [0-9.e+]+/);
    const day = await srv.json('GET', '/api/v1/cost/fare?days=3');
    expect(day.status).toBe(200);
    expect(day.body.days).toHaveLength(3);
    expect(day.body.days[2]).toMatchObject({ day: new Date().toISOString().slice(0, 10), inferences: 25 });
    expect(day.body.days[2].spend).toBeCloseTo(fare.spend.today, 6);
  });

  it('a throttle cap answers 429 WARDEN_BUDGET_EXCEEDED until the next UTC day, raises the 100 % page, and lifts when the budget goes', async () => {
    const set = await srv.json('PUT', '/api/v1/cost/budgets/tips', { daily: 0.01, cap: 'throttle' });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect(set.body).toMatchObject({ deployment: 'tips', daily: 0.01, cap: 'throttle' });
    // Under budget: nothing spent yet.
    expect((await predict(srv, 'tips')).status).toBe(200);
    await srv.json('GET', '/api/v1/cost');
    const refused = await predict(srv, 'tips');
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('WARDEN_BUDGET_EXCEEDED');
    expect(refused.body.error).toMatch(/tips has spent its daily cost budget and is throttled until \d{4}-\d\d-\d\dT00:00:00.000Z/);
    const untilMidnight = (Math.floor(Date.now() / 86_400_000) + 1) * 86_400_000 - Date.now();
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(untilMidnight / 1000 - 5);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(Math.ceil(untilMidnight / 1000) + 1);
    // Another deployment is not touched.
    expect((await predict(srv, 'fare')).status).toBe(200);

    await srv.json('POST', '/api/v1/alerts/evaluate', {});
    const alerts = (await srv.json('GET', '/api/v1/alerts?deployment=tips')).body.alerts as { labels: Record<string, string>; annotations?: Record<string, string> }[];
    const budget = alerts.filter((a) => a.labels.alertname === 'WardenCostBudget');
    expect(budget.map((a) => [a.labels.period, a.labels.threshold, a.labels.severity])).toEqual([['day', '100', 'page']]);
    expect(JSON.stringify(budget[0])).toContain('docs/runbooks/cost-runaway.md');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toContain('warden_cost_capped{deployment="tips",action="throttle"} 1');
    expect(metrics).toMatch(/warden_budget_refused_total\{deployment="tips"\} [1-9]/);
    expect(metrics).toMatch(/warden_cost_budget_used_ratio\{deployment="tips",period="day"\} [0-9.e+]+/);

    expect((await srv.json('DELETE', '/api/v1/cost/budgets/tips')).status).toBe(204);
    expect((await predict(srv, 'tips')).status).toBe(200);
    expect((await srv.json('DELETE', '/api/v1/cost/budgets/tips')).status).toBe(404);
  });

  it('a route cap serves the cheaper version to requests that name none, and refuses the others', async () => {
    const set = await srv.json('PUT', '/api/v1/cost/budgets/fare', { daily: 0.01, cap: 'route', capVersion: 1 });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const routed = await predict(srv, 'fare');
    expect(routed.status).toBe(200);
    expect(routed.body.model_version).toBe('1');
    const oip = await srv.json('POST', '/v2/models/fare/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] });
    expect(oip.status, JSON.stringify(oip.body)).toBe(200);
    expect(oip.body.model_version).toBe('1');
    expect((await predict(srv, 'fare', 1)).status).toBe(200);
    const other = await predict(srv, 'fare', 2);
    expect(other.status).toBe(429);
    expect(other.body.error).toContain('serves only version 1');
    const cost = (await srv.json('GET', '/api/v1/cost')).body.deployments.find((d: { deployment: string }) => d.deployment === 'fare');
    expect(cost.capped).toMatchObject({ action: 'route', version: 1, period: 'day' });
    expect((await srv.json('GET', '/api/v1/cost/budgets')).body.budgets).toEqual([expect.objectContaining({ deployment: 'fare', cap: 'route', capVersion: 1, source: 'api' })]);
    // The served-version record says which version answered, and the audit log who set the cap.
    const audit = (await srv.json('GET', '/api/v1/audit?object=deployment:fare')).body.entries as { action: string; summary: { after?: unknown } }[];
    const setEntry = audit.find((e) => e.action === 'PUT /api/v1/cost/budgets/:name → cost.budget.set');
    expect(setEntry?.summary.after, JSON.stringify(audit)).toEqual({ daily: 0.01, cap: 'route', capVersion: 1 });
    expect((await srv.json('DELETE', '/api/v1/cost/budgets/fare')).status).toBe(204);
    expect((await predict(srv, 'fare')).body.model_version).toBe('2');
  });

  it('refuses bad budgets with what to send, and says when cost is off', async () => {
    const cases: [unknown, number, string][] = [
      [{ daily: -1 }, 400, '"daily" must be above 0, not -1'],
      [{ monthly: 0 }, 400, '"monthly" must be above 0'],
      [{ daily: 1, cap: 'route' }, 400, 'needs "capVersion"'],
      [{ daily: 1, cap: 'route', capVersion: 9 }, 404, 'fare has no version 9'],
      [[1], 400, 'body must be'],
    ];
    for (const [body, status, msg] of cases) {
      const r = await srv.json('PUT', '/api/v1/cost/budgets/fare', body);
      expect([r.status, r.body.error]).toEqual([status, expect.stringContaining(msg)]);
    }
    expect((await srv.json('PUT', '/api/v1/cost/budgets/nope', { daily: 1 })).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/cost/fare?days=0')).body.error).toContain('days must be a whole number');
    expect((await off.json('GET', '/api/v1/cost')).body).toMatchObject({ enabled: false, reason: expect.stringContaining('cost.pricePerCpuHour') });
    const put = await off.json('PUT', '/api/v1/cost/budgets/fare', { daily: 1 });
    expect([put.status, put.body.code]).toEqual([404, 'WARDEN_NOT_FOUND']);
  });

  it('warden cost status and warden cost budget print what the API holds, and refuse a bad amount', async () => {
    const env = { WARDEN_URL: srv.url };
    const set = await runWarden(['cost', 'budget', 'tips', '--monthly', '1e11', '--cap', 'throttle'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe('tips: 100000000000 a month; past it: throttle (429)');
    const status = await runWarden(['cost', 'status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('cost model: 1000000000 EUR per CPU-hour');
    const row = status.stdout.split('\n').find((l) => l.startsWith('tips '));
    expect(row).toMatch(/100000000000 \(0%\)\s+throttle past 100%/);
    const json = await runWarden(['--json', 'cost', 'status', 'tips', '--days', '2'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ deployment: 'tips', days: [{}, { day: new Date().toISOString().slice(0, 10) }] });
    const bad = await runWarden(['cost', 'budget', 'tips', '--daily', '-3'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--daily must be an amount above 0');
    expect((await runWarden(['cost', 'budget', 'tips', '--delete'], env)).code).toBe(0);
    expect((await srv.json('GET', '/api/v1/cost/budgets')).body.budgets).toEqual([]);
  });
});
