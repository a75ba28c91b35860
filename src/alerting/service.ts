import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import type { WardenConfig } from '../config.ts';
import { WardenError } from '../errors.ts';
import type { AlertHistoryRecord, MetadataStore, NewAlertHistoryRecord, SilenceRecord, SuppressionRecord } from '../storage/index.ts';
import { AlertEngine, silenceActive, suppressionActive, type Alert, type AlertStatus, type Notification, type Silence, type SourceResult, type Suppression, type Transition } from './engine.ts';
import { invalidMatcher, matches, parseDuration, parseMatchers, type Matcher } from './labels.ts';
import { deliver, type DeliveryResult, type ReceiverConfig } from './notifiers.ts';
import { BUILTIN_RULES, MetricRuleSource, exportedMetricNames, parseRules, ruleInput, unknownMetric, type AlertRule, type RuleView } from './rules.ts';
import type { AlertSource, Severity } from './types.ts';

export type AlertingConfig = WardenConfig['alerting'];

export interface AlertingServiceDeps {
  metadata: MetadataStore;
  /** The registry Warden exports on /metrics: rules read it, and alerting's own metrics go on it. */
  promRegistry: PromRegistry;
  logger: Logger;
  config: AlertingConfig;
  /** Warden's URL for links in notifications when `alerting.externalUrl` is not set; read per notification. */
  externalUrl?: () => string | undefined;
  now?: () => number;
  fetch?: typeof fetch;
  /**
   * Whether this replica leads alerting (a lease among replicas sharing the store). Every replica evaluates, so its
   * API lists the same alerts, but only the leader records history and sends notifications: each group is notified
   * once, not once per replica. Default: always (one process).
   */
  leader?: () => Promise<boolean>;
}

/** A silence as the API shows it. */
export interface SilenceView extends Silence {
  state: 'pending' | 'active' | 'expired';
}

/** An alert as the API shows it: with the receivers it is sent to while it fires unmuted (none: nobody is told). */
export interface AlertView extends Alert {
  receivers: string[];
}

/** A suppression as the API shows it. */
export interface SuppressionView extends Suppression {
  active: boolean;
}

/** What one evaluation did. */
export interface EvaluationReport {
  at: number;
  sources: { name: string; ok: boolean; conditions: number; error?: string }[];
  transitions: Transition[];
  notifications: Notification[];
  dropped: number;
}

/** Filters of `GET /api/v1/alerts`. */
export interface AlertFilter {
  deployment?: string;
  status?: AlertStatus;
  severity?: Severity;
}

const MAX_SILENCE_MS = 366 * 86_400_000;
const MAX_SUPPRESSION_MS = 30 * 86_400_000;
const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function timeValue(raw: unknown, name: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? (/^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw)) : NaN;
  if (!Number.isFinite(n)) throw bad(`${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

function text(raw: unknown, name: string, max: number, required = true): string {
  if (raw === undefined && !required) return '';
  if (typeof raw !== 'string' || (required && raw.trim() === '') || raw.length > max) {
    throw bad(`"${name}" must be a ${required ? 'non-empty ' : ''}string of at most ${max} characters`);
  }
  return raw.trim();
}

function object(raw: unknown): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('body must be a JSON object');
  return raw as Record<string, unknown>;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const toSilence = (r: SilenceRecord): Silence => ({ ...r, matchers: r.matchers as Matcher[] });

/**
 * The alerting loop around the pure engine: every `evaluationIntervalMs` it asks every source for its conditions
 * (metric rules on the registry, plus sources other domains add), folds them into alert states, records each
 * transition in the store's alert history, and delivers due notifications in the background with bounded
 * retries, recording each result. Silences, suppressions and custom rules live in the metadata store and are
 * re-read at every evaluation, so replicas sharing a store agree.
 */
export class AlertingService {
  private readonly engine: AlertEngine;
  private readonly sources = new Map<string, AlertSource>();
  private readonly receivers: ReadonlyMap<string, ReceiverConfig>;
  private readonly fileRules: readonly AlertRule[];
  private customRules: readonly AlertRule[] = [];
  private effective: readonly RuleView[] = [];
  private silences: Silence[] = [];
  private suppressions: Suppression[] = [];
  private readonly deliveries = new Set<Promise<void>>();
  private running: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastPrune = 0;
  /** Stored silences and rules already logged as unusable, so each is logged once, not at every evaluation. */
  private readonly reported = new Set<string>();
  private readonly metrics: {
    alerts: Gauge<'alertname' | 'severity' | 'status'>;
    notifications: Counter<'receiver' | 'outcome'>;
    sourceFailures: Counter<'source'>;
    evaluations: Counter;
  };

  constructor(private readonly deps: AlertingServiceDeps) {
    const c = deps.config;
    this.receivers = new Map(
      c.receivers.map((r) => [
        r.name,
        {
          name: r.name,
          type: r.type,
          url: r.url,
          ...(r.severities ? { severities: r.severities } : {}),
          sendResolved: r.sendResolved,
          timeoutMs: r.timeoutMs,
          retries: r.retries,
          backoffMs: r.backoffMs,
          maxAlerts: r.maxAlerts,
          ...(r.headers ? { headers: r.headers } : {}),
        } satisfies ReceiverConfig,
      ]),
    );
    this.fileRules = this.readConfigRules();
    this.engine = new AlertEngine({
      groupBy: c.groupBy,
      groupWaitMs: c.groupWaitMs,
      groupIntervalMs: c.groupIntervalMs,
      repeatIntervalMs: c.repeatIntervalMs,
      receivers: [...this.receivers.values()].map((r) => ({ name: r.name, ...(r.severities ? { severities: r.severities } : {}), sendResolved: r.sendResolved !== false })),
    });
    this.recomputeRules();
    this.addSource(new MetricRuleSource(deps.promRegistry, () => this.effective));
    const registers = [deps.promRegistry];
    this.metrics = {
      alerts: new Gauge({
        name: 'warden_alerts',
        help: 'Alerts pending or firing, by alertname, severity and status (pending, firing, silenced, inhibited, suppressed).',
        labelNames: ['alertname', 'severity', 'status'],
        registers,
        collect: () => this.collectAlertGauge(),
      }),
      notifications: new Counter({ name: 'warden_alert_notifications_total', help: 'Alert notifications delivered (success) or given up after retries (failure), by receiver.', labelNames: ['receiver', 'outcome'], registers }),
      sourceFailures: new Counter({ name: 'warden_alert_source_failures_total', help: 'Alert source evaluations that failed or timed out (their alerts keep their state).', labelNames: ['source'], registers }),
      evaluations: new Counter({ name: 'warden_alert_evaluations_total', help: 'Alerting evaluations run.', registers }),
    };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  private readConfigRules(): AlertRule[] {
    const c = this.deps.config;
    const invalid = (e: unknown, where: string) =>
      new WardenError('WARDEN_CONFIG_INVALID', `${where} is invalid: ${(e as Error).message}`);
    let rules: AlertRule[];
    try {
      rules = parseRules(c.rules, 'alerting.rules');
    } catch (e) {
      throw invalid(e, 'alerting.rules');
    }
    if (c.rulesFile) {
      let parsed: unknown;
      try {
        const raw = readFileSync(c.rulesFile, 'utf8');
        parsed = c.rulesFile.endsWith('.json') ? JSON.parse(raw) : parseYaml(raw);
      } catch (e) {
        throw new WardenError('WARDEN_CONFIG_INVALID', `alerting.rulesFile ${path.resolve(c.rulesFile)} cannot be read: ${(e as Error).message}`);
      }
      try {
        rules = [...rules, ...parseRules(parsed, c.rulesFile)];
      } catch (e) {
        throw invalid(e, `alerting.rulesFile ${c.rulesFile}`);
      }
      const names = new Set<string>();
      for (const r of rules) {
        if (names.has(r.name)) throw new WardenError('WARDEN_CONFIG_INVALID', `alert rule ${r.name} is defined both in alerting.rules and in ${c.rulesFile}`);
        names.add(r.name);
      }
    }
    return rules;
  }

  private recomputeRules(): void {
    const byName = new Map<string, RuleView>();
    if (this.deps.config.builtinRules) for (const r of BUILTIN_RULES) byName.set(r.name, { ...r, origin: 'builtin' });
    for (const r of this.fileRules) byName.set(r.name, { ...r, origin: 'config' });
    for (const r of this.customRules) byName.set(r.name, { ...r, origin: 'custom' });
    this.effective = [...byName.values()];
  }

  /**
   * Adds an alert source (e.g. SLO burn rates); it is evaluated with the rules from the next evaluation on.
   * Returns a function that removes it (its alerts then resolve). Source names are unique.
   */
  addSource(source: AlertSource): () => void {
    if (this.sources.has(source.name)) throw new Error(`alert source ${source.name} is already added`);
    this.sources.set(source.name, source);
    return () => {
      if (this.sources.get(source.name) === source) this.sources.delete(source.name);
    };
  }

  /** Names of the sources evaluated. */
  sourceNames(): string[] {
    return [...this.sources.keys()];
  }

  /**
   * What makes alerts reach nobody: no receiver at all, or severities no receiver takes. Alerts are still
   * evaluated, listed and kept in the history; only notification is missing.
   */
  warnings(): string[] {
    const receivers = [...this.receivers.values()];
    if (receivers.length === 0) {
      return [
        'no receiver is configured (alerting.receivers is empty): alerts are evaluated, listed and kept in the history, but nobody is notified; ' +
          'add a webhook, alertmanager or slack receiver (docs/alerting.md, "Receivers and payloads")',
      ];
    }
    const out: string[] = [];
    for (const severity of ['page', 'ticket'] as const) {
      if (!receivers.some((r) => !r.severities || r.severities.includes(severity))) {
        out.push(`no receiver takes ${severity} alerts (the severities of every receiver in alerting.receivers leave ${severity} out): ${severity} alerts are listed and kept in the history, but nobody is notified`);
      }
    }
    return out;
  }

  /** The receivers a firing alert of this severity is sent to. */
  private receiversOf(severity: Severity): string[] {
    return [...this.receivers.values()].filter((r) => !r.severities || r.severities.includes(severity)).map((r) => r.name);
  }

  /** Rules whose metric this registry does not export: they can never fire. Logged once per rule and metric. */
  private reportUnknownMetrics(rules: readonly AlertRule[], origin: string): void {
    const names = exportedMetricNames(this.deps.promRegistry);
    for (const r of rules) {
      const key = `rule\u0000${origin}\u0000${r.name}\u0000${r.metric}`;
      if (this.reported.has(key)) continue;
      const why = unknownMetric(r, names, `${origin} rule ${r.name}`);
      if (!why) continue;
      this.reported.add(key);
      this.deps.logger.warn({ rule: r.name, metric: r.metric }, `alerting: ${why}`);
    }
  }

  /** Loads rules, silences and suppressions from the store and starts the evaluation loop. */
  async start(): Promise<void> {
    const warnings = this.warnings();
    if (warnings.length) this.deps.logger.warn({ receivers: this.receivers.size }, `alerting: ${warnings.join('; ')}`);
    // Every domain has registered its metrics by now (they do so when constructed, before any start).
    this.reportUnknownMetrics(this.fileRules, 'config');
    await this.reload();
    this.stopped = false;
    this.schedule(this.deps.config.evaluationIntervalMs);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.evaluate()
        .catch((err) => this.deps.logger.warn({ err }, 'alerting: evaluation failed'))
        .finally(() => this.schedule(this.deps.config.evaluationIntervalMs));
    }, ms);
    this.timer.unref();
  }

  /** Stops the loop; waits for the running evaluation and for deliveries in flight (each bounded by its retries). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
    await this.settled();
  }

  /** Resolves when every delivery started so far has finished and been recorded. */
  async settled(): Promise<void> {
    while (this.deliveries.size) await Promise.allSettled([...this.deliveries]);
  }

  /** Re-reads custom rules, silences and suppressions from the store. */
  async reload(): Promise<void> {
    const [stored, silences, suppressions] = await Promise.all([
      this.deps.metadata.getAlertRules(),
      this.deps.metadata.listSilences(),
      this.deps.metadata.listSuppressions(),
    ]);
    try {
      this.customRules = stored ? parseRules(stored.rules, 'stored rules') : [];
    } catch (err) {
      // Rules are validated before they are stored; keep the last good set rather than drop every alert.
      this.deps.logger.error({ err }, 'alerting: stored custom rules are invalid; keeping the previous ones');
    }
    this.recomputeRules();
    this.reportUnknownMetrics(this.customRules, 'custom');
    this.silences = silences.map(toSilence);
    for (const s of this.silences) {
      const key = `silence\u0000${s.id}\u0000${s.updatedAt}`;
      if (this.reported.has(key)) continue;
      const why = invalidMatcher(s.matchers, `silence ${s.id}`);
      if (!why) continue;
      this.reported.add(key);
      // Saved before matchers were checked with RE2 (a JavaScript-only regex): it mutes nothing until replaced.
      this.deps.logger.warn({ silence: s.id, createdBy: s.createdBy }, `alerting: ${why}; the silence mutes nothing until it is replaced (PUT /api/v1/alerts/silences/${s.id})`);
    }
    this.suppressions = suppressions;
  }

  /** One evaluation now (the loop calls this; tests and `POST /api/v1/alerts/evaluate` may too). Serialized. */
  evaluate(): Promise<EvaluationReport> {
    const run = this.running.catch(() => undefined).then(() => this.evaluateOnce());
    this.running = run;
    return run;
  }

  private async evaluateOnce(): Promise<EvaluationReport> {
    await this.reload().catch((err) => this.deps.logger.warn({ err }, 'alerting: reading silences and rules failed; using the last ones'));
    const now = this.now();
    const bound = Math.max(1000, Math.min(this.deps.config.evaluationIntervalMs, 30_000));
    const sources = [...this.sources.values()];
    const results: (SourceResult & { error?: string })[] = await Promise.all(
      sources.map(async (s) => {
        try {
          const conditions = await withTimeout(s.evaluate(now), bound, `alert source ${s.name}`);
          return { source: s.name, ok: true, conditions: conditions.map((c) => ({ ...c, runbookUrl: this.runbookUrl(c.runbookUrl) })) };
        } catch (e) {
          this.metrics.sourceFailures.inc({ source: s.name });
          this.deps.logger.warn({ err: e, source: s.name }, 'alerting: source failed; its alerts keep their state');
          return { source: s.name, ok: false, conditions: [], error: (e as Error).message };
        }
      }),
    );
    const out = this.engine.evaluate(results, now, { silences: this.silences, suppressions: this.suppressions });
    this.metrics.evaluations.inc();
    if (out.dropped) this.deps.logger.warn({ dropped: out.dropped }, 'alerting: too many alerts; new ones dropped');
    const leading = this.deps.leader ? await this.deps.leader() : true;
    if (!leading) {
      // The leader sends these; settling them here keeps this replica's groups on the leader's schedule, so after a
      // failover the new leader neither repeats what was sent nor waits a repeat interval to send what is due.
      for (const n of out.notifications) this.engine.settle(n.id, true);
      return this.report(now, results, out);
    }
    await this.record(out.transitions.map(transitionRecord));
    for (const n of out.notifications) this.dispatch(n);
    if (now - this.lastPrune > 3_600_000) {
      this.lastPrune = now;
      await this.deps.metadata.pruneAlertHistory(now - this.deps.config.historyRetentionMs).catch((err) => this.deps.logger.warn({ err }, 'alerting: history prune failed'));
    }
    return this.report(now, results, out);
  }

  private report(now: number, results: (SourceResult & { error?: string })[], out: ReturnType<AlertEngine['evaluate']>): EvaluationReport {
    return {
      at: now,
      sources: results.map((r) => ({ name: r.source, ok: r.ok, conditions: r.conditions.length, ...(r.error ? { error: r.error } : {}) })),
      transitions: out.transitions,
      notifications: out.notifications,
      dropped: out.dropped,
    };
  }

  private async record(records: NewAlertHistoryRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.deps.metadata.appendAlertHistory(records);
    } catch (err) {
      this.deps.logger.error({ err, entries: records.length }, 'alerting: writing alert history failed');
    }
  }

  private runbookUrl(p: string): string {
    if (/^[a-z][a-z0-9+.-]*:/i.test(p)) return p;
    const base = this.deps.config.runbookBaseUrl;
    if (!base) return p;
    return new URL(p.replace(/^\/+/, ''), base.endsWith('/') ? base : `${base}/`).href;
  }

  private externalUrl(): string {
    return this.deps.config.externalUrl ?? this.deps.externalUrl?.() ?? 'http://127.0.0.1:8080';
  }

  private dispatch(n: Notification): void {
    const r = this.receivers.get(n.receiver);
    if (!r) return;
    const c = this.deps.config;
    // Past the next re-send of an unchanged group, so Alertmanager keeps the alert until Warden says otherwise.
    const firingEndsAt = n.at + c.repeatIntervalMs + 2 * c.groupIntervalMs + 2 * c.evaluationIntervalMs;
    const job = deliver(r, n, { externalUrl: this.externalUrl(), firingEndsAt, ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}) })
      .catch((e): DeliveryResult => ({ ok: false, attempts: 0, error: (e as Error).message, durationMs: 0 }))
      .then(async (res) => {
        this.engine.settle(n.id, res.ok);
        this.metrics.notifications.inc({ receiver: n.receiver, outcome: res.ok ? 'success' : 'failure' });
        if (!res.ok) this.deps.logger.warn({ receiver: n.receiver, groupKey: n.groupKey, error: res.error, attempts: res.attempts }, 'alerting: notification failed');
        await this.record([notificationRecord(n, res, this.now())]);
      })
      .finally(() => this.deliveries.delete(job));
    this.deliveries.add(job);
  }

  private collectAlertGauge(): void {
    this.metrics.alerts.reset();
    for (const a of this.engine.alerts()) this.metrics.alerts.inc({ alertname: a.alertname, severity: a.severity, status: a.status });
  }

  /** Alerts pending or firing now (muted ones included, with what mutes them, and the receivers they go to). */
  alerts(filter: AlertFilter = {}): AlertView[] {
    return this.engine
      .alerts()
      .filter(
        (a) =>
          (filter.deployment === undefined || a.labels.deployment === filter.deployment) &&
          (filter.status === undefined || a.status === filter.status) &&
          (filter.severity === undefined || a.severity === filter.severity),
      )
      .map((a) => ({ ...structuredClone(a), receivers: this.receiversOf(a.severity) }));
  }

  /** Notification groups and their timers. */
  groups() {
    return this.engine.groupStates();
  }

  /** The alert history: transitions and notification results, oldest first. */
  async history(q: { since?: number; until?: number; deployment?: string; alertname?: string; fingerprint?: string; kind?: AlertHistoryRecord['kind']; afterId?: number; limit?: number }): Promise<AlertHistoryRecord[]> {
    return this.deps.metadata.listAlertHistory({ ...q, limit: q.limit ?? 100 });
  }

  // ---- rules

  /** The rules in force: built-in, then config (rulesFile / alerting.rules), then custom; a later origin replaces an earlier rule of the same name. */
  rules(): RuleView[] {
    return this.effective.map((r) => ({ ...r }));
  }

  /** Validates and stores the custom rules (replacing all of them); returns the rules now in force. */
  async setRules(raw: unknown): Promise<RuleView[]> {
    const rules = parseRules(raw, 'rules');
    const names = exportedMetricNames(this.deps.promRegistry);
    const unknown = rules.map((r, i) => unknownMetric(r, names, `rules[${i}] (${r.name})`)).filter((x) => x !== undefined);
    if (unknown.length) throw bad(unknown.join('\n'));
    await this.deps.metadata.saveAlertRules(rules.map(ruleInput), this.now());
    this.customRules = rules;
    this.recomputeRules();
    return this.rules();
  }

  // ---- silences

  private silenceView(s: Silence, now = this.now()): SilenceView {
    return { ...s, state: silenceActive(s, now) ? 'active' : now < s.startsAt ? 'pending' : 'expired' };
  }

  /** Silences, newest first; expired ones only when asked. */
  async listSilences(opts: { includeExpired?: boolean } = {}): Promise<SilenceView[]> {
    const now = this.now();
    return (await this.deps.metadata.listSilences())
      .map((r) => this.silenceView(toSilence(r), now))
      .filter((s) => opts.includeExpired || s.state !== 'expired')
      .reverse();
  }

  async getSilence(id: string): Promise<SilenceView> {
    const r = await this.deps.metadata.getSilence(id);
    if (!r) throw new WardenError('WARDEN_NOT_FOUND', `no silence ${id}`);
    return this.silenceView(toSilence(r));
  }

  private parseSilence(raw: unknown, now: number, fallbackCreator: string | undefined, existing?: Silence): Omit<Silence, 'id' | 'createdAt' | 'updatedAt'> {
    const b = object(raw);
    for (const k of Object.keys(b)) {
      if (!['matchers', 'startsAt', 'endsAt', 'duration', 'createdBy', 'comment'].includes(k)) throw bad(`unknown field "${k}"; a silence has matchers, startsAt, endsAt or duration, createdBy, comment`);
    }
    const matchers = b.matchers === undefined && existing ? existing.matchers : parseMatchers(b.matchers, 'matchers');
    if (matchers.length === 0) throw bad('"matchers" must name at least one label, e.g. {"deployment": "fraud"} or ["alertname=~Warden.*"]');
    if (matchers.every((m) => matches(m, {}))) throw bad('at least one matcher must not match an empty label, or the silence would mute every alert');
    const startsAt = b.startsAt !== undefined ? timeValue(b.startsAt, 'startsAt') : (existing?.startsAt ?? now);
    if (b.endsAt !== undefined && b.duration !== undefined) throw bad('give "endsAt" or "duration", not both');
    const endsAt =
      b.endsAt !== undefined ? timeValue(b.endsAt, 'endsAt') : b.duration !== undefined ? Math.max(startsAt, now) + parseDuration(b.duration, 'duration') : existing?.endsAt;
    if (endsAt === undefined) throw bad('a silence needs "endsAt" (time) or "duration" (e.g. "2h")');
    if (endsAt <= startsAt) throw bad('endsAt must be after startsAt');
    if (endsAt <= now) throw bad('endsAt must be in the future');
    if (endsAt - startsAt > MAX_SILENCE_MS) throw bad('a silence may last at most 366 days');
    const createdBy = b.createdBy !== undefined ? text(b.createdBy, 'createdBy', 256) : (existing?.createdBy ?? fallbackCreator);
    if (!createdBy) throw bad('"createdBy" is required: who made the silence');
    const comment = b.comment !== undefined ? text(b.comment, 'comment', 4096) : existing?.comment;
    if (!comment) throw bad('"comment" is required: why the alerts are silenced');
    return { matchers, startsAt, endsAt, createdBy, comment };
  }

  /** Creates a silence from `{matchers, startsAt?, endsAt | duration, createdBy, comment}`. */
  async createSilence(raw: unknown, createdBy?: string): Promise<SilenceView> {
    const now = this.now();
    const s: Silence = { id: randomUUID(), ...this.parseSilence(raw, now, createdBy), createdAt: now, updatedAt: now };
    await this.deps.metadata.saveSilence(s);
    this.silences.push(s);
    return this.silenceView(s, now);
  }

  /** Changes a silence that has not expired; omitted fields keep their values. */
  async updateSilence(id: string, raw: unknown): Promise<SilenceView> {
    const existing = await this.getSilence(id);
    if (existing.state === 'expired') throw new WardenError('WARDEN_CONFLICT', `silence ${id} has expired; create a new one`);
    const { state: _state, ...current } = existing;
    const now = this.now();
    const s: Silence = { ...current, ...this.parseSilence(raw, now, undefined, current), updatedAt: now };
    await this.deps.metadata.saveSilence(s);
    this.silences = this.silences.map((x) => (x.id === id ? s : x));
    return this.silenceView(s, now);
  }

  /** Ends a silence now (it stays listed as expired, as in Alertmanager). */
  async expireSilence(id: string): Promise<SilenceView> {
    const existing = await this.getSilence(id);
    if (existing.state === 'expired') return existing;
    const now = this.now();
    const { state: _state, ...current } = existing;
    const s: Silence = { ...current, startsAt: Math.min(current.startsAt, now), endsAt: now, updatedAt: now };
    await this.deps.metadata.saveSilence(s);
    this.silences = this.silences.map((x) => (x.id === id ? s : x));
    return this.silenceView(s, now);
  }

  // ---- rollout suppressions

  /** Suppressions in force or ahead (and, when asked, ended ones), newest first. */
  async listSuppressions(opts: { includeEnded?: boolean } = {}): Promise<SuppressionView[]> {
    const now = this.now();
    return (await this.deps.metadata.listSuppressions())
      .map((s) => ({ ...s, active: suppressionActive(s, now) }))
      .filter((s) => opts.includeEnded || now < s.until)
      .reverse();
  }

  /**
   * Opens a rollout window `{deployment, until, reason}`: until then, alerts of the deployment are evaluated and
   * recorded but not notified. Warden has no rollout engine: a deployment pipeline calls this when a rollout starts.
   */
  async suppress(raw: unknown, createdBy = 'api'): Promise<SuppressionView> {
    const b = object(raw);
    for (const k of Object.keys(b)) if (!['deployment', 'until', 'reason', 'startsAt', 'createdBy'].includes(k)) throw bad(`unknown field "${k}"; a suppression has deployment, until, reason, startsAt, createdBy`);
    const now = this.now();
    const deployment = text(b.deployment, 'deployment', 256);
    const startsAt = b.startsAt === undefined ? now : timeValue(b.startsAt, 'startsAt');
    const until = timeValue(b.until, 'until');
    if (until <= now) throw bad('until must be in the future');
    if (until <= startsAt) throw bad('until must be after startsAt');
    if (until - Math.max(now, startsAt) > MAX_SUPPRESSION_MS) throw bad('a suppression may last at most 30 days');
    const s: Suppression = {
      id: randomUUID(),
      deployment,
      startsAt,
      until,
      reason: text(b.reason, 'reason', 4096),
      createdBy: b.createdBy === undefined ? createdBy : text(b.createdBy, 'createdBy', 256),
      createdAt: now,
    };
    await this.deps.metadata.saveSuppression(s);
    this.suppressions.push(s);
    return { ...s, active: suppressionActive(s, now) };
  }

  /** Ends a suppression now (a rollout finished early). */
  async endSuppression(id: string): Promise<SuppressionView> {
    const s = (await this.deps.metadata.listSuppressions()).find((x) => x.id === id);
    if (!s) throw new WardenError('WARDEN_NOT_FOUND', `no suppression ${id}`);
    const now = this.now();
    if (s.until <= now) return { ...s, active: false };
    const ended: SuppressionRecord = { ...s, startsAt: Math.min(s.startsAt, now), until: now };
    await this.deps.metadata.saveSuppression(ended);
    this.suppressions = this.suppressions.map((x) => (x.id === id ? ended : x));
    return { ...ended, active: false };
  }
}

function transitionRecord(t: Transition): NewAlertHistoryRecord {
  return {
    at: t.at,
    kind: 'transition',
    fingerprints: [t.fingerprint],
    alertname: t.alertname,
    ...(t.labels.deployment !== undefined ? { deployment: t.labels.deployment } : {}),
    data: { from: t.from, to: t.to, labels: t.labels, severity: t.severity, source: t.source, ...(t.value !== undefined ? { value: t.value } : {}), ...(t.mutedBy ? { mutedBy: t.mutedBy } : {}) },
  };
}

function notificationRecord(n: Notification, res: DeliveryResult, at: number): NewAlertHistoryRecord {
  const names = [...new Set(n.alerts.map((a) => a.labels.alertname ?? ''))];
  const deployments = [...new Set(n.alerts.map((a) => a.labels.deployment))];
  const deployment = n.groupLabels.deployment ?? (deployments.length === 1 ? deployments[0] : undefined);
  return {
    at,
    kind: 'notification',
    fingerprints: n.alerts.map((a) => a.fingerprint),
    ...(names.length === 1 ? { alertname: names[0]! } : {}),
    ...(deployment !== undefined ? { deployment } : {}),
    receiver: n.receiver,
    data: {
      id: n.id,
      groupKey: n.groupKey,
      status: n.status,
      sentAt: n.at,
      alerts: n.alerts.map((a) => ({ fingerprint: a.fingerprint, alertname: a.labels.alertname, status: a.status })),
      ok: res.ok,
      attempts: res.attempts,
      ...(res.status !== undefined ? { httpStatus: res.status } : {}),
      ...(res.error !== undefined ? { error: res.error } : {}),
      durationMs: res.durationMs,
    },
  };
}
