/**
 * Reading a deployment's history and a rollout's decisions by time and from the newest end on a real server:
 * `since`/`until` bound the history, `order=newest` pages backwards with `before=<nextCursor>` (as
 * GET /api/v1/predictions does), and wrong parameters are refused with a 400 that says what to send.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const models = ['bike_gbr.onnx', 'bike_busy_logreg.onnx'].map((f) => readFileSync(path.join(fixturesDir, 'models', f)));
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 10);
const HISTORY = '/api/v1/deployments/hist/history';
const DECISIONS = '/api/v1/deployments/hist/rollout/decisions';

interface Event {
  id: number;
  at: number;
  toVersion: number | null;
}

describe('deployment history and rollout decisions: since, order=newest, before', () => {
  let srv: TestServer;
  let all: Event[];
  let rolloutId: number;
  let decisionIds: number[];

  beforeAll(async () => {
    srv = await startTestServer();
    for (const body of models) {
      const res = await fetch(`${srv.url}/api/v1/models/hist/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      expect(res.status).toBe(201);
    }
    const m = srv.warden.stores.metadata;
    // Ten alias changes an hour apart, then a rollout with 12 decisions (the rollout's start is an 11th event).
    for (let i = 0; i < 10; i++) await m.setAlias('hist', 'champion', (i % 2) + 1, T0 + i * HOUR, { kind: 'alias', strategy: 'direct', actor: 'test', reason: `change ${i}`, data: {} });
    const at = T0 + 10 * HOUR;
    const r = await m.createRollout(
      { deployment: 'hist', strategy: 'canary', stableVersion: 1, candidateVersion: 2, state: 'aborted', step: 0, stepStartedAt: at, spec: {}, status: {}, createdAt: at, actor: 'test', reason: 'test' },
      { kind: 'rollout-start', strategy: 'canary', actor: 'test', reason: 'test', data: {} },
    );
    rolloutId = r.id;
    const decisions = Array.from({ length: 12 }, (_, i) => ({ rolloutId, at: at + i * 1000, step: 0, metric: `m${i}`, verdict: 'success' as const, value: i, threshold: 1, nStable: 1, nCandidate: 1, detail: {} }));
    expect(await m.appendRolloutDecisions(decisions)).toBe(true);
    all = (await srv.json('GET', HISTORY)).body.events;
    decisionIds = ((await srv.json('GET', `${DECISIONS}?rollout=${rolloutId}`)).body.decisions as { id: number }[]).map((d) => d.id);
  }, 60_000);
  afterAll(() => srv?.close());

  it('has the seeded history oldest first', () => {
    expect(all).toHaveLength(11);
    expect(all.map((e) => e.at)).toEqual([...Array.from({ length: 10 }, (_, i) => T0 + i * HOUR), T0 + 10 * HOUR]);
    expect(decisionIds).toHaveLength(12);
  });

  it('since and until bound the history by time (epoch ms or ISO), in either order', async () => {
    const since = T0 + 7 * HOUR;
    const r = await srv.json('GET', `${HISTORY}?since=${since}`);
    expect(r.status).toBe(200);
    expect(r.body.events).toEqual(all.filter((e) => e.at >= since));
    const iso = await srv.json('GET', `${HISTORY}?since=${new Date(since).toISOString()}&until=${new Date(T0 + 8 * HOUR).toISOString()}`);
    expect(iso.body.events.map((e: Event) => e.at)).toEqual([T0 + 7 * HOUR, T0 + 8 * HOUR]);
    const newest = await srv.json('GET', `${HISTORY}?since=${since}&order=newest`);
    expect(newest.body.events).toEqual(all.filter((e) => e.at >= since).reverse());
    expect(newest.body.nextCursor).toBeNull();
    expect((await srv.json('GET', `${HISTORY}?since=${T0 + 11 * HOUR}`)).body.events).toEqual([]);
  });

  it('order=newest pages backwards with before=<nextCursor> to the oldest event, then says null', async () => {
    const seen: Event[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await srv.json('GET', `${HISTORY}?order=newest&limit=4${cursor ? `&before=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...r.body.events);
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...all].reverse());
    // A page that ends exactly at the oldest event has a cursor; the page after it is empty and ends the paging.
    const [first] = (await srv.json('GET', `${HISTORY}?order=newest&limit=1&before=${all[1]!.id}`)).body.events;
    expect(first).toEqual(all[0]);
    expect(await srv.json('GET', `${HISTORY}?order=newest&before=${all[0]!.id}`)).toMatchObject({ status: 200, body: { events: [], nextCursor: null } });
  });

  it('decisions: order=newest pages the latest first with before=<nextCursor>', async () => {
    const latest = await srv.json('GET', `${DECISIONS}?rollout=${rolloutId}&order=newest&limit=5`);
    expect(latest.status).toBe(200);
    expect(latest.body.rollout).toBe(rolloutId);
    expect(latest.body.decisions.map((d: { id: number }) => d.id)).toEqual([...decisionIds].reverse().slice(0, 5));
    expect(latest.body.nextCursor).toBe(String(decisionIds[7]));
    const seen: number[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const r = await srv.json('GET', `${DECISIONS}?rollout=${rolloutId}&order=newest&limit=5${cursor ? `&before=${cursor}` : ''}`);
      seen.push(...r.body.decisions.map((d: { id: number }) => d.id));
      cursor = r.body.nextCursor;
      if (cursor === null) break;
    }
    expect(seen).toEqual([...decisionIds].reverse());
    // The rollout defaults to the deployment's latest, as oldest-first reads do.
    expect((await srv.json('GET', `${DECISIONS}?order=newest&limit=1`)).body.decisions[0].id).toBe(decisionIds.at(-1));
    // Oldest first still pages forwards.
    const old = await srv.json('GET', `${DECISIONS}?limit=5&after=${decisionIds[4]}`);
    expect(old.body.decisions.map((d: { id: number }) => d.id)).toEqual(decisionIds.slice(5, 10));
  });

  it('refuses bad order, cursors and times with a 400 that says what to send', async () => {
    const cases: [string, RegExp][] = [
      [`${HISTORY}?order=latest`, /order must be oldest or newest/],
      [`${HISTORY}?before=3`, /before pages newest first: add order=newest/],
      [`${HISTORY}?order=newest&after=3`, /with order=newest page with before=<nextCursor>, not after/],
      [`${HISTORY}?order=newest&before=-1`, /before must be a cursor from an earlier answer/],
      [`${HISTORY}?since=yesterday`, /since must be epoch milliseconds or an ISO-8601 time/],
      [`${HISTORY}?until=soon`, /until must be epoch milliseconds or an ISO-8601 time/],
      [`${HISTORY}?since=${T0 + HOUR}&until=${T0}`, /since must not be after until/],
      [`${DECISIONS}?order=desc`, /order must be oldest or newest/],
      [`${DECISIONS}?before=3`, /before pages newest first/],
      [`${DECISIONS}?order=newest&after=1`, /not after/],
      [`${DECISIONS}?order=newest&before=x`, /before must be a cursor/],
    ];
    for (const [url, msg] of cases) {
      const r = await srv.json('GET', url);
      expect(r.status, url).toBe(400);
      expect(r.body.code, url).toBe('WARDEN_BAD_REQUEST');
      expect(r.body.error, url).toMatch(msg);
    }
  });
});
