/**
 * The explanation_coverage SLI on a real server: of N successful requests to a deployment, M asked for
 * `parameters.explain` (on /v2/models/{name}/infer and /v1/models/{name}:predict) and were answered with their
 * explanation, so the SLI, good/total and compliance are M/N; requests refused before the model ran (malformed
 * parameters.explain, too many rows) count neither way, and a request whose explanation failed after its model answered
 * (a version without a reference) is a bad event. Burn-rate alerts fire like any ratio SLI's. On PostgreSQL, two
 * replicas serving one deployment add their counts into the same series and report the same SLI.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const models = path.join(fixturesDir, 'models');
const probe = JSON.parse(readFileSync(path.join(models, 'bike_gbr.expected.json'), 'utf8')) as { features: string[]; input: number[][] };
const FEATURES = probe.features;
const tensor = (rows: number[][]) => ({ name: 'input', datatype: 'FP32', shape: [rows.length, 12], data: rows.flat() });
const instance = (i: number) => Object.fromEntries(FEATURES.map((f, j) => [f, probe.input[i % probe.input.length]![j]]));

function year2011(n: number): Record<string, number>[] {
  const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  return lines.slice(1, 1 + n).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
  });
}

/** Pushes a model file as a new version of `name` (champion unless `alias` is false); returns its version. */
async function push(srv: TestServer, name: string, alias = true, file = 'bike_gbr.onnx'): Promise<number> {
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions${alias ? '?alias=champion' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))) },
    body: readFileSync(path.join(models, file)),
  });
  expect(res.status, await res.text()).toBe(201);
  return ((await srv.json('GET', `/api/v1/models/${name}/versions`)).body.versions as { version: number }[]).length;
}

async function reference(srv: TestServer, name: string, version: number): Promise<void> {
  const ref = await srv.json('PUT', `/api/v1/models/${name}/versions/${version}/reference`, { rows: year2011(1500) });
  expect(ref.status, JSON.stringify(ref.body)).toBe(201);
}

/**
 * N successful requests to `name` of which the first M ask for an explanation, alternating the OIP and :predict forms
 * and the ways of asking (true, {background, budget}); the others send no parameters.explain, or false.
 */
async function traffic(srv: TestServer, name: string, n: number, m: number, offset = 0): Promise<void> {
  for (let i = 0; i < n; i++) {
    const explain = i < m ? (i % 2 === 0 ? true : { background: 20 }) : i % 3 === 0 ? false : undefined;
    const parameters = explain === undefined ? {} : { parameters: { explain } };
    const res =
      i % 2 === 0
        ? await srv.json('POST', `/v2/models/${name}/infer`, { inputs: [tensor([probe.input[(i + offset) % probe.input.length]!])], ...parameters })
        : await srv.json('POST', `/v1/models/${name}:predict`, { instances: [instance(i + offset)], ...parameters });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const explained = i % 2 === 0 ? res.body.parameters?.explanation : res.body.explanation;
    expect(explained !== undefined, `request ${i}`).toBe(i < m);
  }
}

interface Budget {
  sli: number;
  good: number;
  total: number;
  bad: number;
}

describe('explanation_coverage SLI on a real server', () => {
  let srv: TestServer;
  const N = 10;
  const M = 4;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, slo: { tickMs: 50 } });
    await push(srv, 'gbr');
    await reference(srv, 'gbr', 1);
    // Version 2 (a classifier on the same features) has no reference, so it cannot be explained; it serves only
    // requests that name it.
    expect(await push(srv, 'gbr', false, 'bike_busy_gbc.onnx')).toBe(2);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  it('accepts the kind through the API and refuses parameters it does not take', async () => {
    const slo = { deployment: 'gbr', description: 'a regulated model: its answers are explained', sli: { kind: 'explanation_coverage' }, objective: 0.99, period: '30d' };
    const put = await srv.json('PUT', '/api/v1/slos/gbr-explained', slo);
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    expect(put.body).toEqual({ name: 'gbr-explained', ...slo });
    expect((await srv.json('PUT', '/api/v1/slos/gbr-v2-explained', { ...slo, version: 2 })).status).toBe(201);
    const bad = await srv.json('PUT', '/api/v1/slos/x', { ...slo, sli: { kind: 'explanation_coverage', protocol: 'oip' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain('sli: unknown key protocol');
    const kind = await srv.json('PUT', '/api/v1/slos/x', { ...slo, sli: { kind: 'explanations' } });
    expect(kind.body.error).toContain('sli.kind: must be one of latency, availability, accuracy, drift_free, completeness, cost, explanation_coverage');
    expect(readFileSync(path.join(srv.dataDir, 'slo.yaml'), 'utf8')).toContain('kind: explanation_coverage');
  });

  it(`counts ${M} explained of ${N} successful requests: good/total and compliance ${M}/${N}`, async () => {
    await traffic(srv, 'gbr', N, M);
    // Refused before the model ran: the caller's mistakes, in no SLI (malformed explain, more rows than are explained).
    expect((await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor([probe.input[0]!])], parameters: { explain: 'yes' } })).status).toBe(400);
    const many = Array.from({ length: 101 }, (_, i) => probe.input[i % probe.input.length]!);
    expect((await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(many)], parameters: { explain: true } })).status).toBe(400);
    // The explain API is not inference: it adds no event.
    expect((await srv.json('POST', '/api/v1/models/gbr/explain', { inputs: [tensor([probe.input[0]!])] })).status).toBe(200);
    await srv.warden.log!.flush();

    const st = await srv.json('GET', '/api/v1/slos/gbr-explained/status');
    expect(st.status).toBe(200);
    expect(st.body.measures).toContain('share of successful requests answered with an explanation');
    const budget = st.body.budget as Budget;
    expect(budget).toMatchObject({ good: M, total: N, bad: N - M });
    expect(budget.sli).toBeCloseTo(M / N, 12);
    // 60% unexplained against a 1% budget: burn rate 60 over every window, every row fires.
    expect(st.body.burnRates[0].longBurnRate).toBeCloseTo((1 - M / N) / 0.01, 6);
    expect(st.body.firing).toEqual(['1h/5m', '6h/30m', '1d/2h', '3d/6h']);
    // Version 2 served nothing yet.
    expect((await srv.json('GET', '/api/v1/slos/gbr-v2-explained/status')).body.budget).toMatchObject({ good: 0, total: 0 });
    // The counts are in the store, where every replica's add up.
    const stored = await srv.warden.stores.events.querySli({ slo: 'gbr-explained' });
    expect(stored.reduce((a, p) => ({ good: a.good + p.good, total: a.total + p.total }), { good: 0, total: 0 })).toEqual({ good: M, total: N });
  });

  it('a request whose model answered but whose explanation failed is a bad event (a 400 no other SLI counts)', async () => {
    const one = { inputs: [tensor([probe.input[0]!])] };
    const failed = await srv.json('POST', '/v2/models/gbr/versions/2/infer', { ...one, parameters: { explain: true } });
    expect(failed.status).toBe(400);
    expect(failed.body.error).toMatch(/gbr v2 has no reference/);
    expect((await srv.json('POST', '/v2/models/gbr/versions/2/infer', one)).status).toBe(200);
    await srv.warden.log!.flush();
    const v2 = (await srv.json('GET', '/api/v1/slos/gbr-v2-explained/status')).body.budget as Budget;
    expect(v2).toMatchObject({ good: 0, total: 2 });
    const all = (await srv.json('GET', '/api/v1/slos/gbr-explained/status')).body.budget as Budget;
    expect(all).toMatchObject({ good: M, total: N + 2 });
  });

  it('raises SLOErrorBudgetBurn pages labelled with the kind, linking the coverage section (no runbook covers it)', async () => {
    const conditions = await srv.warden.slo!.alertSource().evaluate(Date.now() + 1000);
    const page = conditions.find((c) => c.labels.slo === 'gbr-explained' && c.labels.window === '1h/5m')!;
    expect(page).toMatchObject({
      alertname: 'SLOErrorBudgetBurn',
      severity: 'page',
      active: true,
      labels: { deployment: 'gbr', sli: 'explanation_coverage' },
      runbookUrl: 'docs/explainability.md#coverage',
    });
    expect(page.description).toContain('share of successful requests answered with an explanation');
  });
});

describe.skipIf(!pgTestUrl())('explanation_coverage across two replicas on PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    schema = await freshPgSchema();
    const config = { storage: { url: schema.url }, cluster: { syncIntervalMs: 100 }, predictionLog: { flushIntervalMs: 20 }, slo: { tickMs: 50 } };
    a = await startTestServer(config);
    b = await startTestServer(config);
    await push(a, 'gbr');
    await reference(a, 'gbr', 1);
    const put = await a.json('PUT', '/api/v1/slos/gbr-explained', { deployment: 'gbr', sli: { kind: 'explanation_coverage' }, objective: 0.99, period: '30d' });
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    // Replica b learns of the model and the SLO from the shared store.
    const deadline = Date.now() + 20_000;
    while ((await b.json('GET', '/v2/models/gbr/ready')).status !== 200 || (await b.json('GET', '/api/v1/slos/gbr-explained')).status !== 200) {
      if (Date.now() > deadline) throw new Error('replica b never saw the model and the SLO');
      await new Promise((r) => setTimeout(r, 100));
    }
    await b.warden.table.settled();
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await schema?.drop();
  });

  it('each replica counts what it served into the shared series; both report the sum', async () => {
    await traffic(a, 'gbr', 6, 5);
    await traffic(b, 'gbr', 4, 1, 6);
    await Promise.all([a.warden.log!.flush(), b.warden.log!.flush()]);
    // A status read writes this replica's unwritten counts first; the other's are written at its next tick.
    await Promise.all([a.warden.slo!.flush(), b.warden.slo!.flush()]);
    for (const srv of [a, b]) {
      const budget = (await srv.json('GET', '/api/v1/slos/gbr-explained/status')).body.budget as Budget;
      expect(budget).toMatchObject({ good: 6, total: 10 });
      expect(budget.sli).toBeCloseTo(0.6, 12);
    }
  }, 60_000);
});
