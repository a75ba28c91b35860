/**
 * Incremental materialization: a CSV, Parquet or push source copied into the online store in batches of at most 5,000
 * rows, the state saved after each batch. A run that crashes (the store fails) or is stopped mid-way is continued by
 * the next run where it stopped: every row is written once over the two runs, and the watermark is the newest created
 * time copied. A later run writes only rows created after the watermark; an unchanged file is not read; a file
 * rewritten in place with the same created times writes nothing (a correction needs a later created time), with
 * `full` every row is offered again. One run at a time per view, across replicas (a lease per view); the schedule runs
 * every view on one replica.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Materializer } from '../../src/features/materialize.ts';
import { OnlineCache } from '../../src/features/online-cache.ts';
import type { FeatureRepo, FeatureViewDef } from '../../src/features/types.ts';
import type { FeatureRowRecord, FeatureStore } from '../../src/storage/index.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';
import { repoRoot } from '../helpers/server.ts';

const T0 = Date.UTC(2012, 0, 1);
const logger = pino({ level: 'silent' });

/** The store, counting what each entity was sent to upsertOnline, failing the nth call when told. */
function counting(inner: FeatureStore) {
  const sent = new Map<string, number>();
  let calls = 0;
  let failAt = Infinity;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'upsertOnline') {
        return async (rows: readonly FeatureRowRecord[], now: number) => {
          if (++calls === failAt) throw new Error('disk I/O error (injected)');
          for (const r of rows) sent.set(`${r.view}/${r.entityKey}`, (sent.get(`${r.view}/${r.entityKey}`) ?? 0) + 1);
          return target.upsertOnline(rows, now);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return {
    store,
    sent,
    failOnCall(n: number) {
      calls = 0;
      failAt = n;
    },
  };
}

function csvRows(n: number, opts: { from?: number; created?: (i: number) => number; value?: (i: number) => number } = {}): string {
  const lines: string[] = [];
  for (let i = opts.from ?? 0; i < (opts.from ?? 0) + n; i++) {
    const created = opts.created?.(i) ?? T0 + i;
    lines.push(`s${i},${new Date(T0 + i * 1000).toISOString()},${created},${opts.value?.(i) ?? i},${(i % 100) / 100},${i % 2 === 0}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('materialization', () => {
  let dir: string;
  let features: SqliteFeatureStore;
  let metadata: SqliteMetadataStore;
  let repo: FeatureRepo;
  const view = (name: string, source: FeatureViewDef['source']): FeatureViewDef => ({
    name,
    entities: ['station'],
    source,
    timestampField: 'ts',
    createdTimestampField: 'created',
    ttlMs: 0,
    schema: [
      { name: 'cnt', dtype: 'int' },
      { name: 'temp', dtype: 'float' },
      { name: 'busy', dtype: 'bool' },
    ],
    tags: {},
  });
  const materializer = (store: FeatureStore, holder = 'r1', cache?: OnlineCache) =>
    new Materializer({ store, metadata, repo: () => repo, logger, promRegistry: new Registry(), holder, ...(cache ? { cache } : {}) });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-mat-'));
    features = new SqliteFeatureStore(path.join(dir, 'features.db'));
    metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
    repo = {
      entities: [{ name: 'station', joinKeys: ['station_id'] }],
      featureViews: [
        view('stations', { kind: 'file', path: path.join(dir, 'stations.csv'), format: 'csv' }),
        view('pq', { kind: 'file', path: path.join(dir, 'stations.parquet'), format: 'parquet' }),
        view('pushed', { kind: 'push' }),
      ],
    };
  });
  afterEach(async () => {
    await features.close();
    await metadata.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('CSV: a run that fails mid-way is continued at the byte after its last batch; each row is written once', async () => {
    const file = path.join(dir, 'stations.csv');
    const N = 23_456;
    writeFileSync(file, `station_id,ts,created,cnt,temp,busy\n${csvRows(N)}`);
    const c = counting(features);
    c.failOnCall(3);
    const first = await materializer(c.store).run(['stations'], 'ana');
    expect(first.state).toBe('failed');
    expect(first.views[0]).toMatchObject({ state: 'failed', rowsWritten: 10_000, resumed: false, watermark: null });
    expect(first.views[0]!.error).toContain('disk I/O error');
    const saved = await features.getMaterialization('stations');
    // Two batches written; the cursor points past them; the watermark moves only when the file is read to its end.
    expect(saved!.rows).toBe(10_000);
    expect(saved!.cursor).toMatchObject({ file: { line: 10_001 }, run: { state: 'failed', rowsWritten: 10_000 } });

    const second = await materializer(c.store).run(['stations'], 'ana');
    expect(second.views[0]).toMatchObject({ state: 'succeeded', resumed: true, rowsRead: N - 10_000, rowsWritten: N - 10_000, rowsReplaced: N - 10_000, watermark: T0 + N - 1 });
    expect(c.sent.size).toBe(N);
    expect([...c.sent.values()].every((n) => n === 1)).toBe(true);
    expect((await features.getMaterialization('stations'))!).toMatchObject({ watermark: T0 + N - 1, rows: N });
    const [r] = await features.getOnline('stations', ['s23455']);
    expect(r).toEqual({ view: 'stations', entityKey: 's23455', eventTs: T0 + 23_455_000, createdTs: T0 + 23_455, values: { cnt: 23_455, temp: 0.55, busy: false } });

    // Unchanged: nothing read. Appended rows created after the watermark: only they are written.
    const unchanged = await materializer(c.store).run(['stations'], 'ana');
    expect(unchanged.views[0]).toMatchObject({ state: 'succeeded', rowsRead: 0, rowsWritten: 0 });
    appendFileSync(file, csvRows(7, { from: N }));
    const appended = await materializer(c.store).run(['stations'], 'ana');
    expect(appended.views[0]).toMatchObject({ rowsRead: N + 7, rowsWritten: 7, watermark: T0 + N + 6 });

    // Rewritten in place with new values but the same created times: not newer, nothing written.
    writeFileSync(file, `station_id,ts,created,cnt,temp,busy\n${csvRows(N + 7, { value: (i) => -i })}`);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const rewritten = await materializer(c.store).run(['stations'], 'ana');
    expect(rewritten.views[0]).toMatchObject({ rowsRead: N + 7, rowsWritten: 0 });
    // A correction with a later created time replaces the stored row (same event time, newer created time).
    appendFileSync(file, `s5,${new Date(T0 + 5000).toISOString()},${T0 + N + 100},-5,0.5,true\n`);
    const corrected = await materializer(c.store).run(['stations'], 'ana');
    expect(corrected.views[0]).toMatchObject({ rowsWritten: 1, rowsReplaced: 1 });
    expect((await features.getOnline('stations', ['s5']))[0]!.values.cnt).toBe(-5);
    // full: every row offered again; the stored rows are as new or newer, so none is replaced.
    const full = await materializer(c.store).run(['stations'], 'ana', { full: true });
    expect(full.views[0]).toMatchObject({ rowsWritten: N + 8, rowsReplaced: 0 });
  });

  it('CSV: a run stopped between batches (shutdown) is continued by the next; bad cells fail naming line and column', async () => {
    const file = path.join(dir, 'stations.csv');
    writeFileSync(file, `station_id,ts,created,cnt,temp,busy\n${csvRows(12_000)}`);
    const c = counting(features);
    const m = materializer(c.store);
    const run = await m.start(['stations'], 'ana');
    // Stop as soon as the first batch is written.
    while (run.views[0]!.rowsWritten === 0) await new Promise((r) => setTimeout(r, 1));
    await m.stop();
    expect(run.state).toBe('stopped');
    const done = await materializer(c.store).run(['stations'], 'ana');
    expect(done.views[0]).toMatchObject({ state: 'succeeded', resumed: true });
    expect(c.sent.size).toBe(12_000);
    expect([...c.sent.values()].every((n) => n === 1)).toBe(true);

    writeFileSync(file, `station_id,ts,created,cnt,temp,busy\ns1,2012-01-01,${T0 + 1e9},12,0.5,true\ns2,2012-01-01,${T0 + 1e9},twelve,0.5,true\n`);
    const bad = await materializer(features).run(['stations'], 'ana');
    expect(bad.views[0]!.state).toBe('failed');
    expect(bad.views[0]!.error).toBe('stations.csv line 3: cnt = "twelve" is not an integer (int)');
    // An empty created time is the event time, as the point-in-time join reads it.
    writeFileSync(file, `station_id,ts,created,cnt,temp,busy\ns9,2012-01-02T00:00:00Z,,9,0.5,true\n`);
    const empty = await materializer(features).run(['stations'], 'ana', { full: true });
    expect(empty.views[0], empty.views[0]!.error).toMatchObject({ state: 'succeeded', rowsWritten: 1 });
    expect((await features.getOnline('stations', ['s9']))[0]).toMatchObject({ eventTs: Date.parse('2012-01-02T00:00:00Z'), createdTs: Date.parse('2012-01-02T00:00:00Z') });
    writeFileSync(file, 'station_id,ts,cnt\ns1,2012-01-01,1\n');
    const cols = await materializer(features).run(['stations'], 'ana');
    expect(cols.views[0]!.error).toContain('stations.csv has no column created, temp, busy (view stations)');
  });

  it('Parquet: read a row group at a time; a failed run continues in the row group where it stopped', async () => {
    const N = 17_000;
    const ids = Array.from({ length: N }, (_, i) => `s${i}`);
    writeFileSync(
      path.join(dir, 'stations.parquet'),
      new Uint8Array(
        parquetWriteBuffer({
          rowGroupSize: 6_000,
          columnData: [
            { name: 'station_id', data: ids, type: 'STRING' },
            { name: 'ts', data: ids.map((_, i) => BigInt(T0 + i * 1000)), type: 'INT64' },
            { name: 'created', data: ids.map((_, i) => BigInt(T0 + i)), type: 'INT64' },
            { name: 'cnt', data: ids.map((_, i) => i), type: 'INT32' },
            { name: 'temp', data: ids.map((_, i) => i / 4), type: 'DOUBLE' },
            { name: 'busy', data: ids.map((_, i) => i % 3 === 0), type: 'BOOLEAN' },
          ],
        }),
      ),
    );
    const c = counting(features);
    // Batches: 5,000 + 1,000 (group 0), 5,000 + 1,000 (group 1), 5,000 (group 2): fail the third.
    c.failOnCall(3);
    const first = await materializer(c.store).run(['pq'], 'ana');
    expect(first.views[0]).toMatchObject({ state: 'failed', rowsWritten: 6_000 });
    const second = await materializer(c.store).run(['pq'], 'ana');
    expect(second.views[0]).toMatchObject({ state: 'succeeded', resumed: true, rowsWritten: N - 6_000, watermark: T0 + N - 1 });
    expect(c.sent.size).toBe(N);
    expect([...c.sent.values()].every((n) => n === 1)).toBe(true);
    expect((await features.getOnline('pq', ['s16999']))[0]!.values).toEqual({ cnt: 16_999, temp: 16_999 / 4, busy: false });
  });

  it('push: pages by insertion order; the next run copies only what was pushed since, and resumes after a failure', async () => {
    const row = (i: number): FeatureRowRecord => ({ view: 'pushed', entityKey: `s${i}`, eventTs: T0 + i, createdTs: T0 + i, values: { cnt: i, temp: 0, busy: true } });
    for (let i = 0; i < 12_000; i += 4000) await features.appendFeatureRows(Array.from({ length: 4000 }, (_, k) => row(i + k)));
    const c = counting(features);
    c.failOnCall(3);
    const first = await materializer(c.store).run(['pushed'], 'ana');
    expect(first.views[0]).toMatchObject({ state: 'failed', rowsWritten: 10_000 });
    const second = await materializer(c.store).run(['pushed'], 'ana');
    // The ids before the cursor are read again (commits can land out of id order) but not written: already stored.
    expect(second.views[0]).toMatchObject({ state: 'succeeded', resumed: true, rowsWritten: 2_000, watermark: T0 + 11_999 });
    await features.appendFeatureRows(Array.from({ length: 300 }, (_, k) => row(12_000 + k)));
    const third = await materializer(c.store).run(['pushed'], 'ana');
    expect(third.views[0]).toMatchObject({ rowsWritten: 300, watermark: T0 + 12_299 });
    expect(c.sent.size).toBe(12_300);
    expect([...c.sent.values()].every((n) => n === 1)).toBe(true);
  });

  it('one run at a time per view, here and across replicas; the cache of the writing replica serves at once', async () => {
    writeFileSync(path.join(dir, 'stations.csv'), `station_id,ts,created,cnt,temp,busy\n${csvRows(20_000)}`);
    const cache = new OnlineCache({ store: features, logger, promRegistry: new Registry(), syncMs: 1000, maxRows: 100_000 });
    await cache.track([repo.featureViews[0]!]);
    const a = materializer(features, 'replica-a', cache);
    const b = materializer(features, 'replica-b');
    const run = await a.start(['stations'], 'ana');
    await expect(a.start(['stations'], 'bo')).rejects.toThrow('view stations is being materialized on this replica');
    await expect(b.start(['stations', 'pushed'], 'bo')).rejects.toThrow('view stations is being materialized by replica replica-a');
    await expect(b.start(['nope'], 'bo')).rejects.toThrow('no feature view "nope"; defined: stations, pq, pushed');
    await a.wait(run.id);
    expect(run.state).toBe('succeeded');
    // b's failed start released what it took: pushed is free.
    expect((await b.run(['pushed'], 'bo')).state).toBe('succeeded');
    expect(cache.read('stations', ['s19999'], ['cnt'])[0]!.cnt).toMatchObject({ value: 19_999, status: 'present' });
    const status = await b.status();
    expect(status.find((s) => s.view === 'stations')).toMatchObject({ watermark: T0 + 19_999, rows: 20_000, lastRun: { run: run.id, holder: 'replica-a', state: 'succeeded' } });
  });

  it('features.materializeEveryMs: every view on a schedule, on one replica at a time', async () => {
    writeFileSync(path.join(dir, 'stations.csv'), `station_id,ts,created,cnt,temp,busy\n${csvRows(50)}`);
    const columnData = [
      { name: 'station_id', data: ['p1'], type: 'STRING' as const },
      { name: 'ts', data: [BigInt(T0)], type: 'INT64' as const },
      { name: 'created', data: [BigInt(T0)], type: 'INT64' as const },
      { name: 'cnt', data: [1], type: 'INT32' as const },
      { name: 'temp', data: [0.5], type: 'DOUBLE' as const },
      { name: 'busy', data: [true], type: 'BOOLEAN' as const },
    ];
    writeFileSync(path.join(dir, 'stations.parquet'), new Uint8Array(parquetWriteBuffer({ columnData })));
    const a = materializer(features, 'replica-a');
    const b = materializer(features, 'replica-b');
    a.schedule(50);
    b.schedule(50);
    try {
      for (let i = 0; i < 200 && (await features.getMaterialization('pushed')) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      const st = await a.status();
      expect(st.map((v) => [v.view, v.lastRun?.state, v.lastRun?.holder])).toEqual([
        ['stations', 'succeeded', 'replica-a'],
        ['pq', 'succeeded', 'replica-a'],
        ['pushed', 'succeeded', 'replica-a'],
      ]);
      expect(st[0]!.rows).toBe(50);
      expect((await features.getOnline('pq', ['p1']))[0]!.values.cnt).toBe(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('streams: 400,000 rows (25 MB of CSV) materialize in a process whose heap is capped at 32 MB', () => {
    // Held whole, the parsed rows alone would take over 100 MB of heap: the capped process would die of it.
    const r = spawnSync(process.execPath, ['--max-old-space-size=32', '--import', 'tsx', path.join(repoRoot, 'bench', 'features', 'materialize.mts'), '400000'], {
      encoding: 'utf8',
      cwd: repoRoot,
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { state: string; written: number; peakHeapMB: string };
    expect(out).toMatchObject({ state: 'succeeded', written: 400_000 });
    expect(Number(out.peakHeapMB)).toBeLessThan(32);
  }, 120_000);
});
