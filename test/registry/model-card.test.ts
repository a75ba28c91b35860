/**
 * Model cards over real HTTP: the bike logistic regression is pushed with owner, intended use, offline accuracy,
 * training-data hash and commit; a 2011 reference with the true counts (performance: binary, segments by
 * weathersit); three hours of 2012 served with keys (the third in Fahrenheit, so it drifts), labels sent, windows
 * flushed and alerts evaluated. The card must carry what the windows API, the deployment history and the alerts API
 * say, and list as gaps exactly what was not given. A second version pushed as retrained from v1 and deployed
 * inherits the owner through its lineage; a bare model shows every gap; a server without monitoring or alerting
 * says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../src/registry/index.ts';
import type { WindowSummary } from '../../src/monitoring/index.ts';
import { CARD_SERVER, DATA_SHA, FEATURES, GBC, GBR, INTENDED_USE, LOGREG, OWNER, PER_WINDOW, pushVersion as push, seedCardModel } from '../helpers/model-card.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const card = async (srv: TestServer, p: string): Promise<ModelCard> => {
  const r = await srv.json('GET', `/api/v1/models/${p}/card`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as ModelCard;
};
const gapFields = (c: ModelCard) => c.gaps.map((g) => g.field);
const accuracy = (m: unknown) => (m as { accuracy: number }).accuracy;

describe('model cards', () => {
  let srv: TestServer;
  let windows: WindowSummary[];
  let v1: ModelCard;

  beforeAll(async () => {
    srv = await startTestServer(CARD_SERVER);
    await seedCardModel(srv);
    windows = (await srv.json('GET', '/api/v1/models/busy/versions/1/monitoring/windows?summary=true&order=newest')).body.windows;
    v1 = await card(srv, 'busy/versions/1');
  }, 120_000);
  afterAll(() => srv?.close());

  it('fills intended use, owner, signature, lineage and offline metrics from the version metadata', () => {
    expect(v1).toMatchObject({ kind: 'warden.model-card', model: 'busy', version: 1 });
    expect(v1.overview.owner).toEqual({ value: OWNER, from: 'v1 tags.owner' });
    expect(v1.overview.intendedUse).toEqual({ value: INTENDED_USE, from: 'v1 tags.intended_use' });
    expect(v1.overview.modelDescription).toBe('is the hour busy (rentals above the 2011 median)');
    expect(v1.overview.aliases).toEqual(['champion']);
    expect(v1.signature.features!.map((f) => f.name)).toEqual(FEATURES);
    expect(v1.signature.outputs.map((o) => o.name)).toEqual(['probability']);
    expect(v1.lineage).toMatchObject({ trainingDataSha256: DATA_SHA, sourceCommit: 'c0ffee1', parentVersion: null, trigger: null });
    expect(v1.offlineMetrics).toEqual({ accuracy: 0.99 });
  });

  it('has live and estimated accuracy per window as the windows API has them, and the trend over them', () => {
    expect(windows).toHaveLength(3);
    const p = v1.performance!;
    expect(p).toMatchObject({ task: 'binary', metric: 'accuracy' });
    expect(p.windows.map((w) => w.windowStart)).toEqual(windows.map((w) => w.windowStart));
    for (const [i, w] of windows.entries()) {
      expect(w.performance!.labelled).toBe(PER_WINDOW);
      expect(p.windows[i]!.labelled).toBe(PER_WINDOW);
      expect(p.windows[i]!.realized).toBeCloseTo(accuracy(w.performance!.realized), 5);
      expect(p.windows[i]!.estimated).toBeCloseTo(accuracy(w.performance!.estimated), 5);
    }
    expect(p.latest.realized).toBeCloseTo(accuracy(windows[0]!.performance!.realized), 5);
    expect(p.latest.offline).toBe(0.99);
    expect(p.latest.healthy).toBe(false);
    // Oldest to newest: the older half is the first window, the newer half the last.
    const acc = windows.map((w) => accuracy(w.performance!.realized)).reverse();
    expect(p.trend).toMatchObject({ basis: 'realized', windows: 3 });
    expect(p.trend!.earlier).toBeCloseTo(acc[0]!, 5);
    expect(p.trend!.recent).toBeCloseTo(acc[2]!, 5);
    const change = acc[2]! - acc[0]!;
    expect(p.trend!.direction).toBe(Math.abs(change) <= 0.01 * acc[0]! ? 'stable' : change > 0 ? 'improving' : 'worsening');
  });

  it('has the drift history, with the Fahrenheit hour drifting on temp', () => {
    const d = v1.drift!;
    expect(d.windows).toBe(3);
    expect(d.history.map((h) => h.windowStart)).toEqual(windows.map((w) => w.windowStart));
    expect(d.history[0]!.drifted).toContain('temp');
    expect(d.driftedWindows).toBe(windows.filter((w) => w.datasetDrift).length);
    for (const [i, w] of windows.entries()) expect(d.history[i]!.drifted).toEqual(w.features.filter((f) => f.drift).map((f) => f.column));
    expect(d.columns.find((c) => c.column === 'temp')!.driftedWindows).toBeGreaterThanOrEqual(1);
  });

  it('has segments by weathersit and the global feature importance of the windows', () => {
    const s = v1.segments!;
    expect(s.windowStart).toBe(windows[0]!.windowStart);
    const seg = windows[0]!.performance!.segments!;
    expect(s.rows.map((r) => [r.column, r.value, r.labelled])).toEqual(seg.map((r) => [r.column, r.value, r.labelled]));
    expect(s.rows.reduce((a, r) => a + r.labelled, 0)).toBe(PER_WINDOW);
    const imp = v1.importance!;
    const withImp = windows.filter((w) => w.importance);
    expect(withImp.length).toBeGreaterThan(0);
    expect(imp.windows).toBe(withImp.length);
    expect(imp.features.map((f) => f.feature).sort()).toEqual([...FEATURES].sort());
    for (const f of imp.features) {
      const m = withImp.reduce((a, w) => a + w.importance!.features[f.feature]!, 0) / withImp.length;
      expect(f.meanAbsShap).toBeCloseTo(m, 4);
    }
    for (let i = 1; i < imp.features.length; i++) expect(imp.features[i - 1]!.meanAbsShap).toBeGreaterThanOrEqual(imp.features[i]!.meanAbsShap);
  });

  it('lists the open alerts of the version, as the alerts API has them', async () => {
    const api = (await srv.json('GET', '/api/v1/alerts?deployment=busy')).body.alerts as { alertname: string; labels: Record<string, string> }[];
    const mine = api.filter((a) => a.labels.version === '1');
    expect(mine.map((a) => a.alertname)).toContain('WardenLivePerformanceBelowOffline');
    expect(v1.alerts!.map((a) => a.alertname).sort()).toEqual(mine.map((a) => a.alertname).sort());
    expect(v1.alerts!.find((a) => a.alertname === 'WardenLivePerformanceBelowOffline')).toMatchObject({ severity: 'page', runbook: expect.stringContaining('training-serving-skew') });
  });

  it('lists as gaps only what was not given: here the lineage of a hand-pushed version', () => {
    expect(gapFields(v1).sort()).toEqual(['lineage.parentVersion', 'lineage.trigger']);
    // v1 has tags already, and tags cannot change once set: only the next version can carry these.
    for (const g of v1.gaps) expect(g.fill).toMatch(/^v1's tags are fixed once set: push the next version with --metadata '\{"tags"/);
  });

  it('a retrained version: parent and trigger from its lineage tags, owner inherited from v1, and the deploy in both histories', async () => {
    await push(srv, 'busy', GBC, {
      'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))),
      'x-warden-metadata': JSON.stringify({ trainingDataSha256: DATA_SHA, sourceCommit: 'c0ffee2', metrics: { accuracy: 0.85 }, tags: { 'lineage.parent': '1', 'lineage.trigger': 'drift' } }),
    });
    const d = await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 2, force: true, inheritMonitoring: false, reason: 'card test' });
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    const v2 = await card(srv, 'busy/versions/2');
    expect(v2.lineage).toMatchObject({ parentVersion: 1, trigger: 'drift', sourceCommit: 'c0ffee2' });
    expect(v2.overview.owner).toEqual({ value: 'mobility-team', from: 'v1 tags.owner' });
    expect(v2.deployments.servingNow).toBe('stable');
    expect(v2.deployments.events.map((e) => [e.kind, e.fromVersion, e.toVersion])).toEqual([['deploy', 1, 2]]);
    // v2 has no reference: its monitoring fields are gaps; v1's alerts are not v2's.
    expect(gapFields(v2)).toEqual(expect.arrayContaining(['monitoring.reference', 'performance', 'drift', 'segments', 'importance']));
    expect(gapFields(v2)).not.toContain('lineage.parentVersion');
    expect(v2.alerts!.every((a) => a.labels.version !== '1')).toBe(true);
    const again = await card(srv, 'busy/versions/1');
    expect(again.deployments.servingNow).toBeNull();
    const history = (await srv.json('GET', '/api/v1/deployments/busy/history')).body.events as { kind: string; fromVersion: number | null; toVersion: number | null; actor: string }[];
    expect(again.deployments.events.map((e) => [e.kind, e.fromVersion, e.toVersion, e.actor])).toEqual(history.map((e) => [e.kind, e.fromVersion, e.toVersion, e.actor]).reverse());
    expect(again.deployments.events).toHaveLength(2);
    // `champion` resolves as a version does.
    expect((await card(srv, 'busy/versions/champion')).version).toBe(2);
  });

  it('a bare push has every gap, each with what fills it', async () => {
    await push(srv, 'bare', GBR, {});
    const c = await card(srv, 'bare/versions/1');
    expect(c.overview.owner).toBeNull();
    expect(c.overview.intendedUse).toBeNull();
    expect(c.signature.features).toBeNull();
    expect(c.performance).toBeNull();
    expect(gapFields(c).sort()).toEqual(
      [
        'overview.owner',
        'overview.intendedUse',
        'signature.features',
        'lineage.trainingDataSha256',
        'lineage.parentVersion',
        'lineage.sourceCommit',
        'lineage.trigger',
        'offlineMetrics',
        'monitoring.reference',
        'performance',
        'drift',
        'segments',
        'importance',
      ].sort(),
    );
    expect(c.gaps.find((g) => g.field === 'lineage.sourceCommit')!.fill).toMatch(/^push the same file again/);
    expect(c.gaps.find((g) => g.field === 'monitoring.reference')!.fill).toContain('PUT /api/v1/models/bare/versions/1/reference');
    expect(c.deployments.events).toEqual([]);
    // No champion alias: the latest version serves requests that name none.
    expect(c.deployments.servingNow).toBe('stable');
  });

  it('answers Markdown for ?format=md and for Accept: text/markdown, with the same facts', async () => {
    const md = await fetch(`${srv.url}/api/v1/models/busy/versions/1/card?format=md`);
    expect(md.status).toBe(200);
    expect(md.headers.get('content-type')).toMatch(/^text\/markdown/);
    const text = await md.text();
    expect(text).toMatch(/^# Model card: busy v1\n/);
    expect(text).toContain('**Owner:** mobility-team _(from v1 tags.owner)_');
    expect(text).toContain(`**Training data sha256:** \`${DATA_SHA}\``);
    expect(text).toContain('| `lineage.parentVersion` |');
    expect(text).toContain('| WardenLivePerformanceBelowOffline | page |');
    expect(text).toMatch(/\| deploy \| v1 → v2 \|/);
    expect(text).toContain(`| temp |`);
    const viaAccept = await fetch(`${srv.url}/api/v1/models/busy/versions/1/card`, { headers: { accept: 'text/markdown' } });
    expect(viaAccept.headers.get('content-type')).toMatch(/^text\/markdown/);
    const json = await fetch(`${srv.url}/api/v1/models/busy/versions/1/card?format=json`, { headers: { accept: 'text/markdown' } });
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('refuses an unknown model or version with 404 and a bad format with 400, in the API error shape', async () => {
    const m = await srv.json('GET', '/api/v1/models/nope/versions/1/card');
    expect(m.status).toBe(404);
    expect(m.body).toMatchObject({ code: 'WARDEN_MODEL_NOT_FOUND', error: expect.stringContaining('nope') });
    const v = await srv.json('GET', '/api/v1/models/busy/versions/9/card');
    expect(v.status).toBe(404);
    expect(v.body).toMatchObject({ code: 'WARDEN_VERSION_NOT_FOUND', error: expect.stringContaining('9') });
    const f = await srv.json('GET', '/api/v1/models/busy/versions/1/card?format=pdf');
    expect(f.status).toBe(400);
    expect(f.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST', error: expect.stringContaining('md or json') });
  });
});

describe('model cards on a server without monitoring or alerting', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { enabled: false }, alerting: { enabled: false } });
  });
  afterAll(() => srv?.close());

  it('says so in the gaps instead of leaving the fields empty without a word', async () => {
    await push(srv, 'plain', LOGREG, { 'x-warden-metadata': JSON.stringify({ tags: { owner: 'x' } }) });
    const c = await card(srv, 'plain/versions/latest');
    expect(c.alerts).toBeNull();
    const by = new Map(c.gaps.map((g) => [g.field, g]));
    expect(by.get('alerts')!.fill).toContain('alerting.enabled: true');
    expect(by.get('drift')!.why).toBe('monitoring is off on this server');
    expect(by.has('overview.owner')).toBe(false);
  });
});
