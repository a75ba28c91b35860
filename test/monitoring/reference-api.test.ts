/**
 * The monitoring reference API against a real server with the seeded demo models: one reference per
 * model version, profiled once from CSV, JSON rows, JSON columns, Parquet or a range of logged traffic,
 * stored as a bounded profile (never the rows), plus its validation, the windows endpoint, auth and
 * count windows. Data: the UCI bike-sharing rows of 2011 (Fanaee-T & Gama 2013) shipped in data/.
 */
import Database from 'better-sqlite3';
import { parquetWriteBuffer } from 'hyparquet-writer';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES, bikeRows } from '../../scripts/demo/monitoring-demo.ts';
import { seedDemo } from '../../src/lifecycle/index.ts';
import type { DatasetProfile, ProfileSchema } from '../../src/monitoring/index.ts';
import { createApiKey } from '../../src/security/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MODEL = 'bike-demand';
const REF = `/api/v1/models/${MODEL}/versions/champion/reference`;
const WINDOWS = `/api/v1/models/${MODEL}/versions/champion/monitoring/windows`;

type Values = Record<string, number | null>;

const year2011: Values[] = bikeRows(0).map((r) => r.values);
/** The first 2,000 hours of 2011: enough for bins and categories, quick to profile. */
const rows = year2011.slice(0, 2000);

function toCsv(data: Values[], columns: readonly string[] = FEATURES): string {
  return [columns.join(','), ...data.map((r) => columns.map((c) => r[c] ?? '').join(','))].join('\n');
}

function toColumns(data: Values[]): Record<string, (number | null)[]> {
  return Object.fromEntries(FEATURES.map((f) => [f, data.map((r) => r[f] ?? null)]));
}

/** The same rows as Parquet, with the types a data warehouse would write: INT32, INT64 (read back as BigInt) and DOUBLE. */
function toParquet(data: Values[]): Uint8Array<ArrayBuffer> {
  const floats = new Set(['temp', 'atemp', 'hum', 'windspeed']);
  const buf = parquetWriteBuffer({
    columnData: FEATURES.map((name) => {
      const values = data.map((r) => r[name] as number);
      if (floats.has(name)) return { name, data: values, type: 'DOUBLE' as const };
      if (name === 'hr') return { name, data: values.map((v) => BigInt(v)), type: 'INT64' as const };
      return { name, data: values, type: 'INT32' as const };
    }),
  });
  return new Uint8Array(buf);
}

interface StoredReference {
  schema: ProfileSchema;
  profile: DatasetProfile;
}

describe('monitoring reference API', () => {
  let srv: TestServer;

  const putFile = async (body: string | Uint8Array<ArrayBuffer>, type: string, config?: unknown, url = REF) => {
    const res = await fetch(`${srv.url}${url}`, {
      method: 'PUT',
      headers: { 'content-type': type, ...(config === undefined ? {} : { 'x-warden-monitoring': JSON.stringify(config) }) },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const stored = async (model = MODEL, version = 1) => (await srv.warden.stores.metadata.getReference(model, version)) as unknown as StoredReference;
  /** Hands every logged prediction to monitoring and the event store. */
  const flushLog = async () => {
    await srv.warden.log!.flush();
    await srv.warden.log!.flush();
  };

  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { tickMs: 100, idleCloseMs: 200 }, predictionLog: { flushIntervalMs: 50 } });
    await seedDemo(srv.warden.registry, srv.warden.logger);
  });
  afterAll(() => srv?.close());

  describe('registering from files and JSON', () => {
    const formats: Record<string, StoredReference> = {};

    beforeAll(async () => {
      const uploads: [string, () => Promise<{ status: number; body: any }>][] = [
        ['csv', () => putFile(toCsv(rows), 'text/csv')],
        ['json rows', () => srv.json('PUT', REF, { rows })],
        ['json columns', () => srv.json('PUT', REF, { columns: toColumns(rows) })],
        ['parquet', () => putFile(toParquet(rows), 'application/vnd.apache.parquet')],
      ];
      for (const [name, upload] of uploads) {
        const res = await upload();
        expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(201);
        expect(res.body.source.rows).toBe(rows.length);
        formats[name] = await stored();
      }
    });

    it('stores the identical schema and profile whichever format carries the same rows', () => {
      const csv = formats.csv!;
      expect(csv.profile.rows).toBe(rows.length);
      for (const name of ['json rows', 'json columns', 'parquet']) {
        expect(formats[name]!.schema, name).toEqual(csv.schema);
        expect(formats[name]!.profile, name).toEqual(csv.profile);
      }
    });

    it('runs the model for the prediction column the file lacks', async () => {
      const csv = formats.csv!;
      const variable = csv.schema.columns.find((c) => c.name === 'variable');
      expect(variable).toMatchObject({ role: 'prediction', kind: 'numeric' });
      expect(csv.schema.columns.filter((c) => c.role === 'feature').map((c) => c.name)).toEqual(FEATURES);
      const at = csv.schema.columns.indexOf(variable!);
      expect(csv.profile.columns[at]!.count).toBe(rows.length);
      expect(csv.profile.columns[at]!.missing).toBe(0);
      // A sampled row's prediction is what :predict answers for its features (categorical cells are kept as keys).
      const sampled = csv.profile.sample.slice(0, 3);
      const instances = sampled.map((cells) => Object.fromEntries(FEATURES.map((f, j) => [f, Number(cells[j])])));
      const res = await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      sampled.forEach((cells, i) => expect(Math.fround(Number(res.body.predictions[i]))).toBe(cells[at]));
    });

    it('keeps the prediction column as given when the file has it', async () => {
      const withPred = rows.map((r) => ({ ...r, variable: 42 }));
      const res = await putFile(toCsv(withPred, [...FEATURES, 'variable']), 'text/csv');
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.columns.at(-1)).toEqual({ name: 'variable', kind: 'categorical', role: 'prediction' });
      const ref = await stored();
      const at = ref.schema.columns.findIndex((c) => c.name === 'variable');
      expect(ref.schema.columns[at]!.categories).toEqual(['42']);
    });

    it('GET returns the schema and column profiles but no rows', async () => {
      const put = await putFile(toCsv(rows), 'text/csv', { sampleSize: 100 });
      expect(put.status).toBe(201);
      const res = await srv.json('GET', REF);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ model: MODEL, version: 1, source: { kind: 'file', name: 'upload.csv', rows: rows.length } });
      expect(res.body.source.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(res.body.source.layout, 'the internal column layout stays internal').toBeUndefined();
      expect(res.body.columns.map((c: { name: string }) => c.name)).toEqual([...FEATURES, 'variable']);
      expect(res.body.schema.columns).toHaveLength(FEATURES.length + 1);
      expect(res.body.schema.columns.find((c: { name: string }) => c.name === 'weathersit')).toMatchObject({ kind: 'categorical', categories: ['1', '2', '3', '4'] });
      expect(res.body.profile.rows).toBe(rows.length);
      expect(res.body.profile.columns).toHaveLength(FEATURES.length + 1);
      expect(res.body.profile.sample).toBeUndefined();
      expect(res.body.profile.samplePriorities).toBeUndefined();
    });

    it('stores a profile bounded by the sample size, not the rows: metadata.db holds no more for 17,000 rows than for 1,000', async () => {
      const db = new Database(path.join(srv.dataDir, 'metadata.db'), { readonly: true, fileMustExist: true });
      const bytes = () =>
        db.prepare('SELECT length(profile) AS profile, length(schema) AS schema FROM monitoring_references WHERE model = ? AND version = 1').get(MODEL) as {
          profile: number;
          schema: number;
        };
      try {
        const all = [...year2011, ...bikeRows(1).map((r) => r.values)];
        const sizes: Record<number, { profile: number; schema: number }> = {};
        for (const n of [1000, all.length]) {
          const csv = toCsv(all.slice(0, n));
          expect((await putFile(csv, 'text/csv', { sampleSize: 200 })).status).toBe(201);
          sizes[n] = bytes();
          const ref = await stored();
          expect(ref.profile.rows).toBe(n);
          expect(ref.profile.sample.length).toBeLessThanOrEqual(200);
          expect(ref.profile.samplePriorities.length).toBe(ref.profile.sample.length);
          if (n === all.length) expect(sizes[n]!.profile + sizes[n]!.schema).toBeLessThan(csv.length / 10);
        }
        const small = sizes[1000]!;
        const large = sizes[all.length]!;
        // 17× the rows: only count digits and a few categories grow.
        expect(large.profile / small.profile).toBeLessThan(1.5);
        expect(large.profile / small.profile).toBeGreaterThan(0.67);
      } finally {
        db.close();
      }
    });
  });

  describe('registering from logged traffic', () => {
    const since = Date.UTC(2020, 0, 1);

    it('profiles the served predictions of a time range like the same rows uploaded', async () => {
      const part = rows.slice(0, 600);
      for (let i = 0; i < part.length; i += 200) {
        const res = await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances: part.slice(i, i + 200), parameters: { event_time: since + i } });
        expect(res.status).toBe(200);
      }
      // A refused request in the range (no features at all) must not reach the reference.
      expect((await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances: [{ temp: 'warm' }], parameters: { event_time: since + 1 } })).status).toBe(400);
      await flushLog();
      const res = await srv.json('PUT', REF, { traffic: { since: new Date(since).toISOString(), until: since + 10_000 } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.source).toEqual({ kind: 'traffic', since, until: since + 10_000, rows: part.length });
      expect(res.body.columns.map((c: { name: string }) => c.name)).toEqual([...FEATURES, 'variable']);
      expect(res.body.columns.at(-1)).toMatchObject({ role: 'prediction' });
      const traffic = await stored();

      expect((await srv.json('PUT', REF, { rows: part })).status).toBe(201);
      const file = await stored();
      // Traffic is profiled from the FP32 tensors the model saw; the file at the tensor's precision.
      // Features match exactly; the prediction column only as closely as two ONNX runs of different batch sizes.
      expect(traffic.schema.columns.slice(0, FEATURES.length)).toEqual(file.schema.columns.slice(0, FEATURES.length));
      expect(traffic.profile.columns.slice(0, FEATURES.length)).toEqual(file.profile.columns.slice(0, FEATURES.length));
      const v = FEATURES.length;
      expect(traffic.profile.columns[v]!.count).toBe(part.length);
      expect(traffic.profile.columns[v]!.min).toBeCloseTo(file.profile.columns[v]!.min!, 3);
      expect(traffic.profile.columns[v]!.max).toBeCloseTo(file.profile.columns[v]!.max!, 3);
    });

    it('refuses a range without traffic and a malformed range', async () => {
      const empty = await srv.json('PUT', REF, { traffic: { since: since - 10_000, until: since - 1 } });
      expect(empty.status).toBe(400);
      expect(empty.body.error).toMatch(/0 rows; it needs at least 2/);
      const bad = await srv.json('PUT', REF, { traffic: { since: 'last tuesday', until: since } });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/traffic\.since must be epoch milliseconds or an ISO-8601 time/);
    });
  });

  describe('validation', () => {
    const bad = (body: { status: number; body: any }, status: number, message: RegExp) => {
      expect(body.status, JSON.stringify(body.body)).toBe(status);
      expect(body.body.error).toMatch(message);
      expect(body.body.code).toMatch(/^WARDEN_/);
    };

    it('refuses a config naming an unknown column, key or drift test', async () => {
      bad(await srv.json('PUT', REF, { rows, config: { columns: ['temp', 'tempreature'] } }), 400, /column\(s\) tempreature, which model bike-demand v1 does not have/);
      bad(await srv.json('PUT', REF, { rows, config: { drift: { columns: { tempreature: { test: 'ks' } } } } }), 400, /drift config names column "tempreature"/);
      bad(await srv.json('PUT', REF, { rows, config: { categorical: ['colour'] } }), 400, /column "colour" is not in the reference data/);
      bad(await srv.json('PUT', REF, { rows, config: { windw: { kind: 'time', sizeMs: 60_000 } } }), 400, /unknown key windw/);
      bad(await srv.json('PUT', REF, { rows, config: { drift: { columns: { temp: { test: 'kolmogorov' } } } } }), 400, /drift\.columns\.temp\.test.*'wasserstein'.*received 'kolmogorov'/);
      bad(await srv.json('PUT', REF, { rows, config: { drift: { columns: { weathersit: { test: 'ks' } } } } }), 400, /test ks needs a numeric column; weathersit is categorical/);
      bad(await putFile(toCsv(rows), 'text/csv', { drift: { columns: { temp: { test: 'kolmogorov' } } } }), 400, /received 'kolmogorov'/);
    });

    it('refuses a bad window', async () => {
      bad(await srv.json('PUT', REF, { rows, config: { window: { kind: 'time', sizeMs: 5 } } }), 400, /window\.sizeMs: Number must be greater than or equal to 1000/);
      bad(await srv.json('PUT', REF, { rows, config: { window: { kind: 'count', size: 1 } } }), 400, /window\.size/);
      bad(await srv.json('PUT', REF, { rows, config: { window: { kind: 'session' } } }), 400, /monitoring config is invalid: window/);
    });

    it('refuses a reference without a feature column the model needs', async () => {
      const noHum = rows.map(({ hum: _hum, ...r }) => r);
      bad(await srv.json('PUT', REF, { rows: noHum }), 400, /the reference lacks feature column\(s\) hum; it has season, mnth/);
      bad(await putFile('temp,hum\n0.1,0.2\n0.3,0.4\n', 'text/csv'), 400, /lacks feature column\(s\) season, mnth, hr/);
    });

    it('refuses a string in a column that feeds or holds an FP32 tensor, naming the row and column', async () => {
      // Before the check, "warm" made temp a categorical column: drift on category counts, no range check.
      const csv = toCsv(rows).split('\n');
      const temp = FEATURES.indexOf('temp');
      csv[3] = csv[3]!.split(',').map((v, j) => (j === temp ? 'warm' : v)).join(',');
      bad(
        await putFile(csv.join('\n'), 'text/csv'),
        400,
        /^reference data row 3, column "temp": "warm" is not a number, but the column feeds the model's FP32 input "input"; send numbers, or leave a cell empty for a missing value$/,
      );
      const twice = rows.map((r, i) => (i === 9 || i === 20 ? { ...r, hum: 'n/a' } : r));
      bad(await srv.json('PUT', REF, { rows: twice }), 400, /^reference data row 10, column "hum": "n\/a" is not a number, .* \(1 more such cell in the file\);/);
      const prediction = rows.map((r, i) => ({ ...r, variable: i === 0 ? true : 100 }));
      bad(await srv.json('PUT', REF, { rows: prediction }), 400, /^reference data row 1, column "variable": true is not a number, but the column holds the model's FP32 output "variable"/);
      // Empty cells are missing values, not type errors: the reference registers and counts them.
      const gaps = toCsv(rows.map((r, i) => (i < 5 ? { ...r, temp: null } : r)));
      expect((await putFile(gaps, 'text/csv')).status).toBe(201);
    });

    it('refuses unsupported content types and malformed bodies', async () => {
      bad(await putFile('<rows/>', 'application/xml'), 415, /content-type/);
      bad(await putFile('temp 0.1', 'text/plain'), 415, /send reference data as text\/csv, application\/vnd\.apache\.parquet or application\/json/);
      bad(await srv.json('PUT', REF, {}), 400, /body must be \{"rows": \[\.\.\.\]\}/);
      bad(await srv.json('PUT', REF, rows), 400, /body must be/);
      bad(await srv.json('PUT', REF, { rows: [1, 2, 3] }), 400, /JSON rows must be objects/);
      bad(await srv.json('PUT', REF, { columns: { temp: [1, 2], hum: [1] } }), 400, /same length/);
      bad(await putFile(new Uint8Array([1, 2, 3, 4]), 'application/vnd.apache.parquet'), 400, /Parquet could not be read/);
      const header = await fetch(`${srv.url}${REF}`, { method: 'PUT', headers: { 'content-type': 'text/csv', 'x-warden-monitoring': '{window:' }, body: toCsv(rows) });
      bad({ status: header.status, body: await header.json() }, 400, /header x-warden-monitoring is not valid JSON/);
      bad(await srv.json('PUT', REF, { rows, config: {} }, { 'x-warden-monitoring': '{}' }), 400, /given both in "config" and in header/);
    });

    it('takes the config header with a JSON body too, rather than ignoring it', async () => {
      const res = await srv.json('PUT', REF, { rows }, { 'x-warden-monitoring': JSON.stringify({ columns: ['temp', 'hum'] }) });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.columns.map((c: { name: string }) => c.name)).toEqual(['temp', 'hum']);
    });

    it('refuses an empty CSV and one with a header only', async () => {
      bad(await putFile('', 'text/csv'), 400, /CSV has no header row/);
      bad(await putFile(`${FEATURES.join(',')}\n`, 'text/csv'), 400, /the reference has 0 rows; it needs at least 2/);
      bad(await putFile('a,b\n1,2,3\n', 'text/csv'), 400, /CSV could not be parsed/);
    });

    it('answers 404 for an unknown model or version', async () => {
      bad(await srv.json('PUT', '/api/v1/models/no-such-model/versions/1/reference', { rows }), 404, /model "no-such-model" is not registered/);
      bad(await srv.json('PUT', `/api/v1/models/${MODEL}/versions/99/reference`, { rows }), 404, /model bike-demand has no version 99/);
      bad(await srv.json('PUT', `/api/v1/models/${MODEL}/versions/canary/reference`, { rows }), 404, /canary/);
      bad(await srv.json('GET', '/api/v1/models/no-such-model/versions/1/reference'), 404, /not registered/);
      bad(await srv.json('GET', '/api/v1/models/no-such-model/versions/1/monitoring/windows'), 404, /not registered/);
    });

    it('validates the windows query', async () => {
      bad(await srv.json('GET', `${WINDOWS}?since=yesterday`), 400, /since must be epoch milliseconds or an ISO-8601 time/);
      bad(await srv.json('GET', `${WINDOWS}?until=soon`), 400, /until must be epoch milliseconds or an ISO-8601 time/);
      for (const limit of ['0', '-1', '1.5', 'ten', '10001']) bad(await srv.json('GET', `${WINDOWS}?limit=${limit}`), 400, /limit must be an integer in \[1, 10000\]/);
      const ok = await srv.json('GET', `${WINDOWS}?since=2012-01-01T00:00:00Z&until=${Date.UTC(2013, 0, 1)}&limit=10000`);
      expect(ok.status).toBe(200);
      expect(Array.isArray(ok.body.windows)).toBe(true);
    });

    it('deletes a reference: GET then answers 404 with how to register one', async () => {
      expect((await srv.json('PUT', REF, { rows })).status).toBe(201);
      expect((await srv.json('DELETE', REF)).status).toBe(204);
      bad(await srv.json('GET', REF), 404, /has no monitoring reference; register one with PUT/);
      bad(await srv.json('DELETE', REF), 404, /has no monitoring reference/);
      expect(await srv.warden.stores.metadata.getReference(MODEL, 1)).toBeUndefined();
    });
  });

  describe('count windows', () => {
    const BUSY = 'bike-busy';

    it('closes a window every 100 rows: 250 rows and a flush give windows of 100, 100 and 50', async () => {
      const put = await srv.json('PUT', `/api/v1/models/${BUSY}/versions/champion/reference`, { rows, config: { window: { kind: 'count', size: 100 } } });
      expect(put.status, JSON.stringify(put.body)).toBe(201);
      // Every request carries the same event_time, as a replay of one batch would: the count windows
      // share their event-time range, and must still stay three windows.
      const eventTime = Date.UTC(2021, 5, 1);
      for (let i = 0; i < 250; i += 10) {
        const res = await srv.json('POST', `/v1/models/${BUSY}:predict`, { instances: rows.slice(i, i + 10), parameters: { event_time: eventTime } });
        expect(res.status).toBe(200);
      }
      await flushLog();
      expect((await srv.json('POST', '/api/v1/monitoring/flush', {})).body).toEqual({ flushed: true });
      const res = await srv.json('GET', `/api/v1/models/${BUSY}/versions/champion/monitoring/windows`);
      expect(res.status).toBe(200);
      const windows = res.body.windows as { windowStart: number; windowEnd: number; rows: number }[];
      expect(windows.map((w) => w.rows)).toEqual([100, 100, 50]);
      windows.forEach((w, i) => {
        expect(w.windowEnd).toBeGreaterThan(w.windowStart);
        if (i > 0) expect(w.windowStart).toBeGreaterThanOrEqual(windows[i - 1]!.windowEnd);
      });
    });
  });
});

describe('monitoring reference API with auth required', () => {
  let srv: TestServer;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    await seedDemo(srv.warden.registry, srv.warden.logger);
    for (const role of ['viewer', 'deployer'] as const) secrets[role] = (await createApiKey(srv.warden.stores.metadata, `test-${role}`, role)).secret;
    await srv.warden.keys.reload();
  });
  afterAll(() => srv?.close());

  const as = (role?: string): Record<string, string> => (role ? { authorization: `Bearer ${secrets[role]}` } : {});

  it('lets a deployer register a reference and a viewer read it, but not replace or delete it', async () => {
    expect((await srv.json('PUT', REF, { rows }, as())).status).toBe(401);
    const viewer = await srv.json('PUT', REF, { rows }, as('viewer'));
    expect(viewer.status).toBe(403);
    expect(viewer.body.code).toBe('WARDEN_FORBIDDEN');
    expect((await srv.json('PUT', REF, { rows }, as('deployer'))).status).toBe(201);
    expect((await srv.json('GET', REF, undefined, as('viewer'))).status).toBe(200);
    expect((await srv.json('GET', WINDOWS, undefined, as('viewer'))).status).toBe(200);
    expect((await srv.json('DELETE', REF, undefined, as('viewer'))).status).toBe(403);
    expect((await srv.json('POST', '/api/v1/monitoring/flush', {}, as('viewer'))).status).toBe(403);
    expect((await srv.json('GET', REF, undefined, as())).status).toBe(401);
  });
});
