/**
 * Feature definitions are validated at load, and every error names the field (and for a file source the column and
 * the file): unknown entities, duplicates, collisions, bad dtypes and TTLs, unknown fields, missing columns, values
 * that do not parse as their dtype on the first rows. A file's relative paths resolve against its folder; the API's
 * form (ttl beside ttlMs) reads back to the same repository.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFileSources, featureRepoJson, loadFeatureRepoFile, parseFeatureRepo, parseFeatureRepoText, resolveFeatureRefs } from '../../src/features/index.ts';
import { repoRoot } from '../helpers/server.ts';

const DAY_CSV = path.join(repoRoot, 'data', 'bike-sharing', 'day.csv');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-defs-'));
  copyFileSync(DAY_CSV, path.join(dir, 'day.csv'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const station = { name: 'station', joinKeys: ['station_id'] };
const view = (over: Record<string, unknown> = {}) => ({
  name: 'hourly',
  entities: ['station'],
  source: { kind: 'push' },
  timestampField: 'ts',
  ttl: '2d',
  schema: [
    { name: 'cnt', dtype: 'int' },
    { name: 'temp', dtype: 'float' },
  ],
  ...over,
});
const parse = (raw: unknown) => () => parseFeatureRepo(raw, { baseDir: dir });

describe('feature definitions', () => {
  it('reads entities and views with defaults: ttl to ms, tags {}, the format from the file name, paths resolved', () => {
    const repo = parseFeatureRepo(
      {
        entities: [station, { name: 'day', joinKeys: ['dteday_key'], description: 'a calendar day' }],
        featureViews: [
          view({ owner: 'ml-team', tags: { team: 'ml', tier: 1 }, description: 'per-station counts' }),
          view({ name: 'daily', entities: [], source: { kind: 'file', path: 'day.csv' }, timestampField: 'dteday', ttl: '36h', schema: [{ name: 'cnt', dtype: 'int' }] }),
        ],
      },
      { baseDir: dir },
    );
    expect(repo.entities[1]).toEqual({ name: 'day', joinKeys: ['dteday_key'], description: 'a calendar day' });
    expect(repo.featureViews[0]).toMatchObject({ ttlMs: 2 * 86_400_000, owner: 'ml-team', tags: { team: 'ml', tier: '1' }, source: { kind: 'push' } });
    expect(repo.featureViews[1]).toMatchObject({ ttlMs: 36 * 3_600_000, tags: {}, source: { kind: 'file', path: path.join(dir, 'day.csv'), format: 'csv' } });
  });

  it('names the field of every mistake', () => {
    const cases: [unknown, RegExp][] = [
      [{ entities: [station], featureViews: [view({ entities: ['statoin'] })] }, /^featureViews\[0\]\.entities\[0\]: unknown entity "statoin"; entities: station$/],
      [{ entities: [station, station] }, /^entities\[1\]\.name: duplicate entity "station" \(also entities\[0\]\)/],
      [{ entities: [station], featureViews: [view(), view()] }, /^featureViews\[1\]\.name: duplicate feature view "hourly" \(also featureViews\[0\]\)/],
      [{ entities: [station], featureViews: [view({ schema: [{ name: 'station_id', dtype: 'int' }] })] }, /^featureViews\[0\]\.schema\[0\]\.name: feature "station_id" collides with join key station_id of entity station/],
      [{ entities: [station], featureViews: [view({ schema: [{ name: 'ts', dtype: 'int' }] })] }, /^featureViews\[0\]\.schema\[0\]\.name: feature "ts" collides with the event-time column ts/],
      [{ entities: [station], featureViews: [view({ schema: [{ name: 'a', dtype: 'int' }, { name: 'a', dtype: 'float' }] })] }, /^featureViews\[0\]\.schema\[1\]\.name: feature "a" collides with feature a/],
      [{ entities: [station], featureViews: [view({ createdTimestampField: 'ts' })] }, /^featureViews\[0\]\.createdTimestampField: the created-time column "ts" collides with the event-time column ts/],
      [{ entities: [station, { name: 'other', joinKeys: ['station_id'] }], featureViews: [view({ entities: ['station', 'other'] })] }, /^featureViews\[0\]\.entities: join key "station_id" of entity other is also join key station_id of entity station/],
      [{ entities: [station], featureViews: [view({ schema: [{ name: 'cnt', dtype: 'double' }] })] }, /^featureViews\[0\]\.schema\[0\]\.dtype: must be one of float, int, string, bool, not "double"/],
      [{ entities: [station], featureViews: [view({ schema: [] })] }, /^featureViews\[0\]\.schema: must not be empty/],
      [{ entities: [station], featureViews: [view({ ttl: 'two days' })] }, /^featureViews\[0\]\.ttl: "two days" is not a duration/],
      [{ entities: [station], featureViews: [view({ ttl: undefined })] }, /^featureViews\[0\]\.ttl: is missing/],
      [{ entities: [station], featureViews: [view({ ttlMs: 5 })] }, /^featureViews\[0\]\.ttlMs: is 5 but ttl "2d" is 172800000 ms/],
      [{ entities: [station], featureViews: [view({ sourec: { kind: 'push' } })] }, /^featureViews\[0\]\.sourec: unknown field; known: name, entities, source/],
      [{ entities: [station], featureViews: [view({ source: { kind: 'table' } })] }, /^featureViews\[0\]\.source\.kind: must be file or push, not "table"/],
      [{ entities: [station], featureViews: [view({ source: { kind: 'file', path: 'x.txt' } })] }, /^featureViews\[0\]\.source\.format: cannot tell the format of "x.txt"/],
      [{ entities: [station], featureViews: [view({ name: 'bad:name' })] }, /^featureViews\[0\]\.name: "bad:name" is not a valid name/],
      [{ entities: [{ name: 'e', joinKeys: [] }] }, /^entities\[0\]\.joinKeys: must not be empty/],
      [{ entities: [station], featureViews: [view({ timestampField: undefined })] }, /^featureViews\[0\]\.timestampField: must be a non-empty string \(missing\)/],
      [{ entities: [station], featureViews: [{}] }, /^featureViews\[0\]\.name: must be a non-empty string \(missing\)/],
      [{ entitys: [] }, /^entitys: unknown field/],
    ];
    for (const [raw, msg] of cases) expect(parse(raw), String(msg)).toThrow(msg);
    // Through the API (no folder to resolve against), a relative path is refused.
    expect(() => parseFeatureRepo({ featureViews: [view({ entities: [], source: { kind: 'file', path: 'day.csv' } })] })).toThrow(/^featureViews\[0\]\.source\.path: "day.csv" is relative; the API takes absolute paths/);
  });

  it('checks a file source: readable, every column there, the first rows parse as their dtypes', async () => {
    const daily = (over: Record<string, unknown>) =>
      parseFeatureRepo({ featureViews: [view({ name: 'daily', entities: [], source: { kind: 'file', path: 'day.csv' }, timestampField: 'dteday', schema: [{ name: 'cnt', dtype: 'int' }], ...over })] }, { baseDir: dir });
    await expect(checkFileSources(daily({}))).resolves.toBeUndefined();
    await expect(checkFileSources(daily({ schema: [{ name: 'cnt', dtype: 'int' }, { name: 'rentals', dtype: 'int' }] }))).rejects.toThrow(
      new RegExp(`^featureViews\\[0\\]\\.schema\\[1\\]: column "rentals" \\(feature \\(int\\) of view daily\\) is not in ${path.join(dir, 'day.csv').replaceAll('/', '\\/')}; its columns: instant, dteday, season`),
    );
    await expect(checkFileSources(daily({ schema: [{ name: 'temp', dtype: 'int' }] }))).rejects.toThrow(/^featureViews\[0\]\.schema\[0\]: column "temp" of .*day\.csv, line 2: "0\.344167" is not an integer, so not a int/);
    await expect(checkFileSources(daily({ schema: [{ name: 'holiday', dtype: 'bool' }, { name: 'weathersit', dtype: 'bool' }] }))).rejects.toThrow(/^featureViews\[0\]\.schema\[1\]: column "weathersit" of .*day\.csv, line 2: "2" is not a boolean/);
    const keyed = parseFeatureRepo({ entities: [station], featureViews: [view({ source: { kind: 'file', path: 'day.csv' }, timestampField: 'dteday', schema: [{ name: 'cnt', dtype: 'int' }] })] }, { baseDir: dir });
    await expect(checkFileSources(keyed)).rejects.toThrow(/^featureViews\[0\]\.entities: column "station_id" \(join key of view hourly\) is not in .*day\.csv/);
    writeFileSync(path.join(dir, 'late.csv'), 'station_id,ts,cnt\ns1,2024-01-01,3\ns2,soon,4\n');
    const late = parseFeatureRepo({ entities: [station], featureViews: [view({ source: { kind: 'file', path: 'late.csv' }, schema: [{ name: 'cnt', dtype: 'int' }] })] }, { baseDir: dir });
    await expect(checkFileSources(late)).rejects.toThrow(/^featureViews\[0\]\.timestampField: column "ts" of .*late\.csv, line 3: "soon" is not a time/);
    const missing = parseFeatureRepo({ featureViews: [view({ entities: [], source: { kind: 'file', path: 'nowhere.parquet' } })] }, { baseDir: dir });
    await expect(checkFileSources(missing)).rejects.toThrow(/^featureViews\[0\]\.source\.path: cannot read .*nowhere\.parquet as Parquet/);
  });

  it('loads a YAML file, resolving its paths against its folder, and names the file in errors', async () => {
    const file = path.join(dir, 'features.yaml');
    writeFileSync(
      file,
      [
        'entities: []',
        'featureViews:',
        '  - name: daily',
        '    entities: []',
        '    source: {kind: file, path: ./day.csv, format: csv}',
        '    timestampField: dteday',
        '    ttl: 2d',
        '    schema:',
        '      - {name: cnt, dtype: int}',
        '      - {name: temp, dtype: float}',
        '      - {name: holiday, dtype: bool}',
        '    owner: ml-team',
        '    tags: {source: uci}',
      ].join('\n'),
    );
    const repo = await loadFeatureRepoFile(file);
    expect(repo.featureViews[0]!.source).toEqual({ kind: 'file', path: path.join(dir, 'day.csv'), format: 'csv' });
    writeFileSync(file, 'featureViews:\n  - {name: daily, entities: [], source: {kind: file, path: day.csv}, timestampField: dteday, ttl: 2d, schema: [{name: cnt, dtype: float}, {name: casual_riders, dtype: int}]}\n');
    await expect(loadFeatureRepoFile(file)).rejects.toThrow(new RegExp(`^${file.replaceAll('/', '\\/')}: featureViews\\[0\\]\\.schema\\[1\\]: column "casual_riders"`));
    expect(() => parseFeatureRepoText('featureViews: [', { source: 'features.yaml' })).toThrow(/^features.yaml is not valid YAML or JSON/);
  });

  it('reads back its own API form (ttl beside ttlMs) to the same repository', () => {
    const repo = parseFeatureRepo({ entities: [station], featureViews: [view({ ttl: '1h30m', createdTimestampField: 'created' }), view({ name: 'forever', ttl: 0 })] });
    const json = featureRepoJson(repo);
    expect(json.featureViews.map((v) => v.ttl)).toEqual(['1h30m', '0']);
    expect(parseFeatureRepo(JSON.parse(JSON.stringify(json)))).toEqual(repo);
  });

  it('resolves view:feature and whole views, naming a wrong reference', () => {
    const repo = parseFeatureRepo({ entities: [station], featureViews: [view()] });
    expect(resolveFeatureRefs(repo, ['hourly:temp', 'hourly']).map((s) => [s.view.name, s.features.map((f) => f.name)])).toEqual([['hourly', ['temp', 'cnt']]]);
    expect(() => resolveFeatureRefs(repo, ['daily:cnt'])).toThrow(/^features: "daily:cnt" names no feature view; views: hourly/);
    expect(() => resolveFeatureRefs(repo, ['hourly:cnt_prev'])).toThrow(/^features: view hourly has no feature "cnt_prev"; its features: cnt, temp/);
    expect(() => resolveFeatureRefs(repo, [])).toThrow(/name at least one/);
  });
});
