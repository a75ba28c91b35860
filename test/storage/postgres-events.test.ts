/**
 * The PostgreSQL event store: the storage contract's events part on a fresh schema per test, then what only a
 * shared, partitioned database has to prove: a day partition per UTC day and retention that drops whole days,
 * replicas adding to one counter at once summing exactly, and a batch written in a fixed number of statements.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PredictionBatch, type PredictionEvent, type TrafficBucketRecord } from '../../src/storage/index.ts';
import { PgEventStore } from '../../src/storage/postgres/event-store.ts';
import { openPgPool, parsePgUrl, type PgPool } from '../../src/storage/postgres/database.ts';
import { freshPgSchema, pgPartUnderTest, pgTestUrl } from '../helpers/postgres.ts';
import { runStorageContract } from './contract.ts';

const openPg = () => pgPartUnderTest(async (url) => ({ events: await PgEventStore.open(url, { maxConnections: 6 }) }));

const DAY = 24 * 3600 * 1000;
/** 2023-11-14T00:00:00Z: a UTC midnight. */
const DAY0 = Date.UTC(2023, 10, 14);

const event = (i: number, ts: number, extra: Partial<PredictionEvent> = {}): PredictionEvent => ({
  requestId: `req-${i}`,
  ts,
  model: i % 2 ? 'a' : 'b',
  version: 1,
  status: 'ok',
  latencyMs: 1,
  inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [i, 0.5] }],
  outputs: [{ name: 'probability', shape: [1, 1], datatype: 'FP32', data: [0.25] }],
  ...extra,
});

/** Statements a pool sends, in order: every connection it opens is wrapped once (pool.query goes through them too). */
function countStatements(pool: PgPool): string[] {
  const seen: string[] = [];
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    // pg's query has a dozen overloads; the wrapper only records the text and passes every argument on.
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      seen.push(typeof first === 'string' ? first : String((first as { text?: unknown })?.text ?? ''));
      return query(...args);
    };
  });
  return seen;
}

describe.skipIf(!pgTestUrl())('PostgreSQL event store', () => {
  runStorageContract('postgres events', openPg, ['events']);

  describe('on one schema', () => {
    let url: string;
    let schemaName: string;
    let drop: () => Promise<void>;
    const open: PgEventStore[] = [];
    let admin: PgPool;

    beforeEach(async () => {
      const s = await freshPgSchema();
      url = s.url;
      schemaName = s.schema;
      drop = s.drop;
      admin = openPgPool(parsePgUrl(url), { maxConnections: 2 });
    });
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
      await admin.end();
      await drop();
    });

    const store = async (maxConnections = 6) => {
      const s = await PgEventStore.open(url, { maxConnections });
      open.push(s);
      return s;
    };

    /** The day partitions of `predictions`, oldest first. */
    const partitions = async () =>
      (
        await admin.query<{ name: string }>(
          `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
           JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = 'predictions' AND n.nspname = $1 ORDER BY 1`,
          [schemaName],
        )
      ).rows.map((r) => r.name);

    it('writes each UTC day to its own partition, created on first write, and prunes whole days', async () => {
      const s = await store();
      expect(await partitions()).toEqual([]);
      // Three days, the first and last event of each at its edges (midnight belongs to the day it starts).
      const events = [0, 1, 2].flatMap((d) => [event(d * 10, DAY0 + d * DAY), event(d * 10 + 1, DAY0 + (d + 1) * DAY - 1, { keys: [`k${d}`] })]);
      await s.appendPredictions(events);
      expect(await partitions()).toEqual(['predictions_p20231114', 'predictions_p20231115', 'predictions_p20231116']);
      const rowsIn = async (p: string) => (await admin.query<{ n: number }>(`SELECT COUNT(*) AS n FROM "${p}"`)).rows[0]!.n;
      expect(await rowsIn('predictions_p20231115')).toBe(2);
      expect(await s.countKeys({ model: 'a', version: 1, since: 0 })).toBe(3);

      // A bound inside day 2 drops days 0 and 1 only: day 2 is not entirely before it.
      expect(await s.prunePredictions(DAY0 + 2 * DAY + 1)).toBe(2);
      expect(await partitions()).toEqual(['predictions_p20231116']);
      // The tables are gone, not just detached.
      expect((await admin.query(`SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname LIKE 'predictions_p%'`, [schemaName])).rowCount).toBe(1);
      expect(await s.prunePredictions(DAY0 + 2 * DAY + 1)).toBe(0);
      // Reads still work, paging included; the dropped days' keys went with them.
      expect((await s.queryPredictions({ limit: 10 })).map((e) => e.requestId)).toEqual(['req-20', 'req-21']);
      expect(await s.countPredictions({ since: DAY0, until: DAY0 + 3 * DAY })).toBe(2);
      expect(await s.countKeys({ model: 'a', version: 1, since: 0 })).toBe(1);
      expect((await s.appendLabels([{ key: 'k0', value: 1 }, { key: 'k2', value: 1 }], DAY0 + 3 * DAY)).unmatched).toBe(1);
      const newest = await s.queryPredictions({ limit: 1, newestFirst: true });
      expect(newest.map((e) => e.requestId)).toEqual(['req-21']);
    });

    it('recreates a pruned day that another replica remembered, and writes to it', async () => {
      const a = await store();
      const b = await store();
      await b.appendPredictions([event(1, DAY0 + 5)]);
      expect(await a.prunePredictions(DAY0 + DAY)).toBe(1);
      expect(await partitions()).toEqual([]);
      // b still thinks day 0 exists: its insert finds no partition, and it creates the day again.
      await b.appendPredictions([event(2, DAY0 + 6)]);
      expect(await partitions()).toEqual(['predictions_p20231114']);
      expect((await a.queryPredictions({ limit: 10 })).map((e) => e.requestId)).toEqual(['req-2']);
    });

    it('lets replicas create the same new days at once', async () => {
      const replicas = await Promise.all([store(3), store(3), store(3), store(3)]);
      await Promise.all(replicas.map((r, i) => r.appendPredictions([0, 1, 2, 3, 4].map((d) => event(i * 10 + d, DAY0 + d * DAY + i)))));
      expect((await partitions()).length).toBe(5);
      expect(await replicas[0]!.countPredictions({})).toBe(20);
    });

    it('two replicas adding to the same traffic bucket and SLI bucket at once sum exactly', async () => {
      const [a, b] = await Promise.all([store(8), store(8)]);
      const bucket = (i: number): TrafficBucketRecord => ({
        model: 'm', version: 1, step: 'minute', ts: 60_000, requests: 1 + (i % 3), ok: 1, clientErrors: i % 2, serverErrors: 0, shadow: 0, rows: 2,
        latencySumMs: 1 + i, minMs: 10 + (i % 17), maxMs: 100 + i, cpuMs: 1, histogram: [1, 0, i % 4], errors: { [`E${i % 5}`]: 1 },
      });
      const n = 200;
      const adds = Array.from({ length: n }, (_, i) => i);
      await Promise.all(
        adds.map((i) => {
          const r = i % 2 ? a : b;
          return Promise.all([
            r.addTraffic([bucket(i), { ...bucket(i), step: 'hour', ts: 0 }]),
            r.addSliCounts([{ slo: 's', ts: 60_000, source: 'traffic', good: i % 2, total: 1 }]),
          ]);
        }),
      );
      const expected = adds.map(bucket).reduce((x, y) => ({
        ...x,
        requests: x.requests + y.requests,
        ok: x.ok + y.ok,
        clientErrors: x.clientErrors + y.clientErrors,
        rows: x.rows + y.rows,
        latencySumMs: x.latencySumMs + y.latencySumMs,
        minMs: Math.min(x.minMs, y.minMs),
        maxMs: Math.max(x.maxMs, y.maxMs),
        cpuMs: x.cpuMs + y.cpuMs,
        histogram: x.histogram.map((v, j) => v + y.histogram[j]!),
        errors: Object.fromEntries([...new Set([...Object.keys(x.errors), ...Object.keys(y.errors)])].map((k) => [k, (x.errors[k] ?? 0) + (y.errors[k] ?? 0)])),
      }));
      const [minute] = await a.queryTraffic({ model: 'm', step: 'minute', since: 0, until: 3_600_000 });
      expect(minute).toEqual(expected);
      expect((await b.queryTraffic({ model: 'm', step: 'hour', since: 0, until: 3_600_000 }))[0]).toEqual({ ...expected, step: 'hour', ts: 0 });
      expect(await b.querySli({ slo: 's' })).toEqual([{ ts: 60_000, good: n / 2, total: n }]);
    });

    it('two replicas appending batches with the same caller keys at once: each key kept once, every collision counted', async () => {
      const [a, b] = await Promise.all([store(6), store(6)]);
      // 20 batches of 50 events, each event's two keys shared with the same event of every other batch.
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          (j % 2 ? a : b).appendPredictions(Array.from({ length: 50 }, (_, i) => event(j * 100 + i, DAY0 + i, { keys: [`x${i}`, `y${49 - i}`] }))),
        ),
      );
      expect(await a.countKeys({ model: 'a', version: 1, since: 0 }) + (await a.countKeys({ model: 'b', version: 1, since: 0 }))).toBe(100);
      expect((await b.labelStats()).duplicateKeys).toBe(20 * 100 - 100);
      expect(await a.countPredictions({})).toBe(1000);
    });

    it('joins a label to a prediction a replica was still writing when the label arrived', async () => {
      const a = await store();
      const b = await store();
      // Labels wait on b while a logs their predictions in many concurrent batches; every one must join.
      const labels = Array.from({ length: 300 }, (_, i) => ({ requestId: `req-${i}`, value: i }));
      await Promise.all([
        ...Array.from({ length: 30 }, (_, j) => a.appendPredictions(Array.from({ length: 10 }, (_, i) => event(j * 10 + i, DAY0 + j)))),
        ...Array.from({ length: 10 }, (_, j) => b.appendLabels(labels.slice(j * 30, (j + 1) * 30), DAY0 + DAY)),
      ]);
      const stats = await b.labelStats();
      expect(stats).toMatchObject({ total: 300, matched: 300, unmatched: 0 });
    });

    it('writes a 10,000-event batch in a fixed number of statements, one INSERT … unnest for the whole batch', async () => {
      const pool = openPgPool(parsePgUrl(url), { maxConnections: 2 });
      const statements = countStatements(pool);
      const s = await PgEventStore.onPool(pool, schemaName);
      open.push(s);
      const batchOf = (n: number, from: number) => PredictionBatch.of(Array.from({ length: n }, (_, i) => event(from + i, DAY0 + i, { keys: [`k${from + i}`] })));
      // A first small batch creates the day's partition, so both measured batches see the same (warm) state.
      await s.appendBatch(batchOf(1, 1_000_000));
      const measure = async (n: number, from: number) => {
        statements.length = 0;
        await s.appendBatch(batchOf(n, from));
        return [...statements];
      };
      const ten = await measure(10, 0);
      const big = await measure(10_000, 100);
      // The same statements whatever the batch size: no per-row (or per-chunk) round trips.
      expect(big.length).toBe(ten.length);
      expect(big.length).toBeLessThanOrEqual(4); // BEGIN, the append lock, the write, COMMIT
      const writes = big.filter((q) => /INSERT/i.test(q));
      expect(writes).toHaveLength(1);
      // That one statement writes the events, their keys and the key collisions.
      expect(writes[0]).toMatch(/INSERT INTO predictions[\s\S]*unnest[\s\S]*INSERT INTO prediction_keys[\s\S]*INSERT INTO key_collisions/);
      expect(await s.countPredictions({})).toBe(10_011);
      expect(await s.countKeys({ model: 'a', version: 1, since: 0 }) + (await s.countKeys({ model: 'b', version: 1, since: 0 }))).toBe(10_011);
      const last = (await s.queryPredictions({ limit: 1, newestFirst: true }))[0]!;
      expect(last.requestId).toBe('req-10099');
      expect(last.keys).toEqual(['k10099']);
    });
  });
});
