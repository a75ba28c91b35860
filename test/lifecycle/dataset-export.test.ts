/**
 * Training sets from traffic: predictions served over real HTTP, labels sent to the API, then `POST /api/v1/datasets`
 * exports them as CSV and Parquet. Every exported cell is checked against what was sent (features at float32, as
 * served), what the model answered, and the label; the file's sha256 against the lineage record. Runs on SQLite and,
 * when a server is available, on PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetExport, seedDemo } from '../../src/lifecycle/index.ts';
import { mulberry32 } from '../../src/random.ts';
import { runWarden } from '../helpers/cli.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const MODEL = 'bike-demand';
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];
const REQUESTS = 30;
const ROWS = 200;
const SOURCES = ['human', 'system', 'model'] as const;

interface Sent {
  features: number[];
  prediction: number;
  label: number;
  source: (typeof SOURCES)[number];
  requestId: string;
  row: number;
  at: number;
}

const backends: { name: string; url?: () => Promise<{ url: string; drop(): Promise<void> }> }[] = [{ name: 'SQLite' }];
if (pgTestUrl()) backends.push({ name: 'PostgreSQL', url: () => freshPgSchema() });

describe.each(backends)('dataset export on $name', (backend) => {
  let srv: TestServer;
  let drop: (() => Promise<void>) | undefined;
  const sent = new Map<string, Sent>();

  beforeAll(async () => {
    const schema = backend.url ? await backend.url() : undefined;
    drop = schema?.drop;
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, ...(schema ? { storage: { url: schema.url } } : {}) });
    await seedDemo(srv.warden.registry, srv.warden.logger);
    await srv.warden.table.settled();
    const rand = mulberry32(7);
    for (let r = 0; r < REQUESTS; r++) {
      const rows = Array.from({ length: ROWS }, () => [
        1 + Math.floor(rand() * 4), 1 + Math.floor(rand() * 12), Math.floor(rand() * 24), rand() < 0.05 ? 1 : 0, Math.floor(rand() * 7),
        rand() < 0.7 ? 1 : 0, 1 + Math.floor(rand() * 3), rand(), rand(), rand(), rand() * 0.6,
      ]);
      const requestId = `ds-${r}`;
      const at = Date.now();
      const res = await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances: rows.map((v) => Object.fromEntries(FEATURES.map((f, j) => [f, v[j]]))) }, { 'x-request-id': requestId });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const predictions = (res.body as { predictions: number[] }).predictions;
      rows.forEach((features, row) => {
        // Every 10th row stays unlabelled; the rest are labelled by one of three sources in turn.
        const n = r * ROWS + row;
        if (n % 10 === 9) return;
        sent.set(`${requestId}/${row}`, { features, prediction: predictions[row]!, label: Math.round(predictions[row]! + (rand() - 0.5) * 40) || 0, source: SOURCES[n % 3]!, requestId, row, at });
      });
    }
    // The log writes on a timer: wait until every event is stored before labelling (a label may also wait for it).
    await srv.warden.log!.flush();
    const labels = [...sent.values()].map((s) => ({ requestId: s.requestId, row: s.row, value: s.label, source: s.source }));
    for (let i = 0; i < labels.length; i += 5000) {
      const res = await srv.json('POST', '/api/v1/labels', { labels: labels.slice(i, i + 5000) });
      expect(res.body).toMatchObject({ unmatched: 0, invalid: 0 });
    }
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    await drop?.();
  });

  const exportRaw = (body: unknown) => fetch(`${srv.url}/api/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  function checkRow(r: Record<string, unknown>, num: (v: unknown) => number): void {
    const s = sent.get(`${String(r.request_id)}/${num(r.row)}`);
    expect(s, `${String(r.request_id)}/${String(r.row)} was not labelled`).toBeDefined();
    FEATURES.forEach((f, j) => expect(num(r[f]), f).toBe(Math.fround(s!.features[j]!)));
    expect(num(r.label)).toBe(s!.label);
    expect(num(r['output.variable'])).toBe(s!.prediction);
    expect(r.label_source).toBe(s!.source);
    expect(num(r.version)).toBe(1);
  }

  it('exports every labelled row as CSV, cell for cell, and records its sha256 and row count', async () => {
    const res = await exportRaw({ model: MODEL, segments: ['season'] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const id = Number(res.headers.get('x-warden-dataset-id'));
    const bytes = Buffer.from(await res.arrayBuffer());
    const rows = parse(bytes, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual([...FEATURES, 'label', 'output.variable', 'request_id', 'row', 'key', 'version', 'prediction_time', 'label_time', 'label_source', 'late', 'segment']);
    expect(rows).toHaveLength(sent.size);
    for (const r of rows) checkRow(r, Number);
    const first = rows[0]!;
    expect(first.segment).toBe(`season=${first.season}`);
    expect(Math.abs(Date.parse(first.prediction_time!) - sent.get(`${first.request_id}/${first.row}`)!.at)).toBeLessThan(5_000);
    expect(new Set(rows.map((r) => `${r.request_id}/${r.row}`)).size).toBe(sent.size);

    const record = (await srv.json('GET', `/api/v1/datasets/${id}`)).body as Record<string, unknown>;
    expect(record).toMatchObject({
      id,
      state: 'complete',
      format: 'csv',
      rows: sent.size,
      bytes: bytes.byteLength,
      skipped: 0,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      filter: { model: MODEL, versions: [1] },
      actor: 'anonymous (auth off)',
    });
  });

  it('exports Parquet with the same rows, in row groups, and filters by label source and time', async () => {
    const res = await exportRaw({ model: MODEL, format: 'parquet', sources: ['system', 'human'] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const buf = await res.arrayBuffer();
    const rows = (await parquetReadObjects({ file: buf })) as Record<string, unknown>[];
    const expected = [...sent.values()].filter((s) => s.source !== 'model');
    expect(rows).toHaveLength(expected.length);
    for (const r of rows) checkRow(r, (v) => Number(v));
    const id = Number(res.headers.get('x-warden-dataset-id'));
    const record = (await srv.json('GET', `/api/v1/datasets/${id}`)).body as Record<string, unknown>;
    expect(record).toMatchObject({ state: 'complete', rows: expected.length, sha256: createHash('sha256').update(Buffer.from(buf)).digest('hex'), filter: { sources: ['human', 'system'] } });

    // Prediction time: the first ten requests only.
    const cut = sent.get('ds-10/0')!.at;
    const early = await exportRaw({ model: MODEL, until: new Date(cut).toISOString() });
    const earlyRows = parse(Buffer.from(await early.arrayBuffer()), { columns: true }) as Record<string, string>[];
    expect(earlyRows.length).toBeGreaterThan(0);
    expect(earlyRows.every((r) => Date.parse(r.prediction_time!) < cut)).toBe(true);
    expect(earlyRows.length).toBe([...sent.values()].filter((s) => Number(s.requestId.slice(3)) < 10).length);
  });

  it('refuses what it cannot export with the API error shape, recording nothing', async () => {
    const before = ((await srv.json('GET', '/api/v1/datasets?limit=1000')).body as { datasets: unknown[] }).datasets.length;
    const bad = async (body: unknown, status: number, code: string, msg: RegExp) => {
      const res = await srv.json('POST', '/api/v1/datasets', body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body).toMatchObject({ code });
      expect((res.body as { error: string }).error).toMatch(msg);
    };
    await bad({ model: 'ghost' }, 404, 'WARDEN_MODEL_NOT_FOUND', /ghost/);
    await bad({ model: MODEL, versions: [9] }, 404, 'WARDEN_VERSION_NOT_FOUND', /9/);
    await bad({ model: MODEL, format: 'xlsx' }, 400, 'WARDEN_BAD_REQUEST', /format/);
    await bad({ model: MODEL, colour: 1 }, 400, 'WARDEN_BAD_REQUEST', /colour/);
    await bad({ model: MODEL, since: 'yesterday' }, 400, 'WARDEN_BAD_REQUEST', /since.*ISO-8601/);
    // Date.parse takes "-5" as a year; the API does not.
    await bad({ model: MODEL, until: '-5' }, 400, 'WARDEN_BAD_REQUEST', /until.*ISO-8601/);
    await bad({ model: MODEL, since: 2000, until: 1000 }, 400, 'WARDEN_BAD_REQUEST', /before until/);
    await bad({ model: MODEL, segments: ['colour'] }, 400, 'WARDEN_BAD_REQUEST', /colour.*not a feature/);
    await bad({ model: MODEL, since: Date.now() + 3_600_000 }, 422, 'WARDEN_DATASET_EMPTY', /no labelled prediction of bike-demand v1 matches \(since/);
    // A second version with other features cannot share one file with the first.
    const push = await fetch(`${srv.url}/api/v1/models/${MODEL}/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx')) });
    expect(push.status, await push.text()).toBe(201);
    await bad({ model: MODEL, versions: [1, 2] }, 400, 'WARDEN_BAD_REQUEST', /v2 of bike-demand has other inputs or outputs than v1/);
    await bad({ model: MODEL, versions: [2] }, 422, 'WARDEN_DATASET_EMPTY', /v2/);
    expect(((await srv.json('GET', '/api/v1/datasets?limit=1000')).body as { datasets: unknown[] }).datasets).toHaveLength(before);
    expect((await srv.json('GET', '/api/v1/datasets/999999')).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/datasets/abc')).status).toBe(400);
  });

  it('records an export its reader stopped as failed, with how far it got, and never as complete', async () => {
    const { events, metadata } = srv.warden.stores;
    const exp = await DatasetExport.open({ events, metadata, registry: srv.warden.registry }, { model: MODEL, versions: [1], format: 'csv', actor: 'test' });
    const chunks = exp.chunks();
    const first = await chunks.next();
    expect(first.done).toBe(false);
    await chunks.return(undefined);
    const record = await metadata.getDataset(exp.record.id);
    expect(record).toMatchObject({ state: 'failed', actor: 'test' });
    expect(record!.sha256).toBeUndefined();
    expect(record!.error).toMatch(/stopped after \d+ bytes/);
  });

  it('warden dataset export writes the file whole, checks its sha256 against the record, and leaves nothing on failure', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-dataset-cli-'));
    try {
      const out = path.join(dir, 'train.csv');
      const env = { WARDEN_URL: srv.url };
      const ok = await runWarden(['dataset', 'export', MODEL, '--out', out, '--version', '1', '--source', 'human'], env);
      expect(ok.code, ok.stderr).toBe(0);
      const bytes = readFileSync(out);
      const humans = [...sent.values()].filter((s) => s.source === 'human').length;
      expect(ok.stdout).toContain(`${humans} rows of ${MODEL} v1 → ${out}`);
      expect(ok.stdout).toContain(`sha256 ${createHash('sha256').update(bytes).digest('hex')}`);
      expect((parse(bytes, { columns: true }) as unknown[]).length).toBe(humans);
      expect(existsSync(`${out}.partial`)).toBe(false);
      // The file trains as is with the built-in trainer, naming the features.
      const trained = await runWarden(['train', '--csv', out, '--target', 'label', '--model', 'linear', '--features', FEATURES.join(','), '--out', path.join(dir, 'm.onnx')], env);
      expect(trained.code, trained.stderr).toBe(0);
      expect(existsSync(path.join(dir, 'm.onnx'))).toBe(true);

      const empty = path.join(dir, 'empty.parquet');
      const none = await runWarden(['dataset', 'export', MODEL, '--out', empty, '--version', '1', '--since', new Date(Date.now() + 3_600_000).toISOString()], env);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/WARDEN_DATASET_EMPTY: no labelled prediction/);
      expect(existsSync(empty) || existsSync(`${empty}.partial`)).toBe(false);

      const listed = await runWarden(['dataset', 'list', '--model', MODEL], env);
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toMatch(/^ID\s+MODEL\s+VERSIONS\s+FORMAT\s+STATE/);
      expect(listed.stdout).toMatch(/complete/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('lists exports newest first, by model, in pages', async () => {
    const all = (await srv.json('GET', `/api/v1/datasets?model=${MODEL}&limit=2`)).body as { datasets: { id: number }[]; nextCursor: string | null };
    expect(all.datasets).toHaveLength(2);
    expect(all.datasets[0]!.id).toBeGreaterThan(all.datasets[1]!.id);
    const next = (await srv.json('GET', `/api/v1/datasets?model=${MODEL}&limit=2&before=${all.nextCursor}`)).body as { datasets: { id: number }[] };
    expect(next.datasets[0]!.id).toBeLessThan(all.datasets[1]!.id);
    expect(((await srv.json('GET', '/api/v1/datasets?model=ghost')).body as { datasets: unknown[] }).datasets).toEqual([]);
  });
});
