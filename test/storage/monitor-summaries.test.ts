/**
 * Window summaries in the SQLite event store: written beside each result in their own table, replaced or removed
 * with it, listed in window order with results stored before summaries existed returned whole, and the migration
 * that moves summaries out of the monitor_results column keeps every one.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventStore, type MonitorResultRecord } from '../../src/storage/index.ts';

const HOUR = 3_600_000;
const result = (i: number, summary?: unknown): MonitorResultRecord => ({
  model: 'm',
  version: 1,
  windowStart: i * HOUR,
  windowEnd: (i + 1) * HOUR,
  rows: 10 + i,
  datasetDrift: i % 2 === 0,
  qualityFailures: 0,
  report: { drift: { columns: [], driftShare: 0, datasetDrift: i % 2 === 0, datasetDriftShare: 0.5, predictionDrift: false }, histograms: [{ column: 'x', labels: ['a'], reference: [1], current: [i] }] },
  ...(summary !== undefined ? { summary } : {}),
  createdAt: 1,
});

describe('monitor summaries (SQLite)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-summaries-'));
    file = path.join(dir, 'events.db');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists stored summaries as JSON text and older results whole, in window order, within the limit', async () => {
    const store = new SqliteEventStore(file);
    for (const i of [0, 1, 2, 3, 4]) await store.saveMonitorResult(result(i, i === 2 ? undefined : { i }));
    const all = await store.listMonitorSummaries({ model: 'm', version: 1 });
    expect(all.map((r) => r.windowStart / HOUR)).toEqual([0, 1, 2, 3, 4]);
    expect(all[0]!.summaryJson).toBe('{"i":0}');
    expect(all[2]!.summaryJson).toBeUndefined();
    expect(all[2]!.result).toMatchObject({ rows: 12, datasetDrift: true, report: { histograms: [{ current: [2] }] } });
    const newest = await store.listMonitorSummaries({ model: 'm', version: 1, order: 'newest', limit: 3 });
    expect(newest.map((r) => r.windowStart / HOUR)).toEqual([4, 3, 2]);
    const range = await store.listMonitorSummaries({ model: 'm', version: 1, since: HOUR, until: 3 * HOUR });
    expect(range.map((r) => r.windowStart / HOUR)).toEqual([1, 2]);
    // Re-evaluated: the summary is replaced, or dropped with a result that has none.
    await store.saveMonitorResult(result(1, { i: 'again' }));
    await store.saveMonitorResult(result(3));
    const after = await store.listMonitorSummaries({ model: 'm', version: 1 });
    expect(after[1]!.summaryJson).toBe('{"i":"again"}');
    expect(after[3]!.summaryJson).toBeUndefined();
    expect(after[3]!.result!.rows).toBe(13);
    await store.close();
  });

  it('migrates a store whose summaries sat in a monitor_results column', async () => {
    // The store as the earlier migration left it: summaries in a column of monitor_results.
    const store = new SqliteEventStore(file);
    await store.close();
    const db = new Database(file);
    const version = db.pragma('user_version', { simple: true }) as number;
    // Undo the three migrations after it: shadow waves, the labels' kept rows, then the summaries table.
    db.exec(`DROP INDEX predictions_waves; ALTER TABLE predictions DROP COLUMN copy_list; ALTER TABLE predictions DROP COLUMN ts_last; ALTER TABLE predictions DROP COLUMN copies`);
    db.exec(`DROP INDEX labels_pred_seq; ALTER TABLE labels DROP COLUMN kept`);
    db.exec(`DROP TABLE monitor_summaries; ALTER TABLE monitor_results ADD COLUMN summary TEXT`);
    const insert = db.prepare(
      `INSERT INTO monitor_results (model, version, window_start, window_end, rows, dataset_drift, quality_failures, report, created_at, summary) VALUES ('m', 1, ?, ?, 5, 0, 0, '{"drift":{"columns":[]}}', 1, ?)`,
    );
    insert.run(0, HOUR, '{"old":0}');
    insert.run(HOUR, 2 * HOUR, null);
    db.pragma(`user_version = ${version - 3}`);
    db.close();
    const reopened = new SqliteEventStore(file);
    const rows = await reopened.listMonitorSummaries({ model: 'm', version: 1 });
    expect(rows.map((r) => r.summaryJson ?? r.result!.rows)).toEqual(['{"old":0}', 5]);
    const cols = (new Database(file, { readonly: true }).prepare(`PRAGMA table_info(monitor_results)`).all() as { name: string }[]).map((c) => c.name);
    expect(cols).not.toContain('summary');
    await reopened.close();
  });
});
