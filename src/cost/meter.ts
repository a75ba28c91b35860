/**
 * The cost meter (docs/cost.md): on a timer, every replica re-reads the month's hour buckets of the traffic table
 * (which all replicas add to), prices them, compares each deployment's spend with its budgets and decides its cap.
 * The request path only looks a deployment up in the map of caps this leaves behind.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertCondition, AlertSource } from '../alerting/index.ts';
import { WardenError } from '../errors.ts';
import type { CostBudgetRecord, EventStore, MetadataStore } from '../storage/index.ts';
import { anomaly, DAY_MS, HOUR_MS, periods, priceHours, replicaCost, type AnomalySettings, type AnomalyVerdict, type CostModel, type PricedHour } from './pricing.ts';

/** A budget as configured (config file) or set by the API. */
export interface BudgetSetting {
  daily?: number | undefined;
  monthly?: number | undefined;
  cap: 'none' | 'throttle' | 'route';
  capVersion?: number | undefined;
}

export interface CostSettings {
  model: 'cpu' | 'replica';
  pricePerCpuHour?: number | undefined;
  pricePerReplicaHour?: number | undefined;
  replicas: number;
  currency: string;
  refreshMs: number;
  anomaly: AnomalySettings;
  deployments: Readonly<Record<string, BudgetSetting>>;
}

/** What a deployment past its budget gets, as the guard and the inference path read it. */
export interface Cap {
  action: 'throttle' | 'route';
  /** The version a `route` cap serves. */
  version?: number;
  period: 'day' | 'month';
  /** When the period starts again (epoch ms): the cap lifts then. */
  until: number;
}

export interface DeploymentCost {
  deployment: string;
  spend: { today: number; month: number; last24h: number; currentHour: number };
  inferences: { today: number; month: number; last24h: number };
  /** Over the last 24 hours; null without a successful inference. */
  costPerInference: number | null;
  costPer1k: number | null;
  versions: { version: number; today: number; month: number; inferences24h: number; costPer1k: number | null }[];
  budget: (BudgetSetting & { source: 'config' | 'api'; updatedAt?: number; updatedBy?: string }) | null;
  /** Spend ÷ budget (1 = 100 %). */
  used: { day: number | null; month: number | null };
  capped: Cap | null;
  /** Set when a route cap cannot route (its version is gone): it throttles instead. */
  problem?: string;
  anomaly: AnomalyVerdict;
}

export interface CostReport {
  enabled: true;
  currency: string;
  model: CostModel;
  refreshedAt: number;
  deployments: DeploymentCost[];
  /** Model `replica`: the replicas' cost no traffic shared (hours without requests). */
  idle?: { today: number; month: number };
}

/** Thresholds of budget alerts (share of the budget); the highest crossed fires. */
export const BUDGET_THRESHOLDS = [0.5, 0.8, 1] as const;

/** Priced buckets aggregated between two yields to the event loop. */
const YIELD_EVERY = 512;

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** The cost model a config gives, or undefined when no price is set (cost is then off). */
export function costModelOf(s: Pick<CostSettings, 'model' | 'pricePerCpuHour' | 'pricePerReplicaHour' | 'replicas'>): CostModel | undefined {
  if (s.model === 'replica') return s.pricePerReplicaHour === undefined ? undefined : { kind: 'replica', pricePerReplicaHour: s.pricePerReplicaHour, replicas: s.replicas };
  return s.pricePerCpuHour === undefined ? undefined : { kind: 'cpu', pricePerCpuHour: s.pricePerCpuHour };
}

/** Checks an API budget body: {daily?, monthly?, cap?, capVersion?}. */
export function checkBudget(raw: unknown): BudgetSetting {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('body must be {"daily": <amount>, "monthly": <amount>, "cap": "none" | "throttle" | "route", "capVersion": <version>}');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['daily', 'monthly', 'cap', 'capVersion'].includes(k)) throw bad(`unknown field ${JSON.stringify(k.slice(0, 40))}; a budget has daily, monthly, cap and capVersion`);
  const amount = (k: 'daily' | 'monthly') => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`"${k}" must be a number (an amount in the configured currency)`);
    if (v <= 0) throw bad(`"${k}" must be above 0, not ${v}; leave it out for no ${k} budget`);
    if (v > 1e12) throw bad(`"${k}" must be at most 1e12`);
    return v;
  };
  const daily = amount('daily');
  const monthly = amount('monthly');
  if (daily === undefined && monthly === undefined) throw bad('give "daily", "monthly" or both');
  const cap = o.cap ?? 'none';
  if (cap !== 'none' && cap !== 'throttle' && cap !== 'route') throw bad('"cap" must be "none" (alerts only), "throttle" (429 past the budget) or "route" (serve "capVersion" past it)');
  const v = o.capVersion;
  if (cap === 'route' && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw bad('a "route" cap needs "capVersion": the number of the cheaper version to serve');
  if (cap !== 'route' && v !== undefined) throw bad('"capVersion" is for cap "route" only');
  return { ...(daily !== undefined ? { daily } : {}), ...(monthly !== undefined ? { monthly } : {}), cap, ...(cap === 'route' ? { capVersion: v as number } : {}) };
}

export interface CostMeterOptions {
  events: Pick<EventStore, 'trafficUsage'>;
  metadata: Pick<MetadataStore, 'listCostBudgets'>;
  settings: CostSettings;
  /** Writes this replica's latest traffic counts first, so its own requests are priced at once. */
  flushTraffic?: () => Promise<void>;
  /** Whether a version of a deployment exists (a route cap to a deleted version throttles instead). */
  versionExists?: (deployment: string, version: number) => boolean;
  promRegistry?: Registry;
  logger?: { warn(obj: unknown, msg: string): void };
  now?: () => number;
}

export class CostMeter {
  readonly model: CostModel;
  private readonly caps = new Map<string, Cap>();
  private last: CostReport | undefined;
  private stored: CostBudgetRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<CostReport> | undefined;
  /** Hour buckets that no longer change, read once (see `usage`). */
  private settled: { from: number; until: number; rows: PricedHour[] } | undefined;
  private readonly now: () => number;
  private readonly refused: Counter<'deployment'> | undefined;

  constructor(private readonly opts: CostMeterOptions) {
    const model = costModelOf(opts.settings);
    if (!model) throw new Error('CostMeter needs a price: cost.pricePerCpuHour or cost.pricePerReplicaHour');
    this.model = model;
    this.now = opts.now ?? Date.now;
    const registers = opts.promRegistry ? [opts.promRegistry] : [];
    if (registers.length > 0) this.registerMetrics(registers);
    this.refused = registers.length > 0
      ? new Counter({ name: 'warden_budget_refused_total', help: 'Requests refused with 429 WARDEN_BUDGET_EXCEEDED on this replica, by deployment.', labelNames: ['deployment'], registers })
      : undefined;
  }

  private registerMetrics(registers: Registry[]): void {
    const report = () => this.last;
    new Gauge({
      name: 'warden_cost_spend',
      help: 'Spend of a deployment (configured currency) in the current UTC day and calendar month, priced by the cost model from every replica\'s traffic.',
      labelNames: ['deployment', 'period'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) {
          this.set({ deployment: d.deployment, period: 'day' }, d.spend.today);
          this.set({ deployment: d.deployment, period: 'month' }, d.spend.month);
        }
      },
    });
    new Gauge({
      name: 'warden_cost_per_inference',
      help: 'Cost of one successful inference of a deployment over the last 24 hours.',
      labelNames: ['deployment'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) if (d.costPerInference !== null) this.set({ deployment: d.deployment }, d.costPerInference);
      },
    });
    new Gauge({
      name: 'warden_cost_per_1k_inferences',
      help: 'Cost of 1,000 successful inferences of a deployment over the last 24 hours.',
      labelNames: ['deployment'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) if (d.costPer1k !== null) this.set({ deployment: d.deployment }, d.costPer1k);
      },
    });
    new Gauge({
      name: 'warden_cost_budget',
      help: 'A deployment\'s budget per UTC day or month (configured currency).',
      labelNames: ['deployment', 'period'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) {
          if (d.budget?.daily !== undefined) this.set({ deployment: d.deployment, period: 'day' }, d.budget.daily);
          if (d.budget?.monthly !== undefined) this.set({ deployment: d.deployment, period: 'month' }, d.budget.monthly);
        }
      },
    });
    new Gauge({
      name: 'warden_cost_budget_used_ratio',
      help: 'Spend ÷ budget of a deployment in the current UTC day or month (1 = the whole budget).',
      labelNames: ['deployment', 'period'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) {
          if (d.used.day !== null) this.set({ deployment: d.deployment, period: 'day' }, d.used.day);
          if (d.used.month !== null) this.set({ deployment: d.deployment, period: 'month' }, d.used.month);
        }
      },
    });
    new Gauge({
      name: 'warden_cost_capped',
      help: 'Whether a deployment\'s cap is in force (1): it is throttled, or routed to its cheaper version.',
      labelNames: ['deployment', 'action'],
      registers,
      collect() {
        this.reset();
        for (const d of report()?.deployments ?? []) if (d.budget && d.budget.cap !== 'none') this.set({ deployment: d.deployment, action: d.budget.cap }, d.capped ? 1 : 0);
      },
    });
  }

  async start(): Promise<void> {
    await this.refresh().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'cost refresh failed'));
    this.timer = setInterval(() => void this.refresh().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'cost refresh failed')), this.opts.settings.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The cap in force for a deployment (the request path: one Map lookup). */
  capOf(deployment: string): Cap | undefined {
    return this.caps.size === 0 ? undefined : this.caps.get(deployment);
  }

  /** Counts a request refused by a cap. */
  countRefused(deployment: string): void {
    this.refused?.inc({ deployment });
  }

  /** The last report, refreshing first if there is none. */
  async report(fresh = false): Promise<CostReport> {
    if (fresh || !this.last) return this.refresh();
    return this.last;
  }

  /**
   * Priced hour buckets from `since` to the end of the current hour. Hours that ended more than an hour ago no longer
   * change (every replica has flushed into them, and a whole past hour's replica cost is final), so they are read and
   * priced once and kept; each refresh reads only the last two hours. Keeps a refresh from re-reading and re-pricing
   * a month of buckets every few seconds (docs/benchmarks.md#cost).
   */
  private async priced(since: number, hour: number, now: number): Promise<PricedHour[]> {
    const settled = hour - HOUR_MS;
    const read = async (from: number, until: number) => priceHours(await this.opts.events.trafficUsage({ step: 'hour', since: from, until }), this.model, now);
    const s = this.settled;
    if (s === undefined || since < s.from || since > s.until) {
      this.settled = { from: since, until: settled, rows: await read(since, settled) };
    } else if (s.until < settled) {
      const more = await read(s.until, settled);
      this.settled = { from: since, until: settled, rows: [...(s.from < since ? s.rows.filter((r) => r.ts >= since) : s.rows), ...more] };
    } else if (s.from < since) {
      this.settled = { ...s, from: since, rows: s.rows.filter((r) => r.ts >= since) };
    }
    const recent = await read(this.settled!.until, hour + HOUR_MS);
    return this.settled!.rows.length === 0 ? recent : this.settled!.rows.concat(recent);
  }

  /** One deployment's spend and inferences by UTC day over the last `days` days (today last, so far). */
  async daily(deployment: string, days: number): Promise<{ day: string; spend: number; inferences: number }[]> {
    const now = this.now();
    const today = periods(now).day;
    const since = today - (days - 1) * DAY_MS;
    // Every model's rows: with model `replica` a deployment's share of an hour depends on the others'.
    const priced = priceHours(await this.opts.events.trafficUsage({ step: 'hour', since, until: today + DAY_MS }), this.model, now);
    const out = Array.from({ length: days }, (_, i) => ({ day: new Date(since + i * DAY_MS).toISOString().slice(0, 10), spend: 0, inferences: 0 }));
    for (const h of priced) {
      if (h.deployment !== deployment) continue;
      const d = out[Math.floor((h.ts - since) / DAY_MS)];
      if (!d) continue;
      d.spend += h.amount;
      d.inferences += h.inferences;
    }
    return out;
  }

  /** The budgets in force: config's, each replaced by the API's for its deployment. */
  budgets(): Map<string, NonNullable<DeploymentCost['budget']>> {
    const out = new Map<string, NonNullable<DeploymentCost['budget']>>();
    for (const [name, b] of Object.entries(this.opts.settings.deployments)) out.set(name, { ...b, source: 'config' });
    for (const r of this.stored) {
      out.set(r.deployment, {
        ...(r.daily !== undefined ? { daily: r.daily } : {}),
        ...(r.monthly !== undefined ? { monthly: r.monthly } : {}),
        cap: r.cap,
        ...(r.capVersion !== undefined ? { capVersion: r.capVersion } : {}),
        source: 'api',
        updatedAt: r.updatedAt,
        updatedBy: r.updatedBy,
      });
    }
    return out;
  }

  /** Re-reads budgets and spend, re-decides caps (one refresh at a time; a call during one waits for it). */
  refresh(): Promise<CostReport> {
    this.refreshing ??= this.compute().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async compute(): Promise<CostReport> {
    this.stored = await this.opts.metadata.listCostBudgets();
    const budgets = this.budgets();
    if (this.opts.flushTraffic) await this.opts.flushTraffic();
    const now = this.now();
    const p = periods(now);
    const { anomaly: a } = this.opts.settings;
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const since = Math.min(p.month, hour - (a.baselineHours + 1) * HOUR_MS, hour - 24 * HOUR_MS);
    const priced = await this.priced(since, hour, now);
    const day24 = now - 24 * HOUR_MS;

    interface Acc {
      today: number; month: number; last24h: number; currentHour: number;
      inf: { today: number; month: number; last24h: number };
      versions: Map<number, { today: number; month: number; spend24h: number; inferences24h: number }>;
      byHour: Map<number, number>;
    }
    const acc = new Map<string, Acc>();
    const get = (d: string): Acc => {
      let x = acc.get(d);
      if (!x) {
        x = { today: 0, month: 0, last24h: 0, currentHour: 0, inf: { today: 0, month: 0, last24h: 0 }, versions: new Map(), byHour: new Map() };
        acc.set(d, x);
      }
      return x;
    };
    let attributedToday = 0;
    let attributedMonth = 0;
    for (let i = 0; i < priced.length; i++) {
      // A month of buckets of many deployments is tens of thousands: yield now and then, so the request path waits
      // at most a slice (docs/benchmarks.md#cost).
      if (i > 0 && i % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
      const h = priced[i]!;
      const x = get(h.deployment);
      const v = x.versions.get(h.version) ?? { today: 0, month: 0, spend24h: 0, inferences24h: 0 };
      x.versions.set(h.version, v);
      x.byHour.set(h.ts, (x.byHour.get(h.ts) ?? 0) + h.amount);
      if (h.ts >= p.month) {
        x.month += h.amount;
        x.inf.month += h.inferences;
        v.month += h.amount;
        attributedMonth += h.amount;
      }
      if (h.ts >= p.day) {
        x.today += h.amount;
        x.inf.today += h.inferences;
        v.today += h.amount;
        attributedToday += h.amount;
      }
      // Hour buckets overlapping the last 24 hours: the hour that began before the window counts whole.
      if (h.ts + HOUR_MS > day24) {
        x.last24h += h.amount;
        x.inf.last24h += h.inferences;
        v.spend24h += h.amount;
        v.inferences24h += h.inferences;
      }
      if (h.ts === hour) x.currentHour += h.amount;
    }
    for (const name of budgets.keys()) get(name);

    const caps = new Map<string, Cap>();
    const deployments: DeploymentCost[] = [];
    for (const [name, x] of [...acc].sort(([a1], [b1]) => (a1 < b1 ? -1 : a1 > b1 ? 1 : 0))) {
      const budget = budgets.get(name) ?? null;
      const used = {
        day: budget?.daily !== undefined ? x.today / budget.daily : null,
        month: budget?.monthly !== undefined ? x.month / budget.monthly : null,
      };
      let capped: Cap | null = null;
      let problem: string | undefined;
      if (budget && budget.cap !== 'none') {
        const period = used.month !== null && used.month >= 1 ? 'month' : used.day !== null && used.day >= 1 ? 'day' : undefined;
        if (period) {
          let action: Cap['action'] = budget.cap;
          if (action === 'route' && this.opts.versionExists && !this.opts.versionExists(name, budget.capVersion!)) {
            problem = `cap version ${budget.capVersion} of ${name} does not exist: the deployment is throttled instead`;
            action = 'throttle';
          }
          capped = { action, period, until: period === 'month' ? p.nextMonth : p.nextDay, ...(action === 'route' ? { version: budget.capVersion! } : {}) };
          caps.set(name, capped);
        }
      }
      deployments.push({
        deployment: name,
        spend: { today: x.today, month: x.month, last24h: x.last24h, currentHour: x.currentHour },
        inferences: x.inf,
        costPerInference: x.inf.last24h > 0 ? x.last24h / x.inf.last24h : null,
        costPer1k: x.inf.last24h > 0 ? (x.last24h / x.inf.last24h) * 1000 : null,
        versions: [...x.versions]
          .sort(([a1], [b1]) => a1 - b1)
          .map(([version, v]) => ({ version, today: v.today, month: v.month, inferences24h: v.inferences24h, costPer1k: v.inferences24h > 0 ? (v.spend24h / v.inferences24h) * 1000 : null })),
        budget,
        used,
        capped,
        ...(problem ? { problem } : {}),
        anomaly: anomaly(x.byHour, now, a),
      });
    }
    // Swapped whole: the request path never sees a half-built map.
    this.caps.clear();
    for (const [k, v] of caps) this.caps.set(k, v);
    const report: CostReport = {
      enabled: true,
      currency: this.opts.settings.currency,
      model: this.model,
      refreshedAt: now,
      deployments,
      ...(this.model.kind === 'replica'
        ? { idle: { today: Math.max(0, replicaCost(this.model, p.day, now) - attributedToday), month: Math.max(0, replicaCost(this.model, p.month, now) - attributedMonth) } }
        : {}),
    };
    this.last = report;
    return report;
  }

  /** Budget alerts (the highest threshold crossed per deployment and period) and cost anomalies. */
  alertSource(): AlertSource {
    const fmt = (n: number) => `${n.toPrecision(4)} ${this.opts.settings.currency}`;
    return {
      name: 'cost',
      evaluate: async (): Promise<AlertCondition[]> => {
        const report = await this.refresh();
        const out: AlertCondition[] = [];
        for (const d of report.deployments) {
          for (const period of ['day', 'month'] as const) {
            const ratio = d.used[period];
            const budget = period === 'day' ? d.budget?.daily : d.budget?.monthly;
            if (ratio === null || budget === undefined) continue;
            const crossed = [...BUDGET_THRESHOLDS].reverse().find((t) => ratio >= t);
            if (crossed === undefined) continue;
            const spent = period === 'day' ? d.spend.today : d.spend.month;
            const capNote = d.capped && d.capped.period === period
              ? d.capped.action === 'throttle'
                ? ` The cap throttles it (429 WARDEN_BUDGET_EXCEEDED) until ${new Date(d.capped.until).toISOString()}.`
                : ` The cap serves version ${d.capped.version} until ${new Date(d.capped.until).toISOString()}.`
              : '';
            out.push({
              alertname: 'WardenCostBudget',
              labels: { deployment: d.deployment, period, threshold: String(Math.round(crossed * 100)) },
              severity: crossed >= 1 ? 'page' : 'ticket',
              active: true,
              value: ratio,
              summary: `${d.deployment} has spent ${Math.round(ratio * 100)} % of its ${period === 'day' ? 'daily' : 'monthly'} budget`,
              description: `${fmt(spent)} of ${fmt(budget)} this ${period === 'day' ? 'UTC day' : 'month'}.${capNote}${d.problem ? ` ${d.problem}.` : ''}`,
              runbookUrl: 'docs/runbooks/cost-runaway.md',
            });
          }
          const an = d.anomaly;
          if (an.active) {
            out.push({
              alertname: 'WardenCostAnomaly',
              labels: { deployment: d.deployment },
              severity: 'ticket',
              active: true,
              value: an.spend,
              summary: `${d.deployment} costs ${an.baseline ? (an.spend / an.baseline).toFixed(1) : '∞'}× its usual hour`,
              description: `${fmt(an.spend)} in the hour from ${new Date(an.hour).toISOString()} against a mean of ${fmt(an.baseline ?? 0)} an hour over the ${an.baselineHours} hours before.`,
              runbookUrl: 'docs/runbooks/cost-runaway.md',
            });
          }
        }
        return out;
      },
    };
  }
}
