import { Counter, type Registry } from 'prom-client';
import { WardenError } from '../errors.ts';
import type { MetadataStore, RateLimitRecord } from '../storage/index.ts';

export type LimitScope = RateLimitRecord['scope'];

/** A limit as configured (rate per second, burst), before the per-replica divisor. */
export interface LimitSetting {
  rate: number;
  burst?: number | undefined;
}

export interface RateLimitsConfig {
  /** Replicas sharing the traffic: every limit is divided by it, so the fleet as a whole allows about the limit set. */
  perReplica: number;
  /** Buckets held per scope at most; idle (full) ones go first. */
  maxBuckets: number;
  key?: LimitSetting | undefined;
  deployment?: LimitSetting | undefined;
  keys: Readonly<Record<string, LimitSetting>>;
  deployments: Readonly<Record<string, LimitSetting>>;
}

/** A limit in effect on this replica. */
export interface EffectiveLimit {
  readonly rate: number;
  readonly burst: number;
  /** Tokens per millisecond on this replica (rate / perReplica / 1000). */
  readonly perMs: number;
  /** Bucket size on this replica (burst / perReplica, at least 1). */
  readonly size: number;
  readonly source: 'api' | 'config' | 'default';
}

interface Bucket {
  tokens: number;
  last: number;
  limit: EffectiveLimit;
  gen: number;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Checks an API or config limit: rate > 0 and ≤ 1e6 per second, burst ≥ 1 (default: the rate, at least 1). */
export function checkLimit(raw: unknown): { rate: number; burst: number } {
  const o = (raw ?? {}) as { rate?: unknown; burst?: unknown };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('body must be {"rate": <requests per second>, "burst": <requests>}');
  if (typeof o.rate !== 'number' || !Number.isFinite(o.rate) || o.rate <= 0 || o.rate > 1e6) throw bad('"rate" must be a number of requests per second, above 0 and at most 1,000,000');
  if (o.burst !== undefined && (typeof o.burst !== 'number' || !Number.isFinite(o.burst) || o.burst < 1 || o.burst > 1e6)) throw bad('"burst" must be a number of requests from 1 to 1,000,000 (default: the rate)');
  return { rate: o.rate, burst: o.burst ?? Math.max(1, o.rate) };
}

/**
 * Token buckets per key and per deployment, in this replica's memory: no store read or write on the request path.
 * Settings come from config and the store (the store's win) and are re-read on a timer, after a change made here and
 * on the change feed. Buckets exist only for keys and deployments that have a limit, at most `maxBuckets` per scope.
 */
export class RateLimiter {
  private keyLimits = new Map<string, EffectiveLimit>();
  private depLimits = new Map<string, EffectiveLimit>();
  private keyDefault: EffectiveLimit | undefined;
  private depDefault: EffectiveLimit | undefined;
  private readonly keyBuckets = new Map<string, Bucket>();
  private readonly depBuckets = new Map<string, Bucket>();
  private gen = 0;
  private stored: RateLimitRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly refusedKey: { inc(): void };
  private readonly refusedDeployment: { inc(): void };
  /** The limit of the last refusal, for its message (read right after a refused take). */
  lastLimit: EffectiveLimit | undefined;

  constructor(
    private readonly opts: { store: MetadataStore; config: RateLimitsConfig; promRegistry?: Registry; refreshMs?: number },
  ) {
    const counter = new Counter({
      name: 'warden_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit on this replica, by the bucket that refused them (key or deployment).',
      labelNames: ['scope'],
      registers: opts.promRegistry ? [opts.promRegistry] : [],
    });
    // Children bound once: a refusal increments without building a labels object.
    this.refusedKey = counter.labels('key');
    this.refusedDeployment = counter.labels('deployment');
    this.apply();
  }

  /** Whether any limit could apply (lets the guard skip the clock read when none is set). */
  get active(): boolean {
    return this.keyDefault !== undefined || this.depDefault !== undefined || this.keyLimits.size > 0 || this.depLimits.size > 0;
  }

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload().catch(() => undefined), this.opts.refreshMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async reload(): Promise<void> {
    this.stored = await this.opts.store.listRateLimits();
    this.apply();
  }

  private effective(s: LimitSetting, source: EffectiveLimit['source']): EffectiveLimit {
    const burst = s.burst ?? Math.max(1, s.rate);
    const n = this.opts.config.perReplica;
    return { rate: s.rate, burst, perMs: s.rate / n / 1000, size: Math.max(1, burst / n), source };
  }

  private apply(): void {
    const c = this.opts.config;
    this.keyDefault = c.key ? this.effective(c.key, 'default') : undefined;
    this.depDefault = c.deployment ? this.effective(c.deployment, 'default') : undefined;
    const keys = new Map<string, EffectiveLimit>();
    const deps = new Map<string, EffectiveLimit>();
    for (const [id, s] of Object.entries(c.keys)) keys.set(id, this.effective(s, 'config'));
    for (const [name, s] of Object.entries(c.deployments)) deps.set(name, this.effective(s, 'config'));
    for (const r of this.stored) (r.scope === 'key' ? keys : deps).set(r.name, this.effective(r, 'api'));
    this.keyLimits = keys;
    this.depLimits = deps;
    // Buckets pick up their new limit lazily, at their next take.
    this.gen++;
  }

  /** Every limit in effect: each key's and deployment's, then the defaults. */
  list(): { perReplica: number; maxBuckets: number; defaults: { key: EffectiveLimit | null; deployment: EffectiveLimit | null }; limits: (EffectiveLimit & { scope: LimitScope; name: string; updatedAt?: number; updatedBy?: string })[] } {
    const stored = new Map(this.stored.map((r) => [`${r.scope}/${r.name}`, r]));
    const rows = [...[...this.depLimits].map(([name, l]) => ({ scope: 'deployment' as const, name, l })), ...[...this.keyLimits].map(([name, l]) => ({ scope: 'key' as const, name, l }))];
    return {
      perReplica: this.opts.config.perReplica,
      maxBuckets: this.opts.config.maxBuckets,
      defaults: { key: this.keyDefault ?? null, deployment: this.depDefault ?? null },
      limits: rows.map(({ scope, name, l }) => {
        const r = stored.get(`${scope}/${name}`);
        return { scope, name, ...l, ...(r ? { updatedAt: r.updatedAt, updatedBy: r.updatedBy } : {}) };
      }),
    };
  }

  /** Takes a token for a key: 0 when allowed, else the seconds to wait (≥ 1). */
  takeKey(id: string, now: number): number {
    const limit = this.keyLimits.get(id) ?? this.keyDefault;
    if (limit === undefined) return 0;
    const wait = this.take(this.keyBuckets, id, limit, now);
    if (wait > 0) this.refusedKey.inc();
    return wait;
  }

  /** Takes a token for a deployment: 0 when allowed, else the seconds to wait (≥ 1). */
  takeDeployment(name: string, now: number): number {
    const limit = this.depLimits.get(name) ?? this.depDefault;
    if (limit === undefined) return 0;
    const wait = this.take(this.depBuckets, name, limit, now);
    if (wait > 0) this.refusedDeployment.inc();
    return wait;
  }

  private take(buckets: Map<string, Bucket>, name: string, limit: EffectiveLimit, now: number): number {
    let b = buckets.get(name);
    if (b === undefined) {
      if (buckets.size >= this.opts.config.maxBuckets) this.sweep(buckets, now);
      b = { tokens: limit.size, last: now, limit, gen: this.gen };
      buckets.set(name, b);
    } else if (b.gen !== this.gen) {
      b.limit = limit;
      b.gen = this.gen;
    }
    const l = b.limit;
    const elapsed = now > b.last ? now - b.last : 0;
    const refilled = b.tokens + elapsed * l.perMs;
    b.tokens = refilled < l.size ? refilled : l.size;
    b.last = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    this.lastLimit = l;
    const seconds = Math.ceil((1 - b.tokens) / l.perMs / 1000);
    return seconds >= 1 ? seconds : 1;
  }

  /**
   * Makes room: a bucket that has refilled is the same as no bucket, so those go first and nothing changes for their
   * callers; if every bucket is busy, the oldest tenth goes (they start full again: a burst more for them).
   */
  private sweep(buckets: Map<string, Bucket>, now: number): void {
    for (const [name, b] of buckets) if (b.tokens + (now - b.last) * b.limit.perMs >= b.limit.size) buckets.delete(name);
    const max = this.opts.config.maxBuckets;
    if (buckets.size < max) return;
    let drop = buckets.size - Math.floor(max * 0.9);
    for (const name of buckets.keys()) {
      if (drop-- <= 0) break;
      buckets.delete(name);
    }
  }

  /** Buckets held now, per scope (tests and the memory bound). */
  bucketCount(): { key: number; deployment: number } {
    return { key: this.keyBuckets.size, deployment: this.depBuckets.size };
  }
}
