/**
 * The delivery view's long lists in a real Chromium against a real server: a deployment with 450 changes in its
 * history and a rollout with 450 analysis decisions. The view reads the newest 200 of each first (what the API's
 * `order=newest` gives), **Show 200 older** reads the page before (`before=<nextCursor>`) until there is none, and
 * a refresh puts what was added since on top without reading the rest again.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRolloutSpec } from '../../src/rollouts/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { chromiumPath, openBrowser, type BrowserSession } from './browser.ts';

const models = ['bike_gbr.onnx', 'bike_busy_logreg.onnx'].map((f) => readFileSync(path.join(fixturesDir, 'models', f)));
const N = 450;
const T0 = Date.UTC(2026, 0, 10);
const MINUTE = 60_000;

describe.skipIf(!chromiumPath)('delivery view: newest first, older on demand', () => {
  let srv: TestServer;
  let b: BrowserSession;
  let rolloutId: number;
  let newestShown = 0;
  const reads: string[] = [];

  /** Every record of a route newest first, paged with before= as the view pages it. */
  async function newestFirst<T>(p: string, field: string): Promise<T[]> {
    const out: T[] = [];
    let before: string | null = null;
    do {
      const r = await srv.json('GET', `${p}${p.includes('?') ? '&' : '?'}order=newest&limit=1000${before ? `&before=${before}` : ''}`);
      expect(r.status).toBe(200);
      out.push(...(r.body[field] as T[]));
      before = r.body.nextCursor;
    } while (before);
    return out;
  }

  beforeAll(async () => {
    srv = await startTestServer();
    for (const body of models) {
      const res = await fetch(`${srv.url}/api/v1/models/paged/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      expect(res.status).toBe(201);
    }
    const m = srv.warden.stores.metadata;
    for (let i = 0; i < N; i++) await m.setAlias('paged', 'champion', (i % 2) + 1, T0 + i * MINUTE, { kind: 'alias', strategy: 'direct', actor: 'test', reason: `change ${i}`, data: {} });
    const at = T0 + N * MINUTE;
    const r = await m.createRollout(
      {
        deployment: 'paged',
        strategy: 'canary',
        stableVersion: 1,
        candidateVersion: 2,
        state: 'aborted',
        step: 0,
        stepStartedAt: at,
        spec: parseRolloutSpec('canary', { steps: [{ weight: 30 }] }, 'paging') as unknown as Record<string, unknown>,
        status: { runs: N, lastRunAt: at, stepRuns: { success: N, failure: 0, inconclusive: 0 }, pValues: {}, lastVerdict: 'success', lastSummary: null, suppressionId: null, outcome: 'aborted by test' },
        createdAt: at,
        actor: 'test',
        reason: 'test',
      },
      { kind: 'rollout-start', strategy: 'canary', actor: 'test', reason: 'rollout', data: {} },
    );
    rolloutId = r.id;
    const decisions = Array.from({ length: N }, (_, i) => ({ rolloutId, at: at + i * 1000, step: 0, metric: 'errorRate', verdict: 'success' as const, value: i / 1e4, threshold: 0.05, nStable: 100 + i, nCandidate: 100 + i, detail: {} }));
    expect(await m.appendRolloutDecisions(decisions)).toBe(true);
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    b.page.on('request', (req) => {
      if (/\/(history|rollout\/decisions)\?/.test(req.url())) reads.push(decodeURIComponent(req.url().replace(srv.url, '')));
    });
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  const reasons = () => b.page.getByTestId('history').locator('tbody tr td:nth-child(6)').allTextContents();
  const decisionIds = async () => (await b.page.getByTestId('decisions').locator('tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-decision')))));

  it('shows the newest 200 decisions and history events first, then 200 older per click until none is left', async () => {
    const { page } = b;
    const history = await newestFirst<{ id: number; reason: string }>('/api/v1/deployments/paged/history', 'events');
    newestShown = history[0]!.id;
    const decisions = await newestFirst<{ id: number }>(`/api/v1/deployments/paged/rollout/decisions?rollout=${rolloutId}`, 'decisions');
    expect(history).toHaveLength(N + 1);
    expect(decisions).toHaveLength(N);
    await page.goto(`${srv.url}/#/delivery?deployment=paged`);
    await page.getByTestId('history').waitFor();
    await page.getByTestId('decisions').waitFor();
    expect(await reasons()).toEqual(history.slice(0, 200).map((e) => e.reason));
    expect(await decisionIds()).toEqual(decisions.slice(0, 200).map((d) => d.id));
    // The first load read one page of each, newest first, not the whole list.
    expect(reads.filter((u) => u.includes('/history?')).length).toBe(1);
    expect(reads.some((u) => u.includes('/history?') && u.includes('order=newest'))).toBe(true);
    expect(reads.filter((u) => u.includes('/decisions?')).length).toBe(1);
    for (const [panel, want, got] of [
      ['#history', history.map((e) => e.reason), reasons],
      ['#decisions', decisions.map((d) => d.id), decisionIds],
    ] as const) {
      const older = page.locator(panel).getByRole('button', { name: 'Show 200 older' });
      await older.click();
      await expect.poll(async () => (await got()).length).toBe(400);
      await older.click();
      await expect.poll(async () => (await got()).length).toBe(want.length);
      expect(await got()).toEqual(want);
      expect(await page.locator(panel).getByRole('button', { name: /older/ }).count(), panel).toBe(0);
    }
    expect(b.problems).toEqual([]);
  });

  it('a refresh puts the changes made since on top, reading only those', async () => {
    const { page } = b;
    await srv.warden.stores.metadata.setAlias('paged', 'champion', 2, Date.now(), { kind: 'alias', strategy: 'direct', actor: 'test', reason: 'fresh change', data: {} });
    reads.length = 0;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(async () => (await reasons())[0]).toBe('fresh change');
    expect((await reasons()).length).toBe(N + 2);
    const refresh = reads.filter((u) => u.includes('/history?'));
    expect(refresh.length).toBeGreaterThan(0);
    for (const u of refresh) expect(u).toContain(`after=${newestShown}`);
    expect(b.problems).toEqual([]);
  });
});
