import type { Logger } from 'pino';
import type { EventStore, TrafficBucketRecord, TrafficStep } from '../storage/index.ts';
import type { Outcome } from './metrics.ts';

/**
 * Latency bins of the traffic series: LATENCY_BINS log-spaced bins from LATENCY_MIN_MS to LATENCY_MAX_MS, plus one
 * below (index 0) and one above (the last index). Each bin spans a factor LATENCY_BIN_RATIO (≈ 1.258), so a quantile
 * read from the bins lies in the same bin as the exact nearest-rank quantile: within a factor 1.258 of it, in
 * either direction. Below 0.05 ms and above 120 s the bin is bounded by the bucket's min/max latency instead.
 */
export const LATENCY_MIN_MS = 0.05;
export const LATENCY_MAX_MS = 120_000;
export const LATENCY_BINS = 64;
export const LATENCY_BIN_RATIO = Math.pow(LATENCY_MAX_MS / LATENCY_MIN_MS, 1 / LATENCY_BINS);
const LOG_MIN = Math.log(LATENCY_MIN_MS);
const LOG_RATIO = Math.log(LATENCY_BIN_RATIO);
/** Bins in a histogram array: under, LATENCY_BINS, over. */
export const HISTOGRAM_LENGTH = LATENCY_BINS + 2;
/** Error codes kept per bucket; more are counted as `other`. */
export const MAX_ERROR_CODES = 32;

export const STEP_MS: Record<TrafficStep, number> = { minute: 60_000, hour: 3_600_000 };

/** The histogram index of a latency. */
export function latencyBin(ms: number): number {
  if (!(ms >= LATENCY_MIN_MS)) return 0;
  if (ms >= LATENCY_MAX_MS) return HISTOGRAM_LENGTH - 1;
  const i = 1 + Math.floor((Math.log(ms) - LOG_MIN) / LOG_RATIO);
  return i < 1 ? 1 : i > LATENCY_BINS ? LATENCY_BINS : i;
}

/** Lower and upper bound (ms) of a bin, clamped to the observed min and max. */
function binRange(i: number, minMs: number, maxMs: number): [number, number] {
  let lo = i === 0 ? 0 : i === HISTOGRAM_LENGTH - 1 ? LATENCY_MAX_MS : Math.exp(LOG_MIN + (i - 1) * LOG_RATIO);
  let hi = i === 0 ? LATENCY_MIN_MS : i === HISTOGRAM_LENGTH - 1 ? Math.max(maxMs, LATENCY_MAX_MS) : Math.exp(LOG_MIN + i * LOG_RATIO);
  if (minMs > lo) lo = Math.min(minMs, hi);
  if (maxMs < hi) hi = Math.max(maxMs, lo);
  return [lo, hi];
}

/**
 * The q-quantile (0 < q ≤ 1) of the latencies counted in `histogram`, interpolated within the bin that holds the
 * nearest-rank sample (geometrically inside log bins, linearly in the open-ended ones). Null with no counts.
 */
export function histogramQuantile(histogram: ArrayLike<number>, q: number, minMs: number, maxMs: number): number | null {
  let n = 0;
  for (let i = 0; i < histogram.length; i++) n += histogram[i] ?? 0;
  if (n <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  let cum = 0;
  for (let i = 0; i < histogram.length; i++) {
    const c = histogram[i] ?? 0;
    if (c <= 0) continue;
    if (cum + c >= rank) {
      const [lo, hi] = binRange(i, minMs, maxMs);
      const f = (rank - cum - 0.5) / c;
      if (lo <= 0 || i === 0 || i === HISTOGRAM_LENGTH - 1) return lo + (hi - lo) * f;
      return lo * Math.pow(hi / lo, f);
    }
    cum += c;
  }
  return maxMs;
}

/** One model version's counts of the current minute; reset in place when flushed, so steady traffic allocates nothing. */
class Accumulator {
  minute = 0;
  requests = 0;
  ok = 0;
  clientErrors = 0;
  serverErrors = 0;
  shadow = 0;
  rows = 0;
  latencySumMs = 0;
  /** Shadow runs' time: weighs this version's share of process CPU, not its request latency. */
  shadowMs = 0;
  minMs = Infinity;
  maxMs = 0;
  readonly histogram = new Float64Array(HISTOGRAM_LENGTH);
  errors: Map<string, number> | undefined;

  constructor(
    readonly model: string,
    readonly version: number,
  ) {}

  empty(): boolean {
    return this.requests === 0 && this.shadow === 0;
  }

  reset(): void {
    this.requests = this.ok = this.clientErrors = this.serverErrors = this.shadow = this.rows = 0;
    this.latencySumMs = this.shadowMs = this.maxMs = 0;
    this.minMs = Infinity;
    this.histogram.fill(0);
    this.errors?.clear();
  }

  toRecord(step: TrafficStep, ts: number): TrafficBucketRecord {
    const errors: Record<string, number> = {};
    if (this.errors) for (const [k, v] of this.errors) errors[k] = v;
    return {
      model: this.model,
      version: this.version,
      step,
      ts,
      requests: this.requests,
      ok: this.ok,
      clientErrors: this.clientErrors,
      serverErrors: this.serverErrors,
      shadow: this.shadow,
      rows: this.rows,
      latencySumMs: this.latencySumMs,
      minMs: this.requests > 0 ? this.minMs : 0,
      maxMs: this.maxMs,
      cpuMs: 0,
      histogram: Array.from(this.histogram),
      errors,
    };
  }
}

export interface TrafficAggregatorOptions {
  events: EventStore;
  logger?: Logger;
  /** How often counts are written (default 10 s); also at close. */
  flushIntervalMs?: number;
  /** Minute buckets older than this are deleted (default 14 days). */
  minuteRetentionDays?: number;
  /** Hour buckets older than this are deleted (default 400 days). */
  hourRetentionDays?: number;
  /** Tests: the clock and the process CPU counter. */
  now?: () => number;
  cpuUsage?: () => { user: number; system: number };
}

/** Records kept for another try when the store refuses a flush; beyond it the oldest are dropped and counted. */
const MAX_RETRY_RECORDS = 20_000;
const PRUNE_EVERY_MS = 3_600_000;

/**
 * The per-deployment traffic series: the request path counts each request into its model version's current-minute
 * accumulator (a Map lookup and a few additions); every flush writes the counts as minute and hour buckets that add
 * to what other replicas wrote, with the process CPU time since the last flush split across versions by their share
 * of request time. Read by GET /api/v1/deployments/{name}/traffic.
 */
export class TrafficAggregator {
  private readonly byModel = new Map<string, Map<number, Accumulator>>();
  private last: Accumulator | undefined;
  /** Accumulators of minutes that ended before the flush saw them. */
  private closed: Accumulator[] = [];
  private retry: TrafficBucketRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private cpu: { user: number; system: number };
  private lastPrune = 0;
  private readonly now: () => number;
  private readonly cpuUsage: () => { user: number; system: number };
  /** Records lost to store errors (after retries overflowed). */
  dropped = 0;

  constructor(private readonly opts: TrafficAggregatorOptions) {
    this.now = opts.now ?? Date.now;
    this.cpuUsage = opts.cpuUsage ?? (() => process.cpuUsage());
    this.cpu = this.cpuUsage();
  }

  private acc(model: string, version: number, now: number): Accumulator {
    let a = this.last;
    if (a === undefined || a.model !== model || a.version !== version) {
      let versions = this.byModel.get(model);
      if (versions === undefined) this.byModel.set(model, (versions = new Map()));
      a = versions.get(version);
      if (a === undefined) versions.set(version, (a = new Accumulator(model, version)));
      this.last = a;
    }
    const minute = now - (now % 60_000);
    if (a.minute !== minute) {
      if (!a.empty()) {
        // The minute ended: its counts wait for the flush in this object, and a new one counts the new minute.
        this.closed.push(a);
        const fresh = new Accumulator(model, version);
        this.byModel.get(model)!.set(version, fresh);
        this.last = a = fresh;
      }
      a.minute = minute;
    }
    return a;
  }

  /** Counts one answered request (`code` for failures). `version` 0: it failed before a version was resolved. */
  request(model: string, version: number, outcome: Outcome, rows: number, latencyMs: number, code?: string): void {
    const a = this.acc(model, version, this.now());
    a.requests++;
    if (outcome === 'ok') {
      a.ok++;
      a.rows += rows;
    } else {
      if (outcome === 'client_error') a.clientErrors++;
      else a.serverErrors++;
      const errors = (a.errors ??= new Map());
      const key = code !== undefined && (errors.has(code) || errors.size < MAX_ERROR_CODES - 1) ? code : 'other';
      errors.set(key, (errors.get(key) ?? 0) + 1);
    }
    a.latencySumMs += latencyMs;
    if (latencyMs < a.minMs) a.minMs = latencyMs;
    if (latencyMs > a.maxMs) a.maxMs = latencyMs;
    a.histogram[latencyBin(latencyMs)]!++;
  }

  /** Counts shadow copies the candidate ran (not requests); their time weighs the version's share of CPU. */
  shadow(model: string, version: number, copies: number, runMs: number): void {
    const a = this.acc(model, version, this.now());
    a.shadow += copies;
    a.shadowMs += runMs;
  }

  start(): void {
    if (this.timer) return;
    // CPU spent starting up (model loads, migrations) is no request's.
    this.cpu = this.cpuUsage();
    this.timer = setInterval(() => void this.tick(), this.opts.flushIntervalMs ?? 10_000);
    this.timer.unref();
  }

  /** Stops the timer and writes what is counted. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** A timer tick: flush, and prune past retention at most hourly (never on a reader's flush). */
  private async tick(): Promise<void> {
    await this.flush();
    const now = this.now();
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      await this.prune(now).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'traffic retention prune failed'));
    }
  }

  /** Writes the counts so far (one flush at a time; a call during one waits for it, then flushes again). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.write().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private take(): TrafficBucketRecord[] {
    const cpu = this.cpuUsage();
    const cpuMs = Math.max(0, (cpu.user - this.cpu.user + cpu.system - this.cpu.system) / 1000);
    this.cpu = cpu;
    const taken: { record: TrafficBucketRecord; weight: number }[] = [];
    for (const a of this.closed) taken.push({ record: a.toRecord('minute', a.minute), weight: a.latencySumMs + a.shadowMs });
    this.closed = [];
    for (const versions of this.byModel.values()) {
      for (const a of versions.values()) {
        if (a.empty()) continue;
        taken.push({ record: a.toRecord('minute', a.minute), weight: a.latencySumMs + a.shadowMs });
        a.reset();
      }
    }
    // The interval's process CPU, split by request (and shadow run) time, as slo/sli.ts costPer1k does.
    const busy = taken.reduce((s, t) => s + t.weight, 0);
    const requests = taken.reduce((s, t) => s + t.record.requests + t.record.shadow, 0);
    const out: TrafficBucketRecord[] = [];
    for (const { record, weight } of taken) {
      const share = busy > 0 ? weight / busy : requests > 0 ? (record.requests + record.shadow) / requests : 0;
      record.cpuMs = cpuMs * share;
      out.push(record, { ...record, step: 'hour', ts: record.ts - (record.ts % STEP_MS.hour) });
    }
    return out;
  }

  private async write(): Promise<void> {
    const records = [...this.retry, ...this.take()];
    this.retry = [];
    if (records.length > 0) {
      try {
        await this.opts.events.addTraffic(records);
      } catch (e) {
        this.retry = records.slice(-MAX_RETRY_RECORDS);
        this.dropped += records.length - this.retry.length;
        this.opts.logger?.warn({ err: e, records: records.length }, 'traffic counts not written; retried at the next flush');
      }
    }
  }

  /** Deletes buckets past retention; returns how many went. */
  async prune(now = this.now()): Promise<number> {
    const day = 86_400_000;
    const minute = await this.opts.events.pruneTraffic({ step: 'minute', before: now - (this.opts.minuteRetentionDays ?? 14) * day });
    const hour = await this.opts.events.pruneTraffic({ step: 'hour', before: now - (this.opts.hourRetentionDays ?? 400) * day });
    return minute + hour;
  }
}

export interface TrafficPoint {
  ts: number;
  requests: number;
  ok: number;
  clientErrors: number;
  serverErrors: number;
  shadow: number;
  rows: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
  cpuMs: number;
}

export interface TrafficTotals extends TrafficPoint {
  availability: number | null;
  errorRate: number | null;
  cpuMsPer1k: number | null;
  costPer1k: number | null;
  errors: { code: string; count: number }[];
}

export interface TrafficReport {
  deployment: string;
  since: number;
  until: number;
  stepMs: number;
  costPerCpuHour: number | null;
  points: TrafficPoint[];
  totals: Omit<TrafficTotals, 'ts'>;
  versions: { version: number; requests: number }[];
}

/** Sums of several buckets (versions of one time step, or the whole range). */
class Sum {
  requests = 0;
  ok = 0;
  clientErrors = 0;
  serverErrors = 0;
  shadow = 0;
  rows = 0;
  latencySumMs = 0;
  cpuMs = 0;
  minMs = Infinity;
  maxMs = 0;
  histogram = new Float64Array(HISTOGRAM_LENGTH);

  add(r: TrafficBucketRecord): void {
    this.requests += r.requests;
    this.ok += r.ok;
    this.clientErrors += r.clientErrors;
    this.serverErrors += r.serverErrors;
    this.shadow += r.shadow;
    this.rows += r.rows;
    this.latencySumMs += r.latencySumMs;
    this.cpuMs += r.cpuMs;
    if (r.requests > 0 && r.minMs < this.minMs) this.minMs = r.minMs;
    if (r.maxMs > this.maxMs) this.maxMs = r.maxMs;
    const n = Math.min(r.histogram.length, HISTOGRAM_LENGTH);
    for (let i = 0; i < n; i++) this.histogram[i]! += r.histogram[i]!;
  }

  point(ts: number): TrafficPoint {
    const min = Number.isFinite(this.minMs) ? this.minMs : 0;
    const q = (p: number) => {
      const v = histogramQuantile(this.histogram, p, min, this.maxMs);
      return v === null ? null : round3(v);
    };
    return {
      ts,
      requests: this.requests,
      ok: this.ok,
      clientErrors: this.clientErrors,
      serverErrors: this.serverErrors,
      shadow: this.shadow,
      rows: this.rows,
      p50Ms: q(0.5),
      p95Ms: q(0.95),
      p99Ms: q(0.99),
      meanMs: this.requests > 0 ? round3(this.latencySumMs / this.requests) : null,
      cpuMs: round3(this.cpuMs),
    };
  }
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

/**
 * The traffic route's answer from stored buckets (oldest first): one point per step with traffic (versions merged
 * unless the query named one), totals whose quantiles come from the range's merged histograms, and requests per version.
 */
export function trafficReport(
  records: readonly TrafficBucketRecord[],
  q: { deployment: string; since: number; until: number; step: TrafficStep; costPerCpuHour?: number | undefined },
): TrafficReport {
  const points: TrafficPoint[] = [];
  const total = new Sum();
  const errors = new Map<string, number>();
  const versions = new Map<number, number>();
  let current: Sum | undefined;
  let currentTs = NaN;
  for (const r of records) {
    if (r.ts !== currentTs) {
      if (current) points.push(current.point(currentTs));
      current = new Sum();
      currentTs = r.ts;
    }
    current!.add(r);
    total.add(r);
    for (const [code, n] of Object.entries(r.errors)) errors.set(code, (errors.get(code) ?? 0) + n);
    versions.set(r.version, (versions.get(r.version) ?? 0) + r.requests);
  }
  if (current) points.push(current.point(currentTs));
  const { ts: _ts, ...t } = total.point(0);
  const served = t.ok + t.serverErrors;
  const cpuMsPer1k = t.ok > 0 ? (t.cpuMs / t.ok) * 1000 : null;
  const cost = q.costPerCpuHour ?? null;
  return {
    deployment: q.deployment,
    since: q.since,
    until: q.until,
    stepMs: STEP_MS[q.step],
    costPerCpuHour: cost,
    points,
    totals: {
      ...t,
      availability: served > 0 ? t.ok / served : null,
      errorRate: t.requests > 0 ? (t.clientErrors + t.serverErrors) / t.requests : null,
      cpuMsPer1k: cpuMsPer1k === null ? null : round3(cpuMsPer1k),
      costPer1k: cost !== null && cpuMsPer1k !== null ? (cpuMsPer1k / 3_600_000) * cost : null,
      errors: [...errors].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || a.code.localeCompare(b.code)),
    },
    versions: [...versions].map(([version, requests]) => ({ version, requests })).sort((a, b) => a.version - b.version),
  };
}
