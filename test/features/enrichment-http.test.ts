/**
 * Serving-time enrichment on a real server: definitions by PUT /api/v1/features, a CSV view materialized by
 * POST /api/v1/features/materialize, a linear model whose named features are partly in the view, bound with
 * PUT /api/v1/deployments/{name}/features. A `:predict` request carrying the entity key (and OIP's with
 * parameters.entities) gets the same answer as one sending every value itself; a value past the view's TTL or absent
 * is refused with 400 naming the row, entity, feature, view and status; the `feature_lookup` span carries the views,
 * rows and statuses; warden_feature_lookup_duration_seconds and warden_feature_values_total count them; the online
 * read API answers statuses; the binding is listed and deleted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.now();
const FEATURES = ['hr', 'cnt_lag1', 'temp_lag1'];
/** prediction = hr + 0.001·cnt_lag1 + 10·temp_lag1 + 0.5 */
const WEIGHTS = [1, 0.001, 10];

/** Days: fresh (an hour old), stale (10 days old: past the 2-day TTL), and one with no temperature. */
const ROWS = [
  { dteday: '2012-06-09', ts: NOW - HOUR, cnt_lag1: 5000, temp_lag1: 0.7 },
  { dteday: '2012-06-08', ts: NOW - 2 * HOUR, cnt_lag1: 4200, temp_lag1: 0.55 },
  { dteday: '2012-05-30', ts: NOW - 10 * DAY, cnt_lag1: 3900, temp_lag1: 0.4 },
  { dteday: '2012-06-07', ts: NOW - 3 * HOUR, cnt_lag1: 4100, temp_lag1: null },
];

interface Span {
  name: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP receiver keeping every span with its attributes (arrays as arrays). */
async function receiver(): Promise<{ url: string; spans: Span[]; close(): Promise<void> }> {
  const spans: Span[] = [];
  const value = (v: Record<string, any>): unknown =>
    v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? (v.arrayValue ? (v.arrayValue.values ?? []).map(value) : undefined);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? []) spans.push({ ...s, attributes: Object.fromEntries((s.attributes ?? []).map((a: { key: string; value: any }) => [a.key, value(a.value)])) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const expected = (hr: number, cnt: number, temp: number) => Math.fround(Math.fround(hr * WEIGHTS[0]! + cnt * WEIGHTS[1]! + temp * WEIGHTS[2]!) + 0.5);

describe('serving-time enrichment over HTTP', () => {
  let srv: TestServer;
  let dir: string;
  let rx: Awaited<ReturnType<typeof receiver>>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-enrich-http-'));
    const csv = path.join(dir, 'daily.csv');
    writeFileSync(csv, `dteday,ts,cnt_lag1,temp_lag1\n${ROWS.map((r) => `${r.dteday},${r.ts},${r.cnt_lag1},${r.temp_lag1 ?? ''}`).join('\n')}\n`);
    rx = await receiver();
    srv = await startTestServer({ tracing: { enabled: true, otlpEndpoint: rx.url, scheduledDelayMs: 20 } });
    const defs = await srv.json('PUT', '/api/v1/features', {
      entities: [{ name: 'day', joinKeys: ['dteday'] }],
      featureViews: [
        {
          name: 'daily',
          entities: ['day'],
          source: { kind: 'file', path: csv, format: 'csv' },
          timestampField: 'ts',
          ttl: '2d',
          schema: [
            { name: 'cnt_lag1', dtype: 'int' },
            { name: 'temp_lag1', dtype: 'float' },
          ],
        },
        { name: 'unused', entities: ['day'], source: { kind: 'push' }, timestampField: 'ts', ttl: 0, schema: [{ name: 'x', dtype: 'float' }] },
      ],
    });
    expect(defs.status, JSON.stringify(defs.body)).toBe(200);
    const model = writeOnnx({ kind: 'linear', featureCount: 3, weights: Float32Array.from(WEIGHTS), bias: 0.5, metadata: {} });
    const pushed = await fetch(`${srv.url}/api/v1/models/bike/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((name) => ({ name }))) },
      body: Buffer.from(model),
    });
    expect(pushed.status, await pushed.text()).toBe(201);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await rx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('materializes the view: 202 with the run, its progress until done, each view\'s state', async () => {
    const res = await srv.json('POST', '/api/v1/features/materialize', { views: ['daily'] });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.headers.get('location')).toBe(`/api/v1/features/materialize/${res.body.run.id}`);
    let run = res.body.run;
    for (let i = 0; run.state === 'running' && i < 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      run = (await srv.json('GET', `/api/v1/features/materialize/${run.id}`)).body.run;
    }
    expect(run).toMatchObject({ state: 'succeeded', views: [{ view: 'daily', source: 'csv', state: 'succeeded', rowsRead: 4, rowsWritten: 4 }] });
    const st = await srv.json('GET', '/api/v1/features/materialize');
    expect(st.body.views.map((v: { view: string }) => v.view)).toEqual(['daily', 'unused']);
    expect(st.body.views[0]).toMatchObject({ view: 'daily', rows: 4, watermark: NOW - HOUR, lastRun: { run: run.id, state: 'succeeded' } });
    expect((await srv.json('GET', '/api/v1/features/materialize/nope')).status).toBe(404);
    expect((await srv.json('POST', '/api/v1/features/materialize', { views: ['nope'] })).status).toBe(400);
  });

  it('binds the deployment to the view, checked against the definitions and the registry', async () => {
    expect((await srv.json('PUT', '/api/v1/deployments/bike/features', { views: ['weekly'] })).body.error).toContain('no feature view "weekly"');
    expect((await srv.json('PUT', '/api/v1/deployments/ghost/features', { views: ['daily'] })).status).toBe(404);
    const put = await srv.json('PUT', '/api/v1/deployments/bike/features', { views: ['daily'] });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ deployment: 'bike', views: ['daily'], features: [{ name: 'cnt_lag1', view: 'daily' }, { name: 'temp_lag1', view: 'daily' }] });
    expect((await srv.json('GET', '/api/v1/deployments/bike/features')).body).toEqual(put.body);
  });

  it(':predict with entity keys answers what sending the values answers', async () => {
    const full = await srv.json('POST', '/v1/models/bike:predict', {
      instances: [
        { hr: 8, cnt_lag1: 5000, temp_lag1: 0.7 },
        { hr: 17, cnt_lag1: 4200, temp_lag1: 0.55 },
      ],
    });
    expect(full.status, JSON.stringify(full.body)).toBe(200);
    const byKey = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09' }, { hr: 17, dteday: '2012-06-08' }] });
    expect(byKey.status, JSON.stringify(byKey.body)).toBe(200);
    expect(byKey.body.predictions).toEqual(full.body.predictions);
    expect(byKey.body.predictions[0]).toBeCloseTo(expected(8, 5000, 0.7), 4);
    const byParam = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8 }, { hr: 17 }], parameters: { entities: [{ dteday: '2012-06-09' }, { dteday: '2012-06-08' }] } });
    expect(byParam.body.predictions).toEqual(full.body.predictions);
    // The caller's value wins over the store's.
    const override = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09', temp_lag1: 0.1 }] });
    expect(override.body.predictions[0]).toBeCloseTo(expected(8, 5000, 0.1), 4);
  });

  it('OIP with parameters.entities: the nulls of the named-feature input are filled', async () => {
    const full = await srv.json('POST', '/v2/models/bike/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [8, 5000, 0.7] }] });
    const filled = await srv.json('POST', '/v2/models/bike/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [8, null, null] }],
      parameters: { entities: [{ dteday: '2012-06-09' }] },
    });
    expect(filled.status, JSON.stringify(filled.body)).toBe(200);
    expect(filled.body.outputs).toEqual(full.body.outputs);
    // Left out whole: hr is in no view, so the caller must send the input.
    const none = await srv.json('POST', '/v2/models/bike/infer', { inputs: [], parameters: { entities: [{ dteday: '2012-06-09' }] } });
    expect(none.status).toBe(400);
    expect(none.body.error).toContain('feature hr is in none of the views deployment bike reads (daily)');
  });

  it('an expired or missing value is refused with 400 naming the row, entity, feature, view and status', async () => {
    const stale = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09' }, { hr: 9, dteday: '2012-05-30' }] });
    expect(stale.status).toBe(400);
    expect(stale.body.code).toBe('WARDEN_INVALID_INPUT');
    expect(stale.body.error).toContain(`instances[1]: feature cnt_lag1 of view daily for entity dteday="2012-05-30" is expired (its value is from ${new Date(NOW - 10 * DAY).toISOString()}, older than the view's TTL of 2d)`);
    expect(stale.body.error).toContain('instances[1]: feature temp_lag1 of view daily for entity dteday="2012-05-30" is expired');
    const absent = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '1999-01-01' }] });
    expect(absent.status).toBe(400);
    expect(absent.body.error).toContain('instances[0]: feature cnt_lag1 of view daily for entity dteday="1999-01-01" is missing (no row for the entity in the online store)');
    const novalue = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-07' }] });
    expect(novalue.body.error).toBe(
      "instances[0]: feature temp_lag1 of view daily for entity dteday=\"2012-06-07\" is missing (the entity's row has no value for it); send the value in the request, or materialize the view (warden features materialize)",
    );
    // Sending the value itself is the way out.
    expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-07', temp_lag1: 0.5 }] })).status).toBe(200);
    const oip = await srv.json('POST', '/v2/models/bike/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [8, null, null] }], parameters: { entities: [{ dteday: '2012-05-30' }] } });
    expect(oip.status).toBe(400);
    expect(oip.body.error).toContain('parameters.entities[0]: feature cnt_lag1 of view daily for entity dteday="2012-05-30" is expired');
  });

  it('reads online values with their status through the API', async () => {
    const res = await srv.json('POST', '/api/v1/features/online', { view: 'daily', entities: [{ dteday: '2012-06-09' }, { dteday: '2012-05-30' }, { dteday: 'x' }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      view: 'daily',
      from: 'cache',
      results: [
        { entity: { dteday: '2012-06-09' }, features: { cnt_lag1: { value: 5000, status: 'present', eventTs: NOW - HOUR }, temp_lag1: { value: 0.7, status: 'present', eventTs: NOW - HOUR } } },
        { entity: { dteday: '2012-05-30' }, features: { cnt_lag1: { value: null, status: 'expired', eventTs: NOW - 10 * DAY }, temp_lag1: { value: null, status: 'expired', eventTs: NOW - 10 * DAY } } },
        { entity: { dteday: 'x' }, features: { cnt_lag1: { value: null, status: 'missing', eventTs: null }, temp_lag1: { value: null, status: 'missing', eventTs: null } } },
      ],
    });
    // A view no deployment reads is read from the store.
    expect((await srv.json('POST', '/api/v1/features/online', { view: 'unused', entities: [{ dteday: 'x' }] })).body.from).toBe('store');
    expect((await srv.json('POST', '/api/v1/features/online', { view: 'daily', entities: [{ day: 'x' }] })).body.error).toContain('entities[0] lacks a value of join key dteday');
  });

  it('counts values by view and status, times lookups, and makes the feature_lookup span real', async () => {
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    // Present: 2 rows x 2 (byKey) + 2 x 2 (byParam) + 1 (override: temp sent) + 2 (OIP filled) + 2 (stale: row 0) + 1 (novalue) + 0 (sent).
    expect(metrics).toMatch(/warden_feature_values_total\{view="daily",status="present"\} 1[0-9]/);
    expect(metrics).toContain('warden_feature_values_total{view="daily",status="expired"} 4');
    expect(metrics).toMatch(/warden_feature_values_total\{view="daily",status="missing"\} [3-9]/);
    expect(metrics).toMatch(/warden_feature_lookup_duration_seconds_count\{deployment="bike"\} \d+/);
    expect(metrics).toContain('warden_feature_online_rows{view="daily"} 4');

    await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 1, dteday: '2012-06-09' }, { hr: 2, dteday: '2012-05-30' }] }, { 'x-request-id': 'traced-refused' });
    await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 1, dteday: '2012-06-09' }] }, { 'x-request-id': 'traced-ok' });
    // The SERVER span ends as the response goes out, which can be just after the client has read it: flush until both are in.
    for (let i = 0; i < 100 && !['traced-refused', 'traced-ok'].every((id) => rx.spans.some((s) => s.attributes['warden.request_id'] === id)); i++) {
      await srv.warden.tracing!.forceFlush();
      await new Promise((r) => setTimeout(r, 20));
    }
    const lookupOf = (id: string) => {
      const server = rx.spans.find((s) => s.attributes['warden.request_id'] === id);
      expect(server, id).toBeDefined();
      return rx.spans.find((s) => s.parentSpanId === server!.spanId && s.name === 'feature_lookup')!;
    };
    expect(lookupOf('traced-ok').attributes).toMatchObject({
      'warden.features.source': 'online',
      'warden.features.views': ['daily'],
      'warden.features.rows': 1,
      'warden.features.present': 2,
      'warden.features.expired': 0,
      'warden.features.missing': 0,
      'warden.features.refused': 0,
    });
    expect(lookupOf('traced-refused').attributes).toMatchObject({ 'warden.features.present': 2, 'warden.features.expired': 2, 'warden.features.refused': 2 });
  });

  it('follows new definitions: a longer TTL serves the value that had expired', async () => {
    const stale = { instances: [{ hr: 9, dteday: '2012-05-30' }] };
    expect((await srv.json('POST', '/v1/models/bike:predict', stale)).status).toBe(400);
    const defs = (await srv.json('GET', '/api/v1/features')).body;
    const daily = defs.featureViews.find((v: { name: string }) => v.name === 'daily');
    const { ttl: _ttl, ttlMs: _ttlMs, ...rest } = daily;
    const put = await srv.json('PUT', '/api/v1/features', { entities: defs.entities, featureViews: [{ ...rest, ttl: '30d' }, ...defs.featureViews.filter((v: { name: string }) => v.name !== 'daily')] });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const served = await srv.json('POST', '/v1/models/bike:predict', stale);
    expect(served.status, JSON.stringify(served.body)).toBe(200);
    expect(served.body.predictions[0]).toBeCloseTo(expected(9, 3900, 0.4), 4);
  });

  it('a deleted binding stops the fill: the key column is then an unknown feature', async () => {
    expect((await srv.json('DELETE', '/api/v1/deployments/bike/features')).status).toBe(204);
    expect((await srv.json('DELETE', '/api/v1/deployments/bike/features')).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/deployments/bike/features')).status).toBe(404);
    const res = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09' }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('missing feature cnt_lag1');
    const param = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, cnt_lag1: 1, temp_lag1: 1 }], parameters: { entities: [{ dteday: '2012-06-09' }] } });
    expect(param.body.error).toContain('deployment bike reads no feature views');
  });

  it('deleting the model deletes its binding: a model pushed again under the name reads no views', async () => {
    expect((await srv.json('PUT', '/api/v1/deployments/bike/features', { views: ['daily'] })).status).toBe(200);
    expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09' }] })).status).toBe(200);
    expect((await srv.json('DELETE', '/api/v1/models/bike?force=true')).status).toBe(204);
    const model = writeOnnx({ kind: 'linear', featureCount: 3, weights: Float32Array.from(WEIGHTS), bias: 0.5, metadata: {} });
    const pushed = await fetch(`${srv.url}/api/v1/models/bike/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((name) => ({ name }))) },
      body: Buffer.from(model),
    });
    expect(pushed.status).toBe(201);
    await srv.warden.table.settled();
    expect((await srv.json('GET', '/api/v1/deployments/bike/features')).status).toBe(404);
    const res = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 8, dteday: '2012-06-09' }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('missing feature cnt_lag1');
  });
});
