import type { Command } from 'commander';
import type { CostReport, DeploymentCost } from '../cost/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

/** Amounts with four significant figures (costs span from fractions of a cent to thousands). */
const amount = (x: number | null | undefined) => (x === null || x === undefined ? '' : +x.toPrecision(4) === 0 ? '0' : String(+x.toPrecision(4)));
const pct = (x: number | null) => (x === null ? '' : `${Math.round(x * 100)}%`);

function capText(d: DeploymentCost): string {
  if (d.capped) return `${d.capped.action === 'route' ? `routed to v${d.capped.version}` : 'THROTTLED'} until ${new Date(d.capped.until).toISOString()}`;
  return d.budget && d.budget.cap !== 'none' ? `${d.budget.cap}${d.budget.cap === 'route' ? ` v${d.budget.capVersion}` : ''} past 100%` : '';
}

export function costText(r: CostReport | { enabled: false; reason: string }): string {
  if (!r.enabled) return r.reason;
  const m = r.model;
  const head = m.kind === 'cpu' ? `cost model: ${m.pricePerCpuHour} ${r.currency} per CPU-hour × each deployment's measured CPU time` : `cost model: ${m.pricePerReplicaHour} ${r.currency} per replica-hour × ${m.replicas} replicas, shared by traffic`;
  const rows = r.deployments.map((d) => ({
    deployment: d.deployment,
    today: amount(d.spend.today),
    month: amount(d.spend.month),
    'per 1k': amount(d.costPer1k),
    'daily budget': d.budget?.daily !== undefined ? `${amount(d.budget.daily)} (${pct(d.used.day)})` : '',
    'monthly budget': d.budget?.monthly !== undefined ? `${amount(d.budget.monthly)} (${pct(d.used.month)})` : '',
    cap: capText(d),
    anomaly: d.anomaly.active ? `${amount(d.anomaly.spend)} vs ${amount(d.anomaly.baseline)}/h` : '',
  }));
  const lines = [head, rows.length ? table(rows, ['deployment', 'today', 'month', 'per 1k', 'daily budget', 'monthly budget', 'cap', 'anomaly']) : 'no traffic priced yet and no budgets'];
  if (r.idle) lines.push(`idle replica time (no deployment's): ${amount(r.idle.today)} today, ${amount(r.idle.month)} this month`);
  for (const d of r.deployments) if (d.problem) lines.push(`warning: ${d.problem}`);
  return lines.join('\n');
}

function amountOption(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${flag} must be an amount above 0, not ${JSON.stringify(raw)}`, 2);
  return n;
}

export function registerCost(program: Command): void {
  const cost = program.command('cost').description('cost per deployment: spend, cost per 1,000 inferences, budgets and caps (docs/cost.md)');
  cost
    .command('status [deployment]')
    .description('spend today and this month, cost per 1,000 inferences, budgets and caps; with a deployment, its spend by day and by version')
    .option('--days <n>', 'with a deployment: days of spend to show (1-400)', '14')
    .action(async (deployment: string | undefined, o: { days: string }, cmd: Command) => {
      const c = clientFor(cmd);
      if (!deployment) {
        const r = await c.request<CostReport | { enabled: false; reason: string }>('GET', '/api/v1/cost');
        print(cmd, r, () => costText(r));
        return;
      }
      const r = await c.request<{ deployment: string; currency: string; summary: DeploymentCost | null; days: { day: string; spend: number; inferences: number }[] }>(
        'GET',
        `/api/v1/cost/${encodeURIComponent(deployment)}?days=${encodeURIComponent(o.days)}`,
      );
      print(cmd, r, () => {
        const s = r.summary;
        const lines = [
          s
            ? `${deployment}: ${amount(s.spend.today)} ${r.currency} today, ${amount(s.spend.month)} this month, ${amount(s.costPer1k)} per 1,000 inferences (24 h)${s.capped ? `; ${capText(s)}` : ''}`
            : `${deployment}: nothing priced yet`,
          table(r.days.map((d) => ({ day: d.day, spend: amount(d.spend), inferences: d.inferences, 'per 1k': d.inferences > 0 ? amount((d.spend / d.inferences) * 1000) : '' })), ['day', 'spend', 'inferences', 'per 1k']),
        ];
        if (s) lines.push(table(s.versions.map((v) => ({ version: v.version, today: amount(v.today), month: amount(v.month), 'per 1k (24 h)': amount(v.costPer1k) })), ['version', 'today', 'month', 'per 1k (24 h)']));
        return lines.join('\n');
      });
    });
  cost
    .command('budget <deployment>')
    .description('set (or with --delete remove) a deployment\'s daily and monthly budgets and what happens past them')
    .option('--daily <amount>', 'spend allowed per UTC day')
    .option('--monthly <amount>', 'spend allowed per UTC month')
    .option('--cap <cap>', 'past 100%: none (alerts only), throttle (429) or route (serve --cap-version)', 'none')
    .option('--cap-version <v>', 'the cheaper version a route cap serves')
    .option('--delete', 'remove the budget set by the API')
    .action(async (deployment: string, o: { daily?: string; monthly?: string; cap: string; capVersion?: string; delete?: boolean }, cmd: Command) => {
      const c = clientFor(cmd);
      const path = `/api/v1/cost/budgets/${encodeURIComponent(deployment)}`;
      if (o.delete) {
        await c.request('DELETE', path);
        print(cmd, { deleted: deployment }, () => `removed the budget of ${deployment}`);
        return;
      }
      const daily = amountOption(o.daily, '--daily');
      const monthly = amountOption(o.monthly, '--monthly');
      if (daily === undefined && monthly === undefined) throw new CliError('give --daily, --monthly or both (or --delete)', 2);
      const capVersion = o.capVersion === undefined ? undefined : Number(o.capVersion);
      if (capVersion !== undefined && (!Number.isInteger(capVersion) || capVersion < 1)) throw new CliError(`--cap-version must be a version number, not ${JSON.stringify(o.capVersion)}`, 2);
      const body = { ...(daily !== undefined ? { daily } : {}), ...(monthly !== undefined ? { monthly } : {}), cap: o.cap, ...(capVersion !== undefined ? { capVersion } : {}) };
      const saved = await c.request<{ deployment: string; daily?: number; monthly?: number; cap: string; capVersion?: number }>('PUT', path, body);
      print(cmd, saved, () =>
        `${deployment}: ${[saved.daily !== undefined ? `${saved.daily} a day` : '', saved.monthly !== undefined ? `${saved.monthly} a month` : ''].filter(Boolean).join(', ')}; past it: ${saved.cap === 'route' ? `serve version ${saved.capVersion}` : saved.cap === 'throttle' ? 'throttle (429)' : 'alerts only'}`,
      );
    });
}
