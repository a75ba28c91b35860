/**
 * Notifiers against a real HTTP receiver on loopback: the Alertmanager webhook body (version "4" and every field
 * Alertmanager documents), the Slack incoming-webhook body, the Alertmanager v2 alerts body, and delivery with a
 * timeout per attempt and bounded retries.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ZERO_TIME, deliver, slackPayload, webhookPayload, type Notification, type ReceiverConfig } from '../../src/alerting/index.ts';
import { startReceiver, type TestReceiver } from './receiver.ts';

const T0 = Date.parse('2025-03-01T12:00:00Z');

const NOTIFICATION: Notification = {
  id: 'n1',
  receiver: 'hook',
  groupKey: '{}:{deployment="fraud"}',
  groupLabels: { deployment: 'fraud' },
  status: 'firing',
  at: T0 + 60_000,
  alerts: [
    {
      fingerprint: 'aaaaaaaaaaaaaaaa',
      status: 'firing',
      labels: { alertname: 'WardenDataDrift', severity: 'ticket', deployment: 'fraud', version: '3' },
      annotations: { summary: 'Data drift on fraud v3', description: 'drifted', runbook_url: 'docs/runbooks/data-drift.md' },
      startsAt: T0,
      value: 1,
    },
    {
      fingerprint: 'bbbbbbbbbbbbbbbb',
      status: 'resolved',
      labels: { alertname: 'WardenDataQualityFailed', severity: 'ticket', deployment: 'fraud', version: '3' },
      annotations: { summary: 'NaN in temp', description: 'drifted', runbook_url: 'docs/runbooks/pipeline-failure-nans.md' },
      startsAt: T0 - 60_000,
      endsAt: T0 + 30_000,
    },
  ],
};

const receiver = (over: Partial<ReceiverConfig>): ReceiverConfig => ({ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1', timeoutMs: 2000, retries: 2, backoffMs: 10, maxAlerts: 0, ...over });
const CTX = { externalUrl: 'http://warden.example:8080', firingEndsAt: T0 + 5 * 3_600_000 };

let rx: TestReceiver;
beforeEach(async () => {
  rx = await startReceiver();
});
afterEach(async () => rx.close());

describe('webhook (Alertmanager webhook_config format)', () => {
  it('POSTs version 4 with receiver, status, alerts, group/common labels and annotations, externalURL, groupKey, truncatedAlerts', async () => {
    const res = await deliver(receiver({ url: `${rx.url}/hook` }), NOTIFICATION, CTX);
    expect(res).toMatchObject({ ok: true, attempts: 1, status: 200 });
    const [req] = await rx.waitFor(1);
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/hook');
    expect(req!.headers['content-type']).toBe('application/json');
    const b = req!.body;
    expect(Object.keys(b).sort()).toEqual(['alerts', 'commonAnnotations', 'commonLabels', 'externalURL', 'groupKey', 'groupLabels', 'receiver', 'status', 'truncatedAlerts', 'version']);
    expect(b).toMatchObject({
      version: '4',
      receiver: 'hook',
      status: 'firing',
      groupKey: '{}:{deployment="fraud"}',
      truncatedAlerts: 0,
      externalURL: 'http://warden.example:8080',
      groupLabels: { deployment: 'fraud' },
      commonLabels: { severity: 'ticket', deployment: 'fraud', version: '3' },
      commonAnnotations: { description: 'drifted' },
    });
    expect(b.alerts).toHaveLength(2);
    for (const a of b.alerts) {
      expect(Object.keys(a).sort()).toEqual(['annotations', 'endsAt', 'fingerprint', 'generatorURL', 'labels', 'startsAt', 'status']);
      expect(Number.isFinite(Date.parse(a.startsAt))).toBe(true);
      expect(a.generatorURL).toBe(`http://warden.example:8080/api/v1/alerts/history?fingerprint=${a.fingerprint}`);
    }
    expect(b.alerts[0]).toMatchObject({ status: 'firing', startsAt: '2025-03-01T12:00:00.000Z', endsAt: ZERO_TIME, annotations: { runbook_url: 'docs/runbooks/data-drift.md' } });
    expect(b.alerts[1]).toMatchObject({ status: 'resolved', endsAt: '2025-03-01T12:00:30.000Z' });
  });

  it('truncates past maxAlerts and counts what it left out', () => {
    const b = webhookPayload(NOTIFICATION, { externalUrl: 'x', maxAlerts: 1 });
    expect(b.alerts).toHaveLength(1);
    expect(b.truncatedAlerts).toBe(1);
  });

  it('sends configured headers', async () => {
    await deliver(receiver({ url: rx.url, headers: { authorization: 'Bearer s3cret' } }), NOTIFICATION, CTX);
    expect((await rx.waitFor(1))[0]!.headers.authorization).toBe('Bearer s3cret');
  });
});

describe('slack', () => {
  it('POSTs {text, blocks} naming each alert, its severity and runbook', async () => {
    await deliver(receiver({ type: 'slack', url: `${rx.url}/services/T/B/X` }), NOTIFICATION, CTX);
    const b = (await rx.waitFor(1))[0]!.body;
    expect(Object.keys(b).sort()).toEqual(['blocks', 'text']);
    expect(b.text.split('\n')[0]).toBe('[FIRING:1] {deployment="fraud"}');
    expect(b.text).toContain('*WardenDataDrift* Data drift on fraud v3 — runbook: docs/runbooks/data-drift.md');
    expect(b.text).toContain('RESOLVED *WardenDataQualityFailed*');
    expect(b.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: '[FIRING:1] {deployment="fraud"}' } });
    expect(b.blocks.slice(1).every((x: any) => x.type === 'section' && x.text.type === 'mrkdwn')).toBe(true);
    expect(slackPayload({ ...NOTIFICATION, status: 'resolved', alerts: [NOTIFICATION.alerts[1]!] }).text).toMatch(/^\[RESOLVED\]/);
  });
});

describe('alertmanager v2', () => {
  it('POSTs postable alerts to {url}/api/v2/alerts; a firing alert ends in the future, a resolved one at its resolve time', async () => {
    await deliver(receiver({ type: 'alertmanager', url: `${rx.url}/` }), NOTIFICATION, CTX);
    const req = (await rx.waitFor(1))[0]!;
    expect(req.path).toBe('/api/v2/alerts');
    expect(req.body).toEqual([
      {
        labels: NOTIFICATION.alerts[0]!.labels,
        annotations: NOTIFICATION.alerts[0]!.annotations,
        startsAt: '2025-03-01T12:00:00.000Z',
        endsAt: new Date(CTX.firingEndsAt).toISOString(),
        generatorURL: 'http://warden.example:8080/api/v1/alerts/history?fingerprint=aaaaaaaaaaaaaaaa',
      },
      expect.objectContaining({ endsAt: '2025-03-01T12:00:30.000Z' }),
    ]);
  });
});

describe('delivery', () => {
  it('retries 5xx and 429 with backoff, then succeeds', async () => {
    rx.replies.push({ status: 503 }, { status: 429 });
    const res = await deliver(receiver({ url: rx.url }), NOTIFICATION, CTX);
    expect(res).toMatchObject({ ok: true, attempts: 3, status: 200 });
    const got = await rx.waitFor(3);
    // Same body every attempt; backoff of 10 then 20 ms between them.
    expect(got[1]!.body).toEqual(got[0]!.body);
    expect(got[2]!.at - got[1]!.at).toBeGreaterThanOrEqual(15);
  });

  it('gives up after the bounded retries and reports the last error', async () => {
    rx.replies.push({ status: 500 }, { status: 500 }, { status: 502 });
    const res = await deliver(receiver({ url: rx.url, retries: 2 }), NOTIFICATION, CTX);
    expect(res).toMatchObject({ ok: false, attempts: 3, status: 502 });
    expect(res.error).toMatch(/^HTTP 502/);
  });

  it('does not retry a 4xx other than 429', async () => {
    rx.replies.push({ status: 400 });
    const res = await deliver(receiver({ url: rx.url }), NOTIFICATION, CTX);
    expect(res).toMatchObject({ ok: false, attempts: 1, status: 400 });
  });

  it('times out a slow receiver per attempt, so a delivery is bounded', async () => {
    rx.replies.push({ status: 200, delayMs: 1000 }, { status: 200, delayMs: 1000 });
    const started = Date.now();
    const res = await deliver(receiver({ url: rx.url, timeoutMs: 100, retries: 1 }), NOTIFICATION, CTX);
    expect(res).toMatchObject({ ok: false, attempts: 2, error: 'timed out after 100 ms' });
    expect(Date.now() - started).toBeLessThan(900);
  });

  it('reports an unreachable receiver without throwing', async () => {
    const url = rx.url;
    await rx.close();
    const res = await deliver(receiver({ url, retries: 1 }), NOTIFICATION, CTX);
    expect(res.ok).toBe(false);
    expect(res.attempts).toBe(2);
    expect(res.error).toBe('ECONNREFUSED');
    rx = await startReceiver();
  });
});
