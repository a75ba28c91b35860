/**
 * Every route, from the server's own route table (a new route is covered without editing this file), gets a seeded
 * storm of malformed requests: odd path parameters, repeated and junk query parameters, wrong content-types, broken,
 * deep, huge-number and wrong-shape bodies, junk headers. No answer may be a 5xx or hang, every refusal is in the
 * error shape, the server stays alive, and a probe model's predictions are the same before and after.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/random.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const SEED = 0x0f0e_2026;
const REQUESTS = 5_200;
const CONCURRENCY = 8;
const TIMEOUT_MS = 10_000;

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { input: number[][] };

const rand = mulberry32(SEED);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;


/** Path parameter values: the fuzz model's real names and versions, and values no route should trust. */
const PARAM_VALUES = [
  'm', 'm', 'm', '1', '2', 'champion', 'latest', '0', '-1', '1.5', '99999999999999999999', 'NaN', 'null', 'true',
  '%00', '%2e%2e', '..', '%E2%82%AC', '%F0%9F%92%A9', 'a%20b', '%25', "'", '"', '%3Cscript%3E', 'x'.repeat(200),
  'UPPER', 'm:predict', 'm:explain', ':predict', 'sil-1', 'gd-000000000000', 'k1', '1e3', '0x10', ' ', '%ZZ',
];
/** Query parameters routes read, plus junk; values of every kind. */
const QUERY_NAMES = ['model', 'version', 'status', 'since', 'until', 'after', 'limit', 'force', 'alias', 'deployment', 'severity', 'expired', 'ended', 'requestId', 'kind', 'fingerprint', 'alertname', 'x', '__proto__', 'constructor'];
const QUERY_VALUES = ['', '1', '-1', '0', '1000000', 'abc', 'true', 'ok', 'error', '2026-13-45', '9'.repeat(40), 'NaN', '[]', '{}', '%00', 'a%26b', 'm'];
const TYPES = [
  'application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'text/csv', 'application/octet-stream',
  'application/vnd.apache.parquet', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml',
  '', 'garbage', 'application/json; charset=latin1',
];

function deep(depth: number, leaf: string): string {
  return '['.repeat(depth) + leaf + ']'.repeat(depth);
}

/** A body of some wrong shape; a few are nearly right. */
function body(): string | Uint8Array<ArrayBuffer> {
  const roll = int(0, 26);
  switch (roll) {
    case 0: return '';
    case 1: return '{';
    case 2: return 'null';
    case 3: return '[]';
    case 4: return '"text"';
    case 5: return '123';
    case 6: return deep(int(100, 20_000), '1');
    case 7: return `{"a":${deep(5000, '{}')}}`;
    case 8: return '{"inputs":[{"name":"input","shape":[1,12],"datatype":"FP32","data":[1e309,1,1,1,1,1,1,1,1,1,1,1]}]}';
    case 9: return `{"labels":[{"requestId":"r","value":1},{"requestId":${deep(3000, '1')},"value":2},{"key":"k","value":${deep(9000, '0')}}]}`;
    case 10: return `{"labels":${JSON.stringify(Array.from({ length: int(1, 30) }, () => ({ requestId: pick(['', 'r', 1, null]), value: pick([1, 'x', null, [], {}]), row: pick([-1, 0, 1.5, 'a']) })))}}`;
    case 11: return '{"name":"x","description":123}';
    case 12: return `{"version":${pick(['1', '"1"', 'null', '-1', '1e300', '[]'])}}`;
    case 13: return '{"matchers":["deployment==x"],"startsAt":"x","endsAt":"y","createdBy":1,"comment":[]}';
    case 14: return '{"matchers":[{"name":"deployment","value":"(a|a)*b","isRegex":true}],"endsAt":"2099-01-01T00:00:00Z","createdBy":"f","comment":"c"}';
    case 15: return '{"deployment":"m","sli":{"kind":"availability"},"objective":2,"period":"30x"}';
    case 16: return '{"rules":[{"name":"r","metric":"nope","op":">","threshold":"x"}]}';
    case 17: return 'season,temp\n1,0.5\n2,"x\n';
    case 18: return new Uint8Array(Array.from({ length: int(1, 4096) }, () => int(0, 255)));
    case 19: return `{"rows":[{"a":1},{"a":"x"},${deep(2000, '1')}]}`;
    case 20: return `{"columns":{"a":[1,2],"b":"x"}}`;
    case 21: return `{"traffic":{"since":"x","until":${deep(1000, '1')}}}`;
    case 22: return `{"instances":[${deep(50, '{}')}],"parameters":{"keys":[1,2]}}`;
    case 23: return `{"inputs":[{"name":"input","shape":[${int(-5, 5)},${int(-5, 20)}],"datatype":"${pick(['FP32', 'INT64', 'BYTES', 'BOOL', 'X'])}","data":[${pick(['1', '"a"', 'null', 'true', '[1]'])}]}]}`;
    case 24: return `{"${'k'.repeat(int(1, 5000))}":1}`;
    case 25: return JSON.stringify({ deployment: pick(['m', 'nope', '']), fault: pick(['latency', 'nulls', 'bogus']), durationMs: pick([-1, 'x', 1e12]), intensity: pick([0, 11, 'x']) });
    default: return JSON.stringify(Object.fromEntries(Array.from({ length: int(1, 6) }, () => [pick(['name', 'role', 'value', 'reviewer', 'policy', 'rate', 'config', 'x']), pick([null, 1, -1, 'x', [], {}, true, 1e308])])));
  }
}

/** Fills a route's `:param` segments; `:target` of the v1 predict routes sometimes keeps its verb. */
function fillPath(url: string): string {
  return url.replace(/:([A-Za-z]+)/g, (_m, name: string) => {
    const v = pick(PARAM_VALUES);
    return name === 'target' && rand() < 0.5 ? `${v}:predict` : v;
  });
}

function query(): string {
  if (rand() < 0.4) return '';
  const parts: string[] = [];
  for (let i = int(1, 5); i > 0; i--) {
    const n = pick(QUERY_NAMES);
    parts.push(`${n}=${pick(QUERY_VALUES)}`);
    if (rand() < 0.3) parts.push(`${n}=${pick(QUERY_VALUES)}`);
  }
  return `?${parts.join('&')}`;
}

function headers(withBody: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (withBody) {
    const t = pick(TYPES);
    if (t) h['content-type'] = t;
  }
  if (rand() < 0.15) h['x-warden-metadata'] = pick(['{', '[]', 'null', '{"params":{"a":{}}}', '{"metrics":{"r2":"x"}}', deep(500, '1')]);
  if (rand() < 0.15) h['x-warden-features'] = pick(['{', '[]', '[{"name":1}]', '[{"name":"a","datatype":"X"}]', deep(500, '1')]);
  if (rand() < 0.1) h['x-warden-monitoring'] = pick(['{', '{"windowMs":-1}', '{"columns":{"a":{"test":"nope"}}}', deep(500, '{}')]);
  if (rand() < 0.1) h['x-request-id'] = pick(['', 'x'.repeat(500), 'a\tb', 'äöü']);
  if (rand() < 0.1) h.traceparent = pick(['00-xyz', '00-00000000000000000000000000000000-0000000000000000-01', 'ff-'.repeat(20)]);
  if (rand() < 0.1) h.authorization = pick(['Bearer ', 'Bearer wdn_x_y', 'Basic abc', 'Bearer '.repeat(50)]);
  if (rand() < 0.05) h['x-warden-filename'] = pick(['../../etc/passwd', 'x'.repeat(300)]);
  return h;
}

describe('route-table fuzz', () => {
  let srv: TestServer;
  let routes: { method: string; url: string }[];
  const probeBody = { inputs: [{ name: 'input', shape: [probe.input.length, 12], datatype: 'FP32', data: probe.input.flat() }] };

  beforeAll(async () => {
    srv = await startTestServer({ server: { bodyLimitBytes: 256 * 1024, referenceLimitBytes: 1024 * 1024, uploadLimitBytes: 1024 * 1024 } });
    await srv.warden.registry.push({ model: 'probe', bytes: logreg, aliases: ['champion'] });
    await srv.warden.registry.push({ model: 'm', bytes: logreg, aliases: ['champion'] });
    await srv.warden.table.settled();
    routes = srv.warden.http.routeTable;
  });
  afterAll(() => srv.close());

  it('the route table lists every API the docs describe', () => {
    const urls = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const r of ['POST /v2/models/:name/infer', 'POST /api/v1/labels', 'PUT /api/v1/models/:name/versions/:version/reference', 'POST /api/v1/alerts/silences', 'PUT /api/v1/slos/:name']) {
      expect(urls.has(r), r).toBe(true);
    }
    expect(routes.length).toBeGreaterThan(40);
  });

  it(`${REQUESTS} seeded malformed requests over every route: no 5xx, no hang, one error shape; predictions unchanged`, async () => {
    const before = await srv.json('POST', '/v2/models/probe/infer', probeBody);
    expect(before.status).toBe(200);

    const failures: string[] = [];
    const perRoute = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < REQUESTS) {
        const i = next++;
        const route = routes[i % routes.length]!;
        // fetch sends no body with GET; a DELETE sometimes carries one.
        const withBody = route.method === 'GET' ? false : route.method === 'DELETE' ? rand() < 0.2 : rand() < 0.95;
        const url = `${srv.url}${fillPath(route.url)}${query()}`;
        const h = headers(withBody);
        const payload = withBody ? body() : undefined;
        const label = `#${i} ${route.method} ${url.slice(srv.url.length, srv.url.length + 120)} [${h['content-type'] ?? '-'}]`;
        try {
          const res = await fetch(url, { method: route.method, headers: h, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(TIMEOUT_MS) });
          const text = await res.text();
          perRoute.set(`${route.method} ${route.url}`, (perRoute.get(`${route.method} ${route.url}`) ?? 0) + 1);
          if (res.status >= 500) failures.push(`${label} → ${res.status} ${text.slice(0, 200)}`);
          else if (res.status >= 400) {
            const b = JSON.parse(text) as { error?: unknown; code?: unknown };
            if (typeof b.error !== 'string' || typeof b.code !== 'string' || !b.code.startsWith('WARDEN_')) failures.push(`${label} → ${res.status} not in the error shape: ${text.slice(0, 200)}`);
          }
        } catch (e) {
          failures.push(`${label} → ${(e as Error).name}: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures.slice(0, 30)).toEqual([]);
    // Every route was hit many times.
    for (const r of routes) expect(perRoute.get(`${r.method} ${r.url}`) ?? 0, `${r.method} ${r.url}`).toBeGreaterThan(REQUESTS / routes.length / 2);

    expect((await srv.json('GET', '/v2/health/live')).status).toBe(200);
    const after = await srv.json('POST', '/v2/models/probe/infer', probeBody);
    expect(after.status).toBe(200);
    expect(after.body.outputs).toEqual(before.body.outputs);
  }, 240_000);
});
