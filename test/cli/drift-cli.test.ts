/**
 * `warden drift`, `warden reference set` and `warden monitor windows` end to end: each case spawns the
 * real binary (`node bin/warden.js`, tsx registered, no build) from the repo root. The drift files are
 * made from the UCI bike-sharing data in data/ (Fanaee-T & Gama 2013): 2011 as the reference, January
 * 2012 as the current data. docs/cli.md is the contract: progress on stderr, errors one line
 * `warden: …`, exit 2 for bad input.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeRows } from '../../scripts/demo/monitoring-demo.ts';
import { seedDemo } from '../../src/lifecycle/index.ts';
import { tableFromCsv } from '../../src/monitoring/index.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

const COLUMNS = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', 'cnt'];



const warden = (...args: string[]) => runWarden(args);

/** The rows of hour.csv, as `COLUMNS` plus yr and mnth for filtering. */
function bikeCsv(keep: (yr: number, mnth: number) => boolean): string {
  const t = tableFromCsv(readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv')));
  const idx = COLUMNS.map((c) => t.names.indexOf(c));
  const yr = t.names.indexOf('yr');
  const mnth = t.names.indexOf('mnth');
  const lines = t.rows.filter((r) => keep(r[yr] as number, r[mnth] as number)).map((r) => idx.map((j) => r[j]).join(','));
  return [COLUMNS.join(','), ...lines].join('\n');
}

/** Table rows of `warden drift`'s stdout by column name: kind, test, score, threshold, verdict. */
function driftRows(stdout: string): Map<string, string[]> {
  const lines = stdout.split('\n');
  expect(lines[0]!.split(/\s+/)).toEqual(['COLUMN', 'KIND', 'TEST', 'SCORE', 'THRESHOLD', 'DRIFT']);
  const out = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '') break;
    const [column, ...rest] = line.split(/\s{2,}/);
    out.set(column!, rest);
  }
  return out;
}

describe('warden drift', () => {
  let tmp: string;
  let ref: string;
  let cur: string;

  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-drift-'));
    ref = path.join(tmp, 'ref.csv');
    cur = path.join(tmp, 'cur.csv');
    writeFileSync(ref, bikeCsv((yr) => yr === 0));
    writeFileSync(cur, bikeCsv((yr, mnth) => yr === 1 && mnth === 1));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('prints a verdict per column and for the dataset, writes JSON and HTML, and reports progress on stderr', async () => {
    const json = path.join(tmp, 'r.json');
    const html = path.join(tmp, 'r.html');
    const r = await warden('drift', '--reference', ref, '--current', cur, '--json-out', json, '--html', html);
    expect(r.code, r.stderr).toBe(0);

    const rows = driftRows(r.stdout);
    expect([...rows.keys()]).toEqual(COLUMNS);
    for (const [column, [kind, test, score, threshold, verdict]] of rows) {
      expect(['numeric', 'categorical'], column).toContain(kind);
      // A 2011 reference has 8,645 rows: Evidently's rule picks distances, not p-values.
      expect(test, column).toBe(kind === 'numeric' ? 'wasserstein' : 'jensenshannon');
      expect(Number(score), column).toBeGreaterThanOrEqual(0);
      expect(threshold, column).toBe('≥0.1');
      expect(['DRIFT', 'no'], column).toContain(verdict);
    }
    // January is cold: temperature drifts against the whole of 2011; the hours of the day do not.
    expect(rows.get('temp')![4]).toBe('DRIFT');
    expect(rows.get('hr')![4]).toBe('no');
    expect(r.stdout).toMatch(/^(DATASET DRIFT|no dataset drift): \d+% of features drifted \(threshold 50%\)$/m);
    expect(r.stdout).toMatch(/^data quality: /m);

    expect(r.stderr).toContain(`reading ${ref}`);
    expect(r.stderr).toContain('running drift tests');
    expect(r.stderr).toMatch(/^done in [\d.]+ s$/m);
    expect(r.stderr).toContain(`wrote ${json} and ${html}`);
    expect(r.stdout, 'progress stays off stdout').not.toContain('reading');

    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.reference.rows).toBe(8645);
    expect(report.current.rows).toBe(readFileSync(cur, 'utf8').trimEnd().split('\n').length - 1);
    expect(report.drift.columns.map((c: { column: string }) => c.column)).toEqual(COLUMNS);
    expect(report.drift.columns.find((c: { column: string }) => c.column === 'temp')).toMatchObject({ test: 'wasserstein', drift: true });
    expect(typeof report.drift.datasetDrift).toBe('boolean');

    expect(existsSync(html)).toBe(true);
    const page = readFileSync(html, 'utf8');
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('temp');
  });

  it('--test switches a column to another test and threshold; -q silences stderr', async () => {
    const r = await warden('drift', '--reference', ref, '--current', cur, '--test', 'temp=ks:0.01', '-q');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const rows = driftRows(r.stdout);
    expect(rows.get('temp')!.slice(1, 2)).toEqual(['ks']);
    expect(rows.get('temp')![3]).toBe('p<0.01');
    expect(rows.get('temp')![4]).toBe('DRIFT');
    expect(rows.get('atemp')![1], 'other columns keep their default').toBe('wasserstein');
  });

  it('--columns limits the report to the named columns', async () => {
    const r = await warden('drift', '--reference', ref, '--current', cur, '--columns', 'temp,weathersit', '-q');
    expect(r.code, r.stderr).toBe(0);
    expect([...driftRows(r.stdout).keys()]).toEqual(['temp', 'weathersit']);
  });

  it('exits 2 with one message for a missing, unreadable or unsupported file', async () => {
    const ragged = path.join(tmp, 'ragged.csv');
    writeFileSync(ragged, 'temp,hum\n0.1,0.2\n0.3\n');
    const txt = path.join(tmp, 'ref.txt');
    writeFileSync(txt, 'temp\n0.1\n');
    const [missing, bad, unsupported] = await Promise.all([
      warden('drift', '--reference', path.join(tmp, 'nope.csv'), '--current', cur, '-q'),
      warden('drift', '--reference', ref, '--current', ragged, '-q'),
      warden('drift', '--reference', txt, '--current', cur, '-q'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^warden: cannot read reference .*nope\.csv: ENOENT/);
    expect(missing.stdout).toBe('');

    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^warden: WARDEN_BAD_REQUEST: CSV could not be parsed/);

    expect(unsupported.code).toBe(2);
    expect(unsupported.stderr.trim()).toBe(`warden: reference ${txt}: use a .csv, .json or .parquet file`);
  });

  it('exits non-zero naming an unknown column, test or malformed --test', async () => {
    const [column, test, form] = await Promise.all([
      warden('drift', '--reference', ref, '--current', cur, '--columns', 'temp,tempreature', '-q'),
      warden('drift', '--reference', ref, '--current', cur, '--test', 'temp=kolmogorov', '-q'),
      warden('drift', '--reference', ref, '--current', cur, '--test', 'temp', '-q'),
    ]);
    expect(column.code).toBe(2);
    expect(column.stderr.trim()).toBe('warden: WARDEN_BAD_REQUEST: column tempreature is not in the reference');

    expect(test.code).toBe(2);
    expect(test.stderr.trim()).toMatch(/^warden: WARDEN_BAD_REQUEST: unknown drift test "kolmogorov" for temp; use one of ks, /);

    expect(form.code).toBe(2);
    expect(form.stderr.trim()).toBe('warden: --test temp: use column=test or column=test:threshold');
  });
});

describe('warden reference set and warden monitor windows against a server', () => {
  let srv: TestServer;
  let tmp: string;
  let refCsv: string;
  const client = (...args: string[]) => warden('--url', srv.url, ...args);

  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { tickMs: 100, idleCloseMs: 200 }, predictionLog: { flushIntervalMs: 50 } });
    await seedDemo(srv.warden.registry, srv.warden.logger);
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-reference-'));
    // The model's eleven features (no cnt: a reference holds what the model is sent).
    refCsv = path.join(tmp, 'bike-2011.csv');
    const csv = bikeCsv((yr) => yr === 0)
      .split('\n')
      .map((l) => l.split(',').slice(0, -1).join(','))
      .join('\n');
    writeFileSync(refCsv, csv);
  });
  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('reference set uploads a file with its config and prints the monitored columns', async () => {
    const config = path.join(tmp, 'monitoring.json');
    writeFileSync(config, JSON.stringify({ window: { kind: 'time', sizeMs: 7 * 24 * 3600 * 1000 } }));
    const r = await client('reference', 'set', 'bike-demand', 'champion', '--file', refCsv, '--config', config);
    expect(r.code, r.stderr).toBe(0);
    const [head, header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(head).toBe('reference for bike-demand v1: 8645 rows');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'KIND', 'ROLE']);
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual([...COLUMNS.slice(0, -1), 'variable']);
    expect(rows.at(-1)!.split(/\s+/)).toEqual(['variable', 'numeric', 'prediction']);

    const stored = await srv.json('GET', '/api/v1/models/bike-demand/versions/1/reference');
    expect(stored.body.source).toMatchObject({ kind: 'file', name: 'bike-2011.csv', rows: 8645 });
    expect(stored.body.config).toEqual({ window: { kind: 'time', sizeMs: 7 * 24 * 3600 * 1000 } });
  });

  it('reference set exits 2 with the server\'s message for bad input', async () => {
    const badConfig = path.join(tmp, 'bad.json');
    writeFileSync(badConfig, JSON.stringify({ drift: { columns: { temp: { test: 'kolmogorov' } } } }));
    const [none, unknown, test] = await Promise.all([
      client('reference', 'set', 'bike-demand', 'champion'),
      client('reference', 'set', 'no-such-model', '1', '--file', refCsv),
      client('reference', 'set', 'bike-demand', 'champion', '--file', refCsv, '--config', badConfig),
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr.trim()).toBe('warden: give --file, or --since and --until for logged traffic');

    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toMatch(/^warden: .*no-such-model/);

    expect(test.code).toBe(2);
    expect(test.stderr.trim()).toMatch(/^warden: .*received 'kolmogorov'/);
  });

  it('monitor windows lists the evaluated windows as a table and as JSON', async () => {
    // January 2012, one request per day with the day's event time: five weekly windows (Thursday-aligned).
    const january = bikeRows(1).filter((r) => new Date(r.ts).getUTCMonth() === 0);
    const byDay = new Map<number, typeof january>();
    for (const r of january) {
      const day = Math.floor(r.ts / 86_400_000) * 86_400_000;
      byDay.set(day, [...(byDay.get(day) ?? []), r]);
    }
    for (const [day, group] of byDay) {
      const res = await srv.json('POST', '/v1/models/bike-demand:predict', { instances: group.map((r) => r.values), parameters: { event_time: day } });
      expect(res.status).toBe(200);
    }
    await srv.warden.log!.flush();
    await srv.warden.log!.flush();
    expect((await srv.json('POST', '/api/v1/monitoring/flush', {})).status).toBe(200);

    const text = await client('monitor', 'windows', 'bike-demand', 'champion');
    expect(text.code, text.stderr).toBe(0);
    const [header, ...rows] = text.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['WINDOW', 'ROWS', 'DATASET', 'SHARE', 'DRIFTED', 'QUALITY']);
    expect(rows.map((l) => l.split(/\s+/)[0])).toEqual(['2011-12-29T00:00:00.000Z', '2012-01-05T00:00:00.000Z', '2012-01-12T00:00:00.000Z', '2012-01-19T00:00:00.000Z', '2012-01-26T00:00:00.000Z']);
    for (const l of rows) expect(l.split(/\s+/)[2]).toMatch(/^(DRIFT|ok)$/);
    expect(rows.some((l) => / temp /.test(l)), 'January temperatures drift against 2011').toBe(true);

    const json = await client('--json', 'monitor', 'windows', 'bike-demand', 'champion', '--since', '2012-01-05T00:00:00Z');
    expect(json.code, json.stderr).toBe(0);
    const windows = (JSON.parse(json.stdout) as { windows: { windowStart: number; rows: number }[] }).windows;
    expect(windows.map((w) => new Date(w.windowStart).toISOString().slice(0, 10))).toEqual(['2012-01-05', '2012-01-12', '2012-01-19', '2012-01-26']);
    expect(windows.reduce((n, w) => n + w.rows, 0) + Number(rows[0]!.split(/\s+/)[1])).toBe(january.length);

    const bad = await client('monitor', 'windows', 'bike-demand', 'champion', '--since', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^warden: .*since must be epoch milliseconds or an ISO-8601 time/);
  });
});
