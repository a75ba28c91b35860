/**
 * What a careless or hostile caller can make the server hold: auth and each route's body limit apply before the
 * body is read, model files stream to disk, uploads and connections in flight are bounded, slow clients are cut at
 * requestTimeoutMs, and every 429/503 says when to come back (Retry-After).
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue, type ErrorCode } from '../../src/errors.ts';
import { retryAfterSeconds } from '../../src/http/errors.ts';
import { createApiKey } from '../../src/security/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const MiB = 1024 * 1024;

/** A raw HTTP/1.1 exchange: write `head` (and optionally part of a body), then wait for the status line or the close. */
interface RawExchange {
  socket: net.Socket;
  /** Resolves with the whole answer received until the socket closed (or `settleMs` after the first byte). */
  answer: Promise<string>;
  /** Seconds from connect to the first answer byte (or the close). */
  elapsed: () => number;
}

function raw(url: string, head: string, bodyPart: Buffer | string = '', settleMs = 200): RawExchange {
  const u = new URL(url);
  const started = performance.now();
  let firstAt: number | undefined;
  const socket = net.connect(Number(u.port), u.hostname);
  socket.on('error', () => undefined);
  const answer = new Promise<string>((resolve) => {
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => {
      firstAt ??= performance.now();
      out += d.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(() => resolve(out), settleMs);
    });
    socket.on('close', () => {
      firstAt ??= performance.now();
      clearTimeout(timer);
      resolve(out);
    });
  });
  socket.write(head);
  if (bodyPart.length) socket.write(bodyPart);
  return { socket, answer, elapsed: () => ((firstAt ?? performance.now()) - started) / 1000 };
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
const header = (answer: string, name: string) => new RegExp(`^${name}: *(.*)$`, 'im').exec(answer.split('\r\n\r\n')[0] ?? '')?.[1]?.trim();
const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: string; code: string };

describe('auth and body limits before the body is read (auth on)', () => {
  let srv: TestServer;
  let deployer: string;
  let predictor: string;

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true }, server: { bodyLimitBytes: 64 * 1024 } });
    deployer = (await createApiKey(srv.warden.stores.metadata, 'd', 'deployer')).secret;
    predictor = (await createApiKey(srv.warden.stores.metadata, 'p', 'predictor')).secret;
    await srv.warden.keys.reload();
  });
  afterAll(() => srv.close());

  // Each request announces 64 MiB but sends only 1 MiB: an answer at all proves the server did not wait for the rest.
  for (const [method, route, type] of [
    ['POST', '/api/v1/models/m/versions', 'application/octet-stream'],
    ['PUT', '/api/v1/models/m/versions/1/reference', 'text/csv'],
    ['POST', '/v2/models/m/infer', 'application/octet-stream'],
    ['POST', '/api/v1/labels', 'text/csv'],
    ['PUT', '/api/v1/alerts/rules', 'application/vnd.apache.parquet'],
  ] as const) {
    it(`${method} ${route} (${type}) without a key: 401 without reading the body, and the connection closed`, async () => {
      const x = raw(srv.url, `${method} ${route} HTTP/1.1\r\nhost: t\r\ncontent-type: ${type}\r\ncontent-length: ${64 * MiB}\r\n\r\n`, Buffer.alloc(MiB));
      const answer = await x.answer;
      expect(statusOf(answer)).toBe(401);
      expect(bodyOf(answer).code).toBe('WARDEN_UNAUTHENTICATED');
      expect(header(answer, 'connection')).toBe('close');
      expect(x.socket.destroyed || x.socket.readableEnded).toBe(true);
      x.socket.destroy();
    });
  }

  it('a chunked upload without a key is refused the same way (no content-length to refuse it by)', async () => {
    const x = raw(srv.url, `POST /api/v1/models/m/versions HTTP/1.1\r\nhost: t\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n`, `100000\r\n${'a'.repeat(0x100000)}\r\n`);
    expect(statusOf(await x.answer)).toBe(401);
    x.socket.destroy();
  });

  it("a keyed caller gets 413 at once when the declared length is over the route's limit, naming the setting", async () => {
    const x = raw(srv.url, `POST /v2/models/m/infer HTTP/1.1\r\nhost: t\r\nauthorization: Bearer ${predictor}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${4 * MiB}\r\n\r\n`);
    const answer = await x.answer;
    expect(statusOf(answer)).toBe(413);
    expect(bodyOf(answer).error).toMatch(/65536 bytes \(server\.bodyLimitBytes\)/);
    x.socket.destroy();
  });

  it("a chunked body is read only up to the route's limit, then cut with 413", async () => {
    const x = raw(srv.url, `POST /v2/models/m/infer HTTP/1.1\r\nhost: t\r\nauthorization: Bearer ${predictor}\r\ncontent-type: text/csv\r\ntransfer-encoding: chunked\r\n\r\n`, `20000\r\n${'a'.repeat(0x20000)}\r\n`);
    const answer = await x.answer;
    expect(statusOf(answer)).toBe(413);
    expect(header(answer, 'connection')).toBe('close');
    x.socket.destroy();
  });

  it('the model upload route takes large bodies (its own limit) and refuses other content-types before reading', async () => {
    const pushed = await fetch(`${srv.url}/api/v1/models/m/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${deployer}` },
      body: Buffer.concat([modelBytes]),
    });
    expect(pushed.status).toBe(201);
    const x = raw(srv.url, `POST /api/v1/models/m/versions HTTP/1.1\r\nhost: t\r\nauthorization: Bearer ${deployer}\r\ncontent-type: application/json\r\ncontent-length: ${512 * MiB}\r\n\r\n{`);
    const answer = await x.answer;
    expect(statusOf(answer)).toBe(415);
    expect(bodyOf(answer).error).toMatch(/application\/octet-stream/);
    x.socket.destroy();
  });

  it('a key created after the last refresh (by the CLI or another replica) works on its first request', async () => {
    const fresh = await createApiKey(srv.warden.stores.metadata, 'new', 'viewer');
    const t0 = performance.now();
    const res = await srv.json('GET', '/api/v1/models', undefined, { authorization: `Bearer ${fresh.secret}` });
    expect(res.status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(2000);
    // A made-up key still fails, after at most one store read.
    expect((await srv.json('GET', '/api/v1/models', undefined, { authorization: 'Bearer wdn_000000000000_nope' })).status).toBe(401);
  });
});

describe('uploads streamed to disk and bounded in flight (auth off)', () => {
  let srv: TestServer;
  const uploadDir = () => path.join(srv.dataDir, 'tmp', 'uploads');

  beforeAll(async () => {
    srv = await startTestServer({ server: { maxUploads: 1, uploadLimitBytes: 2 * MiB } });
  });
  afterAll(() => srv.close());
  afterEach(async () => {
    // Slots and temp files are released when the response closes.
    for (let i = 0; i < 50 && readdirSync(uploadDir()).length; i++) await new Promise((r) => setTimeout(r, 20));
  });

  it('an upload in flight holds a file on disk, not the body in memory; a second one gets 429 with Retry-After', async () => {
    const first = raw(srv.url, `POST /api/v1/models/m/versions HTTP/1.1\r\nhost: t\r\ncontent-type: application/octet-stream\r\ncontent-length: ${MiB}\r\n\r\n`, Buffer.alloc(256 * 1024));
    for (let i = 0; i < 100 && readdirSync(uploadDir()).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const files = readdirSync(uploadDir());
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.upload$/);

    const second = raw(srv.url, `POST /api/v1/models/m/versions HTTP/1.1\r\nhost: t\r\ncontent-type: application/octet-stream\r\ncontent-length: 10\r\n\r\n`);
    const answer = await second.answer;
    expect(statusOf(answer)).toBe(429);
    expect(bodyOf(answer).code).toBe('WARDEN_RATE_LIMITED');
    expect(bodyOf(answer).error).toMatch(/server\.maxUploads/);
    expect(Number(header(answer, 'retry-after'))).toBeGreaterThan(0);
    second.socket.destroy();

    // The client gives up half way: the partial file is removed and the slot freed.
    first.socket.destroy();
    for (let i = 0; i < 100 && readdirSync(uploadDir()).length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(readdirSync(uploadDir())).toEqual([]);
    const res = await fetch(`${srv.url}/api/v1/models/m/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: modelBytes });
    expect(res.status).toBe(201);
  });

  it('an upload over server.uploadLimitBytes is cut with 413 naming the setting and leaves no file', async () => {
    const x = raw(srv.url, `POST /api/v1/models/big/versions HTTP/1.1\r\nhost: t\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n`);
    const chunk = Buffer.alloc(MiB, 1);
    for (let i = 0; i < 3 && !x.socket.destroyed; i++) {
      x.socket.write(`${chunk.length.toString(16)}\r\n`);
      x.socket.write(chunk);
      x.socket.write('\r\n');
    }
    const answer = await x.answer;
    expect(statusOf(answer)).toBe(413);
    expect(bodyOf(answer).error).toMatch(/server\.uploadLimitBytes/);
    x.socket.destroy();
    for (let i = 0; i < 100 && readdirSync(uploadDir()).length; i++) await new Promise((r) => setTimeout(r, 10));
    expect(readdirSync(uploadDir())).toEqual([]);
    expect((await srv.json('GET', '/api/v1/models/big')).status).toBe(404);
  });
});

describe('connections and slow clients', () => {
  it('refuses connections beyond server.maxConnections and takes new ones once some close', async () => {
    const srv = await startTestServer({ server: { maxConnections: 3 } });
    try {
      const u = new URL(srv.url);
      const open = await Promise.all(
        [0, 1, 2].map(async () => {
          const s = net.connect(Number(u.port), u.hostname);
          await once(s, 'connect');
          return s;
        }),
      );
      // Give the server a moment to count them.
      await new Promise((r) => setTimeout(r, 50));
      const extra = raw(srv.url, 'GET /v2/health/live HTTP/1.1\r\nhost: t\r\n\r\n');
      expect(await extra.answer).toBe('');
      for (const s of open) s.destroy();
      await new Promise((r) => setTimeout(r, 50));
      expect((await srv.json('GET', '/v2/health/live')).status).toBe(200);
    } finally {
      await srv.close();
    }
  });

  it('cuts slow headers, slow bodies and silent clients at requestTimeoutMs (408), within about a second', async () => {
    const srv = await startTestServer({ server: { requestTimeoutMs: 1500 } });
    try {
      const cases = [
        raw(srv.url, 'POST /v2/models/m/infer HTTP/1.1\r\nhost: t\r\n'),
        raw(srv.url, 'POST /v2/models/m/infer HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"inputs":'),
        raw(srv.url, ''),
      ];
      // Trickle: one header line or one body byte every 300 ms keeps each one alive by activity alone.
      const trickle = setInterval(() => {
        if (!cases[0]!.socket.destroyed) cases[0]!.socket.write('x-slow: 1\r\n');
        if (!cases[1]!.socket.destroyed) cases[1]!.socket.write(' ');
      }, 300);
      const answers = await Promise.all(cases.map((c) => c.answer));
      clearInterval(trickle);
      for (const [i, c] of cases.entries()) {
        expect(statusOf(answers[i]!), `case ${i}`).toBe(408);
        expect(c.elapsed(), `case ${i}`).toBeGreaterThanOrEqual(1.4);
        expect(c.elapsed(), `case ${i}`).toBeLessThan(3);
        c.socket.destroy();
      }
    } finally {
      await srv.close();
    }
  });
});

describe('Retry-After and one message per log line', () => {
  it('every code answered with 429 or 503 has a Retry-After', () => {
    const codes = Object.entries(errorCatalogue).filter(([, v]) => v.status === 429 || v.status === 503);
    expect(codes.length).toBeGreaterThanOrEqual(4);
    for (const [code, v] of codes) expect(retryAfterSeconds(code as ErrorCode, v.status), code).toBeGreaterThan(0);
    expect(retryAfterSeconds('WARDEN_BAD_REQUEST', 400)).toBeUndefined();
  });

  it('a 429 from the inference bound carries Retry-After; refused requests log their reason in its own field', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        cb();
      },
    });
    const srv = await startTestServer({ logLevel: 'info', server: { maxInflight: 1 } }, { logger: pino({ level: 'info' }, sink) });
    try {
      await srv.warden.registry.push({ model: 'm', bytes: modelBytes });
      await srv.warden.table.settled();
      const req = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
      // A game day's latency fault holds each request 100 ms, so a second one in flight meets the bound of 1.
      const slow = await srv.json('POST', '/api/v1/gamedays', { deployment: 'm', fault: 'latency', intensity: 0.5, durationMs: 5000 });
      expect(slow.status).toBe(201);
      const answers = await Promise.all(Array.from({ length: 8 }, () => srv.json('POST', '/v2/models/m/infer', req)));
      const limited = answers.filter((a) => a.status === 429);
      expect(limited.length).toBeGreaterThan(0);
      for (const a of limited) expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(answers.filter((a) => a.status !== 429).every((a) => a.status === 200)).toBe(true);
      expect((await srv.json('DELETE', `/api/v1/gamedays/${slow.body.id}`)).status).toBe(200);
      // 503: an injected failure says when to retry too.
      const failing = await srv.json('POST', '/api/v1/gamedays', { deployment: 'm', fault: 'errors', intensity: 2, durationMs: 5000 });
      const failed = await srv.json('POST', '/v2/models/m/infer', req);
      expect(failed.status).toBe(503);
      expect(Number(failed.headers.get('retry-after'))).toBeGreaterThan(0);
      await srv.json('DELETE', `/api/v1/gamedays/${failing.body.id}`);

      const missing = await srv.json('POST', '/v2/models/nope/infer', req);
      expect(missing.status).toBe(404);
      expect(missing.headers.get('retry-after')).toBeNull();
      const refused = lines.filter((l) => l.includes('"request refused"') && l.includes('nope'));
      expect(refused).toHaveLength(1);
      // Exactly one "msg" key per line: JSON log tools keep only one of two.
      expect(refused[0]!.match(/"msg":/g)).toHaveLength(1);
      const parsed = JSON.parse(refused[0]!) as Record<string, unknown>;
      expect(parsed.msg).toBe('request refused');
      expect(parsed.code).toBe('WARDEN_MODEL_NOT_FOUND');
      expect(String(parsed.reason)).toMatch(/nope/);
    } finally {
      await srv.close();
    }
  });
});
