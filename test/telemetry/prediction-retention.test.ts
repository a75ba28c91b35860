import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { openStores, type PredictionEvent, type Stores } from '../../src/storage/index.ts';
import { PredictionRetention } from '../../src/telemetry/index.ts';
import { startTestServer } from '../helpers/server.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

const event = (id: string, ts: number): PredictionEvent => ({
  requestId: id,
  ts,
  model: 'm',
  version: 1,
  status: 'ok',
  latencyMs: 1,
  inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', data: [1] }],
  outputs: [{ name: 'y', shape: [1, 1], datatype: 'FP32', data: [2] }],
});

describe('prediction log retention (predictionLog.retentionDays)', () => {
  let stores: Stores | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await stores?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the last retentionDays whole days and removes the older ones, counting them', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-retention-'));
    stores = openStores(dir);
    // One event on each of the last 10 days at 01:00 UTC, and one now.
    await stores.events.appendPredictions([...Array.from({ length: 10 }, (_, d) => event(`d${d}`, NOW - d * DAY - 11 * 3_600_000)), event('now', NOW)]);
    const registry = new Registry();
    const r = new PredictionRetention({ events: stores.events, retentionDays: 7, logger: pino({ level: 'silent' }), promRegistry: registry, now: () => NOW });
    // Days end at or before now − 7 days = 2026-11-26T12:00Z: 2026-11-25 and older go (d8, d9); 11-26 (d7) stays.
    expect(await r.run()).toBe(2);
    const kept = (await stores.events.queryPredictions({ limit: 100 })).map((e) => e.requestId).sort();
    expect(kept).toEqual(['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'now']);
    expect(await r.run()).toBe(0);
    expect((await registry.getSingleMetric('warden_prediction_log_pruned_days_total')!.get()).values[0]!.value).toBe(2);
  });

  it('keeps each deployment for its own days (0: all of it), and its labelled rows for export', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-retention-'));
    stores = openStores(dir);
    const of = (model: string, id: string, ts: number): PredictionEvent => ({ ...event(id, ts), model });
    await stores.events.appendPredictions(['m', 'short', 'forever'].flatMap((m) => Array.from({ length: 10 }, (_, d) => of(m, `${m}-${d}`, NOW - d * DAY - 11 * 3_600_000))));
    await stores.events.appendLabels([{ requestId: 'short-5', row: 0, value: 3 }], NOW);
    const r = new PredictionRetention({
      events: stores.events,
      retentionDays: 7,
      retentionDaysByModel: { short: 2, forever: 0 },
      logger: pino({ level: 'silent' }),
      promRegistry: new Registry(),
      now: () => NOW,
    });
    // short keeps days ending after now − 2 days (d0, d1, d2); m after now − 7 (d0…d7); forever all ten.
    expect(await r.run()).toBe(7);
    const kept = (model: string) => stores!.events.queryPredictions({ model, limit: 100 }).then((rows) => rows.length);
    expect([await kept('m'), await kept('short'), await kept('forever')]).toEqual([8, 3, 10]);
    const labelled = await stores.events.queryLabelled({ model: 'short', version: 1, limit: 10 });
    expect(labelled).toMatchObject([{ requestId: 'short-5', inputs: { input: [1] }, outputs: { y: [2] }, label: 3 }]);
  });

  it('a failing store is logged and retried at the next run, not thrown', async () => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void warnings.push(l) });
    const r = new PredictionRetention({ events: { prunePredictions: () => Promise.reject(new Error('disk on fire')) }, retentionDays: 1, logger, promRegistry: new Registry() });
    expect(await r.run()).toBe(0);
    expect(warnings.join('')).toContain('disk on fire');
  });

  it('is off by default and on when configured', async () => {
    const off = await startTestServer();
    try {
      expect(await (await fetch(`${off.url}/metrics`)).text()).not.toContain('warden_prediction_log_pruned_days_total');
    } finally {
      await off.close();
    }
    const on = await startTestServer({ predictionLog: { retentionDaysByModel: { 'bike-demand': 30 } } });
    try {
      expect(await (await fetch(`${on.url}/metrics`)).text()).toContain('warden_prediction_log_pruned_days_total 0');
    } finally {
      await on.close();
    }
  });
});
