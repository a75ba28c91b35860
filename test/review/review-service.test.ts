/**
 * The review queue's pure parts and its service with injected time and stores: the active-learning rule
 * (hash draw ∝ uncertainty, sampleRate share, diversity), the request-path flag, enqueueing from log batches
 * with the queue bound, claim expiry, and label forwarding to a labels store (or not, when it has none).
 */
import { pino } from 'pino';
import { Registry as PromRegistry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActiveLearningSampler, CLAIM_TTL_MS, DIVERSITY_RADIUS, ReviewService, hashUnit, parseReviewPolicy, type ReviewItem } from '../../src/lifecycle/index.ts';
import type { Registry } from '../../src/registry/index.ts';
import { SqliteMetadataStore, type EventStore, type PredictionEvent } from '../../src/storage/index.ts';
import { mulberry32 as rng } from '../../src/random.ts';


const uncertainty = (p: number) => 1 - Math.abs(2 * p - 1);

describe('active-learning sampler', () => {
  it('hashUnit is uniform on [0, 1) and depends on request id and row', () => {
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) bins[Math.floor(hashUnit(`req-${i}`, i % 7) * 10)]++;
    for (const b of bins) expect(Math.abs(b - 2000)).toBeLessThan(200);
    expect(hashUnit('a', 0)).toBe(hashUnit('a', 0));
    expect(hashUnit('a', 0)).not.toBe(hashUnit('a', 1));
    expect(hashUnit('a', 0)).not.toBe(hashUnit('b', 0));
  });

  /** 100 requests × 200 rows of distinct random features and skewed probabilities (most rows confident). */
  function traffic(seed: number) {
    const r = rng(seed);
    return Array.from({ length: 100 }, (_, q) => {
      const n = 200;
      const p = Array.from({ length: n }, () => {
        const x = r() ** 3 / 2;
        return r() < 0.5 ? x : 1 - x;
      });
      const data = Float64Array.from({ length: n * 4 }, () => r() * 10);
      return { requestId: `req-${q}`, p, candidate: p.map(() => true), features: { dims: 4, data } };
    });
  }

  it('picks about sampleRate of the candidates, uncertain rows more often, the same rows for the same traffic', () => {
    const run = () => {
      const s = new ActiveLearningSampler();
      return traffic(7).map((req) => s.select('m', 0.05, req));
    };
    const a = run();
    const b = run();
    expect(b).toEqual(a);
    const picked = a.reduce((n, r) => n + r.rows.length, 0);
    expect(picked / 20_000).toBeGreaterThan(0.04);
    expect(picked / 20_000).toBeLessThan(0.06);
    const reqs = traffic(7);
    const allU = reqs.flatMap((q) => q.p.map(uncertainty));
    const pickedU = a.flatMap((r, i) => r.rows.map((row) => uncertainty(reqs[i]!.p[row]!)));
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    // Weighting by u makes the picks' mean uncertainty E[u²]/E[u], well above E[u] for a skewed u.
    expect(mean(pickedU)).toBeGreaterThan(1.5 * mean(allU));
  });

  it('draws each row by its hash: sampleRate 0 picks nothing, sampleRate 1 with equal uncertainty picks every distinct row', () => {
    const s = new ActiveLearningSampler();
    const req = { requestId: 'x', p: [0.5, 0.5, 0.5], candidate: [true, true, true], features: { dims: 1, data: [0, 100, 200] } };
    expect(s.select('m', 0, req).rows).toEqual([]);
    expect(s.select('m2', 1, req).rows).toEqual([0, 1, 2]);
  });

  it('skips candidates within the diversity radius of a recent pick, and only those', () => {
    const s = new ActiveLearningSampler();
    const n = 50;
    // Two clusters of exact duplicates far apart, plus a row just outside the radius of cluster A.
    const dims = 2;
    const data: number[] = [];
    for (let r = 0; r < n; r++) data.push(...(r < 25 ? [0, 0] : [10, 10]));
    const res = s.select('m', 1, { requestId: 'dup', p: new Array(n).fill(0.5), candidate: new Array(n).fill(true), features: { dims, data } });
    expect(res.rows).toEqual([0, 25]);
    expect(res.nearDuplicates).toBe(48);
    // Feature sd ≈ 5.05 after that request: a step of 2·radius·√d·sd is outside the radius, half of it inside.
    const sd = 5.05;
    const far = 2 * DIVERSITY_RADIUS * Math.sqrt(dims) * sd;
    const near = 0.5 * DIVERSITY_RADIUS * Math.sqrt(dims) * sd;
    const res2 = s.select('m', 1, { requestId: 'step', p: [0.5, 0.5], candidate: [true, true], features: { dims, data: [near, 0, 10 + far, 10] } });
    expect(res2.rows).toEqual([1]);
  });

  it('ignores non-candidates and forgets a model', () => {
    const s = new ActiveLearningSampler();
    const req = { requestId: 'x', p: [0.5, 0.5], candidate: [false, true], features: { dims: 1, data: [0, 5] } };
    expect(s.select('m', 1, req).rows).toEqual([1]);
    expect(s.select('m', 1, { ...req, requestId: 'y' }).rows).toEqual([]);
    s.forget('m');
    expect(s.select('m', 1, { ...req, requestId: 'y' }).rows).toEqual([1]);
  });
});

describe('review policy validation', () => {
  it('accepts a threshold and/or a sample rate and refuses what would do nothing or is out of range', () => {
    expect(parseReviewPolicy({ confidenceThreshold: 0.6 })).toEqual({ confidenceThreshold: 0.6 });
    expect(parseReviewPolicy({ sampleRate: 0.01, maxQueue: 5, output: 'p' })).toEqual({ sampleRate: 0.01, maxQueue: 5, output: 'p' });
    for (const bad of [{}, { sampleRate: 0 }, { confidenceThreshold: 0.5 }, { confidenceThreshold: 1.2 }, { confidenceThreshold: '0.6' }, { sampleRate: 2, confidenceThreshold: 0.6 }, { confidenceThreshold: 0.6, maxQueue: 0 }, { confidenceThreshold: 0.6, maxQueue: 1.5 }, { confidenceThreshold: 0.6, extra: 1 }, [], null]) {
      expect(() => parseReviewPolicy(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'WARDEN_BAD_REQUEST' }));
    }
  });
});

describe('ReviewService with injected time', () => {
  let metadata: SqliteMetadataStore;
  let prom: PromRegistry;
  let now: number;
  let forwarded: unknown[][];
  const registry = { onChange: () => () => undefined } as unknown as Registry;

  /** A service on the shared store; `own` gives it its own metrics registry (two services cannot share one). */
  const make = (events: Partial<EventStore> | object, own = false) =>
    new ReviewService({ metadata, events: events as EventStore, registry, promRegistry: own ? new PromRegistry() : prom, logger: pino({ level: 'silent' }), now: () => now });

  /** A served event of a binary classifier with two features per row. */
  const event = (requestId: string, probs: number[], over: Partial<PredictionEvent> = {}): PredictionEvent => ({
    requestId,
    ts: 1,
    model: 'm',
    version: 2,
    status: 'ok',
    latencyMs: 1,
    inputs: [{ name: 'input', datatype: 'FP32', dims: [probs.length, 2], data: Float32Array.from(probs.flatMap((_, i) => [i, 10 * i])) }],
    outputs: [
      { name: 'label', datatype: 'INT64', shape: [probs.length, 1], data: probs.map((p) => (p > 0.5 ? 1 : 0)) },
      { name: 'probability', datatype: 'FP32', shape: [probs.length, 1], data: probs },
    ],
    ...over,
  });

  beforeEach(async () => {
    metadata = new SqliteMetadataStore(':memory:');
    await metadata.createModel({ name: 'm', description: '', createdAt: 1 });
    prom = new PromRegistry();
    now = 1_000_000;
    forwarded = [];
  });
  afterEach(async () => metadata.close());

  it('flags rows below the threshold from the first floating-point output, and nothing without a policy', async () => {
    const review = make({});
    const outputs = event('r', [0.1, 0.45, 0.6, 0.95]).outputs as never;
    expect(review.flag('m', outputs, 4)).toBeUndefined();
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 100, updatedAt: 1 });
    await review.reload();
    expect(review.flag('m', outputs, 4)).toEqual({ rows: [1, 2], reason: 'low_confidence' });
    expect(review.flag('m', [{ name: 'probability', datatype: 'FP32', shape: [2, 1], data: [0.9, 0.05] }], 2)).toBeUndefined();
    // A named output that is not in the response (the caller selected other outputs): no verdict.
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, output: 'score', maxQueue: 100, updatedAt: 2 });
    await review.reload();
    expect(review.flag('m', outputs, 4)).toBeUndefined();
  });

  it('enqueues low-confidence rows off the log batch with named inputs and outputs, up to maxQueue, counting drops', async () => {
    const review = make({});
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 3, updatedAt: 1 });
    await review.reload();
    review.onEvents([event('r1', [0.1, 0.45, 0.6]), event('r2', [0.5, 0.35]), event('bad', [0.5], { status: 'error' }), event('other', [0.5], { model: 'x' })]);
    await review.settled();
    const items = await review.listItems({ limit: 10 });
    expect(items.map((i) => [i.requestId, i.row, i.reason, i.status])).toEqual([
      ['r1', 1, 'low_confidence', 'open'],
      ['r1', 2, 'low_confidence', 'open'],
      ['r2', 0, 'low_confidence', 'open'],
    ]);
    expect(items[0]).toMatchObject({ model: 'm', version: 2, inputs: { input: [1, 10] }, prediction: { label: 0, probability: 0.45 }, confidence: 0.55, createdAt: now });
    const metrics = await prom.getMetricsAsJSON();
    const value = (name: string, labels: Record<string, string>) =>
      metrics.find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
    expect(value('warden_review_items_total', { model: 'm', reason: 'low_confidence' })).toBe(3);
    expect(value('warden_review_dropped_total', { model: 'm', reason: 'queue_full' })).toBe(1);
    now += 90_000;
    const scraped = await prom.getMetricsAsJSON();
    const gauge = (name: string) => scraped.find((m) => m.name === name)?.values.find((v) => v.labels.model === 'm')?.value;
    expect(gauge('warden_review_queue_depth')).toBe(3);
    expect(gauge('warden_review_oldest_age_seconds')).toBe(90);
  });

  it('lets another reviewer take over a claim after the claim TTL, and forwards the label as a human label', async () => {
    const review = make({
      async appendLabels(labels: unknown[], at: number) {
        forwarded.push([labels, at]);
        return { accepted: labels.length, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] };
      },
    });
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 1 });
    await review.reload();
    review.onEvents([event('r1', [0.45])]);
    await review.settled();
    const { id } = (await review.listItems({ limit: 1 }))[0]!;
    expect(await review.claim(id, 'ann')).toMatchObject({ status: 'claimed', claimedBy: 'ann' });
    now += CLAIM_TTL_MS - 1;
    await expect(review.claim(id, 'bob')).rejects.toMatchObject({ code: 'WARDEN_CONFLICT', status: 409 });
    await expect(review.label(id, 1, 'bob')).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
    now += 2;
    expect((await review.listItems({ status: 'open', limit: 10 })).map((i) => i.id)).toEqual([id]);
    expect(await review.claim(id, 'bob')).toMatchObject({ status: 'claimed', claimedBy: 'bob' });
    const out = await review.label(id, 1, 'bob');
    expect(out).toMatchObject({ forwarded: true, item: { status: 'labelled', label: 1, labelledBy: 'bob', labelledAt: now } });
    expect(forwarded).toEqual([[[{ requestId: 'r1', row: 0, value: 1, source: 'human', ts: now }], now]]);
    // The same label again by the same reviewer re-forwards (a retry); a different one is a conflict.
    expect((await review.label(id, 1, 'bob')).forwarded).toBe(true);
    expect(forwarded).toHaveLength(2);
    await expect(review.label(id, 0, 'bob')).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
    await expect(review.claim(id, 'ann')).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
    await expect(review.claim(id + 99, 'ann')).rejects.toMatchObject({ code: 'WARDEN_NOT_FOUND' });
  });

  it('gives every item its claim expiry (claimedAt + TTL) and counts the queues with the listing’s expiry rule', async () => {
    const review = make({ appendLabels: async () => ({ accepted: 1, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] }) });
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 1 });
    await review.reload();
    review.onEvents([event('r1', [0.45, 0.4, 0.35])]);
    await review.settled();
    const [a, b, c] = (await review.listItems({ limit: 3 })) as [ReviewItem, ReviewItem, ReviewItem];
    expect(a.claimExpiresAt).toBeNull();
    expect(review.claimTtl).toBe(CLAIM_TTL_MS);
    const claimed = await review.claim(a.id, 'ann');
    expect(claimed.claimExpiresAt).toBe(now + CLAIM_TTL_MS);
    expect((await review.getItem(a.id)).claimExpiresAt).toBe(claimed.claimedAt! + CLAIM_TTL_MS);
    await review.claim(b.id, 'ann');
    const labelled = await review.label(b.id, 1, 'ann');
    expect(labelled.item).toMatchObject({ status: 'labelled', claimExpiresAt: null });
    expect(await review.queues()).toEqual([
      { model: 'm', policy: { model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 1 }, open: 1, claimed: 1, labelled: 1, oldestOpenAt: c.createdAt },
    ]);
    // Past the TTL the claim lapses: the item is open again, in the queue counts too; its expiry stays in the past.
    now += CLAIM_TTL_MS + 1;
    expect(await review.getItem(a.id)).toMatchObject({ status: 'open', claimExpiresAt: claimed.claimedAt! + CLAIM_TTL_MS });
    expect(await review.queues()).toMatchObject([{ model: 'm', open: 2, claimed: 0, labelled: 1, oldestOpenAt: a.createdAt }]);
    // A model whose policy was deleted keeps its queue, with policy null.
    await review.deletePolicy('m');
    expect(await review.queues()).toMatchObject([{ model: 'm', policy: null, open: 2 }]);
  });

  it('keeps the label on the item when the event store takes no labels or refuses it', async () => {
    await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 1 });
    const none = make({});
    await none.reload();
    none.onEvents([event('r1', [0.45, 0.4])]);
    await none.settled();
    const [a, b] = (await none.listItems({ limit: 2 })) as [ReviewItem, ReviewItem];
    expect(await none.label(a.id, true, 'ann')).toMatchObject({ forwarded: false, forwardError: expect.stringContaining('does not take labels'), item: { label: true } });
    const refusing = make({ appendLabels: async () => ({ accepted: 0, duplicates: 0, unmatched: 0, late: 0, invalid: 1, errors: [{ index: 0, error: 'row out of range' }] }) }, true);
    expect(await refusing.label(b.id, 0, 'ann')).toMatchObject({ forwarded: false, forwardError: 'row out of range' });
  });

  it('samples for active learning with reason active_learning and skips rows without a probability', async () => {
    const review = make({});
    await metadata.saveReviewPolicy({ model: 'm', sampleRate: 1, maxQueue: 100, updatedAt: 1 });
    await review.reload();
    review.onEvents([event('r1', [0.5, 0.9, Number.NaN, 0.2])]);
    await review.settled();
    const items = await review.listItems({ limit: 10 });
    expect(items.every((i) => i.reason === 'active_learning')).toBe(true);
    expect(items.map((i) => i.row)).not.toContain(2);
    expect(items.map((i) => i.row)).toContain(0);
  });
});
