import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { matcherText, parseDuration, parseMatcherText, type AlertView, type RuleView, type SilenceView, type SuppressionView } from '../alerting/index.ts';
import type { AlertHistoryRecord } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/** A time flag: epoch ms, ISO-8601, or a duration meaning that long ago (`1h`). */
export function timeFlag(raw: string, flag: string, now = Date.now()): number {
  if (/^[0-9]+$/.test(raw)) return Number(raw);
  if (/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(raw)) return now - parseDuration(raw, flag);
  const t = Date.parse(raw);
  if (!Number.isFinite(t)) throw new CliError(`${flag} must be a time (ISO-8601 or epoch ms) or a duration ago such as 1h, got ${raw}`, 2);
  return t;
}

function duration(raw: string, flag: string): string {
  try {
    parseDuration(raw, flag);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  return raw;
}

function author(o: { author?: string }): string {
  if (o.author) return o.author;
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
}

function alertsTable(alerts: AlertView[]): string {
  return table(
    alerts.map((a) => ({
      status: a.status,
      severity: a.severity,
      alertname: a.alertname,
      deployment: a.labels.deployment ?? '',
      since: when(a.since),
      value: a.value === undefined ? '' : Number(a.value.toPrecision(6)),
      summary: a.annotations.summary,
    })),
    ['status', 'severity', 'alertname', 'deployment', 'since', 'value', 'summary'],
  );
}

/**
 * Why some alerts reach nobody: the server's own warnings when it gives them, else the firing alerts that have no
 * receiver (an alert lists the receivers it is sent to).
 */
export function alertWarnings(res: { alerts: AlertView[]; warnings?: string[] }): string[] {
  if (res.warnings?.length) return res.warnings;
  const out: string[] = [];
  for (const severity of ['page', 'ticket'] as const) {
    const n = res.alerts.filter((a) => a.status === 'firing' && a.severity === severity && Array.isArray(a.receivers) && a.receivers.length === 0).length;
    if (n) out.push(`${n} firing ${severity} alert${n === 1 ? '' : 's'} reach${n === 1 ? 'es' : ''} no receiver: nobody is notified; configure alerting.receivers (docs/alerting.md, "Receivers and payloads")`);
  }
  return out;
}

function historyWhat(e: AlertHistoryRecord): string {
  const d = e.data as Record<string, unknown>;
  if (e.kind === 'transition') return `${String(d.from)} → ${String(d.to)}${d.value !== undefined ? ` (value ${String(d.value)})` : ''}`;
  const alerts = Array.isArray(d.alerts) ? d.alerts.length : 0;
  return `${String(d.status)} (${alerts} alert${alerts === 1 ? '' : 's'}) → ${e.receiver ?? ''}: ${d.ok ? 'delivered' : `failed: ${String(d.error ?? '')}`} after ${String(d.attempts)} attempt(s)`;
}

function silencesTable(silences: SilenceView[]): string {
  return table(
    silences.map((s) => ({ id: s.id, state: s.state, matchers: s.matchers.map(matcherText).join(', '), starts: when(s.startsAt), ends: when(s.endsAt), by: s.createdBy, comment: s.comment })),
    ['id', 'state', 'matchers', 'starts', 'ends', 'by', 'comment'],
  );
}

function suppressionsTable(list: SuppressionView[]): string {
  return table(
    list.map((s) => ({ id: s.id, deployment: s.deployment, active: s.active ? 'yes' : 'no', starts: when(s.startsAt), until: when(s.until), by: s.createdBy, reason: s.reason })),
    ['id', 'deployment', 'active', 'starts', 'until', 'by', 'reason'],
  );
}

function rulesTable(rules: RuleView[]): string {
  return table(
    rules.map((r) => ({
      name: r.name,
      origin: r.origin,
      severity: r.severity,
      condition: `${r.fn === 'value' ? '' : r.fn}${r.fn === 'value' ? r.metric : `(${r.metric})`}${r.labels.length ? `{${r.labels.map(matcherText).join(', ')}}` : ''} ${r.op} ${r.threshold}`,
      for: r.for,
      runbook: r.runbook,
    })),
    ['name', 'origin', 'severity', 'condition', 'for', 'runbook'],
  );
}

/** `warden alerts …`: current alerts, history, silences, rollout suppressions and rules. */
export function registerAlerts(program: Command): void {
  const alerts = program.command('alerts').description('alerts: current, history, silences, rollout suppressions and rules');

  alerts
    .command('list')
    .description('alerts pending or firing (muted ones show as silenced, inhibited or suppressed)')
    .option('--deployment <name>', 'only this deployment')
    .option('--status <status>', 'pending, firing, silenced, inhibited or suppressed')
    .option('--severity <severity>', 'page or ticket')
    .action(async (o: { deployment?: string; status?: string; severity?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.deployment) q.set('deployment', o.deployment);
      if (o.status) q.set('status', o.status);
      if (o.severity) q.set('severity', o.severity);
      const res = await clientFor(cmd).request<{ alerts: AlertView[]; warnings?: string[] }>('GET', `/api/v1/alerts${q.size ? `?${q}` : ''}`);
      print(cmd, res, () => (res.alerts.length === 0 ? 'no alerts pending or firing' : alertsTable(res.alerts)));
      // On stderr, so a --json answer on stdout stays parseable.
      for (const w of alertWarnings(res)) process.stderr.write(`warning: ${w}\n`);
    });

  alerts
    .command('history')
    .description('state transitions and notification results, oldest first')
    .option('--since <time>', 'ISO-8601, epoch ms, or a duration ago (e.g. 24h)')
    .option('--until <time>', 'ISO-8601, epoch ms, or a duration ago')
    .option('--deployment <name>', 'only this deployment')
    .option('--alertname <name>', 'only this alert name')
    .option('--fingerprint <fp>', 'only this alert')
    .option('--kind <kind>', 'transition or notification')
    .option('--limit <n>', 'at most this many (1-1000)', '100')
    .option('--after <id>', 'entries after this id (paging)')
    .action(async (o: { since?: string; until?: string; deployment?: string; alertname?: string; fingerprint?: string; kind?: string; limit: string; after?: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.since) q.set('since', String(timeFlag(o.since, '--since')));
      if (o.until) q.set('until', String(timeFlag(o.until, '--until')));
      for (const k of ['deployment', 'alertname', 'fingerprint', 'kind', 'after'] as const) if (o[k]) q.set(k, o[k]!);
      const res = await clientFor(cmd).request<{ entries: AlertHistoryRecord[]; nextCursor: string | null }>('GET', `/api/v1/alerts/history?${q}`);
      print(cmd, res, () =>
        res.entries.length === 0
          ? 'no alert history in that range'
          : table(
              res.entries.map((e) => ({ id: e.id, time: when(e.at), kind: e.kind, alertname: e.alertname ?? '', deployment: e.deployment ?? '', what: historyWhat(e) })),
              ['id', 'time', 'kind', 'alertname', 'deployment', 'what'],
            ),
      );
    });

  const silence = alerts.command('silence').description('silences: mute matching alerts for a while');
  silence
    .command('add <matchers...>')
    .description('silence alerts matching every matcher (name=value, name!=value, name=~regex, name!~regex)')
    .requiredOption('--comment <text>', 'why')
    .option('--duration <d>', 'how long, e.g. 2h (default 1h)', '1h')
    .option('--until <time>', 'end time instead of --duration (ISO-8601 or epoch ms)')
    .option('--author <name>', 'who (default: the OS user)')
    .action(async (matchers: string[], o: { comment: string; duration: string; until?: string; author?: string }, cmd: Command) => {
      let parsed;
      try {
        parsed = matchers.map((m) => parseMatcherText(m));
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      const body = {
        matchers: parsed,
        comment: o.comment,
        createdBy: author(o),
        ...(o.until ? { endsAt: timeFlag(o.until, '--until') } : { duration: duration(o.duration, '--duration') }),
      };
      const s = await clientFor(cmd).request<SilenceView>('POST', '/api/v1/alerts/silences', body);
      print(cmd, s, () => `silence ${s.id} (${s.state}) until ${when(s.endsAt)}: ${s.matchers.map(matcherText).join(', ')}`);
    });
  silence
    .command('list')
    .description('silences in force or ahead')
    .option('--expired', 'include expired ones')
    .action(async (o: { expired?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).request<{ silences: SilenceView[] }>('GET', `/api/v1/alerts/silences${o.expired ? '?expired=true' : ''}`);
      print(cmd, res, () => (res.silences.length === 0 ? 'no silences' : silencesTable(res.silences)));
    });
  silence
    .command('expire <id>')
    .description('end a silence now')
    .action(async (id: string, _o, cmd: Command) => {
      const s = await clientFor(cmd).request<SilenceView>('DELETE', `/api/v1/alerts/silences/${encodeURIComponent(id)}`);
      print(cmd, s, () => `silence ${s.id} expired at ${when(s.endsAt)}`);
    });

  alerts
    .command('suppress <deployment>')
    .description('rollout window: record but do not notify the deployment\'s alerts until it ends')
    .requiredOption('--reason <text>', 'why (e.g. the rollout id)')
    .option('--for <d>', 'how long, e.g. 30m (default 30m)', '30m')
    .option('--until <time>', 'end time instead of --for (ISO-8601 or epoch ms)')
    .action(async (deployment: string, o: { reason: string; for: string; until?: string }, cmd: Command) => {
      const until = o.until ? timeFlag(o.until, '--until') : Date.now() + parseDuration(duration(o.for, '--for'), '--for');
      const s = await clientFor(cmd).request<SuppressionView>('POST', '/api/v1/alerts/suppressions', { deployment, until, reason: o.reason });
      print(cmd, s, () => `suppression ${s.id}: alerts of ${s.deployment} are not notified until ${when(s.until)}`);
    });
  alerts
    .command('suppressions')
    .description('rollout suppressions in force or ahead')
    .option('--ended', 'include ended ones')
    .option('--end <id>', 'end this suppression now')
    .action(async (o: { ended?: boolean; end?: string }, cmd: Command) => {
      const c = clientFor(cmd);
      if (o.end) {
        const s = await c.request<SuppressionView>('DELETE', `/api/v1/alerts/suppressions/${encodeURIComponent(o.end)}`);
        print(cmd, s, () => `suppression ${s.id} of ${s.deployment} ended at ${when(s.until)}`);
        return;
      }
      const res = await c.request<{ suppressions: SuppressionView[] }>('GET', `/api/v1/alerts/suppressions${o.ended ? '?ended=true' : ''}`);
      print(cmd, res, () => (res.suppressions.length === 0 ? 'no suppressions' : suppressionsTable(res.suppressions)));
    });

  alerts
    .command('rules')
    .description('list the rules in force, or replace the custom rules with --set <file> (YAML or JSON)')
    .option('--set <file>', 'a YAML or JSON file: a list of rules or {rules: [...]} (an empty list removes every custom rule)')
    .action(async (o: { set?: string }, cmd: Command) => {
      const c = clientFor(cmd);
      let res: { rules: RuleView[] };
      if (o.set) {
        let body: unknown;
        try {
          const raw = await readFile(o.set, 'utf8');
          body = o.set.endsWith('.json') ? JSON.parse(raw) : parseYaml(raw);
        } catch (e) {
          throw new CliError(`cannot read rules file ${o.set}: ${(e as Error).message}`, 2);
        }
        res = await c.request('PUT', '/api/v1/alerts/rules', Array.isArray(body) ? { rules: body } : body);
      } else res = await c.request('GET', '/api/v1/alerts/rules');
      print(cmd, res, () => rulesTable(res.rules));
    });
}
