/**
 * The feature repository over real HTTP: definitions seeded from features.file at start (a file-sourced view on the
 * bike-sharing day.csv and a push-fed view), read and replaced by the API with 400s naming the field, rows pushed with
 * 400s naming the row and field, and point-in-time retrieval streamed as CSV over both kinds of view, the created-time
 * rule included. On SQLite and, when a server is available, on PostgreSQL, where a second replica follows a PUT
 * through the change feed.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const backends: { name: string; url?: () => Promise<{ url: string; drop(): Promise<void> }> }[] = [{ name: 'SQLite' }];
if (pgTestUrl()) backends.push({ name: 'PostgreSQL', url: () => freshPgSchema() });

const DAY = 86_400_000;

describe.each(backends)('feature API on $name', (backend) => {
  let srv: TestServer;
  let dir: string;
  let file: string;
  let url: string | undefined;
  let drop: (() => Promise<void>) | undefined;

  const csvPost = async (query: string, body: string, contentType = 'text/csv') => {
    const res = await fetch(`${srv.url}/api/v1/features/historical?${query}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-features-api-'));
    copyFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'day.csv'), path.join(dir, 'day.csv'));
    file = path.join(dir, 'features.yaml');
    writeFileSync(
      file,
      `entities:
  - {name: station, joinKeys: [station_id], description: a docking station}
featureViews:
  - name: daily
    entities: []
    source: {kind: file, path: day.csv}
    timestampField: dteday
    ttl: 2d
    schema: [{name: cnt, dtype: int}, {name: temp, dtype: float}]
    owner: ml-team
    tags: {source: uci}
  - name: trips
    entities: [station]
    source: {kind: push}
    timestampField: ts
    createdTimestampField: created
    ttl: 1d
    schema: [{name: n_trips, dtype: int}, {name: zone, dtype: string}]
`,
    );
    const schema = backend.url ? await backend.url() : undefined;
    drop = schema?.drop;
    url = schema?.url;
    srv = await startTestServer({ features: { file }, ...(url ? { storage: { url } } : {}) });
  });
  afterAll(async () => {
    await srv?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the definitions seeded from features.file', async () => {
    const res = await srv.json('GET', '/api/v1/features');
    expect(res.status).toBe(200);
    expect(res.body.updatedBy).toBe(`file:${file}`);
    expect(res.body.entities).toEqual([{ name: 'station', joinKeys: ['station_id'], description: 'a docking station' }]);
    expect(res.body.featureViews[0]).toMatchObject({ name: 'daily', ttl: '2d', ttlMs: 2 * DAY, source: { kind: 'file', path: path.join(dir, 'day.csv'), format: 'csv' }, owner: 'ml-team', tags: { source: 'uci' } });
    expect(res.body.featureViews[1]).toMatchObject({ name: 'trips', source: { kind: 'push' }, createdTimestampField: 'created' });
  });

  it('refuses bad definitions with 400 naming the field, and keeps the old ones', async () => {
    const current = (await srv.json('GET', '/api/v1/features')).body;
    const bad = async (body: unknown, msg: RegExp) => {
      const res = await srv.json('PUT', '/api/v1/features', body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatch(msg);
    };
    const views = current.featureViews as Record<string, unknown>[];
    await bad({ ...current, featureViews: [{ ...views[1], entities: ['stations'] }] }, /^featureViews\[0\]\.entities\[0\]: unknown entity "stations"/);
    await bad({ ...current, featureViews: [{ ...views[0], source: { kind: 'file', path: 'day.csv' } }] }, /^featureViews\[0\]\.source\.path: "day.csv" is relative/);
    await bad({ ...current, featureViews: [{ ...views[0], ttl: undefined, ttlMs: undefined, schema: [{ name: 'rentals', dtype: 'int' }] }] }, /^featureViews\[0\]\.ttl: is missing/);
    await bad({ ...current, featureViews: [{ ...views[0], schema: [{ name: 'rentals', dtype: 'int' }] }] }, /^featureViews\[0\]\.schema\[0\]: column "rentals" \(feature \(int\) of view daily\) is not in .*day\.csv/);
    await bad({ ...current, featureViews: [{ ...views[0], schema: [{ name: 'hum', dtype: 'bool' }] }] }, /^featureViews\[0\]\.schema\[0\]: column "hum" of .*day\.csv, line 2: "0\.805833" is not a boolean/);
    expect((await srv.json('GET', '/api/v1/features')).body).toEqual(current);
  });

  it('replaces the definitions with PUT; GET gives them back as stored', async () => {
    const current = (await srv.json('GET', '/api/v1/features')).body;
    const next = { entities: current.entities, featureViews: current.featureViews.map((v: Record<string, unknown>) => (v.name === 'daily' ? { ...v, ttl: '36h', ttlMs: undefined, description: 'daily totals' } : v)) };
    const res = await srv.json('PUT', '/api/v1/features', next);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.featureViews[0]).toMatchObject({ ttl: '1d12h', ttlMs: 36 * 3_600_000, description: 'daily totals' });
    expect(res.body.updatedBy).toBe('anonymous (auth off)');
    // Back as it was, by its own GET form (ttl and ttlMs agree).
    const back = await srv.json('PUT', '/api/v1/features', { ...current, featureViews: current.featureViews, updatedAt: undefined, updatedBy: undefined });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.featureViews).toEqual(current.featureViews);
  });

  it('takes pushed rows, refusing with 400 naming the row and field', async () => {
    const push = (view: string, body: unknown) => srv.json('POST', `/api/v1/features/${view}/push`, body);
    const bad = async (rows: unknown, msg: RegExp, status = 400, view = 'trips') => {
      const res = await push(view, { rows });
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body.error).toMatch(msg);
    };
    await bad([{ station_id: 's1', ts: '2011-01-01', n_trips: 'many' }], /^rows\[0\]\.n_trips: "many" is not an integer/);
    await bad([{ station_id: 's1', ts: '2011-01-01' }, { ts: '2011-01-01' }], /^rows\[1\]\.station_id: the join key is missing/);
    await bad([{ station_id: 's1', ts: 'noon' }], /^rows\[0\]\.ts: the event time is "noon", not a time/);
    await bad([{ station_id: 's1', ts: 1, tripz: 3 }], /^rows\[0\]\.tripz: view trips has no such field/);
    await bad([{ station_id: 's1', ts: 1, created: 'later' }], /^rows\[0\]\.created: "later" is not a time/);
    await bad(Array.from({ length: 5001 }, () => ({ station_id: 's1', ts: 1 })), /5001 rows in one push, at most 5,000/);
    await bad([{ station_id: 's1', ts: 1 }], /no feature view "nope"/, 404, 'nope');
    await bad([{ station_id: 's1', ts: 1 }], /view daily reads the file .*day\.csv; rows are pushed only to views with source \{kind: push\}/, 409, 'daily');
    expect((await push('trips', { row: [] })).status).toBe(400);

    const t = Date.UTC(2011, 0, 2);
    const rows = [
      { station_id: 's1', ts: t, created: t, n_trips: 5, zone: 'north' },
      { station_id: 's1', ts: t + 6 * 3_600_000, created: t + 6 * 3_600_000, n_trips: '7', zone: 'north, "upper"' },
      // A late backfill: event at 03:00, written at 20:00.
      { station_id: 's1', ts: new Date(t + 3 * 3_600_000).toISOString(), created: t + 20 * 3_600_000, n_trips: 99, zone: 'late' },
      { station_id: 's2', ts: t, created: t, n_trips: 1 },
      // No created time: created now, so invisible to every entity time before now.
      { station_id: 's3', ts: t, n_trips: 3 },
    ];
    const res = await push('trips', { rows });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ view: 'trips', rows: 5 });
  });

  it('streams a point-in-time join over a file view and a push view', async () => {
    const t = Date.UTC(2011, 0, 2);
    const entities = [
      'station_id,event_timestamp,label',
      `s1,${new Date(t + 1 * 3_600_000).toISOString()},a`, // 01:00: the 00:00 row; the 03:00 backfill is not written yet
      `s1,${new Date(t + 7 * 3_600_000).toISOString()},b`, // 07:00: the 06:00 row
      `s1,${new Date(t + 21 * 3_600_000).toISOString()},c`, // 21:00: still the 06:00 row (the backfill is older by event time)
      `s1,${new Date(t + 40 * 3_600_000).toISOString()},d`, // past the 1d TTL of the 06:00 row: empty
      `s2,${t},e`, // exactly at the event time
      `s3,${t + 3_600_000},f`, // pushed without created time: created now, invisible then
      `,${t},g`, // no key: empty trips, daily still joined
      `s9,2012-12-31T12:00:00Z,h`,
    ].join('\n');
    const res = await csvPost('features=trips,daily:cnt', entities);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(res.headers.get('x-warden-rows')).toBe('8');
    const rows = parseCsv(res.text, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual(['station_id', 'event_timestamp', 'label', 'n_trips', 'zone', 'cnt']);
    expect(rows.map((r) => [r.label, r.n_trips, r.zone, r.cnt])).toEqual([
      // day.csv: 2011-01-02 cnt 801 (event time midnight, within the 2d TTL); 2011-01-03 cnt 1349.
      ['a', '5', 'north', '801'],
      ['b', '7', 'north, "upper"', '801'],
      ['c', '7', 'north, "upper"', '801'],
      ['d', '', '', '1349'],
      ['e', '1', '', '801'],
      ['f', '', '', '801'],
      ['g', '', '', '801'],
      ['h', '', '', '2729'],
    ]);
    const full = await csvPost('features=daily&fullNames=true&timestampColumn=event_timestamp', entities);
    expect(full.text.split('\n')[0]).toBe('station_id,event_timestamp,label,daily__cnt,daily__temp');
  });

  it('refuses a bad retrieval with 400 naming the row or column, before any output', async () => {
    const bad = async (query: string, body: string, msg: RegExp, status = 400) => {
      const res = await csvPost(query, body);
      expect(res.status, res.text).toBe(status);
      expect(JSON.parse(res.text).error).toMatch(msg);
    };
    await bad('features=', 'station_id,event_timestamp\ns1,1\n', /features: name at least one/);
    await bad('features=trips:nope', 'station_id,event_timestamp\ns1,1\n', /view trips has no feature "nope"/);
    await bad('features=trips', 'station,event_timestamp\ns1,1\n', /no column "station_id", the join key of view trips/);
    await bad('features=trips', 'station_id,ts\ns1,1\n', /timestampColumn: the entity rows have no column "event_timestamp"/);
    await bad('features=trips', 'station_id,event_timestamp\ns1,1\ns1,monday\n', /entity row 2 \(line 3\): event_timestamp "monday" is not a time/);
    await bad('features=trips&fullNames=maybe', 'station_id,event_timestamp\ns1,1\n', /fullNames must be true or false/);
    const json = await fetch(`${srv.url}/api/v1/features/historical?features=trips`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(json.status).toBe(415);
  });

  it('runs at most 2 retrievals at once: a third gets 429 until one ends', async () => {
    const file = path.join(dir, 'few.csv');
    writeFileSync(file, 'station_id,event_timestamp\ns1,2011-01-02T05:00:00Z\n');
    const start = () => srv.warden.features.historical({ entities: { kind: 'csv', path: file, timestampColumn: 'event_timestamp' }, features: ['trips'] });
    const [a, b] = [await start(), await start()];
    const third = await csvPost('features=trips', 'station_id,event_timestamp\ns1,1\n');
    expect(third.status).toBe(429);
    expect(JSON.parse(third.text).error).toMatch(/2 historical retrievals are already running on this server/);
    a.cancel();
    await expect(a.stats()).rejects.toThrow(/canceled/);
    let text = '';
    for await (const chunk of b.chunks()) text += chunk;
    expect(text).toBe('station_id,event_timestamp,n_trips,zone\ns1,2011-01-02T05:00:00Z,5,north\n');
    expect((await csvPost('features=trips', 'station_id,event_timestamp\ns1,1\n')).status).toBe(200);
  });

  it('starts again from the same file without storing it again', async () => {
    const before = (await srv.json('GET', '/api/v1/features')).body;
    await srv.warden.features.start();
    expect((await srv.json('GET', '/api/v1/features')).body.updatedAt).toBe(before.updatedAt);
  });

  it.runIf(backend.name === 'SQLite')('with features.sourceDirs, takes file sources only from those folders (symbolic links followed)', async () => {
    const allowed = path.join(dir, 'allowed');
    mkdirSync(allowed);
    copyFileSync(path.join(dir, 'day.csv'), path.join(allowed, 'day.csv'));
    symlinkSync(path.join(dir, 'day.csv'), path.join(allowed, 'link.csv'));
    const confined = await startTestServer({ features: { sourceDirs: [allowed] } });
    try {
      const put = (p: string) =>
        confined.json('PUT', '/api/v1/features', { featureViews: [{ name: 'daily', entities: [], source: { kind: 'file', path: p }, timestampField: 'dteday', ttl: '2d', schema: [{ name: 'cnt', dtype: 'int' }] }] });
      for (const p of [path.join(dir, 'day.csv'), path.join(allowed, '..', 'day.csv'), path.join(allowed, 'link.csv')]) {
        const res = await put(p);
        expect(res.status, p).toBe(400);
        expect(res.body.error).toMatch(/^featureViews\[0\]\.source\.path: .* is outside features\.sourceDirs/);
      }
      expect((await put(path.join(allowed, 'day.csv'))).status).toBe(200);
    } finally {
      await confined.close();
    }
  });

  it.runIf(backend.name === 'PostgreSQL')('a second replica follows a PUT through the change feed', async () => {
    const other = await startTestServer({ storage: { url: url! }, cluster: { syncIntervalMs: 100 } });
    try {
      const current = (await srv.json('GET', '/api/v1/features')).body;
      expect((await other.json('GET', '/api/v1/features')).body.featureViews).toEqual(current.featureViews);
      const put = await srv.json('PUT', '/api/v1/features', { entities: current.entities, featureViews: current.featureViews.filter((v: { name: string }) => v.name === 'trips') });
      expect(put.status).toBe(200);
      const deadline = Date.now() + 10_000;
      for (;;) {
        const views = (await other.json('GET', '/api/v1/features')).body.featureViews as { name: string }[];
        if (views.length === 1) break;
        if (Date.now() > deadline) throw new Error('the second replica did not follow the PUT');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await other.close();
    }
  });
});
