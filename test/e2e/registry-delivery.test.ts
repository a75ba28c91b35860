/**
 * The registry and delivery views in a real Chromium against a real server with keys: two linear bike models
 * (built-in trainer, seeds 1 and 2) pushed through the API with lineage metadata, and a canary of v2 under steady
 * traffic with a 1 s analysis interval. The registry must show each version's sha256, size, signature and
 * metadata as the API has them; the delivery view the rollout's split and step, every analysis decision with the
 * values the API stored, and the history. A deployer pauses, resumes, promotes and aborts from the page (the API
 * shows each new state); a refused action (409) is shown with its message; a viewer sees no action button. A
 * mirrored request's shadow copy shows on the request page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { createApiKey } from '../../src/security/index.ts';
import { bikeInstance, until } from '../helpers/rollouts.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { CSP_PROBE, axe, chromiumPath, cspViolations, describeViolations, openBrowser, screenshot, type BrowserSession, docsScreenshot } from './browser.ts';



/** As the delivery view formats a measured value (web/src/views/delivery.tsx fmtValue). */
function fmtValue(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(3);
}

/** As the registry formats a size (web/src/views/registry.tsx fmtBytes). */
function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

interface Decision {
  id: number;
  metric: string;
  verdict: string;
  value: number | null;
  threshold: number | null;
  nStable: number;
  nCandidate: number;
}

const SPEC = { steps: [{ weight: 30, mirror: 100, pause: '1h' }, { weight: 60, pause: '1h' }], analysis: { interval: '1s', minSamples: 40 } };

describe.skipIf(!chromiumPath)('registry and delivery views', () => {
  let srv: TestServer;
  let b: BrowserSession;
  const keys: Record<string, string> = {};
  const as = (role: string) => ({ authorization: `Bearer ${keys[role]}` });
  const get = async (p: string) => (await srv.json('GET', p, undefined, as('admin'))).body;
  let traffic = true;
  let loop: Promise<void> = Promise.resolve();

  const drop = (re: RegExp): number => {
    const n = b.problems.length;
    b.problems.splice(0, n, ...b.problems.filter((p) => !re.test(p)));
    return n - b.problems.length;
  };

  async function signIn(key: string, hash: string): Promise<void> {
    const { page } = b;
    await page.goto(`${srv.url}/${hash}`);
    await page.getByLabel('API key').waitFor();
    drop(/status of 401/);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('session-role').waitFor();
  }

  /** Opens a view by its hash and reloads, so a view already on screen reads everything afresh. */
  const open = async (hash: string) => {
    await b.page.goto(`${srv.url}/${hash}`);
    await b.page.reload();
  };

  const startCanary = async () => {
    const r = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, strategy: 'canary', reason: 'retrained', spec: SPEC }, as('deployer'));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.rollout.id as number;
  };

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true }, rollouts: { syncMs: 100, leaseMs: 2000 }, predictionLog: { flushIntervalMs: 20 } } as never);
    for (const role of ['admin', 'deployer', 'viewer'] as const) keys[role] = (await createApiKey(srv.warden.stores.metadata, `${role}-1`, role)).secret;
    await srv.warden.keys.reload();
    for (const seed of [1, 2]) {
      const onnx = (await train({ ...bikeSharingDemoOptions('linear'), seed })).onnx;
      const res = await fetch(`${srv.url}/api/v1/models/bike/versions${seed === 1 ? '?alias=champion' : ''}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'x-warden-description': 'hourly bike rentals',
          'x-warden-metadata': JSON.stringify({ sourceCommit: `c0ffee${seed}`, tags: { team: 'mobility', seed: String(seed) } }),
          ...as('deployer'),
        },
        body: Buffer.from(onnx),
      });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    await srv.warden.table.settled();
    const caller = async (c: number) => {
      for (let i = c; traffic; i += 2) await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(i)] }, as('admin'));
    };
    loop = Promise.all([0, 1].map(caller)).then(() => undefined);
    await startCanary();
    // At least one analysis run with enough samples on each side.
    await until(async () => {
      const d = (await get('/api/v1/deployments/bike/rollout/decisions')).decisions as Decision[];
      return d.some((x) => x.nCandidate >= 40) ? d : undefined;
    }, 60_000, 'an analysis run with 40 requests on each side');
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    await b.context.addInitScript(CSP_PROBE);
  }, 120_000);

  afterAll(async () => {
    traffic = false;
    await loop;
    await b?.close();
    await srv?.close();
  });

  it('registry: every version with its sha256, size, signature and metadata as the API has them', async () => {
    await signIn(keys.deployer!, '#/registry');
    const { page } = b;
    const model = await get('/api/v1/models/bike');
    await page.getByTestId('versions').waitFor();
    expect(await page.getByTestId('model-versions-bike').textContent()).toBe(String(model.versions.length));
    for (const v of model.versions) {
      expect(await page.getByTestId(`version-sha-${v.version}`).textContent()).toBe(v.sha256);
      expect(await page.getByTestId(`version-size-${v.version}`).textContent()).toBe(fmtBytes(v.sizeBytes));
    }
    // The latest version is shown in detail; choose v1 and read its signature and lineage.
    await page.getByRole('link', { name: 'v1', exact: true }).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toContain('version=1');
    const v1 = model.versions.find((v: { version: number }) => v.version === 1);
    expect(await page.getByTestId('sig-inputs').locator('tbody th').allTextContents()).toEqual(v1.signature.inputs.map((i: { name: string }) => i.name));
    expect(await page.getByTestId('sig-outputs').locator('tbody th').allTextContents()).toEqual(v1.signature.outputs.map((i: { name: string }) => i.name));
    expect(v1.signature.features.length).toBe(11);
    for (const f of v1.signature.features as { name: string; min?: number; max?: number }[]) {
      if (f.min !== undefined) expect(Number(await page.getByTestId(`feature-min-${f.name}`).textContent()), f.name).toBeCloseTo(f.min, 5);
      if (f.max !== undefined) expect(Number(await page.getByTestId(`feature-max-${f.name}`).textContent()), f.name).toBeCloseTo(f.max, 5);
    }
    expect(await page.getByTestId('lineage-commit').textContent()).toBe('c0ffee1');
    expect(await page.getByTestId('lineage-data').textContent()).toBe(v1.metadata.trainingDataSha256);
    expect(await page.getByTestId('tag-team').textContent()).toBe('mobility');
    const metrics = Object.entries(v1.metadata.metrics as Record<string, number>);
    expect(metrics.length).toBeGreaterThan(0);
    for (const [k, val] of metrics) expect(Number(await page.getByTestId(`metric-${k}`).textContent()), k).toBe(Number(val.toPrecision(6)));
    expect(await page.locator('[data-model=bike] .badge').textContent()).toBe('champion → v1');
    await page.mouse.move(0, 0);
    await docsScreenshot(page, 'registry');
    await screenshot(page, 'registry');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
  });

  it('delivery: the rollout in progress and its analysis decisions with the values the API stored', async () => {
    const { page } = b;
    await open('#/delivery?deployment=bike');
    await page.getByTestId('last-run').waitFor();
    const status = await get('/api/v1/deployments/bike/rollout');
    expect(await page.getByTestId('rollout-state').textContent()).toBe('running');
    expect(await page.getByTestId('rollout-weight').textContent()).toBe(String(status.rollout.weight));
    expect(await page.getByTestId('rollout-step').textContent()).toBe('1');
    expect(await page.getByTestId('candidate-bike').textContent()).toContain('v2');
    // Every decision row shown is one the API stored, with its numbers.
    const all = new Map(((await get(`/api/v1/deployments/bike/rollout/decisions?rollout=${status.rollout.id}&limit=5000`)).decisions as Decision[]).map((d) => [d.id, d]));
    for (const table of ['last-run', 'decisions']) {
      const rows = page.getByTestId(table).locator('tbody tr');
      const n = await rows.count();
      expect(n, table).toBeGreaterThan(0);
      for (let i = 0; i < Math.min(n, 30); i++) {
        const tr = rows.nth(i);
        const d = all.get(Number(await tr.getAttribute('data-decision')));
        expect(d, `${table} row ${i}`).toBeDefined();
        expect(await tr.locator('th').textContent()).toBe(d!.metric);
        expect(await tr.locator('[data-field=value]').textContent(), d!.metric).toBe(fmtValue(d!.value));
        expect(await tr.locator('[data-field=threshold]').textContent()).toBe(fmtValue(d!.threshold));
        expect(await tr.locator('[data-field=nStable]').textContent()).toBe(d!.nStable.toLocaleString('en-US'));
        expect(await tr.locator('[data-field=nCandidate]').textContent()).toBe(d!.nCandidate.toLocaleString('en-US'));
        expect(await tr.locator('.badge').textContent()).toBe(d!.verdict);
      }
    }
    const metrics = new Set([...all.values()].map((d) => d.metric));
    for (const m of ['errorRate', 'latencyP99', 'predictionDistance', 'sampleRatio']) expect(metrics, m).toContain(m);
    expect(await page.getByTestId('history').locator('[data-kind=rollout-start]').count()).toBe(1);
    await page.mouse.move(0, 0);
    await docsScreenshot(page, 'delivery');
    await screenshot(page, 'delivery');
  });

  it('a mirrored request shows its shadow copy on the request page', async () => {
    const { page } = b;
    // Step 1 mirrors every request the stable version answers; find one and wait for its copy to be logged.
    let id = '';
    for (let i = 0; i < 50 && !id; i++) {
      const r = await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(i)] }, { ...as('admin'), 'x-request-id': `mirrored-${i}` });
      if (r.body.model_version === '1') id = `mirrored-${i}`;
    }
    expect(id).not.toBe('');
    const shadow = await until(async () => {
      const evs = (await get(`/api/v1/predictions?requestId=${id}`)).events as { status: string; version: number; latencyMs: number }[];
      return evs.find((e) => e.status === 'shadow');
    }, 20_000, 'the shadow copy');
    await open(`#/requests/${id}`);
    await page.getByTestId('shadow-copies').waitFor();
    const row = page.getByTestId('shadow-copies').locator('tr[data-shadow]');
    expect(await row.count()).toBe(1);
    expect(await row.locator('td').first().textContent()).toBe(`v${shadow.version}`);
    expect(shadow.version).toBe(2);
    expect(await page.getByTestId('request-version').textContent()).toBe('v1');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
  });

  it('a deployer pauses, resumes and promotes from the page; the API shows each new state', async () => {
    const { page } = b;
    await open('#/delivery?deployment=bike');
    const state = async () => (await get('/api/v1/deployments/bike/rollout')).rollout as { state: string; step: number; weight: number };
    await page.getByLabel('Reason (kept in the history)').fill('looking at latency');
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await expect.poll(async () => (await state()).state).toBe('paused');
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toBe('paused');
    expect(await page.getByTestId('action-result').textContent()).toContain('is paused');
    const hist = (await get('/api/v1/deployments/bike/history')).events as { kind: string; reason: string; actor: string }[];
    expect(hist.at(-1)).toMatchObject({ kind: 'rollout-pause', reason: 'looking at latency' });
    expect(hist.at(-1)!.actor).toContain('deployer-1');
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await expect.poll(async () => (await state()).state).toBe('running');
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toBe('running');
    await page.getByRole('button', { name: 'Promote', exact: true }).click();
    await expect.poll(async () => (await state()).step).toBe(1);
    expect((await state()).weight).toBe(60);
    await expect.poll(() => page.getByTestId('rollout-weight').textContent()).toBe('60');
    expect(await page.getByTestId('rollout-step').textContent()).toBe('2');
  });

  it('a refused action is shown with the API\'s message', async () => {
    const { page } = b;
    // Aborted behind the page's back: the page still offers Pause, and the API refuses it with 409.
    expect((await srv.json('POST', '/api/v1/deployments/bike/rollout/abort', { reason: 'from a script' }, as('deployer'))).status).toBe(200);
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await expect.poll(() => page.getByRole('alert').filter({ hasText: 'refused' }).textContent()).toContain('bike has no running or paused rollout');
    expect(drop(/status of 409/)).toBe(1);
  });

  it('abort asks for confirmation, then sends all traffic back to stable', async () => {
    const { page } = b;
    const id = await startCanary();
    await open('#/delivery?deployment=bike');
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toBe('running');
    await page.getByRole('button', { name: 'Abort…' }).click();
    // Nothing happens before the confirmation.
    expect((await get('/api/v1/deployments/bike/rollout')).rollout.state).toBe('running');
    await page.getByRole('button', { name: 'Confirm abort' }).click();
    await expect.poll(async () => (await get('/api/v1/deployments/bike/rollout')).rollout).toMatchObject({ id, state: 'aborted' });
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toBe('aborted');
    expect((await get('/api/v1/deployments/bike')).candidate).toBeNull();
    expect(await page.getByRole('button', { name: /Promote|Pause|Resume|Abort/ }).count()).toBe(0);
  });

  it('an A/B experiment shows each metric per arm with the numbers the experiment route gives', async () => {
    const { page } = b;
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, strategy: 'ab', spec: { experiment: { weight: 50, metrics: ['conversion'], mde: 0.5, unkeyed: 'stable' } } }, as('deployer'));
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    const arm = new Map<string, string>();
    for (let u = 0; u < 120; u++) {
      const r = await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(u)], parameters: { keys: [`user-${u}`] } }, as('admin'));
      expect(r.status).toBe(200);
      arm.set(`user-${u}`, r.body.model_version);
    }
    await srv.warden.log!.flush();
    const outcomes = [...arm].map(([key, v], i) => ({ key, metric: 'conversion', value: (v === '2' ? i % 5 < 2 : i % 10 === 0) ? 1 : 0 }));
    expect((await srv.json('POST', '/api/v1/outcomes', { outcomes }, as('admin'))).status).toBe(200);
    await open('#/delivery?deployment=bike');
    await page.getByTestId('experiment').waitFor();
    const exp = await get('/api/v1/deployments/bike/experiment');
    const m = exp.metrics[0];
    const row = page.getByTestId('experiment').locator('tr[data-metric=conversion]');
    expect(await row.locator('[data-field=stableMean]').textContent()).toBe(`${fmtValue(m.stable.mean)} (${m.stable.units})`);
    expect(await row.locator('[data-field=candidateMean]').textContent()).toBe(`${fmtValue(m.candidate.mean)} (${m.candidate.units})`);
    expect(await row.locator('[data-field=difference]').textContent()).toBe(`${fmtValue(m.difference)} [${fmtValue(m.lower)}, ${fmtValue(m.upper)}]`);
    expect(await row.locator('[data-field=p]').textContent()).toBe(`${fmtValue(m.pValue)} (${fmtValue(m.adjustedPValue)})`);
    expect(await page.getByTestId('exp-verdict').textContent()).toBe(exp.verdict);
    expect(await page.getByTestId('exp-srm').textContent()).toContain(`p = ${fmtValue(exp.sampleRatio.pValue)}`);
    await screenshot(page, 'delivery-ab');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
    expect((await srv.json('POST', '/api/v1/deployments/bike/rollout/abort', {}, as('deployer'))).status).toBe(200);
  });

  it('has no accessibility violations in light and dark, no CSP violation or console error', async () => {
    const { page } = b;
    await startCanary();
    await open('#/delivery?deployment=bike');
    await expect.poll(() => page.getByTestId('rollout-state').textContent()).toBe('running');
    await page.getByRole('button', { name: 'Abort…' }).click();
    const light = await axe(page);
    expect(light, describeViolations(light)).toEqual([]);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    const dark = await axe(page);
    expect(dark, describeViolations(dark)).toEqual([]);
    await screenshot(page, 'delivery-dark');
    await open('#/registry');
    await page.getByTestId('versions').waitFor();
    const darkReg = await axe(page);
    expect(darkReg, describeViolations(darkReg)).toEqual([]);
    await screenshot(page, 'registry-dark');
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });

  it('a viewer sees the rollout and its decisions but no action button', async () => {
    const { page } = b;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(keys.viewer!, '#/delivery?deployment=bike');
    await page.getByTestId('last-run').waitFor();
    expect(await page.getByTestId('rollout-state').textContent()).toBe('running');
    expect(await page.getByRole('button', { name: /Promote|Pause|Resume|Abort/ }).count()).toBe(0);
    expect(await page.getByLabel('Reason (kept in the history)').count()).toBe(0);
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });
});
