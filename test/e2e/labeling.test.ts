/**
 * The labeling page (the human review queue) in a real Chromium against a real server with keys: a predictor
 * claims the oldest open item, sees its inputs and prediction, labels with the keyboard and moves on; skip keeps
 * the claim; a claim lost to another reviewer (409) moves on with a message; each label reaches the labels store
 * as a human label (GET /api/v1/labels/stats). A viewer sees the queue without claim or label buttons. Keys do
 * nothing while typing in a field (the reviewer-name field of a server with auth off).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAIM_TTL_MS } from '../../src/lifecycle/index.ts';
import { createApiKey } from '../../src/security/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { CSP_PROBE, axe, cspViolations, chromiumPath, describeViolations, openBrowser, screenshot, type BrowserSession, docsScreenshot } from './browser.ts';


const MODEL = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[]; input: number[][] };
const FEATURES = probe.features.map((name) => ({ name, datatype: 'FP32' }));

interface Item {
  id: number;
  status: string;
  claimedBy?: string;
  claimedAt?: number;
  claimExpiresAt: number | null;
  label?: unknown;
  labelledBy?: string;
  inputs: Record<string, number>;
  prediction: Record<string, number>;
  confidence: number;
}

async function seed(srv: TestServer, auth: Record<string, string>, name: string, threshold: number): Promise<void> {
  const push = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES), ...auth },
    body: MODEL,
  });
  expect(push.status, await push.clone().text()).toBe(201);
  expect((await srv.json('PUT', `/api/v1/models/${name}/review-policy`, { confidenceThreshold: threshold }, auth)).status).toBe(200);
  const infer = await srv.json('POST', `/v2/models/${name}/infer`, { inputs: [{ name: 'input', shape: [probe.input.length, 12], datatype: 'FP32', data: probe.input.flat() }] }, auth);
  expect(infer.status).toBe(200);
  await srv.warden.log!.flush();
  await srv.warden.review.settled();
}

function fmtPct(v: number): string {
  return `${(v * 100).toFixed(1)} %`;
}

describe.skipIf(!chromiumPath)('labeling page', () => {
  let srv: TestServer;
  let b: BrowserSession;
  const keys: Record<string, string> = {};
  const as = (role: string) => ({ authorization: `Bearer ${keys[role]}` });
  const items = async (q: string): Promise<Item[]> => (await srv.json('GET', `/api/v1/review/items?${q}`, undefined, as('admin'))).body.items;
  const queue = async () => {
    const body = (await srv.json('GET', '/api/v1/review/queues', undefined, as('viewer'))).body as { claimTtlMs: number; queues: { model: string; open: number; claimed: number; labelled: number; oldestOpenAt: number | null }[] };
    expect(body.claimTtlMs).toBe(CLAIM_TTL_MS);
    return body.queues.find((q) => q.model === 'bike-busy')!;
  };
  /** The page's figures: what GET /api/v1/review/queues gives, which is what listing the items per status gives. */
  const expectQueueFigures = async () => {
    const { page } = b;
    const q = await queue();
    const open = await items('model=bike-busy&status=open&limit=1000');
    expect(q).toMatchObject({
      open: open.length,
      claimed: (await items('model=bike-busy&status=claimed&limit=1000')).length,
      labelled: (await items('model=bike-busy&status=labelled&limit=1000')).length,
      oldestOpenAt: (open[0] as unknown as { createdAt: number } | undefined)?.createdAt ?? null,
    });
    await expect.poll(() => page.getByTestId('queue-open').textContent()).toBe(String(q.open));
    await expect.poll(() => page.getByTestId('queue-claimed').textContent()).toBe(String(q.claimed));
    await expect.poll(() => page.getByTestId('queue-labelled').textContent()).toBe(String(q.labelled));
    return q;
  };
  const humanLabels = async (): Promise<number> => (await srv.json('GET', '/api/v1/labels/stats?model=bike-busy', undefined, as('admin'))).body.bySource.human ?? 0;
  const currentId = async () => Number((await b.page.getByTestId('current-item-id').textContent())!.replace('#', ''));

  /** Removes the expected entries from the page's problems; returns how many there were. */
  const drop = (re: RegExp): number => {
    const n = b.problems.length;
    b.problems.splice(0, n, ...b.problems.filter((p) => !re.test(p)));
    return n - b.problems.length;
  };

  async function signIn(key: string): Promise<void> {
    const { page } = b;
    await page.goto(`${srv.url}/#/labeling?model=bike-busy`);
    await page.getByLabel('API key').waitFor();
    // The page first asks GET /api/v1/session without a key to learn whether one is needed: a 401 Chromium logs.
    drop(/status of 401/);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('session-role').waitFor();
  }

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true }, predictionLog: { flushIntervalMs: 20 } });
    for (const [role, name] of [
      ['admin', 'root'],
      ['predictor', 'ann'],
      ['other', 'bob'],
      ['viewer', 'vera'],
    ] as const) {
      keys[role] = (await createApiKey(srv.warden.stores.metadata, name, role === 'other' ? 'predictor' : role)).secret;
    }
    await srv.warden.keys.reload();
    await seed(srv, as('admin'), 'bike-busy', 0.7);
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    await b.context.addInitScript(CSP_PROBE);
  });
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it('shows the queue counts the API gives', async () => {
    const asked: string[] = [];
    const record = (r: { url(): string }) => asked.push(new URL(r.url()).pathname + new URL(r.url()).search);
    b.page.on('request', record);
    await signIn(keys.predictor!);
    const { page } = b;
    const open = await items('model=bike-busy&status=open&limit=1000');
    expect(open.length).toBeGreaterThan(5);
    expect(await expectQueueFigures()).toMatchObject({ open: open.length, claimed: 0, labelled: 0 });
    // The claim TTL comes from the server (claimTtlMs), not a constant in the page.
    expect(await page.locator('.stat', { has: page.getByTestId('queue-claimed') }).textContent()).toContain(`a claim holds ${CLAIM_TTL_MS / 60_000} min`);
    const human = String(await humanLabels());
    await expect.poll(() => page.getByTestId('human-labels').textContent()).toBe(human);
    expect(await page.getByTestId('labeling-policy').textContent()).toContain('confidence below 70 %');
    // The figures come from one GET /api/v1/review/queues: no per-model policy reads, no listing to count.
    page.off('request', record);
    expect(asked.filter((u) => u.startsWith('/api/v1/review/queues'))).not.toEqual([]);
    expect(asked.filter((u) => /review-policy|status=(open|labelled)&limit=1000/.test(u))).toEqual([]);
    // The open-items table lists them oldest first.
    expect(await page.getByTestId('open-items').locator('tbody tr').first().locator('td').first().textContent()).toBe(`#${open[0]!.id}`);
  });

  it('claims the oldest open item with c and shows its inputs, prediction and claim countdown', async () => {
    const { page } = b;
    const [oldest] = await items('model=bike-busy&status=open&limit=1');
    await page.keyboard.press('c');
    await page.getByTestId('current-item').waitFor();
    expect(await currentId()).toBe(oldest!.id);
    const claimed = (await srv.json('GET', `/api/v1/review/items/${oldest!.id}`, undefined, as('admin'))).body as Item;
    expect(claimed).toMatchObject({ status: 'claimed', claimedBy: 'ann' });
    expect(claimed.claimExpiresAt).toBe(claimed.claimedAt! + CLAIM_TTL_MS);
    // The counts follow the claim: one fewer open, one claimed.
    expect(await expectQueueFigures()).toMatchObject({ claimed: 1 });
    // Inputs as a feature → value table, in the item's order.
    const rows = await page.getByTestId('item-inputs').locator('tbody tr').all();
    expect(rows).toHaveLength(probe.features.length);
    for (const [i, f] of probe.features.entries()) {
      expect(await rows[i]!.locator('th').textContent()).toBe(f);
      expect(Number(await rows[i]!.locator('td').textContent())).toBeCloseTo(claimed.inputs[f]!, 5);
    }
    const p = Array.isArray(claimed.prediction.probability) ? (claimed.prediction.probability as number[])[0]! : claimed.prediction.probability!;
    expect(await page.getByTestId('item-confidence').textContent()).toBe(fmtPct(claimed.confidence));
    expect(await page.getByTestId('item-predicted').textContent()).toBe(`${p >= 0.5 ? 1 : 0} (P(y = 1) = ${fmtPct(p)})`);
    // The claim ends 15 min after claimedAt; the countdown runs.
    const read = async () => {
      const m = /expires in (\d+):(\d\d)/.exec((await page.getByTestId('claim-expiry').textContent())!);
      expect(m, 'countdown shown').not.toBeNull();
      return Number(m![1]) * 60 + Number(m![2]);
    };
    const first = await read();
    expect(first).toBeLessThanOrEqual(15 * 60);
    expect(first).toBeGreaterThan(14 * 60);
    // The countdown is to the server's claimExpiresAt (same machine clock here), within the page's 1 s tick.
    expect(Math.abs(first - (claimed.claimExpiresAt! - Date.now()) / 1000)).toBeLessThan(3);
    await expect.poll(read, { timeout: 5000 }).toBeLessThan(first);
    expect(await page.locator('kbd', { hasText: /^y$/ }).count()).toBe(1);
  });

  it('ignores the keys while focus is in a field, then labels with 1 and n and moves to the next item', async () => {
    const { page } = b;
    const before = await humanLabels();
    const a = await currentId();
    // Typing into the model selector is not a label.
    await page.getByTestId('labeling-model').focus();
    await page.keyboard.press('1');
    await page.keyboard.press('s');
    expect(await currentId()).toBe(a);
    expect(((await srv.json('GET', `/api/v1/review/items/${a}`, undefined, as('admin'))).body as Item).status).toBe('claimed');
    await page.locator('body').click({ position: { x: 5, y: 5 } });

    await page.keyboard.press('1');
    await expect.poll(currentId).not.toBe(a);
    const la = (await srv.json('GET', `/api/v1/review/items/${a}`, undefined, as('admin'))).body as Item;
    expect(la).toMatchObject({ status: 'labelled', label: 1, labelledBy: 'ann' });
    const bId = await currentId();
    const [nextOpen] = await items('model=bike-busy&status=claimed&limit=10');
    expect(nextOpen!.id).toBe(bId);
    await page.keyboard.press('n');
    await expect.poll(currentId).not.toBe(bId);
    expect(((await srv.json('GET', `/api/v1/review/items/${bId}`, undefined, as('admin'))).body as Item).label).toBe(0);
    // Both labels are in the labels store as human labels, and the page says so.
    expect(await humanLabels()).toBe(before + 2);
    await expect.poll(() => page.getByTestId('human-labels').textContent()).toBe(String(before + 2));
    await expect.poll(() => page.getByTestId('queue-labelled').textContent()).toBe('2');
    expect(await expectQueueFigures()).toMatchObject({ labelled: 2 });
    expect(await page.getByTestId('labelled-this-session').textContent()).toContain('2 labelled');
    expect(await page.getByTestId('lab-notes').textContent()).toContain('human label');
  });

  it('skip (s) moves on and keeps the claim', async () => {
    const { page } = b;
    const s = await currentId();
    await page.keyboard.press('s');
    await expect.poll(currentId).not.toBe(s);
    expect(((await srv.json('GET', `/api/v1/review/items/${s}`, undefined, as('admin'))).body as Item)).toMatchObject({ status: 'claimed', claimedBy: 'ann' });
    expect(await page.getByTestId('lab-notes').textContent()).toContain(`Skipped #${s}`);
  });

  it('an item another reviewer claimed first (409) is passed over with a message', async () => {
    const { page } = b;
    const current = await currentId();
    // Bob claims the oldest open item after the page has read the open list but before it claims: a real race,
    // made deterministic by holding the list response until Bob's claim is in.
    let raced: number | undefined;
    let bobStatus = 0;
    await page.route(/\/api\/v1\/review\/items\?.*status=open/, async (route) => {
      if (raced !== undefined) return route.continue();
      const res = await route.fetch();
      const body = (await res.json()) as { items: Item[] };
      if (body.items[0]) {
        raced = body.items[0].id;
        bobStatus = (await srv.json('POST', `/api/v1/review/items/${raced}/claim`, { reviewer: 'bob' }, as('other'))).status;
      }
      await route.fulfill({ response: res, json: body });
    });
    await page.keyboard.press('y');
    await expect.poll(currentId).not.toBe(current);
    await page.unrouteAll({ behavior: 'wait' });
    expect(bobStatus).toBe(200);
    // Chromium logs the refused claim as a failed load: that one is expected.
    expect(drop(/status of 409/)).toBe(1);
    expect(raced).toBeDefined();
    const mine = await currentId();
    expect(mine).not.toBe(raced);
    expect(((await srv.json('GET', `/api/v1/review/items/${mine}`, undefined, as('admin'))).body as Item).claimedBy).toBe('ann');
    expect(((await srv.json('GET', `/api/v1/review/items/${raced}`, undefined, as('admin'))).body as Item).claimedBy).toBe('bob');
    expect(await page.getByTestId('lab-notes').textContent()).toContain(`Item #${raced} was taken by someone else`);
  });

  it('has no accessibility violations in light and dark, no CSP violation, and leaves a screenshot', async () => {
    const { page } = b;
    await page.getByTestId('current-item').waitFor();
    // Notes and countdown settle; the screenshot shows one item being reviewed.
    await page.mouse.move(0, 0);
    await screenshot(page, 'labeling');
    // The docs' copy is the first screen (1400 × 900): the queue and the item under review.
    await docsScreenshot(page, 'labeling');
    const light = await axe(page);
    expect(light, describeViolations(light)).toEqual([]);
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    const dark = await axe(page);
    expect(dark, describeViolations(dark)).toEqual([]);
    await screenshot(page, 'labeling-dark');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });

  it('a viewer sees the queue read-only: no claim or label buttons, and the keys do nothing', async () => {
    const { page } = b;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(keys.viewer!);
    await page.getByTestId('labeling-readonly').waitFor();
    await expectQueueFigures();
    for (const id of ['claim-next', 'label-1', 'label-0', 'skip', 'renew-claim']) expect(await page.getByTestId(id).count(), id).toBe(0);
    expect(await page.getByRole('button', { name: /claim|label/i }).count()).toBe(0);
    await page.keyboard.press('c');
    await page.waitForTimeout(300);
    expect(await items('model=bike-busy&status=claimed&limit=1000')).toHaveLength(3); // ann's skipped and current, bob's
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });
});

describe.skipIf(!chromiumPath)('labeling page with auth off', () => {
  let srv: TestServer;
  let b: BrowserSession;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    await seed(srv, {}, 'bike-busy', 0.7);
    b = await openBrowser();
    await b.context.addInitScript(CSP_PROBE);
  });
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it('asks for a reviewer name, ignores the label keys typed into it, and labels under that name', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/labeling`);
    // The only model with a policy is picked without ?model=.
    await page.getByLabel('Reviewer name').waitFor();
    expect(await page.getByTestId('claim-next').isDisabled()).toBe(true);
    await page.getByLabel('Reviewer name').fill('');
    await page.getByLabel('Reviewer name').pressSequentially('c1y0ns');
    expect(await page.getByLabel('Reviewer name').inputValue()).toBe('c1y0ns');
    expect(await page.getByTestId('current-item').count()).toBe(0);
    await page.getByTestId('claim-next').click();
    await page.getByTestId('current-item').waitFor();
    const id = Number((await page.getByTestId('current-item-id').textContent())!.replace('#', ''));
    // Typing into the field while an item is up does not label it either.
    await page.getByLabel('Reviewer name').press('End');
    await page.getByLabel('Reviewer name').pressSequentially('1');
    await page.getByLabel('Reviewer name').press('Backspace');
    expect((await srv.json('GET', `/api/v1/review/items/${id}`)).body.status).toBe('claimed');
    await page.getByTestId('label-1').click();
    await expect.poll(async () => (await srv.json('GET', `/api/v1/review/items/${id}`)).body.labelledBy).toBe('c1y0ns');
    expect((await srv.json('GET', '/api/v1/labels/stats?model=bike-busy')).body.bySource.human).toBe(1);
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });

  it('keeps a model whose policy was deleted selectable while it has unlabelled items, with the queue counts', async () => {
    const { page } = b;
    expect((await srv.json('DELETE', '/api/v1/models/bike-busy/review-policy')).status).toBe(204);
    const queues = async () => (await srv.json('GET', '/api/v1/review/queues')).body.queues as { model: string; policy: unknown; open: number; claimed: number; labelled: number }[];
    expect(await queues()).toMatchObject([{ model: 'bike-busy', policy: null }]);
    // The previous test's label is followed by a claim of the next item: let it land before the page reads.
    await expect.poll(async () => (await queues())[0]!.claimed).toBe(1);
    await page.reload();
    await expect.poll(() => page.getByTestId('labeling-model').locator('option').allTextContents()).toEqual(['bike-busy (no policy)']);
    const shown = async () => ['queue-open', 'queue-claimed', 'queue-labelled'].map(async (id) => page.getByTestId(id).textContent());
    const same = async () => {
      const [q] = await queues();
      const [open, claimed, labelled] = await Promise.all(await shown());
      return [open, claimed, labelled].join() === [q!.open, q!.claimed, q!.labelled].join();
    };
    await page.getByTestId('queue-open').waitFor();
    await expect.poll(same).toBe(true);
    expect(await page.getByText('This model has no review policy now').count()).toBe(1);
    expect(await page.getByTestId('labeling-policy').count()).toBe(0);
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });
});
