/**
 * Request quotas (docs/security.md#quotas): a total of inference requests per UTC day and per UTC month, per key and
 * per deployment, counted over every replica. Each replica counts in memory what it admits, adds its counts to the
 * store every `flushMs` and reads the fleet's totals back; a request is admitted while the fleet's total at the last
 * read plus what this replica counted since stays under the quota. No store access on the request path.
 */
import { Counter, type Registry } from 'prom-client';
import { WardenError } from '../errors.ts';
import { DAY_MS, utcPeriods } from '../calendar.ts';
import type { MetadataStore, QuotaRecord, QuotaUsageRecord } from '../storage/index.ts';

export type QuotaScope = QuotaRecord['scope'];

/** A quota as configured or set by the API: requests per UTC day and/or month. */
export interface QuotaSetting {
  perDay?: number | undefined;
  perMonth?: number | undefined;
}

export interface QuotasConfig {
  /** How often counts are added to the store and the fleet's totals read back. */
  flushMs: number;
  /** Subjects tracked per scope at most (a name past it is admitted uncounted, see docs). */
  maxSubjects: number;
  key?: QuotaSetting | undefined;
  deployment?: QuotaSetting | undefined;
  keys: Readonly<Record<string, QuotaSetting>>;
  deployments: Readonly<Record<string, QuotaSetting>>;
}

interface Subject {
  /** Start of the UTC day the counts are of. */
  day: number;
  /** The fleet's count of that day and of its month at the last read (this replica's flushed counts included). */
  fleetDay: number;
  fleetMonth: number;
  /** Admitted here and not yet added to the store. */
  pending: number;
}

/** What refused a request: the scope, the name, the period and the quota. */
export interface QuotaRefusal {
  scope: QuotaScope;
  name: string;
  period: 'day' | 'month';
  limit: number;
  /** Seconds until the period starts again. */
  wait: number;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Checks an API quota body: {perDay?, perMonth?}, whole numbers from 1 to 1e12, at least one. */
export function checkQuota(raw: unknown): QuotaSetting {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('body must be {"perDay": <requests>, "perMonth": <requests>}');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'perDay' && k !== 'perMonth') throw bad(`unknown field ${JSON.stringify(k.slice(0, 40))}; a quota has perDay and perMonth`);
  const count = (k: 'perDay' | 'perMonth') => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1e12) throw bad(`"${k}" must be a whole number of requests from 1 to 1e12, not ${JSON.stringify(v)}`);
    return v;
  };
  const perDay = count('perDay');
  const perMonth = count('perMonth');
  if (perDay === undefined && perMonth === undefined) throw bad('give "perDay", "perMonth" or both');
  return { ...(perDay !== undefined ? { perDay } : {}), ...(perMonth !== undefined ? { perMonth } : {}) };
}

const monthStart = (t: number) => utcPeriods(t).month;
const nextMonth = (t: number) => utcPeriods(t).nextMonth;

export class QuotaCounter {
  private keyQuotas = new Map<string, QuotaSetting>();
  private depQuotas = new Map<string, QuotaSetting>();
  private stored: QuotaRecord[] = [];
  private readonly keys = new Map<string, Subject>();
  private readonly deps = new Map<string, Subject>();
  /** Counts of a day that ended before they were flushed. */
  private carried: QuotaUsageRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lastPrune = 0;
  private readonly refusedKey: { inc(): void };
  private readonly refusedDeployment: { inc(): void };
  /** The refusal of the last `admit` that refused (read right after it, for the message). */
  lastRefusal: QuotaRefusal | undefined;

  constructor(
    private readonly opts: {
      store: Pick<MetadataStore, 'listQuotas' | 'addQuotaUsage' | 'quotaUsage' | 'pruneQuotaUsage'>;
      config: QuotasConfig;
      promRegistry?: Registry;
      logger?: { warn(obj: unknown, msg: string): void };
      now?: () => number;
    },
  ) {
    const counter = new Counter({
      name: 'warden_quota_refused_total',
      help: 'Inference requests refused with 429 WARDEN_QUOTA_EXCEEDED on this replica, by the quota that refused them (key or deployment).',
      labelNames: ['scope'],
      registers: opts.promRegistry ? [opts.promRegistry] : [],
    });
    this.refusedKey = counter.labels('key');
    this.refusedDeployment = counter.labels('deployment');
    this.apply();
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Whether any quota could apply (lets the guard skip the call when none is set). */
  get active(): boolean {
    const c = this.opts.config;
    return c.key !== undefined || c.deployment !== undefined || this.keyQuotas.size > 0 || this.depQuotas.size > 0;
  }

  async start(): Promise<void> {
    await this.reload();
    await this.flush().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'quota counts could not be read'));
    this.timer = setInterval(() => void this.flush().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'quota counts could not be written; kept for the next flush')), this.opts.config.flushMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what was counted. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'quota counts could not be written at shutdown'));
  }

  async reload(): Promise<void> {
    this.stored = await this.opts.store.listQuotas();
    this.apply();
  }

  private apply(): void {
    const c = this.opts.config;
    const keys = new Map<string, QuotaSetting>(Object.entries(c.keys));
    const deps = new Map<string, QuotaSetting>(Object.entries(c.deployments));
    for (const q of this.stored) (q.scope === 'key' ? keys : deps).set(q.name, { perDay: q.perDay, perMonth: q.perMonth });
    this.keyQuotas = keys;
    this.depQuotas = deps;
  }

  private quotaOf(scope: QuotaScope, name: string): QuotaSetting | undefined {
    return scope === 'key' ? (this.keyQuotas.get(name) ?? this.opts.config.key) : (this.depQuotas.get(name) ?? this.opts.config.deployment);
  }

  /** The subject's counts for the day holding `now` (a new day starts at zero; a new month too). */
  private subject(map: Map<string, Subject>, scope: QuotaScope, name: string, now: number): Subject | undefined {
    const day = now - (now % DAY_MS);
    let s = map.get(name);
    if (s === undefined) {
      if (map.size >= this.opts.config.maxSubjects) return undefined;
      s = { day, fleetDay: 0, fleetMonth: 0, pending: 0 };
      map.set(name, s);
    } else if (s.day !== day) {
      if (s.pending > 0) this.carried.push({ scope, name, day: s.day, count: s.pending });
      const sameMonth = monthStart(s.day) === monthStart(day);
      s.fleetMonth = sameMonth ? s.fleetMonth + s.pending : 0;
      s.fleetDay = 0;
      s.pending = 0;
      s.day = day;
    }
    return s;
  }

  private over(scope: QuotaScope, name: string, q: QuotaSetting, s: Subject, now: number): QuotaRefusal | undefined {
    if (q.perDay !== undefined && s.fleetDay + s.pending >= q.perDay) return { scope, name, period: 'day', limit: q.perDay, wait: Math.max(1, Math.ceil((s.day + DAY_MS - now) / 1000)) };
    if (q.perMonth !== undefined && s.fleetMonth + s.pending >= q.perMonth) return { scope, name, period: 'month', limit: q.perMonth, wait: Math.max(1, Math.ceil((nextMonth(now) - now) / 1000)) };
    return undefined;
  }

  /**
   * Admits an inference request by a key (if any) to a deployment (if known): both quotas are checked and, only if
   * both allow it, both count it. Returns undefined when admitted.
   */
  admit(keyId: string | undefined, deployment: string | undefined, now: number): QuotaRefusal | undefined {
    const kq = keyId === undefined ? undefined : this.quotaOf('key', keyId);
    const dq = deployment === undefined ? undefined : this.quotaOf('deployment', deployment);
    if (kq === undefined && dq === undefined) return undefined;
    const ks = kq ? this.subject(this.keys, 'key', keyId!, now) : undefined;
    const ds = dq ? this.subject(this.deps, 'deployment', deployment!, now) : undefined;
    const refusal = (ks && this.over('key', keyId!, kq!, ks, now)) || (ds && this.over('deployment', deployment!, dq!, ds, now));
    if (refusal) {
      (refusal.scope === 'key' ? this.refusedKey : this.refusedDeployment).inc();
      this.lastRefusal = refusal;
      return refusal;
    }
    if (ks) ks.pending++;
    if (ds) ds.pending++;
    return undefined;
  }

  /** Adds this replica's counts to the store, then reads the fleet's totals of the month (one flush at a time). */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(): Promise<void> {
    const now = this.now;
    const carried = this.carried;
    this.carried = [];
    const rows: QuotaUsageRecord[] = [...carried];
    const taken: { s: Subject; row: QuotaUsageRecord }[] = [];
    for (const [scope, map] of [['key', this.keys], ['deployment', this.deps]] as const) {
      for (const [name, s] of map) {
        if (s.pending === 0) continue;
        const row = { scope, name, day: s.day, count: s.pending };
        rows.push(row);
        taken.push({ s, row });
        s.pending = 0;
      }
    }
    try {
      if (rows.length > 0) await this.opts.store.addQuotaUsage(rows);
    } catch (e) {
      // Not lost, and still counted against the quota: written at the next flush, into the day each count is of.
      this.carried = carried.concat(this.carried);
      for (const { s, row } of taken) {
        if (s.day === row.day) s.pending += row.count;
        else this.carried.push(row);
      }
      throw e;
    }
    const month = monthStart(now);
    const usage = await this.opts.store.quotaUsage(month);
    const today = now - (now % DAY_MS);
    const totals = new Map<string, { day: number; month: number }>();
    for (const u of usage) {
      const k = `${u.scope}\u0000${u.name}`;
      const t = totals.get(k) ?? { day: 0, month: 0 };
      t.month += u.count;
      if (u.day === today) t.day += u.count;
      totals.set(k, t);
    }
    for (const [scope, map] of [['key', this.keys], ['deployment', this.deps]] as const) {
      // Subjects with a quota and a count elsewhere in the fleet are tracked from now on.
      for (const k of totals.keys()) {
        if (!k.startsWith(`${scope}\u0000`)) continue;
        const name = k.slice(scope.length + 1);
        if (this.quotaOf(scope, name) !== undefined) this.subject(map, scope, name, now);
      }
      for (const [name, s] of map) {
        if (s.day !== today) this.subject(map, scope, name, now);
        const t = totals.get(`${scope}\u0000${name}`);
        s.fleetDay = t?.day ?? 0;
        s.fleetMonth = t?.month ?? 0;
      }
    }
    if (now - this.lastPrune >= 3_600_000) {
      this.lastPrune = now;
      // The month before is kept whole for the API's view; older days go.
      await this.opts.store.pruneQuotaUsage(monthStart(month - 1)).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'quota usage prune failed'));
    }
  }

  /** Every quota in force and what the fleet has used of it (at the last read, plus this replica's since). */
  list(): {
    flushMs: number;
    defaults: { key: QuotaSetting | null; deployment: QuotaSetting | null };
    quotas: { scope: QuotaScope; name: string; perDay?: number; perMonth?: number; source: 'api' | 'config'; used: { day: number; month: number }; updatedAt?: number; updatedBy?: string }[];
  } {
    const stored = new Map(this.stored.map((r) => [`${r.scope}/${r.name}`, r]));
    const used = (map: Map<string, Subject>, name: string) => {
      const s = map.get(name);
      return s ? { day: s.fleetDay + s.pending, month: s.fleetMonth + s.pending } : { day: 0, month: 0 };
    };
    const rows = [
      ...[...this.depQuotas].map(([name, q]) => ({ scope: 'deployment' as const, name, q, map: this.deps })),
      ...[...this.keyQuotas].map(([name, q]) => ({ scope: 'key' as const, name, q, map: this.keys })),
    ];
    return {
      flushMs: this.opts.config.flushMs,
      defaults: { key: this.opts.config.key ?? null, deployment: this.opts.config.deployment ?? null },
      quotas: rows.map(({ scope, name, q, map }) => {
        const r = stored.get(`${scope}/${name}`);
        return {
          scope,
          name,
          ...(q.perDay !== undefined ? { perDay: q.perDay } : {}),
          ...(q.perMonth !== undefined ? { perMonth: q.perMonth } : {}),
          source: r ? ('api' as const) : ('config' as const),
          used: used(map, name),
          ...(r ? { updatedAt: r.updatedAt, updatedBy: r.updatedBy } : {}),
        };
      }),
    };
  }
}
