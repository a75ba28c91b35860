/**
 * Online feature lookup latency (docs/benchmarks.md#online-feature-lookup): a real Warden (embedded stores in a
 * temporary directory) with a view `wide` of 250 float features over 10,000 entities, materialized from pushed rows,
 * and a MatMul model of 250 named inputs bound to it. Run twice: with 1 view defined, and with 100 views defined
 * (99 more of 50 features x 1,000 entities, each bound to a deployment of its own, so every one is held in memory).
 *
 * - in-process: the request path's fill (Enrichment.fillInstances, what :predict calls before validation) for one row
 *   of 250 features and for a batch of 64 rows, entities drawn at random; and the cache read alone (OnlineCache.read,
 *   one row, 250 values with status);
 * - end to end: POST /v1/models/wide:predict over one keep-alive connection, sequentially, the request naming the
 *   entity (`dteday`-style key) vs. sending all 250 values itself.
 *
 *   node --import tsx bench/features/lookup.mts [--iterations 20000] [--requests 3000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ITER = arg('iterations', 20_000);
const REQUESTS = arg('requests', 3_000);
const K = 250;
const ENTITIES = 10_000;
const OTHER_FEATURES = 50;
const OTHER_ENTITIES = 1_000;
const names = Array.from({ length: K }, (_, i) => `f${i}`);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const us = (ms: number) => Number((ms * 1000).toFixed(1));

async function call(url: string, method: string, p: string, body?: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(`${url}${p}`, { method, headers, ...(body === undefined ? {} : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

async function setUp(views: number): Promise<{ warden: Warden; url: string; dir: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-bench-lookup-'));
  const warden = createWarden(
    parseConfig({ server: { host: '127.0.0.1', port: 0 }, storage: { dataDir: dir }, auth: { required: false }, logLevel: 'silent', monitoring: { enabled: false }, features: { maxOnlineRows: 10_000_000 } }),
    { logger: pino({ level: 'silent' }) },
  );
  const url = await warden.listen();
  const view = (name: string, k: number) => ({ name, entities: ['day'], source: { kind: 'push' }, timestampField: 'ts', ttl: '30d', schema: Array.from({ length: k }, (_, i) => ({ name: `${name === 'wide' ? 'f' : `${name}_f`}${i}`, dtype: 'float' })) });
  const featureViews = [view('wide', K), ...Array.from({ length: views - 1 }, (_, v) => view(`other${v}`, OTHER_FEATURES))];
  await call(url, 'PUT', '/api/v1/features', { entities: [{ name: 'day', joinKeys: ['dteday'] }], featureViews });
  const now = Date.now();
  const push = async (v: { name: string; schema: { name: string }[] }, n: number) => {
    for (let i = 0; i < n; i += 2000) {
      const rows = Array.from({ length: Math.min(2000, n - i) }, (_, j) => ({ dteday: `d${i + j}`, ts: now - 1000, ...Object.fromEntries(v.schema.map((f, c) => [f.name, ((i + j) * 7 + c) % 1000 / 1000])) }));
      await call(url, 'POST', `/api/v1/features/${v.name}/push`, { rows });
    }
  };
  await push(featureViews[0]!, ENTITIES);
  for (const v of featureViews.slice(1)) await push(v, OTHER_ENTITIES);
  const weights = Float32Array.from({ length: K }, (_, i) => ((i % 7) - 3) / 10);
  const model = writeOnnx({ kind: 'linear', featureCount: K, weights, bias: 1, metadata: {} });
  const featuresHeader = JSON.stringify(names.map((name) => ({ name })));
  await call(url, 'POST', '/api/v1/models/wide/versions?alias=champion', model, { 'content-type': 'application/octet-stream', 'x-warden-features': featuresHeader });
  // Every other view is read by a deployment of its own (a 1-input model is enough), so the replica holds it.
  const small = writeOnnx({ kind: 'linear', featureCount: 1, weights: Float32Array.from([1]), bias: 0, metadata: {} });
  for (const v of featureViews.slice(1)) {
    await call(url, 'POST', `/api/v1/models/${v.name}/versions?alias=champion`, small, { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify([{ name: v.schema[0]!.name }]) });
  }
  const run = await call(url, "POST", "/api/v1/features/materialize", {});
  for (;;) {
    const r = await call(url, 'GET', `/api/v1/features/materialize/${run.run.id}`);
    if (r.run.state !== 'running') {
      if (r.run.state !== 'succeeded') throw new Error(JSON.stringify(r.run));
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await call(url, "PUT", "/api/v1/deployments/wide/features", { views: ["wide"] });
  for (const v of featureViews.slice(1)) await call(url, 'PUT', `/api/v1/deployments/${v.name}/features`, { views: [v.name] });
  await warden.table.settled();
  return { warden, url, dir };
}

function inProcess(warden: Warden): Record<string, number> {
  const online = warden.online!;
  const sig = warden.table.peek('wide', 1)!.record.signature;
  const features = sig.features!;
  const pick = () => `d${Math.floor(Math.random() * ENTITIES)}`;
  const one: number[] = [];
  const batch: number[] = [];
  const read: number[] = [];
  // Warm up the compiled plan and the JIT.
  for (let i = 0; i < 2000; i++) online.enrichment.fillInstances('wide', features, [{ dteday: pick() }], undefined);
  for (let i = 0; i < ITER; i++) {
    const inst = [{ dteday: pick() }];
    const t = performance.now();
    const problem = online.enrichment.fillInstances('wide', features, inst, undefined)?.problem;
    one.push(performance.now() - t);
    if (problem) throw new Error(problem);
  }
  for (let i = 0; i < ITER / 10; i++) {
    const inst = Array.from({ length: 64 }, () => ({ dteday: pick() }));
    const t = performance.now();
    online.enrichment.fillInstances('wide', features, inst, undefined);
    batch.push(performance.now() - t);
  }
  for (let i = 0; i < ITER; i++) {
    const key = [pick()];
    const t = performance.now();
    online.cache.read('wide', key);
    read.push(performance.now() - t);
  }
  return {
    fill1_p50_us: us(pct(one, 50)),
    fill1_p99_us: us(pct(one, 99)),
    fill64_p50_us: us(pct(batch, 50)),
    fill64_p99_us: us(pct(batch, 99)),
    read1_p50_us: us(pct(read, 50)),
    read1_p99_us: us(pct(read, 99)),
  };
}

/** warden_feature_lookup_duration_seconds of deployment `wide`: its count and cumulative buckets. */
async function histogram(url: string): Promise<{ count: number; le: Record<string, number> }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const le: Record<string, number> = {};
  for (const m of text.matchAll(/warden_feature_lookup_duration_seconds_bucket\{le="([^"]+)",deployment="wide"\} (\d+)/g)) le[m[1]!] = Number(m[2]);
  const count = Number(/warden_feature_lookup_duration_seconds_count\{deployment="wide"\} (\d+)/.exec(text)?.[1] ?? NaN);
  return { count, le };
}

async function endToEnd(url: string): Promise<Record<string, number>> {
  const before = await histogram(url);
  const byKey: number[] = [];
  const byValue: number[] = [];
  const byKey64: number[] = [];
  const body = (i: number) => JSON.stringify({ instances: [{ dteday: `d${(i * 7919) % ENTITIES}` }] });
  const valueBody = (i: number) => JSON.stringify({ instances: [Object.fromEntries(names.map((n, c) => [n, (((i * 7919) % ENTITIES) * 7 + c) % 1000 / 1000]))] });
  const body64 = (i: number) => JSON.stringify({ instances: Array.from({ length: 64 }, (_, j) => ({ dteday: `d${(i * 64 + j) % ENTITIES}` })) });
  const post = async (b: string, into: number[]) => {
    const t = performance.now();
    const res = await fetch(`${url}/v1/models/wide:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
    await res.text();
    into.push(performance.now() - t);
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  };
  for (let i = 0; i < 300; i++) await post(body(i), []);
  for (let i = 0; i < REQUESTS; i++) {
    await post(body(i), byKey);
    await post(valueBody(i), byValue);
  }
  for (let i = 0; i < REQUESTS / 10; i++) await post(body64(i), byKey64);
  // The server's own measure of the fill inside those requests: warden_feature_lookup_duration_seconds.
  const after = await histogram(url);
  const count = after.count - before.count;
  const share = (le: string) => (after.le[le]! - before.le[le]!) / count;
  return {
    server_lookups: count,
    server_lookup_share_le_100us: Number(share('0.0001').toFixed(4)),
    server_lookup_share_le_1ms: Number(share('0.001').toFixed(4)),

    predict_by_key_p50_ms: Number(pct(byKey, 50).toFixed(3)),
    predict_by_key_p99_ms: Number(pct(byKey, 99).toFixed(3)),
    predict_by_value_p50_ms: Number(pct(byValue, 50).toFixed(3)),
    predict_by_value_p99_ms: Number(pct(byValue, 99).toFixed(3)),
    predict64_by_key_p50_ms: Number(pct(byKey64, 50).toFixed(3)),
    predict64_by_key_p99_ms: Number(pct(byKey64, 99).toFixed(3)),
  };
}

const VIEWS = (process.argv.find((a) => a.startsWith("--views="))?.slice(8) ?? "1,100").split(",").map(Number);
for (const views of VIEWS) {
  const t = performance.now();
  const { warden, url, dir } = await setUp(views);
  const setup = (performance.now() - t) / 1000;
  const figures = { views, heldRows: warden.online!.cache.size, setupSeconds: Number(setup.toFixed(1)), ...inProcess(warden), ...(await endToEnd(url)) };
  console.log(JSON.stringify(figures));
  await warden.close();
  rmSync(dir, { recursive: true, force: true });
}
