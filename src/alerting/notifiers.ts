import type { Notification, NotifiedAlert } from './engine.ts';
import { labelSetText } from './labels.ts';
import type { Severity } from './types.ts';

export type ReceiverType = 'webhook' | 'alertmanager' | 'slack';

/** A notification target, from `alerting.receivers`. */
export interface ReceiverConfig {
  name: string;
  /** webhook: Alertmanager's webhook JSON (version 4); alertmanager: its v2 API; slack: an incoming webhook. */
  type: ReceiverType;
  url: string;
  /** Only alerts of these severities; default both. */
  severities?: readonly Severity[];
  /** Tell the receiver when alerts resolve. Default true. */
  sendResolved?: boolean;
  /** Per attempt. */
  timeoutMs: number;
  /** Further attempts after a failed one (network error, timeout, HTTP 429 or 5xx). */
  retries: number;
  /** Wait before the first retry; doubled per retry, capped at 5 s. */
  backoffMs: number;
  /** Alerts per message (webhook `truncatedAlerts` counts the rest); 0 = all. */
  maxAlerts: number;
  /** Extra request headers (e.g. authorization for a protected receiver). */
  headers?: Readonly<Record<string, string>>;
}

/** What one delivery did: every attempt is counted, the last error kept. */
export interface DeliveryResult {
  ok: boolean;
  attempts: number;
  /** HTTP status of the last attempt that got an answer. */
  status?: number;
  error?: string;
  durationMs: number;
}

/** Alertmanager's zero time: what its webhook sends as `endsAt` of a firing alert. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';
const iso = (ms: number) => new Date(ms).toISOString();

function common(maps: readonly Record<string, string>[]): Record<string, string> {
  const first = maps[0];
  if (!first) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first)) if (maps.every((m) => m[k] === v)) out[k] = v;
  return out;
}

/** Where a receiver can read more about one alert: Warden's history of it. */
export function generatorUrl(externalUrl: string, a: NotifiedAlert): string {
  return `${externalUrl.replace(/\/+$/, '')}/api/v1/alerts/history?fingerprint=${a.fingerprint}`;
}

/** Alertmanager's webhook body (`version: "4"`), as https://prometheus.io/docs/alerting/latest/configuration/#webhook_config describes it. */
export interface WebhookPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: {
    status: 'firing' | 'resolved';
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string;
    generatorURL: string;
    fingerprint: string;
  }[];
}

/** Builds the webhook body of a notification; past `maxAlerts` alerts are left out and counted. */
export function webhookPayload(n: Notification, opts: { externalUrl: string; maxAlerts?: number }): WebhookPayload {
  const max = opts.maxAlerts && opts.maxAlerts > 0 ? opts.maxAlerts : n.alerts.length;
  const sent = n.alerts.slice(0, max);
  return {
    version: '4',
    groupKey: n.groupKey,
    truncatedAlerts: n.alerts.length - sent.length,
    status: n.status,
    receiver: n.receiver,
    groupLabels: n.groupLabels,
    commonLabels: common(n.alerts.map((a) => a.labels)),
    commonAnnotations: common(n.alerts.map((a) => a.annotations as unknown as Record<string, string>)),
    externalURL: opts.externalUrl,
    alerts: sent.map((a) => ({
      status: a.status,
      labels: a.labels,
      annotations: { ...a.annotations },
      startsAt: iso(a.startsAt),
      endsAt: a.endsAt !== undefined ? iso(a.endsAt) : ZERO_TIME,
      generatorURL: generatorUrl(opts.externalUrl, a),
      fingerprint: a.fingerprint,
    })),
  };
}

/** One alert of Alertmanager's `POST /api/v2/alerts` body (`postableAlert` in its OpenAPI spec). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

/**
 * Builds the Alertmanager v2 body. A firing alert's `endsAt` lies ahead (`firingEndsAt`), past the next re-send,
 * so Alertmanager resolves it by itself only if Warden stops sending (Prometheus does the same); a resolved
 * alert's `endsAt` is its resolve time.
 */
export function alertmanagerPayload(n: Notification, opts: { externalUrl: string; firingEndsAt: number }): PostableAlert[] {
  return n.alerts.map((a) => ({
    labels: a.labels,
    annotations: { ...a.annotations },
    startsAt: iso(a.startsAt),
    endsAt: iso(a.endsAt ?? opts.firingEndsAt),
    generatorURL: generatorUrl(opts.externalUrl, a),
  }));
}

/** A Slack incoming-webhook body: plain `text` (also the notification fallback) and mrkdwn `blocks`. */
export function slackPayload(n: Notification, opts: { maxAlerts?: number } = {}): { text: string; blocks: unknown[] } {
  const firing = n.alerts.filter((a) => a.status === 'firing').length;
  const head = `[${n.status.toUpperCase()}${firing ? `:${firing}` : ''}] ${Object.keys(n.groupLabels).length ? labelSetText(n.groupLabels) : 'Warden alerts'}`;
  const max = opts.maxAlerts && opts.maxAlerts > 0 ? opts.maxAlerts : 20;
  const line = (a: NotifiedAlert) =>
    `${a.status === 'resolved' ? ':white_check_mark: RESOLVED' : a.labels.severity === 'page' ? ':rotating_light: PAGE' : ':warning: TICKET'} *${a.labels.alertname}* ${a.annotations.summary}` +
    (a.annotations.runbook_url ? ` — runbook: ${a.annotations.runbook_url}` : '');
  const lines = n.alerts.slice(0, max).map(line);
  if (n.alerts.length > max) lines.push(`… and ${n.alerts.length - max} more`);
  return {
    text: [head, ...lines].join('\n'),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: head.slice(0, 150) } },
      ...n.alerts.slice(0, max).map((a) => ({
        type: 'section',
        text: { type: 'mrkdwn', text: `${line(a)}\n${a.annotations.description}`.slice(0, 3000) },
      })),
    ],
  };
}

/** The request a receiver gets for a notification. */
export function requestFor(r: ReceiverConfig, n: Notification, ctx: { externalUrl: string; firingEndsAt: number }): { url: string; body: unknown } {
  switch (r.type) {
    case 'webhook':
      return { url: r.url, body: webhookPayload(n, { externalUrl: ctx.externalUrl, maxAlerts: r.maxAlerts }) };
    case 'alertmanager':
      return { url: `${r.url.replace(/\/+$/, '')}/api/v2/alerts`, body: alertmanagerPayload(n, ctx) };
    case 'slack':
      return { url: r.url, body: slackPayload(n, { maxAlerts: r.maxAlerts }) };
  }
}

const retriable = (status: number) => status === 429 || status >= 500;

/**
 * POSTs a notification with a timeout per attempt and bounded retries with doubling backoff; never throws. The
 * whole delivery takes at most about `(retries + 1) × timeoutMs` plus the backoffs.
 */
export async function deliver(
  r: ReceiverConfig,
  n: Notification,
  ctx: { externalUrl: string; firingEndsAt: number; fetch?: typeof fetch; userAgent?: string },
): Promise<DeliveryResult> {
  const started = Date.now();
  const { url, body } = requestFor(r, n, ctx);
  const doFetch = ctx.fetch ?? fetch;
  const text = JSON.stringify(body);
  let status: number | undefined;
  let error: string | undefined;
  let attempts = 0;
  for (let i = 0; i <= r.retries; i++) {
    if (i > 0) await new Promise((res) => setTimeout(res, Math.min(r.backoffMs * 2 ** (i - 1), 5000)));
    attempts++;
    try {
      const res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': ctx.userAgent ?? 'warden-alerting', ...r.headers },
        body: text,
        signal: AbortSignal.timeout(r.timeoutMs),
      });
      status = res.status;
      // Drain the body so the connection is released.
      const answer = await res.text().catch(() => '');
      if (res.ok) return { ok: true, attempts, status, durationMs: Date.now() - started };
      error = `HTTP ${res.status}${answer ? `: ${answer.slice(0, 200)}` : ''}`;
      if (!retriable(res.status)) break;
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      error = err.name === 'TimeoutError' || err.name === 'AbortError' ? `timed out after ${r.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    }
  }
  return { ok: false, attempts, ...(status !== undefined ? { status } : {}), error: error ?? 'failed', durationMs: Date.now() - started };
}
