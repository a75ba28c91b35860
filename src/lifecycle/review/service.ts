import type { Logger } from 'pino';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import type { OutputTensor } from '../../serving/index.ts';
import type {
  EventStore,
  MetadataStore,
  ModelSignature,
  ModelVersionRecord,
  NewReviewItem,
  PredictionEvent,
  ReviewItemRecord,
  ReviewItemStatus,
  ReviewPolicyRecord,
  ReviewReason,
} from '../../storage/index.ts';
import { BINARY_LABELS, confidenceOf, parseReviewPolicy, policyRecord, probabilityOutputProblem, probabilityTensor, regressionProblem } from './policy.ts';
import { ActiveLearningSampler } from './sampler.ts';

/** A claim older than this has expired: someone else may claim or label the item. */
export const CLAIM_TTL_MS = 15 * 60 * 1000;
/** Items waiting for their store write beyond this are dropped and counted (a slow store must not grow memory). */
const MAX_PENDING_WRITES = 10_000;

export interface ReviewServiceDeps {
  metadata: MetadataStore;
  /** Human labels are forwarded here (`appendLabels`) so they feed live performance. */
  events: EventStore;
  registry: Registry;
  promRegistry: PromRegistry;
  logger: Logger;
  /** A served version's signature, to store items' inputs by feature name; without it, by tensor name. */
  signatureOf?: (model: string, version: number) => ModelSignature | undefined;
  now?: () => number;
  /** How often policies are re-read from the store (other replicas' changes). Default 10 s. */
  refreshMs?: number;
  claimTtlMs?: number;
}

/** The request-path verdict on one response: which rows should go to a person. */
export interface ReviewFlag {
  rows: number[];
  reason: 'low_confidence';
}

/** A queue item as the API shows it. */
export interface ReviewItem extends ReviewItemRecord {
  status: ReviewItemStatus;
  /**
   * When the claim lapses (claimedAt + the claim TTL), so clients need not know the TTL; in the past when it
   * already has (the item is then open again). Null when unclaimed or labelled.
   */
  claimExpiresAt: number | null;
}

/** One model's queue as the API shows it (`GET /api/v1/review/queues`). */
export interface ReviewQueue {
  model: string;
  /** Null when the model has items but no policy any more. */
  policy: ReviewPolicyRecord | null;
  open: number;
  claimed: number;
  labelled: number;
  /** createdAt of the oldest open item (the next one to claim), epoch ms; null when none is open. */
  oldestOpenAt: number | null;
}

/** What labelling an item did: the item, and whether the label reached the labels store. */
export interface LabelOutcome {
  item: ReviewItem;
  /** True when the label was stored as a `human` label of the prediction (it then feeds live performance). */
  forwarded: boolean;
  /** Why it was not forwarded. */
  forwardError?: string;
}

export interface ReviewItemFilter {
  model?: string;
  status?: ReviewItemStatus;
  afterId?: number;
  limit: number;
}

/** The part of the event store labels go through; checked at run time, as older stores lack it. */
interface LabelSink {
  appendLabels?: (
    labels: readonly { requestId: string; row: number; value: number | string | boolean; source: 'human'; ts: number }[],
    now: number,
  ) => Promise<{ invalid?: number; errors?: { error: string }[] } | void>;
}

interface LoggedTensor {
  name: string;
  dims?: number[];
  shape?: number[];
  data: ArrayLike<unknown>;
}

function tensorList(v: unknown): LoggedTensor[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  for (const t of v) {
    if (!t || typeof t !== 'object' || typeof (t as LoggedTensor).name !== 'string') return undefined;
    const data = (t as LoggedTensor).data as { length?: unknown } | null;
    if (!data || typeof data.length !== 'number') return undefined;
  }
  return v as LoggedTensor[];
}

/** A JSON-safe scalar from a tensor element (int64 arrives as bigint). */
function plain(v: unknown): unknown {
  return typeof v === 'bigint' ? Number(v) : v;
}

function numeric(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

const badRequest = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Validates a reviewer name: who claimed or labelled an item is kept with it. */
export function checkReviewer(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > 128) throw badRequest('"reviewer" must be a non-empty string of at most 128 characters');
  return v.trim();
}

/** Validates a label value: a number, a string (≤ 1024 characters) or a boolean. */
export function checkLabelValue(v: unknown): number | string | boolean {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && v.length > 0 && v.length <= 1024) return v;
  throw badRequest('"value" must be a finite number, a boolean or a non-empty string of at most 1024 characters');
}

/**
 * The human review queue: per-model policies cached in memory for the request path (`flag`), items enqueued
 * off it from the prediction log's batches (low confidence, plus an active-learning sample), and the claim and
 * label flow whose labels are forwarded to the labels store as human labels.
 */
export class ReviewService {
  private policies = new Map<string, ReviewPolicyRecord>();
  /** Bumped on every local policy change, so a slower concurrent reload cannot bring back an old policy. */
  private generation = 0;
  private readonly sampler = new ActiveLearningSampler();
  private writes: Promise<void> = Promise.resolve();
  private pendingWrites = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private scrape: { at: number; done: Promise<void> } | undefined;
  private readonly claimTtlMs: number;
  private readonly metrics: {
    depth: Gauge<'model'>;
    oldest: Gauge<'model'>;
    items: Counter<'model' | 'reason'>;
    dropped: Counter<'model' | 'reason'>;
  };

  constructor(private readonly deps: ReviewServiceDeps) {
    this.claimTtlMs = deps.claimTtlMs ?? CLAIM_TTL_MS;
    const registers = [deps.promRegistry];
    // The queue lives in the store (shared by replicas), so depth and age are read from it at scrape time.
    const collect = () => this.collectQueueGauges();
    this.metrics = {
      depth: new Gauge({ name: 'warden_review_queue_depth', help: 'Review items not yet labelled (open + claimed), per model.', labelNames: ['model'], registers, collect }),
      oldest: new Gauge({ name: 'warden_review_oldest_age_seconds', help: 'Age of the oldest review item not yet labelled, per model (0 when none).', labelNames: ['model'], registers, collect }),
      items: new Counter({ name: 'warden_review_items_total', help: 'Items put in the review queue, by model and reason (low_confidence, active_learning).', labelNames: ['model', 'reason'], registers }),
      dropped: new Counter({
        name: 'warden_review_dropped_total',
        help: 'Review items not queued: the model queue was at maxQueue (queue_full), or the store failed or fell behind (store_error).',
        labelNames: ['model', 'reason'],
        registers,
      }),
    };
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Loads the policies and keeps them fresh: every refresh interval, and when a model is deleted. */
  async start(): Promise<void> {
    await this.reload();
    const refreshMs = this.deps.refreshMs ?? 10_000;
    this.timer = setInterval(() => void this.reload().catch((err) => this.deps.logger.warn({ err }, 'review policies: reload failed')), refreshMs);
    this.timer.unref();
    this.unsubscribe = this.deps.registry.onChange((c) => {
      if (c.kind !== 'model-deleted') return;
      this.generation++;
      this.policies.delete(c.model);
      this.sampler.forget(c.model);
    });
  }

  /** Stops the refresh and waits for queued item writes. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    await this.settled();
  }

  /** Re-reads every policy from the store. */
  async reload(): Promise<void> {
    const generation = this.generation;
    const next = new Map((await this.deps.metadata.listReviewPolicies()).map((p) => [p.model, p] as const));
    if (generation !== this.generation) return;
    for (const model of this.policies.keys()) if (!next.has(model)) this.sampler.forget(model);
    this.policies = next;
  }

  /**
   * Request path: the rows of a response whose confidence is below the model's threshold. A map lookup when
   * the model has no policy; allocates only when a row qualifies.
   */
  flag(model: string, outputs: readonly OutputTensor[], rows: number): ReviewFlag | undefined {
    const policy = this.policies.get(model);
    const threshold = policy?.confidenceThreshold;
    if (threshold === undefined) return undefined;
    const t = probabilityTensor(outputs, policy!.output, rows);
    if (!t) return undefined;
    let flagged: number[] | undefined;
    for (let r = 0; r < rows; r++) {
      if (confidenceOf(t.data[r]) < threshold) (flagged ??= []).push(r);
    }
    return flagged && { rows: flagged, reason: 'low_confidence' };
  }

  /**
   * Prediction log listener (off the request path): finds each served event's low-confidence rows (the same
   * rule as `flag`) and active-learning picks, copies their rows now (the batch is handed to the store next),
   * and queues the store write.
   */
  onEvents(batch: readonly PredictionEvent[]): void {
    if (this.policies.size === 0) return;
    const byModel = new Map<string, NewReviewItem[]>();
    const now = this.now();
    for (const e of batch) {
      if (e.status !== 'ok') continue;
      const policy = this.policies.get(e.model);
      if (!policy) continue;
      const items = this.itemsOf(e, policy, now);
      if (items.length === 0) continue;
      const list = byModel.get(e.model);
      if (list) list.push(...items);
      else byModel.set(e.model, items);
    }
    for (const [model, items] of byModel) this.enqueue(model, items, this.policies.get(model)!.maxQueue);
  }

  /** Resolves when every item write queued so far has finished. */
  settled(): Promise<void> {
    return this.writes;
  }

  private itemsOf(e: PredictionEvent, policy: ReviewPolicyRecord, now: number): NewReviewItem[] {
    const inputs = tensorList(e.inputs);
    const outputs = tensorList(e.outputs) as OutputTensor[] | undefined;
    if (!inputs || !outputs) return [];
    const n = (inputs[0]!.dims ?? inputs[0]!.shape ?? [])[0] ?? 0;
    const prob = probabilityTensor(outputs, policy.output, n);
    if (!prob || n === 0) return [];
    const threshold = policy.confidenceThreshold;
    const sampleRate = policy.sampleRate ?? 0;
    const p = new Float64Array(n);
    const low: number[] = [];
    const candidate: boolean[] = new Array(n).fill(false);
    for (let r = 0; r < n; r++) {
      const c = confidenceOf(prob.data[r]);
      p[r] = Number.isNaN(c) ? NaN : (prob.data[r] as number);
      if (Number.isNaN(c)) continue;
      if (threshold !== undefined && c < threshold) low.push(r);
      else candidate[r] = true;
    }
    let picked: number[] = [];
    if (sampleRate > 0) {
      const features = featureMatrix(inputs, n);
      picked = this.sampler.select(e.model, sampleRate, { requestId: e.requestId, p, candidate, ...(features ? { features } : {}) }).rows;
    }
    if (low.length === 0 && picked.length === 0) return [];
    const signature = this.deps.signatureOf?.(e.model, e.version);
    const item = (row: number, reason: ReviewReason): NewReviewItem => ({
      version: e.version,
      requestId: e.requestId,
      row,
      inputs: rowInputs(inputs, n, row, signature),
      prediction: rowOutputs(outputs, n, row),
      reason,
      confidence: confidenceOf(p[row]),
      createdAt: now,
    });
    return [...low.map((r) => item(r, 'low_confidence')), ...picked.map((r) => item(r, 'active_learning'))];
  }

  private enqueue(model: string, items: NewReviewItem[], maxQueue: number): void {
    if (this.pendingWrites + items.length > MAX_PENDING_WRITES) {
      this.metrics.dropped.inc({ model, reason: 'store_error' }, items.length);
      this.deps.logger.warn({ model, items: items.length }, 'review queue: store writes are behind; dropping items');
      return;
    }
    this.pendingWrites += items.length;
    this.writes = this.writes.then(async () => {
      try {
        const stored = await this.deps.metadata.enqueueReviewItems(model, items, maxQueue);
        for (let i = 0; i < stored; i++) this.metrics.items.inc({ model, reason: items[i]!.reason });
        if (stored < items.length) this.metrics.dropped.inc({ model, reason: 'queue_full' }, items.length - stored);
      } catch (err) {
        this.metrics.dropped.inc({ model, reason: 'store_error' }, items.length);
        this.deps.logger.error({ err, model, items: items.length }, 'review queue: store write failed; items dropped');
      } finally {
        this.pendingWrites -= items.length;
        this.scrape = undefined;
      }
    });
  }

  private async collectQueueGauges(): Promise<void> {
    // Both gauges call this on one scrape: share one store read (a queue write or a label starts a new one).
    const at = this.now();
    if (!this.scrape || at - this.scrape.at > 1000) {
      this.scrape = { at, done: this.readQueueGauges(at) };
    }
    await this.scrape.done;
  }

  private async readQueueGauges(now: number): Promise<void> {
    try {
      const stats = await this.deps.metadata.reviewQueueStats();
      this.metrics.depth.reset();
      this.metrics.oldest.reset();
      for (const model of this.policies.keys()) {
        this.metrics.depth.set({ model }, 0);
        this.metrics.oldest.set({ model }, 0);
      }
      for (const s of stats) {
        this.metrics.depth.set({ model: s.model }, s.pending);
        this.metrics.oldest.set({ model: s.model }, Math.max(0, (now - s.oldestCreatedAt) / 1000));
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'review queue: metrics read failed; keeping the last values');
    }
  }

  /** The cached policy of a model (what the request path uses). */
  policy(model: string): ReviewPolicyRecord | undefined {
    return this.policies.get(model);
  }

  /** Validates and stores a model's policy; the request path uses it from the next request. */
  async setPolicy(model: string, body: unknown): Promise<ReviewPolicyRecord> {
    const input = parseReviewPolicy(body);
    await this.deps.registry.getModel(model);
    const served = await this.servedVersion(model);
    const regression = served && regressionProblem(served, input.output);
    if (regression) {
      throw new WardenError(
        'WARDEN_INVALID_INPUT',
        `review policy for ${model}: v${served.version} is served, and ${regression}. Review policies need a binary classifier's P(y = 1): confidence is max(p, 1 − p), and a regression output is not a probability, so no row would ever be flagged or sampled`,
      );
    }
    const problem = served && probabilityOutputProblem(served.signature, input.output);
    if (problem) throw new WardenError('WARDEN_INVALID_INPUT', `review policy for ${model}: ${problem}`);
    const record = policyRecord(model, input, this.now());
    await this.deps.metadata.saveReviewPolicy(record);
    this.generation++;
    this.policies.set(model, record);
    return record;
  }

  async getPolicy(model: string): Promise<ReviewPolicyRecord> {
    const p = await this.deps.metadata.getReviewPolicy(model);
    if (!p) throw new WardenError('WARDEN_NOT_FOUND', `model ${model} has no review policy; set one with PUT /api/v1/models/${model}/review-policy`);
    return p;
  }

  async deletePolicy(model: string): Promise<void> {
    const existed = await this.deps.metadata.deleteReviewPolicy(model);
    this.generation++;
    this.policies.delete(model);
    this.sampler.forget(model);
    if (!existed) throw new WardenError('WARDEN_NOT_FOUND', `model ${model} has no review policy`);
  }

  /** The version requests get by default: the champion alias, else the latest. */
  private async servedVersion(model: string): Promise<ModelVersionRecord | undefined> {
    const champion = (await this.deps.registry.listAliases(model)).find((a) => a.alias === 'champion');
    const versions = await this.deps.registry.listVersions(model);
    return champion ? versions.find((x) => x.version === champion.version) : versions.at(-1);
  }

  private withStatus(item: ReviewItemRecord, now = this.now()): ReviewItem {
    const status: ReviewItemStatus =
      item.labelledAt !== undefined ? 'labelled' : item.claimedBy !== undefined && (item.claimedAt ?? 0) >= now - this.claimTtlMs ? 'claimed' : 'open';
    const claimExpiresAt = status !== 'labelled' && item.claimedAt !== undefined ? item.claimedAt + this.claimTtlMs : null;
    return { ...item, status, claimExpiresAt };
  }

  /** How long a claim holds, in ms. */
  get claimTtl(): number {
    return this.claimTtlMs;
  }

  /**
   * Every model with a policy, and every model with items but no policy any more, with its items counted by
   * status (the same rule as `listItems`: a claim older than the TTL counts as open), in one store read.
   */
  async queues(): Promise<ReviewQueue[]> {
    const rows = await this.deps.metadata.reviewQueues(this.now() - this.claimTtlMs);
    return rows.map((r) => ({
      model: r.model,
      policy: r.policy ?? null,
      open: r.open,
      claimed: r.claimed,
      labelled: r.labelled,
      oldestOpenAt: r.oldestOpenCreatedAt ?? null,
    }));
  }

  async listItems(f: ReviewItemFilter): Promise<ReviewItem[]> {
    const now = this.now();
    const items = await this.deps.metadata.listReviewItems({ ...f, claimExpiredBefore: now - this.claimTtlMs });
    return items.map((i) => this.withStatus(i, now));
  }

  async getItem(id: number): Promise<ReviewItem> {
    const item = await this.deps.metadata.getReviewItem(id);
    if (!item) throw new WardenError('WARDEN_NOT_FOUND', `no review item ${id}`);
    return this.withStatus(item);
  }

  /** Claims an item for a reviewer; 409 while someone else's claim is younger than the claim TTL. */
  async claim(id: number, reviewer: string): Promise<ReviewItem> {
    const now = this.now();
    const item = await this.deps.metadata.claimReviewItem(id, reviewer, now, now - this.claimTtlMs);
    if (item) return this.withStatus(item, now);
    throw this.refusal(await this.getItem(id), 'claim');
  }

  /**
   * Labels an item (claimed by this reviewer, or unclaimed, or with an expired claim) and forwards the label
   * to the labels store as a human label of the prediction row. Sending the same label again by the same
   * reviewer is a no-op that forwards it again (a retry after a failed forward).
   */
  async label(id: number, value: number | string | boolean, reviewer: string): Promise<LabelOutcome> {
    const target = await this.getItem(id);
    // Items only come from binary classifiers (a policy needs P(y = 1)); live performance reads 0/1 or
    // booleans and skips anything else, so a "yes" would be stored and then silently never count.
    if (!BINARY_LABELS.includes(value as number | boolean)) {
      throw badRequest(
        `review item ${id} is a prediction of ${target.model}, a binary classifier: its label must be one of 0, 1, false, true; got ${JSON.stringify(value)}`,
      );
    }
    const now = this.now();
    let item = await this.deps.metadata.labelReviewItem(id, value, reviewer, now, now - this.claimTtlMs);
    if (!item) {
      const current = await this.getItem(id);
      if (!(current.status === 'labelled' && current.labelledBy === reviewer && current.label === value)) throw this.refusal(current, 'label');
      item = current;
    }
    this.scrape = undefined;
    const forward = await this.forward(item, now);
    return { item: this.withStatus(item, now), ...forward };
  }

  private refusal(current: ReviewItem, action: 'claim' | 'label'): WardenError {
    if (current.status === 'labelled') {
      return new WardenError('WARDEN_CONFLICT', `review item ${current.id} was already labelled by ${current.labelledBy} at ${new Date(current.labelledAt!).toISOString()}`);
    }
    const expires = new Date((current.claimedAt ?? 0) + this.claimTtlMs).toISOString();
    return new WardenError(
      'WARDEN_CONFLICT',
      `review item ${current.id} is claimed by ${current.claimedBy} until ${expires}; ${action === 'claim' ? 'pick another item' : 'claim it after that or pick another item'}`,
    );
  }

  private async forward(item: ReviewItemRecord, now: number): Promise<{ forwarded: boolean; forwardError?: string }> {
    const sink = this.deps.events as unknown as LabelSink;
    if (typeof sink.appendLabels !== 'function') return { forwarded: false, forwardError: 'the event store of this server does not take labels' };
    try {
      const res = await sink.appendLabels(
        [{ requestId: item.requestId, row: item.row, value: item.label as number | string | boolean, source: 'human', ts: item.labelledAt ?? now }],
        now,
      );
      if (res && (res.invalid ?? 0) > 0) return { forwarded: false, forwardError: res.errors?.[0]?.error ?? 'the labels store refused the label' };
      return { forwarded: true };
    } catch (err) {
      this.deps.logger.error({ err, item: item.id }, 'review: forwarding a label to the labels store failed');
      return { forwarded: false, forwardError: `the labels store failed: ${(err as Error).message}` };
    }
  }
}

/** Numeric inputs of all rows side by side (row-major n × d), for the diversity check; undefined when there are none. */
function featureMatrix(inputs: readonly LoggedTensor[], n: number): { dims: number; data: Float64Array } | undefined {
  const parts: { t: LoggedTensor; width: number }[] = [];
  for (const t of inputs) {
    const dims = t.dims ?? t.shape ?? [];
    if (dims[0] !== n || dims.length > 2) continue;
    const width = dims.length === 1 ? 1 : dims[1]!;
    if (t.data.length !== n * width || typeof t.data[0] === 'string') continue;
    parts.push({ t, width });
  }
  const d = parts.reduce((s, x) => s + x.width, 0);
  if (d === 0) return undefined;
  const data = new Float64Array(n * d);
  let offset = 0;
  for (const { t, width } of parts) {
    for (let r = 0; r < n; r++) for (let j = 0; j < width; j++) data[r * d + offset + j] = numeric(t.data[r * width + j]);
    offset += width;
  }
  return { dims: d, data };
}

/** One row's inputs: named features of the first input when the signature has them, else tensor name → values. */
function rowInputs(inputs: readonly LoggedTensor[], n: number, row: number, signature: ModelSignature | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [i, t] of inputs.entries()) {
    const dims = t.dims ?? t.shape ?? [];
    const width = n > 0 ? t.data.length / n : 0;
    if (dims[0] !== n || !Number.isInteger(width)) continue;
    const values = Array.from({ length: width }, (_, j) => plain(t.data[row * width + j]));
    const features = i === 0 && t.name === signature?.inputs[0]?.name ? signature.features : undefined;
    if (features && features.length === width) features.forEach((f, j) => (out[f.name] = values[j]));
    else out[t.name] = width === 1 && dims.length === 1 ? values[0] : values;
  }
  return out;
}

/** One row's outputs: output name → value (single column) or values. */
function rowOutputs(outputs: readonly OutputTensor[], n: number, row: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of outputs) {
    const width = n > 0 ? o.data.length / n : 0;
    if (!Number.isInteger(width) || width === 0) continue;
    out[o.name] = width === 1 ? plain(o.data[row]) : Array.from({ length: width }, (_, j) => plain(o.data[row * width + j]));
  }
  return out;
}
