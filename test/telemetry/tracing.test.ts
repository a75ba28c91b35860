/**
 * OpenTelemetry traces against a real server and an in-process OTLP/HTTP receiver: the SERVER span of each
 * inference with its three steps, W3C traceparent/tracestate continuation, error recording, one id across
 * spans, prediction events and log lines, parent-based sampling, flush on close, and nothing at all when off.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { WardenError } from '../../src/errors.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

/** One span as the OTLP/JSON exporter sends it, with attributes flattened and its resource's attributes. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status?: { code?: number; message?: string };
  resource: Record<string, unknown>;
}

interface OtlpAttr {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}

/** OTLP enums (opentelemetry-proto trace.proto): SPAN_KIND_SERVER = 2; STATUS_CODE_ERROR = 2. */
const KIND_SERVER = 2;
const STATUS_ERROR = 2;

function attrs(list: OtlpAttr[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ?? value.boolValue;
  }
  return out;
}

/** A tiny OTLP/HTTP receiver: collects POST /v1/traces JSON bodies and their headers. */
interface Receiver {
  url: string;
  posts: { headers: IncomingHttpHeaders; body: any }[];
  spans(): OtlpSpan[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const posts: Receiver['posts'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      posts.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    posts,
    spans() {
      const out: OtlpSpan[] = [];
      for (const { body } of posts) {
        for (const rs of body.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              out.push({
                ...s,
                attributes: attrs(s.attributes),
                events: (s.events ?? []).map((e: { name: string; attributes?: OtlpAttr[] }) => ({ name: e.name, attributes: attrs(e.attributes) })),
                resource,
              });
            }
          }
        }
      }
      return out;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const FEATURES = Array.from({ length: 12 }, (_, i) => ({ name: `f${i}` }));
const GOOD = { inputs: [{ name: 'input', shape: [2, 12], datatype: 'FP32', data: new Array(24).fill(0.25) }] };
const BAD = { inputs: [{ name: 'nope', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.25) }] };
const INSTANCE = Object.fromEntries(FEATURES.map((f) => [f.name, 0.5]));

async function pushBusy(srv: TestServer): Promise<void> {
  await srv.warden.registry.push({
    model: 'busy',
    bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')),
    aliases: ['champion'],
    features: FEATURES,
  });
  await srv.warden.table.settled();
}

/** A W3C traceparent with fresh random ids (version 00, sampled unless told otherwise). */
function traceparent(sampled = true): { header: string; traceId: string; parentId: string } {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const traceId = hex(32);
  const parentId = hex(16);
  return { header: `00-${traceId}-${parentId}-${sampled ? '01' : '00'}`, traceId, parentId };
}

describe('tracing on', () => {
  let receiver: Receiver;
  let srv: TestServer;
  const logLines: Record<string, unknown>[] = [];
  const parent = traceparent();
  let spans: OtlpSpan[];

  const serverSpan = (requestId: string) => {
    const found = spans.filter((s) => s.kind === KIND_SERVER && s.attributes['warden.request_id'] === requestId);
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  // In export order, which is the order spans ended in (start times only have millisecond precision in the SDK).
  const childrenOf = (s: OtlpSpan) => spans.filter((c) => c.parentSpanId === s.spanId && c.traceId === s.traceId);

  beforeAll(async () => {
    receiver = await startReceiver();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    srv = await startTestServer(
      {
        predictionLog: { flushIntervalMs: 20 },
        tracing: { enabled: true, otlpEndpoint: receiver.url, scheduledDelayMs: 20, headers: { 'x-scope-orgid': 'tenant-a' } },
        logLevel: 'info',
      },
      { logger: pino({ level: 'info' }, sink) },
    );
    await pushBusy(srv);

    expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'req-plain' })).status).toBe(200);
    const continued = await srv.json('POST', '/v2/models/busy/versions/1/infer', GOOD, {
      'x-request-id': 'req-parent',
      traceparent: parent.header,
      tracestate: 'vendor=abc,other=1',
    });
    expect(continued.status).toBe(200);
    expect((await srv.json('POST', '/v2/models/busy/infer', BAD, { 'x-request-id': 'req-bad' })).status).toBe(400);
    expect((await srv.json('POST', '/v1/models/busy:predict', { instances: [INSTANCE, INSTANCE, INSTANCE] }, { 'x-request-id': 'req-predict' })).status).toBe(
      200,
    );

    // A runtime failure (500): the model run throws once.
    const runtime = srv.warden.table.peek('busy', 1)!.runtime;
    const run = runtime.run.bind(runtime);
    runtime.run = async () => {
      throw new WardenError('WARDEN_INFERENCE_FAILED', 'model run failed: injected by the test');
    };
    try {
      expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'req-crash' })).status).toBe(500);
    } finally {
      runtime.run = run;
    }

    await srv.warden.tracing!.forceFlush();
    await srv.warden.log!.flush();
    spans = receiver.spans();
  });
  afterAll(async () => {
    await srv.close();
    await receiver.close();
  });

  it('gives each inference a SERVER span named by the route template, with three steps under it', () => {
    const s = serverSpan('req-plain');
    expect(s.name).toBe('POST /v2/models/{name}/infer');
    expect(s.parentSpanId ?? '').toBe('');
    expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(s.status?.code ?? 0).toBe(0);
    const children = childrenOf(s);
    expect(children.map((c) => c.name)).toEqual(['feature_lookup', 'validate', 'model.run']);
    expect(children[0]!.attributes['warden.features.source']).toBe('request');
    // The SDK takes start times from Date.now() (whole ms) and adds precise durations: allow 1 ms either way.
    const ms = 1_000_000n;
    for (const c of children) {
      expect(BigInt(c.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(s.startTimeUnixNano) - ms);
      expect(BigInt(c.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(s.endTimeUnixNano) + ms);
    }
    expect(serverSpan('req-parent').name).toBe('POST /v2/models/{name}/versions/{version}/infer');
  });

  it('sets HTTP semantic-convention and Warden attributes', () => {
    const s = serverSpan('req-plain');
    expect(s.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v2/models/{name}/infer',
      'http.response.status_code': 200,
      'url.path': '/v2/models/busy/infer',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'client.address': '127.0.0.1',
      'warden.request_id': 'req-plain',
      'warden.model.name': 'busy',
      'warden.model.version': 1,
      'warden.deployment': 'busy',
      'warden.protocol': 'oip',
      'warden.inference.rows': 2,
    });
    expect(typeof s.attributes['server.port']).toBe('number');
    expect(serverSpan('req-parent').attributes['warden.model.ref']).toBe('1');
    expect(s.resource).toMatchObject({ 'service.name': 'warden', 'telemetry.sdk.language': 'nodejs' });
    expect(s.resource['service.version']).toEqual(expect.any(String));
    expect(s.resource['service.instance.id']).toEqual(expect.any(String));
  });

  it('traces the named-feature form too', () => {
    const s = serverSpan('req-predict');
    expect(s.name).toBe('POST /v1/models/{name}:predict');
    expect(s.attributes).toMatchObject({ 'http.route': '/v1/models/{name}:predict', 'url.path': '/v1/models/busy:predict', 'warden.protocol': 'predict', 'warden.inference.rows': 3 });
    expect(childrenOf(s).map((c) => c.name)).toEqual(['feature_lookup', 'validate', 'model.run']);
  });

  it('continues the caller trace from traceparent and keeps tracestate', () => {
    const s = serverSpan('req-parent');
    expect(s.traceId).toBe(parent.traceId);
    expect(s.parentSpanId).toBe(parent.parentId);
    expect(s.traceState).toBe('vendor=abc,other=1');
    expect(childrenOf(s)).toHaveLength(3);
    // Without a traceparent each request starts its own trace.
    expect(serverSpan('req-plain').traceId).not.toBe(parent.traceId);
    expect(serverSpan('req-plain').traceId).not.toBe(serverSpan('req-bad').traceId);
  });

  it('records a refused request: the failed step is an error, the server span names the code (4xx: status unset)', () => {
    const s = serverSpan('req-bad');
    expect(s.attributes['http.response.status_code']).toBe(400);
    expect(s.attributes['error.type']).toBe('WARDEN_INVALID_INPUT');
    expect(s.status?.code ?? 0).toBe(0);
    expect(s.events.find((e) => e.name === 'exception')?.attributes['exception.type']).toBe('WARDEN_INVALID_INPUT');
    const children = childrenOf(s);
    expect(children.map((c) => c.name)).toEqual(['feature_lookup', 'validate']);
    const validate = children[1]!;
    expect(validate.status?.code).toBe(STATUS_ERROR);
    expect(validate.status?.message).toMatch(/unknown input "nope"/);
    const ex = validate.events.find((e) => e.name === 'exception');
    expect(ex?.attributes['exception.type']).toBe('WARDEN_INVALID_INPUT');
    expect(ex?.attributes['exception.message']).toMatch(/unknown input/);
  });

  it('marks a server failure as an error on the server span and on model.run', () => {
    const s = serverSpan('req-crash');
    expect(s.attributes['http.response.status_code']).toBe(500);
    expect(s.status?.code).toBe(STATUS_ERROR);
    expect(s.attributes['error.type']).toBe('WARDEN_INFERENCE_FAILED');
    expect(s.events.some((e) => e.name === 'exception')).toBe(true);
    const run = childrenOf(s).find((c) => c.name === 'model.run')!;
    expect(run.status?.code).toBe(STATUS_ERROR);
    expect(run.events.find((e) => e.name === 'exception')?.attributes['exception.message']).toMatch(/injected by the test/);
  });

  it('stores the trace id on the prediction event, failed ones included', async () => {
    const events = srv.warden.stores.events;
    const [ok] = await events.queryPredictions({ requestId: 'req-parent', limit: 10 });
    expect(ok?.traceId).toBe(parent.traceId);
    const [plain] = await events.queryPredictions({ requestId: 'req-plain', limit: 10 });
    expect(plain?.traceId).toBe(serverSpan('req-plain').traceId);
    const [bad] = await events.queryPredictions({ requestId: 'req-bad', limit: 10 });
    expect(bad?.status).toBe('error');
    expect(bad?.traceId).toBe(serverSpan('req-bad').traceId);
  });

  it('puts the trace id beside the request id in the request log lines', () => {
    const refused = logLines.find((l) => l.requestId === 'req-bad' && l.msg === 'request refused');
    expect(refused).toBeDefined();
    expect(refused!.traceId).toBe(serverSpan('req-bad').traceId);
    expect(refused!.spanId).toBe(serverSpan('req-bad').spanId);
    const crashed = logLines.find((l) => l.requestId === 'req-crash' && l.level === 50);
    expect(crashed?.traceId).toBe(serverSpan('req-crash').traceId);
  });

  it('sends the configured headers to the endpoint and counts exported spans', async () => {
    expect(receiver.posts.length).toBeGreaterThan(0);
    for (const p of receiver.posts) {
      expect(p.headers['x-scope-orgid']).toBe('tenant-a');
      expect(p.headers['content-type']).toMatch(/application\/json/);
    }
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    const exported = Number(/warden_tracing_spans_exported_total\{result="ok"\} (\d+)/.exec(text)?.[1]);
    expect(exported).toBe(spans.length);
    expect(Number(/warden_tracing_spans_ended_total (\d+)/.exec(text)?.[1])).toBe(spans.length);
  });

  it('traces only inference routes', () => {
    expect(spans.every((s) => s.kind !== KIND_SERVER || /infer$|:predict$/.test(s.name))).toBe(true);
  });
});

describe('sampling and shutdown', () => {
  it('follows a sampled traceparent at sampleRatio 0, keeps the trace id on unsampled events, and flushes on close', async () => {
    const receiver = await startReceiver();
    // A long export delay: only the flush on close can deliver these spans before the assertions.
    const srv = await startTestServer({ tracing: { enabled: true, otlpEndpoint: receiver.url, sampleRatio: 0, scheduledDelayMs: 60_000 } });
    let sampled = traceparent(true);
    try {
      await pushBusy(srv);
      sampled = traceparent(true);
      const unsampled = traceparent(false);
      expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'root' })).status).toBe(200);
      expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'sampled', traceparent: sampled.header })).status).toBe(200);
      expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'unsampled', traceparent: unsampled.header })).status).toBe(200);
      await srv.warden.log!.flush();
      const [unsampledEvent] = await srv.warden.stores.events.queryPredictions({ requestId: 'unsampled', limit: 1 });
      expect(unsampledEvent?.traceId).toBe(unsampled.traceId);
      expect(receiver.posts).toHaveLength(0);
    } finally {
      await srv.close();
    }
    const spans = receiver.spans();
    expect(spans).toHaveLength(4);
    expect(spans.every((s) => s.traceId === sampled.traceId)).toBe(true);
    expect(spans.find((s) => s.kind === KIND_SERVER)?.attributes['warden.request_id']).toBe('sampled');
    await receiver.close();
  });

  it('closes promptly when the endpoint is unreachable', async () => {
    const receiver = await startReceiver();
    const deadUrl = receiver.url;
    await receiver.close();
    const srv = await startTestServer({ tracing: { enabled: true, otlpEndpoint: deadUrl, scheduledDelayMs: 10, exportTimeoutMs: 1000 } });
    await pushBusy(srv);
    expect((await srv.json('POST', '/v2/models/busy/infer', GOOD)).status).toBe(200);
    const t0 = Date.now();
    await srv.close();
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('tracing off (the default)', () => {
  it('creates no tracer, sends nothing and stores no trace id', async () => {
    const receiver = await startReceiver();
    const srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, tracing: { otlpEndpoint: receiver.url, scheduledDelayMs: 10 } });
    try {
      await pushBusy(srv);
      expect(srv.warden.config.tracing.enabled).toBe(false);
      expect(srv.warden.tracing).toBeUndefined();
      const tp = traceparent();
      expect((await srv.json('POST', '/v2/models/busy/infer', GOOD, { 'x-request-id': 'off', traceparent: tp.header })).status).toBe(200);
      expect((await srv.json('POST', '/v2/models/busy/infer', BAD)).status).toBe(400);
      await srv.warden.log!.flush();
      const [event] = await srv.warden.stores.events.queryPredictions({ requestId: 'off', limit: 1 });
      expect(event).toBeDefined();
      expect(event!.traceId).toBeUndefined();
      const text = await (await fetch(`${srv.url}/metrics`)).text();
      expect(text).not.toContain('warden_tracing_');
    } finally {
      await srv.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.posts).toHaveLength(0);
    await receiver.close();
  });
});

describe('tracing config', () => {
  it('reads WARDEN_TRACING_* and refuses bad values naming the key', async () => {
    const cfg = await loadConfig({
      file: '/dev/null',
      env: {
        WARDEN_TRACING_ENABLED: 'true',
        WARDEN_TRACING_OTLP_ENDPOINT: 'https://otel.example:4318/v1/traces',
        WARDEN_TRACING_SAMPLE_RATIO: '0.25',
        WARDEN_TRACING_SERVICE_NAME: 'warden-eu',
        WARDEN_TRACING_HEADERS: 'authorization=Bearer%20s3cret, x-scope-orgid=tenant-a',
      },
    });
    expect(cfg.tracing).toMatchObject({
      enabled: true,
      otlpEndpoint: 'https://otel.example:4318/v1/traces',
      sampleRatio: 0.25,
      serviceName: 'warden-eu',
      headers: { authorization: 'Bearer s3cret', 'x-scope-orgid': 'tenant-a' },
      maxQueueSize: 2048,
    });
    const defaults = await loadConfig({ file: '/dev/null', env: {} });
    expect(defaults.tracing).toEqual({
      enabled: false,
      otlpEndpoint: 'http://127.0.0.1:4318/v1/traces',
      serviceName: 'warden',
      sampleRatio: 1,
      headers: {},
      maxQueueSize: 2048,
      scheduledDelayMs: 5000,
      exportTimeoutMs: 10_000,
    });
    await expect(loadConfig({ file: '/dev/null', env: { WARDEN_TRACING_SAMPLE_RATIO: '2' } })).rejects.toThrow(/tracing\.sampleRatio/);
    await expect(loadConfig({ file: '/dev/null', env: { WARDEN_TRACING_OTLP_ENDPOINT: 'grpc://x:4317' } })).rejects.toThrow(/tracing\.otlpEndpoint/);
    // A malformed pair may be a pasted token: the error names the variable, never the text.
    const bad = loadConfig({ file: '/dev/null', env: { WARDEN_TRACING_HEADERS: 'a=b,TOKEN-XYZZY' } });
    await expect(bad).rejects.toThrow(/WARDEN_TRACING_HEADERS .*pair 2/);
    await expect(bad).rejects.not.toThrow(/XYZZY/);
  });
});
