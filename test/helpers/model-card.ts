import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { fixturesDir, repoRoot, type TestServer } from './server.ts';

/**
 * A model with everything a card reads: the bike logistic regression (`busy`) pushed with owner, intended use,
 * offline accuracy, training-data hash and commit; a reference of every fifth hour of 2011 with the true counts
 * (performance: binary, busy = cnt > the 2011 median, segments by weathersit); three hours of 2012 served with
 * caller keys (the third in Fahrenheit, so it drifts); their labels sent; windows flushed twice (closed, then
 * re-evaluated with the labels) and alerts evaluated.
 */
export const LOGREG = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
export const GBC = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_gbc.onnx'));
export const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[]; threshold: number };
export const FEATURES = expected.features;
export const THRESHOLD = expected.threshold;
export const HOUR = 3_600_000;
export const WINDOWS = [0, 1, 2].map((i) => Date.UTC(2012, 5, 1) + i * HOUR);
export const PER_WINDOW = 120;
export const DATA_SHA = 'a'.repeat(64);
export const OWNER = 'mobility-team';
export const INTENDED_USE = 'staffing bike stations an hour ahead; not for pricing';

const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
const bike = (from: number, n: number): { values: Record<string, number>; cnt: number }[] =>
  lines.slice(1 + from, 1 + from + n).map((l) => {
    const cells = l.split(',');
    return { values: Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])])), cnt: Number(cells[header.indexOf('cnt')]) };
  });

/** Pushes `bytes` as a new version of `name` (201 expected); returns its number. */
export async function pushVersion(srv: TestServer, name: string, bytes: Uint8Array, headers: Record<string, string>, alias = ''): Promise<number> {
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions${alias ? `?alias=${alias}` : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body: new Uint8Array(bytes),
  });
  const body = (await res.json()) as { version: { version: number } };
  expect(res.status, JSON.stringify(body)).toBe(201);
  return body.version.version;
}

/** Seeds `busy` v1 as described above; `auth` carries a deployer's (or admin's) key on a server with auth on. */
export async function seedCardModel(srv: TestServer, auth: Record<string, string> = {}): Promise<void> {
  await pushVersion(
    srv,
    'busy',
    LOGREG,
    {
      ...auth,
      'x-warden-description': 'is the hour busy (rentals above the 2011 median)',
      'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))),
      'x-warden-metadata': JSON.stringify({
        description: 'logistic regression on 2011',
        // Above what the model reaches live, so the live-below-offline alert fires.
        metrics: { accuracy: 0.99 },
        trainingDataSha256: DATA_SHA,
        sourceCommit: 'c0ffee1',
        tags: { owner: OWNER, intended_use: INTENDED_USE },
      }),
    },
    'champion',
  );
  await srv.warden.table.settled();
  // Every fifth hour of 2011: the whole year's seasons, within the reference size limit.
  const ref = bike(0, 8645)
    .filter((_, i) => i % 5 === 0)
    .map((r) => ({ ...r.values, cnt: r.cnt }));
  const put = await srv.json(
    'PUT',
    '/api/v1/models/busy/versions/1/reference',
    { rows: ref, config: { window: { kind: 'time', sizeMs: HOUR }, performance: { task: 'binary', target: 'cnt', targetThreshold: THRESHOLD, segments: ['weathersit'] } } },
    auth,
  );
  expect(put.status, JSON.stringify(put.body)).toBe(201);
  const labels: { key: string; value: number; ts: number }[] = [];
  for (const [i, start] of WINDOWS.entries()) {
    const rows = bike(9000 + i * PER_WINDOW, PER_WINDOW);
    // The third hour's temperatures in Fahrenheit: a unit change upstream, which drift must catch.
    const instances = rows.map((r) => (i === 2 ? { ...r.values, temp: r.values.temp! * 41 * 1.8 + 32 } : r.values));
    const keys = rows.map((_, j) => `w${i}-${j}`);
    const res = await srv.json('POST', '/v1/models/busy:predict', { instances, parameters: { event_time: start, keys } }, auth);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    rows.forEach((r, j) => labels.push({ key: keys[j]!, value: r.cnt > THRESHOLD ? 1 : 0, ts: start + HOUR }));
  }
  expect((await srv.json('POST', '/api/v1/monitoring/flush', undefined, auth)).status).toBe(200);
  const l = await srv.json('POST', '/api/v1/labels', { labels }, auth);
  expect(l.status, JSON.stringify(l.body)).toBe(200);
  // No window closes now: the flush re-evaluates the stored windows with the labels that arrived.
  expect((await srv.json('POST', '/api/v1/monitoring/flush', undefined, auth)).status).toBe(200);
  expect((await srv.json('POST', '/api/v1/alerts/evaluate', undefined, auth)).status).toBe(200);
}

/** The server settings the seed needs: windows close only when flushed, alerts only when evaluated. */
export const CARD_SERVER = {
  monitoring: { tickMs: 600_000, idleCloseMs: 3_600_000, importanceRows: 20 },
  predictionLog: { flushIntervalMs: 50 },
  alerting: { evaluationIntervalMs: 3_600_000 },
};
