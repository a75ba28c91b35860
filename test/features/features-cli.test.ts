/**
 * `warden features` end to end against a real server: apply a definitions file (relative paths resolved here), list,
 * push a CSV in batches (a bad line named), and `historical` on the server, in this process with --definitions and
 * with --in-process (file views: pushed rows live in the server's store), writing the same values, equal to the
 * brute-force join of pit-data.ts.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWarden } from '../helpers/cli.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';
import { bruteForce, leakyWorld, writeEntitiesCsv, writeSourceCsv, type EntityRow, type TestView } from './pit-data.ts';

let srv: TestServer;
let dir: string;
let views: TestView[];
let entities: EntityRow[];
const cli = (...args: string[]) => runWarden(['--url', srv.url, ...args], {}, 60_000);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-features-cli-'));
  ({ views, entities } = leakyWorld(11, 1500));
  const hourly = views[0]!;
  writeSourceCsv(path.join(dir, 'hourly.csv'), hourly);
  copyFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'day.csv'), path.join(dir, 'day.csv'));
  // The trips view is pushed: its rows as a CSV to push.
  writeSourceCsv(path.join(dir, 'trips.csv'), views[2]!, false);
  writeEntitiesCsv(path.join(dir, 'entities.csv'), entities);
  writeFileSync(
    path.join(dir, 'features.yaml'),
    `entities:
  - {name: station, joinKeys: [station_id]}
  - {name: rider, joinKeys: [rider_id]}
featureViews:
  - {name: hourly, entities: [station], source: {kind: file, path: hourly.csv}, timestampField: event_ts, createdTimestampField: created_ts, ttl: 6h,
     schema: [{name: cnt, dtype: int}, {name: origin, dtype: string}, {name: busy, dtype: bool}], owner: ml-team}
  - {name: trips, entities: [station, rider], source: {kind: push}, timestampField: event_ts, createdTimestampField: created_ts, ttl: 3h,
     schema: [{name: trips, dtype: int}, {name: trip_tag, dtype: string}]}
  - {name: daily, entities: [], source: {kind: file, path: day.csv}, timestampField: dteday, ttl: 0, schema: [{name: cnt, dtype: int}]}
`,
  );
  srv = await startTestServer();
}, 60_000);
afterAll(async () => {
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('warden features', () => {
  it('apply resolves relative paths against the file and stores the definitions; list shows them', async () => {
    const applied = await cli('features', 'apply', path.join(dir, 'features.yaml'));
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/applied .*features\.yaml: 2 entities, 3 feature views \(6 features\)/);
    expect(srv.warden.features.repo().featureViews[0]!.source).toEqual({ kind: 'file', path: path.join(dir, 'hourly.csv'), format: 'csv' });
    const list = await cli('features', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('entity station: station_id');
    expect(list.stdout).toMatch(/hourly\s+station\s+csv .*hourly\.csv\s+6h\s+cnt:int origin:string busy:bool\s+ml-team/);
    expect(list.stdout).toMatch(/trips\s+station\+rider\s+push\s+3h/);
    const json = JSON.parse((await cli('--json', 'features', 'list')).stdout);
    expect(json.featureViews).toHaveLength(3);
  });

  it('apply refuses a bad file with exit 2 naming the field', async () => {
    writeFileSync(path.join(dir, 'bad.yaml'), 'featureViews:\n  - {name: x, entities: [nobody], source: {kind: push}, timestampField: ts, ttl: 1d, schema: [{name: a, dtype: int}]}\n');
    const r = await cli('features', 'apply', path.join(dir, 'bad.yaml'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/featureViews\[0\]\.entities\[0\]: unknown entity "nobody"/);
    writeFileSync(path.join(dir, 'badcol.yaml'), readFileSync(path.join(dir, 'features.yaml'), 'utf8').replace('{name: cnt, dtype: int}]}', '{name: rentals, dtype: int}]}'));
    const col = await cli('features', 'apply', path.join(dir, 'badcol.yaml'));
    expect(col.code).toBe(2);
    expect(col.stderr).toMatch(/featureViews\[2\]\.schema\[0\]: column "rentals" \(feature \(int\) of view daily\) is not in .*day\.csv/);
  });

  it('push sends a CSV in batches, and names the line of a refused row', async () => {
    const r = await cli('features', 'push', 'trips', path.join(dir, 'trips.csv'), '--batch', '70');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`pushed ${views[2]!.rows.length} rows to trips`);
    writeFileSync(path.join(dir, 'bad-trips.csv'), 'station_id,rider_id,event_ts,trips\ns1,r1,2024-01-01,1\ns1,r1,2024-01-01,two\n');
    const bad = await cli('features', 'push', 'trips', path.join(dir, 'bad-trips.csv'), '--batch', '1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad-trips\.csv line 3: .*rows\[0\]\.trips: "two" is not an integer.*\(1 rows pushed before it\)/);
  });

  it('historical gives the same file on the server, with --definitions and with --in-process, equal to the brute force', async () => {
    const outs = ['server.csv', 'local.csv', 'inproc.csv'].map((f) => path.join(dir, f));
    const args = ['features', 'historical', '--entities', path.join(dir, 'entities.csv'), '--features', 'hourly,trips,daily:cnt', '--timestamp-column', 'ts', '--full-names'];
    const server = await cli(...args, '--out', outs[0]!);
    expect(server.code, server.stderr).toBe(0);
    expect(server.stdout).toMatch(/^1,500 rows → .*server\.csv/);
    // Pushed rows live in the server's store: --definitions runs here without them, so ask only for file views.
    const local = await cli('features', 'historical', '--entities', path.join(dir, 'entities.csv'), '--features', 'hourly,daily:cnt', '--timestamp-column', 'ts', '--full-names', '--definitions', path.join(dir, 'features.yaml'), '--out', outs[1]!);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toContain('(in this process)');
    const inproc = await cli('features', 'historical', '--entities', path.join(dir, 'entities.csv'), '--features', 'hourly,daily:cnt', '--timestamp-column', 'ts', '--full-names', '--in-process', '--out', outs[2]!);
    expect(inproc.code, inproc.stderr).toBe(0);
    const [a, b, c] = outs.map((f) => parseCsv(readFileSync(f, 'utf8'), { columns: true }) as Record<string, string>[]);
    expect(c).toEqual(b);
    expect(b).toEqual(a!.map(({ trips__trips: _t, trips__trip_tag: _g, ...rest }) => rest));
    expect(Object.keys(a![0]!)).toEqual(['station_id', 'rider_id', 'ts', 'label', 'hourly__cnt', 'hourly__origin', 'hourly__busy', 'trips__trips', 'trips__trip_tag', 'daily__cnt']);
    a!.forEach((row, i) => {
      const e = entities[i]!;
      const h = bruteForce(views[0]!, e.keys, e.t);
      const t = bruteForce(views[2]!, e.keys, e.t);
      expect([row.hourly__origin, row.trips__trip_tag]).toEqual([h?.values.origin ?? '', t?.values.trip_tag ?? '']);
    });
    // 2024: after day.csv's last day (2012-12-31), which never expires (ttl 0).
    expect(new Set(a!.map((r) => r.daily__cnt))).toEqual(new Set(['2729']));
  });

  it('historical exits 2 naming a bad row, and leaves no file behind', async () => {
    writeFileSync(path.join(dir, 'bad-entities.csv'), 'station_id,rider_id,ts\ns1,r1,2024-01-01\ns1,r1,someday\n');
    const out = path.join(dir, 'never.csv');
    for (const extra of [[], ['--definitions', path.join(dir, 'features.yaml')]]) {
      const r = await cli('features', 'historical', '--entities', path.join(dir, 'bad-entities.csv'), '--features', 'hourly', '--timestamp-column', 'ts', '--out', out, ...extra);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/entity row 2 \(line 3\): ts "someday" is not a time/);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.partial`)).toBe(false);
    }
    const push = await cli('features', 'historical', '--entities', path.join(dir, 'entities.csv'), '--features', 'trips', '--timestamp-column', 'ts', '--out', out, '--definitions', path.join(dir, 'features.yaml'));
    expect(push.code).toBe(2);
    expect(push.stderr).toMatch(/view trips is fed by pushes, which live in the server's feature store/);
  });
});
