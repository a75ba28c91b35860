/**
 * The point-in-time join against an independent brute-force join, on data built to leak (pit-data.ts): values that
 * change over time, late backfills, rows at the TTL bound, equal event times with different created times, exact
 * duplicates, a composite key, a view without entities, entity rows without a key. Run in process with tiny sort
 * buffers and buckets (so every path spills to disk and merges runs), and through the worker thread.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFeatureRepo, planHistorical, runJoin, startHistorical, type FeatureRepo } from '../../src/features/index.ts';
import { bruteForce, H, leakyWorld, T0, writeEntitiesCsv, writeSourceCsv, type EntityRow, type TestView } from './pit-data.ts';

let dir: string;
let repo: FeatureRepo;
let views: TestView[];
let entities: EntityRow[];
const features = ['hourly', 'daily:temp', 'trips', 'weather:rain'];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-pit-'));
  ({ views, entities } = leakyWorld(7, 3000));
  for (const v of views) writeSourceCsv(path.join(dir, `${v.name}.csv`), v);
  writeEntitiesCsv(path.join(dir, 'entities.csv'), entities);
  repo = parseFeatureRepo(
    {
      entities: [
        { name: 'station', joinKeys: ['station_id'] },
        { name: 'rider', joinKeys: ['rider_id'] },
      ],
      featureViews: views.map((v) => ({
        name: v.name,
        entities: v.joinKeys.map((k) => (k === 'station_id' ? 'station' : 'rider')),
        source: { kind: 'file', path: `${v.name}.csv` },
        timestampField: 'event_ts',
        ...(v.created ? { createdTimestampField: 'created_ts' } : {}),
        ttlMs: v.ttlMs,
        schema: v.features,
      })),
    },
    { baseDir: dir },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What the brute force says each output cell must be, as the CSV writes it. */
function expected(e: EntityRow): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of views) {
    const r = bruteForce(v, e.keys, e.t);
    for (const f of v.features) {
      if (v.name === 'daily' && f.name !== 'temp') continue;
      const val = r?.values[f.name];
      out[f.name] = val === null || val === undefined ? '' : String(val);
    }
  }
  return out;
}

function check(csv: string): void {
  const rows = parseCsv(csv, { columns: true }) as Record<string, string>[];
  expect(rows).toHaveLength(entities.length);
  const wrong: string[] = [];
  rows.forEach((row, i) => {
    const e = entities[i]!;
    // Passed through in order, as sent.
    expect(row.label).toBe(e.label);
    expect(row.station_id).toBe(e.keys.station_id);
    for (const [col, want] of Object.entries(expected(e))) {
      if (row[col] !== want) wrong.push(`row ${i} (${e.keys.station_id}/${e.keys.rider_id} at ${(e.t - T0) / H}h) ${col}: got ${JSON.stringify(row[col])}, want ${JSON.stringify(want)}`);
    }
  });
  expect(wrong.slice(0, 20)).toEqual([]);
}

describe('point-in-time join', () => {
  it('is built to leak: ignoring created time, the TTL bound or the tie rule would change many answers', () => {
    const hourly = views[0]!;
    let backfill = 0;
    let ttlEdge = 0;
    let tie = 0;
    for (const e of entities) {
      const right = bruteForce(hourly, e.keys, e.t);
      const noCreated = bruteForce({ ...hourly, rows: hourly.rows.map((r) => ({ ...r, created: r.event })) }, e.keys, e.t);
      if (right?.values.origin !== noCreated?.values.origin) backfill++;
      const inclusiveTtl = bruteForce({ ...hourly, ttlMs: hourly.ttlMs + 1 }, e.keys, e.t);
      if (right?.values.origin !== inclusiveTtl?.values.origin) ttlEdge++;
      const ties = hourly.rows.filter((r) => r.keys[0] === e.keys.station_id && r.event === right?.event && r.created <= e.t);
      if (ties.length > 1) tie++;
    }
    expect(backfill).toBeGreaterThan(50);
    expect(ttlEdge).toBeGreaterThan(50);
    expect(tie).toBeGreaterThan(20);
  });

  it('equals the brute-force join, spilling sorts to disk and writing many buckets', async () => {
    const { views: jv, featureColumns } = planHistorical(repo, features);
    let csv = '';
    let ready: { rows: number; columns: string[] } | undefined;
    const stats = await runJoin(
      {
        tmpDir: path.join(dir, 'run1'),
        views: jv,
        featureColumns,
        entities: { kind: 'csv', path: path.join(dir, 'entities.csv'), timestampColumn: 'ts' },
        output: 'csv',
        sort: { maxRecords: 97, maxChars: 1_000_000 },
        bucketRows: 128,
      },
      {
        ready: (r) => (ready = r),
        emit: (t) => (csv += t),
      },
    );
    expect(ready).toEqual({ rows: 3000, columns: ['station_id', 'rider_id', 'ts', 'label', 'cnt', 'origin', 'busy', 'temp', 'trips', 'trip_tag', 'rain'] });
    expect(stats.runs).toBeGreaterThan(30);
    expect(stats.buckets).toBe(Math.ceil(3000 / 128));
    check(csv);
  });

  it('equals the brute-force join through the worker thread, in memory', async () => {
    const run = await startHistorical({ repo, features, entities: { kind: 'csv', path: path.join(dir, 'entities.csv'), timestampColumn: 'ts' }, output: 'csv', tmpDir: dir });
    let csv = '';
    for await (const chunk of run.chunks()) csv += chunk;
    check(csv);
    const stats = await run.stats();
    expect(stats.runs).toBe(0);
    expect(stats.sourceRows.hourly).toBe(views[0]!.rows.length);
  });

  it('passes a JSON payload through and returns typed values (rows output)', async () => {
    const file = path.join(dir, 'entities.jsonl');
    writeFileSync(file, entities.map((e, i) => JSON.stringify([e.t, e.keys, { i, label: e.label }])).join('\n'));
    const run = await startHistorical({ repo, features: ['hourly:busy', 'hourly:cnt', 'weather'], entities: { kind: 'jsonl', path: file }, output: 'rows', tmpDir: dir, bucketRows: 500 });
    expect(run.featureColumns).toEqual(['busy', 'cnt', 'rain']);
    const got: [{ i: number }, unknown[]][] = [];
    for await (const chunk of run.chunks()) got.push(...(JSON.parse(chunk) as [{ i: number }, unknown[]][]));
    expect(got).toHaveLength(entities.length);
    got.forEach(([payload, values], i) => {
      expect(payload.i).toBe(i);
      const e = entities[i]!;
      const h = bruteForce(views[0]!, e.keys, e.t);
      const w = bruteForce(views[3]!, e.keys, e.t);
      expect(values).toEqual([h?.values.busy ?? null, h?.values.cnt ?? null, w?.values.rain ?? null]);
    });
  });

  it('refuses entity rows without the time or a join key, and a bad time, naming them', async () => {
    const run = (text: string, ts = 'ts') => {
      writeFileSync(path.join(dir, 'bad.csv'), text);
      return startHistorical({ repo, features: ['trips'], entities: { kind: 'csv', path: path.join(dir, 'bad.csv'), timestampColumn: ts }, output: 'csv', tmpDir: dir });
    };
    await expect(run('station_id,rider_id,when\ns1,r1,2024-01-01\n')).rejects.toThrow(/timestampColumn: the entity rows have no column "ts"/);
    await expect(run('station_id,ts\ns1,2024-01-01\n')).rejects.toThrow(/no column "rider_id", the join key of view trips/);
    await expect(run('station_id,rider_id,ts\ns1,r1,2024-01-01\ns2,r1,yesterday\n')).rejects.toThrow(/entity row 2 \(line 3\): ts "yesterday" is not a time/);
    await expect(run('station_id,rider_id,ts,trips\ns1,r1,2024-01-01,3\n')).rejects.toThrow(/feature column "trips" has the name of a column of the entity rows/);
  });

  it('refuses two features that would share a column unless full names are asked for', () => {
    const twin = parseFeatureRepo({
      entities: [{ name: 'station', joinKeys: ['station_id'] }],
      featureViews: ['a', 'b'].map((name) => ({ name, entities: ['station'], source: { kind: 'push' }, timestampField: 'ts', ttl: '1d', schema: [{ name: 'cnt', dtype: 'int' }] })),
    });
    expect(() => planHistorical(twin, ['a', 'b'])).toThrow(/b:cnt and a:cnt would both be column "cnt"/);
    expect(planHistorical(twin, ['a', 'b'], true).featureColumns).toEqual(['a__cnt', 'b__cnt']);
  });

  it('stops the worker when the reader stops early, and removes its files', async () => {
    const many = path.join(dir, 'many.csv');
    writeEntitiesCsv(many, Array.from({ length: 20 }, () => entities).flat());
    const sub = path.join(dir, 'early');
    const run = await startHistorical({ repo, features, entities: { kind: 'csv', path: many, timestampColumn: 'ts' }, output: 'csv', tmpDir: sub });
    for await (const chunk of run.chunks()) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    await expect(run.stats()).rejects.toThrow(/canceled/);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(sub)).toEqual([]);
  });
});
