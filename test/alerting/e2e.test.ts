/**
 * End to end on a real Warden (startTestServer): the drift gauge monitoring exports is set on the server's own
 * registry, the alerting loop fires the built-in drift ticket, and a webhook receiver on loopback gets it with its
 * runbook annotation; then the HTTP API (alerts, history, silences, suppressions, rules) and `warden alerts …`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Gauge } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startReceiver, type TestReceiver } from './receiver.ts';
import { runWarden } from '../helpers/cli.ts';


const warden = (args: string[]) => runWarden(args);

const driftGauge = (srv: TestServer) => srv.warden.metrics.registry.getSingleMetric('warden_dataset_drift') as Gauge<'model' | 'version'>;

describe('alerting on a running Warden', () => {
  let rx: TestReceiver;
  let srv: TestServer;

  beforeAll(async () => {
    rx = await startReceiver();
    srv = await startTestServer({
      alerting: {
        evaluationIntervalMs: 50,
        groupWaitMs: 0,
        groupIntervalMs: 50,
        receivers: [{ name: 'ops-hook', type: 'webhook', url: `${rx.url}/alerts`, severities: ['ticket'] }],
      },
    });
  });
  afterAll(async () => {
    await srv?.close();
    await rx?.close();
  });

  it('fires the built-in drift ticket through the webhook with the runbook annotation, and records it', async () => {
    driftGauge(srv).set({ model: 'bike', version: '1' }, 1);
    const [req] = await rx.waitFor(1);
    expect(req!.path).toBe('/alerts');
    const b = req!.body;
    expect(b).toMatchObject({ version: '4', receiver: 'ops-hook', status: 'firing', groupLabels: { deployment: 'bike' }, externalURL: srv.url });
    expect(b.alerts).toHaveLength(1);
    expect(b.alerts[0]).toMatchObject({
      status: 'firing',
      labels: { alertname: 'WardenDataDrift', severity: 'ticket', deployment: 'bike' },
      annotations: { summary: 'Data drift on bike v1', runbook_url: 'docs/runbooks/data-drift.md' },
    });

    const current = await srv.json('GET', '/api/v1/alerts?deployment=bike');
    expect(current.status).toBe(200);
    expect(current.body.alerts).toHaveLength(1);
    const alert = current.body.alerts[0];
    expect(alert).toMatchObject({ alertname: 'WardenDataDrift', state: 'firing', status: 'firing', severity: 'ticket', annotations: { runbook_url: 'docs/runbooks/data-drift.md' } });
    expect(typeof alert.since).toBe('number');

    const history = await until(async () => {
      const h = await srv.json('GET', `/api/v1/alerts/history?deployment=bike&fingerprint=${alert.fingerprint}`);
      return h.body.entries.some((e: any) => e.kind === 'notification') ? h.body.entries : undefined;
    });
    expect(history.filter((e: any) => e.kind === 'transition').map((e: any) => `${e.data.from}→${e.data.to}`)).toEqual(['inactive→pending', 'pending→firing']);
    expect(history.find((e: any) => e.kind === 'notification')).toMatchObject({ receiver: 'ops-hook', data: { ok: true, status: 'firing' } });
    const generator = await fetch(b.alerts[0].generatorURL);
    expect(generator.status).toBe(200);

    // The drift clears: the receiver hears the resolution.
    driftGauge(srv).set({ model: 'bike', version: '1' }, 0);
    const all = await rx.waitFor(2);
    expect(all[1]!.body).toMatchObject({ status: 'resolved', alerts: [{ status: 'resolved', labels: { alertname: 'WardenDataDrift' } }] });
    expect((await srv.json('GET', '/api/v1/alerts')).body.alerts).toEqual([]);
  });

  it('a silence mutes a firing alert (shown as silenced, not notified) until it is expired', async () => {
    const before = rx.received.length;
    const created = await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment=churn'], duration: '1h', createdBy: 'ana', comment: 'known drift' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: 'active', createdBy: 'ana', matchers: [{ name: 'deployment', value: 'churn', isRegex: false, isEqual: true }] });
    driftGauge(srv).set({ model: 'churn', version: '1' }, 1);
    const silenced = await until(async () => {
      const r = await srv.json('GET', '/api/v1/alerts?status=silenced');
      return r.body.alerts.length ? r.body.alerts : undefined;
    });
    expect(silenced[0]).toMatchObject({ state: 'firing', silencedBy: [created.body.id], labels: { deployment: 'churn' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.received.slice(before)).toEqual([]);

    expect((await srv.json('GET', '/api/v1/alerts/silences')).body.silences.map((s: any) => s.id)).toContain(created.body.id);
    const expired = await srv.json('DELETE', `/api/v1/alerts/silences/${created.body.id}`);
    expect(expired.body.state).toBe('expired');
    const got = await rx.waitFor(before + 1);
    expect(got[before]!.body.groupLabels).toEqual({ deployment: 'churn' });
    expect((await srv.json('GET', '/api/v1/alerts/silences')).body.silences).toEqual([]);
    expect((await srv.json('GET', '/api/v1/alerts/silences?expired=true')).body.silences).toHaveLength(1);
    driftGauge(srv).set({ model: 'churn', version: '1' }, 0);
    expect((await rx.waitFor(before + 2))[before + 1]!.body).toMatchObject({ status: 'resolved', groupLabels: { deployment: 'churn' } });
  });

  it('refuses silences that would mute everything or lack a comment', async () => {
    expect((await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment=~".*"'], duration: '1h', createdBy: 'a', comment: 'c' })).body.code).toBe('WARDEN_BAD_REQUEST');
    const r = await srv.json('POST', '/api/v1/alerts/silences', { matchers: { deployment: 'x' }, duration: '1h', createdBy: 'a' });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/comment/);
    expect((await srv.json('GET', '/api/v1/alerts/silences/nope')).status).toBe(404);
  });

  it('a rollout suppression records the deployment\'s alerts as suppressed without notifying, until it ends', async () => {
    const before = rx.received.length;
    const sup = await srv.json('POST', '/api/v1/alerts/suppressions', { deployment: 'fraud', until: new Date(Date.now() + 3_600_000).toISOString(), reason: 'rollout r-17' });
    expect(sup.status).toBe(201);
    expect(sup.body).toMatchObject({ deployment: 'fraud', active: true, reason: 'rollout r-17' });
    driftGauge(srv).set({ model: 'fraud', version: '4' }, 1);
    const suppressed = await until(async () => {
      const r = await srv.json('GET', '/api/v1/alerts?status=suppressed');
      return r.body.alerts.length ? r.body.alerts : undefined;
    });
    expect(suppressed[0].suppressedBy).toEqual([sup.body.id]);
    const hist = await srv.json('GET', `/api/v1/alerts/history?deployment=fraud&kind=transition`);
    expect(hist.body.entries.map((e: any) => e.data.to)).toContain('suppressed');
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.received.slice(before)).toEqual([]);
    expect((await srv.json('GET', '/api/v1/alerts/suppressions')).body.suppressions).toHaveLength(1);
    const ended = await srv.json('DELETE', `/api/v1/alerts/suppressions/${sup.body.id}`);
    expect(ended.body.active).toBe(false);
    const got = await rx.waitFor(before + 1);
    expect(got[before]!.body.groupLabels).toEqual({ deployment: 'fraud' });
    driftGauge(srv).set({ model: 'fraud', version: '4' }, 0);
    expect((await rx.waitFor(before + 2))[before + 1]!.body).toMatchObject({ status: 'resolved', groupLabels: { deployment: 'fraud' } });
    expect((await srv.json('POST', '/api/v1/alerts/suppressions', { deployment: 'x', until: Date.now() - 1, reason: 'r' })).status).toBe(400);
  });

  it('lists the built-in rules and replaces the custom ones after validating them', async () => {
    const list = await srv.json('GET', '/api/v1/alerts/rules');
    expect(list.body.rules.filter((r: any) => r.origin === 'builtin').length).toBeGreaterThanOrEqual(8);
    const bad = await srv.json('PUT', '/api/v1/alerts/rules', { rules: [{ name: 'X', metric: 'm', op: '=>', threshold: 1, severity: 'ticket', summary: 's', runbook: 'r' }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/rules\[0\]\.op/);
    const rule = { name: 'WardenDataDrift', metric: 'warden_drift_share', op: '>', threshold: 0.9, severity: 'ticket', summary: 'most features drifted', runbook: 'docs/runbooks/data-drift.md' };
    const put = await srv.json('PUT', '/api/v1/alerts/rules', { rules: [rule] });
    expect(put.status).toBe(200);
    const replaced = put.body.rules.find((r: any) => r.name === 'WardenDataDrift');
    expect(replaced).toMatchObject({ origin: 'custom', metric: 'warden_drift_share' });
    await srv.json('PUT', '/api/v1/alerts/rules', []);
    expect((await srv.json('GET', '/api/v1/alerts/rules')).body.rules.find((r: any) => r.name === 'WardenDataDrift').origin).toBe('builtin');
  });

  it('warden alerts list | silence | rules | history', async () => {
    const cli = (...args: string[]) => warden(['--url', srv.url, ...args]);
    const add = await cli('alerts', 'silence', 'add', 'deployment=cli-test', 'alertname=~Warden.*', '--comment', 'from the CLI', '--duration', '30m', '--author', 'bo');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^silence [0-9a-f-]{36} \(active\) until .*deployment="cli-test", alertname=~"Warden\.\*"/);
    const list = await cli('alerts', 'silence', 'list');
    expect(list.stdout).toContain('from the CLI');
    const id = /silence ([0-9a-f-]{36})/.exec(add.stdout)![1]!;
    expect((await cli('alerts', 'silence', 'expire', id)).stdout).toContain(`silence ${id} expired`);
    const bad = await cli('alerts', 'silence', 'add', 'nonsense', '--comment', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^warden: .*not a matcher/);
    expect((await cli('alerts', 'list')).stdout).toMatch(/no alerts pending or firing|STATUS/);
    const rules = await cli('alerts', 'rules');
    expect(rules.stdout).toMatch(/WardenDataDrift\s+builtin\s+ticket\s+warden_dataset_drift == 1/);
    expect(rules.stdout).toMatch(/WardenPredictionLogDropping\s+builtin\s+ticket\s+increase\(warden_prediction_log_dropped_total\) > 0/);
    const history = await cli('alerts', 'history', '--since', '1h', '--kind', 'notification');
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/notification\s+WardenDataDrift\s+bike\s+firing \(1 alert\) → ops-hook: delivered after 1 attempt/);
    const file = path.join(srv.dataDir, 'rules.yaml');
    writeFileSync(file, 'rules:\n  - name: HighDrift\n    metric: warden_drift_share\n    op: ">"\n    threshold: 0.5\n    for: 10m\n    severity: ticket\n    summary: half the features drifted\n    runbook: docs/runbooks/data-drift.md\n');
    const set = await cli('alerts', 'rules', '--set', file);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/HighDrift\s+custom\s+ticket\s+warden_drift_share > 0.5\s+10m/);
    await srv.json('PUT', '/api/v1/alerts/rules', { rules: [] });
  });
});

describe('alerting configuration', () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it('answers 409 on the alerts API when alerting is disabled', async () => {
    srv = await startTestServer({ alerting: { enabled: false } });
    const r = await srv.json('GET', '/api/v1/alerts');
    expect(r.status).toBe(409);
    expect(r.body.error).toMatch(/alerting.enabled/);
  });

  it('refuses to start with an invalid config rule, naming it', async () => {
    await expect(startTestServer({ alerting: { rules: [{ name: 'X', metric: 'm', op: '>', threshold: 'high', severity: 'ticket', summary: 's', runbook: 'r' }] } })).rejects.toThrow(
      /alerting\.rules\[0\]\.threshold/,
    );
  });

  it('loads rules from alerting.rulesFile and resolves relative runbooks against runbookBaseUrl', async () => {
    const rx = await startReceiver();
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-rules-'));
    try {
      const file = path.join(dir, 'rules.json');
      writeFileSync(file, JSON.stringify({ rules: [{ name: 'QueueDeep', metric: 'warden_prediction_log_queue_capacity', op: '>', threshold: 0, severity: 'page', summary: 'capacity {{ $value }}', runbook: 'docs/runbooks/resource-exhaustion.md' }] }));
      srv = await startTestServer({
        alerting: {
          rulesFile: file,
          builtinRules: false,
          evaluationIntervalMs: 50,
          groupWaitMs: 0,
          runbookBaseUrl: 'https://git.example.com/warden/blob/main',
          receivers: [{ name: 'slack', type: 'slack', url: `${rx.url}/services/x` }],
        },
      });
      expect((await srv.json('GET', '/api/v1/alerts/rules')).body.rules.map((r: any) => [r.name, r.origin])).toEqual([['QueueDeep', 'config']]);
      const [req] = await rx.waitFor(1);
      expect(req!.body.text).toContain('*QueueDeep* capacity 100000 — runbook: https://git.example.com/warden/blob/main/docs/runbooks/resource-exhaustion.md');
    } finally {
      await rx.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
