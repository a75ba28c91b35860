/**
 * The prediction log's promises at process level, against the real CLI in a child process:
 * SIGTERM drains every acknowledged prediction; SIGKILL loses at most about one flush interval,
 * and leaves events.db readable.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/storage/index.ts';
import { startCliServer, stopCliServers, type RunningCli } from '../helpers/cli.ts';

const INSTANCE = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };
const BODY = JSON.stringify({ instances: [INSTANCE] });

type Running = RunningCli;

const started: Running[] = [];

/** Starts `warden serve --demo --port 0` on a fresh data dir and waits for its "listening" log line. */
async function startCli(flushIntervalMs: number): Promise<Running> {
  const running = await startCliServer({ WARDEN_PREDICTION_LOG_FLUSH_INTERVAL_MS: String(flushIntervalMs) }, 'warden-shutdown-');
  started.push(running);
  return running;
}

/** One prediction with a request id we choose, so the events table can be checked id by id. */
async function predict(url: string, requestId: string): Promise<void> {
  const res = await fetch(`${url}/v1/models/bike-demand:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: BODY,
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`prediction ${requestId} answered ${res.status}`);
}

/** Request ids in events.db, opened with the same adapter the server uses to read. */
async function loggedIds(dataDir: string): Promise<Set<string>> {
  const store = new SqliteEventStore(path.join(dataDir, 'events.db'));
  try {
    const rows = await store.queryPredictions({ limit: 1_000_000 });
    return new Set(rows.map((r) => r.requestId));
  } finally {
    await store.close();
  }
}

afterEach(() => stopCliServers(started));

describe('prediction log across process shutdown (real CLI)', () => {
  it('SIGTERM: exits 0 and every acknowledged prediction is in events.db', async () => {
    // A 5 s flush interval: nothing is flushed by the timer during the test, so the drain on
    // SIGTERM has to write all of them.
    const srv = await startCli(5_000);
    const N = 500;
    const CONCURRENCY = 10;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < N) await predict(srv.url, `term-${next++}`);
      }),
    );
    srv.child.kill('SIGTERM');
    const { code, signal } = await srv.exited;
    expect({ code, signal }, srv.output()).toEqual({ code: 0, signal: null });
    // Exit 0 is not enough: Node also exits 0 when the event loop empties mid-drain.
    expect(srv.output()).toContain('stopped cleanly');
    const ids = await loggedIds(srv.dataDir);
    const missing = Array.from({ length: N }, (_, i) => `term-${i}`).filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
    expect(ids.size).toBe(N);
  });

  it('SIGKILL: loses at most about one flush interval, and events.db stays readable', async () => {
    const FLUSH_MS = 200;
    const srv = await startCli(FLUSH_MS);
    const acked: { id: string; at: number }[] = [];
    const stopAt = Date.now() + 1_500;
    let n = 0;
    let killed = false;
    const loops = Array.from({ length: 4 }, async () => {
      while (!killed) {
        const id = `kill-${n++}`;
        try {
          await predict(srv.url, id);
          acked.push({ id, at: Date.now() });
        } catch (e) {
          if (!killed) throw e;
        }
        if (Date.now() >= stopAt && !killed) {
          killed = true;
          killAt = Date.now();
          srv.child.kill('SIGKILL');
        }
      }
    });
    let killAt = 0;
    await Promise.all(loops);
    const { signal } = await srv.exited;
    expect(signal).toBe('SIGKILL');

    // Not corrupt: SQLite's own check passes after recovering the WAL.
    const db = new Database(path.join(srv.dataDir, 'events.db'));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }

    const ids = await loggedIds(srv.dataDir);
    // Acknowledged more than two flush intervals before the kill: one interval for the timer to
    // come round, one more as margin for the write itself to commit.
    const cutoff = killAt - 2 * FLUSH_MS;
    const mustHave = acked.filter((a) => a.at < cutoff);
    expect(mustHave.length).toBeGreaterThan(50);
    const lost = mustHave.filter((a) => !ids.has(a.id)).map((a) => a.id);
    expect(lost, `${acked.length} acknowledged, ${acked.filter((a) => !ids.has(a.id)).length} not logged in total`).toEqual([]);
    // Nothing is invented: every logged id was a request we sent.
    for (const id of ids) expect(id).toMatch(/^kill-\d+$/);
  });
});
