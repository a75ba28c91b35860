/**
 * The label API's durability promise at process level, against the real CLI in a child process: once
 * `POST /api/v1/labels` has answered 200, its labels are committed — a SIGKILL right after the answer loses none.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/storage/index.ts';
import { startCliServer, stopCliServers, type RunningCli } from '../helpers/cli.ts';

const INSTANCE = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };

type Running = RunningCli;

const started: Running[] = [];

/** Starts `warden serve --demo --port 0` on a fresh data dir and waits for the log line that carries its url. */
async function startCli(): Promise<Running> {
  const running = await startCliServer({}, 'warden-labels-');
  started.push(running);
  return running;
}

afterEach(() => stopCliServers(started));

describe('label durability (real CLI, SIGKILL)', () => {
  it('keeps all 1,000 labels of a 200 answer when the process is killed -9 right after it', async () => {
    const srv = await startCli();
    // Ten requests of 100 rows, each row with a caller key.
    const REQUESTS = 10;
    const ROWS = 100;
    for (let r = 0; r < REQUESTS; r++) {
      const res = await fetch(`${srv.url}/v1/models/bike-demand:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': `dur-${r}` },
        body: JSON.stringify({ instances: Array.from({ length: ROWS }, () => INSTANCE), parameters: { keys: Array.from({ length: ROWS }, (_, i) => `dur-${r}-${i}`) } }),
      });
      expect(res.status, await res.text()).toBe(200);
    }
    // Wait until the prediction log has written them (it flushes on a timer).
    const deadline = Date.now() + 10_000;
    for (;;) {
      const page = (await (await fetch(`${srv.url}/api/v1/predictions?model=bike-demand&limit=1000`)).json()) as { events: { requestId: string }[] };
      if (page.events.filter((e) => e.requestId.startsWith('dur-')).length === REQUESTS) break;
      if (Date.now() > deadline) throw new Error(`predictions not logged within 10 s: ${srv.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    // Half by request id + row, half by key.
    const labels = Array.from({ length: REQUESTS * ROWS }, (_, n) => {
      const r = Math.floor(n / ROWS);
      const i = n % ROWS;
      return n % 2 === 0 ? { requestId: `dur-${r}`, row: i, value: n } : { key: `dur-${r}-${i}`, value: n };
    });
    const res = await fetch(`${srv.url}/api/v1/labels`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ labels }) });
    // Kill the moment the status line is in: nothing after the answer may be needed for the labels to persist.
    srv.child.kill('SIGKILL');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; unmatched: number; invalid: number };
    expect(body).toMatchObject({ accepted: 1000, unmatched: 0, invalid: 0 });
    const { signal } = await srv.exited;
    expect(signal).toBe('SIGKILL');

    const file = path.join(srv.dataDir, 'events.db');
    const db = new Database(file);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const rows = db.prepare('SELECT value, matched FROM labels').all() as { value: string; matched: number }[];
      expect(rows).toHaveLength(1000);
      expect(rows.every((r) => r.matched === 1)).toBe(true);
      expect(new Set(rows.map((r) => Number(r.value))).size).toBe(1000);
    } finally {
      db.close();
    }
    const store = new SqliteEventStore(file);
    try {
      expect(await store.labelStats({ model: 'bike-demand' })).toMatchObject({ total: 1000, matched: 1000, unmatched: 0, duplicates: 0 });
    } finally {
      await store.close();
    }
  });
});
