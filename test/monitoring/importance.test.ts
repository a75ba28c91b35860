/**
 * Global feature importance per monitoring window over real HTTP: the 60-tree bike GBR, the bike logistic
 * regression and a two-output MatMul graph are pushed with their feature names and a reference of 2011 rows; 2012
 * rows are served into windows through `:predict` and the windows flushed. A window's `importance` must equal the
 * mean |φ| the explain API gives on the same rows (50 of the window's sample rows, chosen by their values, read back
 * from its stored profile; or every row sent, when fewer) to 1e-9, and `warden_feature_importance` must show it; the
 * same rows under other request ids, in another order, give the same importance and fingerprint (what a fleet's
 * merged window must match). A re-evaluation with the same rows explains nothing again; late rows do. The logistic regression gets KernelSHAP at the window
 * budget; the MatMul graph none (logged once); monitoring.importanceRows 0 turns it off.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import onnxProto from 'onnx-proto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash52, mergeProfiles, type DatasetProfile, type ProfileSchema, type WindowImportance, type WindowResult } from '../../src/monitoring/index.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const LOGREG = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const FEATURES = (JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as { features: string[] }).features;

type Row = Record<string, number>;
const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
/** Rows [from, from + n) of hour.csv (8,645 rows of 2011 come first), as named features. */
const bike = (from: number, n: number): Row[] =>
  lines.slice(1 + from, 1 + from + n).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
  });
const f32 = (r: Row): Row => Object.fromEntries(FEATURES.map((f) => [f, Math.fround(r[f]!)]));

const HOUR = 3_600_000;
const W1 = Date.UTC(2012, 5, 1);
const W2 = W1 + HOUR;

/** An ONNX graph input [N, 12] → MatMul → scores [N, 2]: no trees, and two output columns (neither method applies). */
function matmul(): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const matrix = (name: string, cols: number) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: cols }] } } } });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 15 }],
      graph: {
        name: 'two',
        node: [{ opType: 'MatMul', input: ['input', 'w'], output: ['scores'] }],
        initializer: [{ name: 'w', dataType: FLOAT, dims: [12, 2], floatData: Array.from({ length: 24 }, (_, i) => i / 24) }],
        input: [matrix('input', 12)],
        output: [matrix('scores', 2)],
      },
    }),
  ).finish();
}

/** The value of one sample of the Prometheus text exposition, matched by name and labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
}

async function push(srv: TestServer, name: string, bytes: Uint8Array): Promise<void> {
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))) },
    body: Buffer.from(bytes),
  });
  expect(res.status, await res.text()).toBe(201);
  const ref = await srv.json('PUT', `/api/v1/models/${name}/versions/1/reference`, { rows: bike(0, 1500) });
  expect(ref.status, JSON.stringify(ref.body)).toBe(201);
}

async function serve(srv: TestServer, name: string, rows: Row[], eventTime: number): Promise<void> {
  for (let i = 0; i < rows.length; i += 50) {
    const res = await srv.json('POST', `/v1/models/${name}:predict`, { instances: rows.slice(i, i + 50), parameters: { event_time: eventTime + i } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
}

async function flush(srv: TestServer): Promise<void> {
  expect((await srv.json('POST', '/api/v1/monitoring/flush')).status).toBe(200);
}

async function window(srv: TestServer, name: string, start: number): Promise<WindowResult> {
  const res = await srv.json('GET', `/api/v1/models/${name}/versions/1/monitoring/windows?since=${start}&until=${start + 1}`);
  expect(res.status).toBe(200);
  const w = (res.body.windows as WindowResult[]).find((x) => x.windowStart === start);
  expect(w, `window at ${new Date(start).toISOString()}`).toBeDefined();
  return w!;
}

/** Mean |φ| per feature over `rows`, from the explain API (at most 100 rows a call). */
async function explainMean(srv: TestServer, name: string, rows: Row[], extra: Record<string, unknown> = {}): Promise<{ mean: Row; body: any }> {
  const res = await srv.json('POST', `/api/v1/models/${name}/explain`, { instances: rows, background: 100, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const shap = (res.body.explanations as { shap: Row }[]).map((e) => e.shap);
  return { mean: Object.fromEntries(FEATURES.map((f) => [f, shap.reduce((a, s) => a + Math.abs(s[f]!), 0) / shap.length])), body: res.body };
}

/** The window's sample as stored (every partial profile merged, as monitoring merges them), in its canonical order. */
async function windowSample(srv: TestServer, name: string, start: number): Promise<Row[]> {
  const ref = (await srv.warden.stores.metadata.getReference(name, 1))!;
  const schema = ref.schema as ProfileSchema;
  const parts = await srv.warden.stores.events.listProfiles({ model: name, version: 1, since: start, until: start + 1 });
  const merged = mergeProfiles(schema, parts.map((p) => (p.profile as { profile: DatasetProfile }).profile));
  const cols = schema.columns.map((c) => c.name);
  return merged.sample.map((cells) => Object.fromEntries(FEATURES.map((f) => [f, Number(cells[cols.indexOf(f)])])));
}

/**
 * Rows in the order importance picks them: ascending hash52 of `<float32 feature bytes, hex>:<copy number among
 * identical rows>`, a function of the rows' values only (not of request ids or arrival order).
 */
function byValuePriority(rows: Row[]): Row[] {
  const copies = new Map<string, number>();
  const keyed = rows.map((r) => {
    const bytes = Buffer.from(new Float32Array(FEATURES.map((f) => r[f]!)).buffer).toString('hex');
    const copy = copies.get(bytes) ?? 0;
    copies.set(bytes, copy + 1);
    return { r, priority: hash52(`${bytes}:${copy}`) };
  });
  return keyed.sort((a, b) => a.priority - b.priority).map((k) => k.r);
}

const monitoringRows = (metrics: string, name: string) => sample(metrics, 'warden_explained_rows_total', { model: name, version: '1', protocol: 'monitoring' }) ?? 0;

function expectClose(actual: Row, expected: Row, tol: number): void {
  expect(Object.keys(actual)).toEqual(FEATURES);
  for (const f of FEATURES) expect(Math.abs(actual[f]! - expected[f]!), f).toBeLessThan(tol);
}

describe('global feature importance per window', () => {
  let srv: TestServer;
  const logs: { level: number; msg: string; model?: string; reason?: string }[] = [];
  const metricsText = async () => (await fetch(`${srv.url}/metrics`)).text();

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    });
    // Windows close only when flushed (the tick never fires within the test).
    srv = await startTestServer({ monitoring: { tickMs: 600_000, idleCloseMs: 3_600_000 }, predictionLog: { flushIntervalMs: 50 } }, { logger: pino({ level: 'info' }, stream) });
    await push(srv, 'gbr', GBR);
    await push(srv, 'busy', LOGREG);
    await push(srv, 'two', matmul());
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  let first: WindowImportance;
  const sent1 = bike(9000, 200);

  it('a window of 200 rows: mean |φ| of 50 of its sample rows, as the explain API gives them, and the gauges', async () => {
    await serve(srv, 'gbr', sent1, W1);
    await flush(srv);
    const w = await window(srv, 'gbr', W1);
    expect(w.rows).toBe(200);
    first = w.importance!;
    expect(first).toMatchObject({ method: 'tree-shap-interventional', output: 'variable', space: 'output', rows: 50, background: 100 });
    expect(first.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(first.budget).toBeUndefined();
    // The rows it explained: of the window's sample (all 200 were served), the 50 of smallest value priority.
    const rows = byValuePriority(await windowSample(srv, 'gbr', W1)).slice(0, 50);
    expect(rows).toHaveLength(50);
    const sentKeys = new Set(sent1.map((r) => JSON.stringify(f32(r))));
    for (const r of rows) expect(sentKeys.has(JSON.stringify(r))).toBe(true);
    const { mean, body } = await explainMean(srv, 'gbr', rows);
    expectClose(first.features, mean, 1e-9);
    expect(Math.abs(first.expected - body.expected)).toBeLessThan(1e-9);
    // Not just any 50 rows: the last 50 sent give other values.
    const other = await explainMean(srv, 'gbr', sent1.slice(150));
    expect(FEATURES.some((f) => Math.abs(other.mean[f]! - first.features[f]!) > 1e-3)).toBe(true);

    const metrics = await metricsText();
    for (const f of FEATURES) expect(Math.abs(sample(metrics, 'warden_feature_importance', { model: 'gbr', version: '1', column: f })! - first.features[f]!), f).toBeLessThan(1e-9);
    expect(monitoringRows(metrics, 'gbr')).toBe(50);

    // The summary: the same values to 4 significant digits, most important first.
    const sum = await srv.json('GET', `/api/v1/models/gbr/versions/1/monitoring/windows?summary=true&since=${W1}&until=${W1 + 1}`);
    const imp = sum.body.windows[0].importance as { method: string; rows: number; background: number; features: Row };
    expect(imp).toMatchObject({ method: 'tree-shap-interventional', rows: 50, background: 100 });
    const ranked = Object.entries(first.features).sort((a, b) => b[1] - a[1]);
    expect(Object.keys(imp.features)).toEqual(ranked.map(([f]) => f));
    for (const [f, x] of ranked) expect(imp.features[f]).toBe(Number(x.toPrecision(4)));
  });

  it('a re-evaluation with the same rows keeps the values and explains nothing', async () => {
    const before = monitoringRows(await metricsText(), 'gbr');
    const again = await srv.warden.monitoring!.evaluate('gbr', 1, W1, W1 + HOUR);
    expect(again.importance).toEqual(first);
    expect(monitoringRows(await metricsText(), 'gbr')).toBe(before);
  });

  it('a window of fewer rows than 50 explains them all; late rows into it are explained on re-evaluation', async () => {
    const sent = bike(9300, 30);
    await serve(srv, 'gbr', sent, W2);
    await flush(srv);
    let w = await window(srv, 'gbr', W2);
    expect(w.importance).toMatchObject({ rows: 30 });
    // Every row sent, without reading the window's sample: the mean does not depend on the order.
    expectClose(w.importance!.features, (await explainMean(srv, 'gbr', sent)).mean, 1e-9);
    // The gauges follow the latest window.
    let metrics = await metricsText();
    for (const f of FEATURES) expect(Math.abs(sample(metrics, 'warden_feature_importance', { model: 'gbr', version: '1', column: f })! - w.importance!.features[f]!), f).toBeLessThan(1e-9);
    const before = monitoringRows(metrics, 'gbr');

    const late = bike(9400, 5);
    await serve(srv, 'gbr', late, W2 + 1000);
    await flush(srv);
    const fingerprint = w.importance!.fingerprint;
    w = await window(srv, 'gbr', W2);
    expect(w.rows).toBe(35);
    expect(w.importance).toMatchObject({ rows: 35 });
    expect(w.importance!.fingerprint).not.toBe(fingerprint);
    expectClose(w.importance!.features, (await explainMean(srv, 'gbr', [...sent, ...late])).mean, 1e-9);
    metrics = await metricsText();
    expect(monitoringRows(metrics, 'gbr')).toBe(before + 35);
  });

  it('the same rows in another window, in another order under other request ids, give the same importance and fingerprint', async () => {
    // What a fleet sees: the window's rows arrive at other replicas, in another order, with other request ids; only
    // the rows' values may decide which are explained (docs/scale-out.md, exact merge).
    const W3 = W2 + HOUR;
    const reversed = [...sent1].reverse();
    for (let i = 0; i < reversed.length; i += 7) {
      const res = await srv.json('POST', '/v1/models/gbr:predict', { instances: reversed.slice(i, i + 7), parameters: { event_time: W3 + i } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    await flush(srv);
    const w = await window(srv, 'gbr', W3);
    expect(w.rows).toBe(200);
    expect(w.importance).toEqual(first);
  });

  it('a model without trees gets KernelSHAP at the window budget (256 coalitions per row), equal to the explain API at that budget', async () => {
    const sent = bike(9500, 20);
    await serve(srv, 'busy', sent, W1);
    await flush(srv);
    const w = await window(srv, 'busy', W1);
    expect(w.importance).toMatchObject({ method: 'kernel-shap', output: 'probability', space: 'output', rows: 20, background: 100, budget: 256, exact: false });
    const { mean } = await explainMean(srv, 'busy', sent, { budget: 256 });
    expectClose(w.importance!.features, mean, 1e-9);
    const metrics = await metricsText();
    for (const f of FEATURES) expect(Math.abs(sample(metrics, 'warden_feature_importance', { model: 'busy', version: '1', column: f })! - mean[f]!), f).toBeLessThan(1e-9);
  });

  it('a model neither method explains: its windows are evaluated without importance, the reason logged once', async () => {
    await serve(srv, 'two', bike(9600, 20), W1);
    await flush(srv);
    await serve(srv, 'two', bike(9700, 20), W2);
    await flush(srv);
    for (const start of [W1, W2]) {
      const w = await window(srv, 'two', start);
      expect(w.rows).toBe(20);
      expect(w.drift.columns.length).toBeGreaterThan(0);
      expect(w.importance).toBeUndefined();
    }
    const said = logs.filter((l) => l.model === 'two' && /no feature importance/.test(l.msg));
    expect(said).toHaveLength(1);
    expect(said[0]!.reason).toMatch(/KernelSHAP needs one 2-D FP32 input and one output column: it has 2 output columns/);
    const metrics = await metricsText();
    expect(sample(metrics, 'warden_feature_importance', { model: 'two' })).toBeUndefined();
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});

describe('monitoring.importanceRows: 0', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { tickMs: 600_000, idleCloseMs: 3_600_000, importanceRows: 0 }, predictionLog: { flushIntervalMs: 50 } });
    await push(srv, 'gbr', GBR);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  it('turns it off: windows have no importance and no gauge', async () => {
    await serve(srv, 'gbr', bike(9000, 60), W1);
    await flush(srv);
    const w = await window(srv, 'gbr', W1);
    expect(w.rows).toBe(60);
    expect(w.importance).toBeUndefined();
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(sample(metrics, 'warden_feature_importance', { model: 'gbr' })).toBeUndefined();
    expect(sample(metrics, 'warden_explained_rows_total', { protocol: 'monitoring' })).toBeUndefined();
  });
});
