import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PredictionBatch, type EventStore, type PredictionEvent, type PredictionQuery, type StoredPredictionEvent } from '../../src/storage/index.ts';
import { PredictionLog, createMetrics, type PredictionLogOptions, type WardenMetrics } from '../../src/telemetry/index.ts';

/** An in-memory EventStore whose appends can be made to fail or to wait. */
class FakeEventStore implements Pick<EventStore, 'appendBatch' | 'queryPredictions' | 'countPredictions' | 'close'> {
  readonly batches: PredictionEvent[][] = [];
  /** Next appends fail while this is > 0 (decremented per failure); Infinity fails for ever. */
  failures = 0;
  /** The `code` failures carry: a store fault code (ECONNREFUSED …) makes the log wait for the store. */
  failCode: string | undefined;
  /** When set, appends wait for it before resolving or failing. */
  gate: Promise<void> | undefined;
  calls = 0;

  async appendBatch(batch: PredictionBatch): Promise<void> {
    const events = batch.toEvents();
    this.calls++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error('disk full'), this.failCode ? { code: this.failCode } : {});
    }
    this.batches.push([...events]);
  }
  get written(): PredictionEvent[] {
    return this.batches.flat();
  }
  async queryPredictions(_q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    return [];
  }
  async countPredictions(): Promise<number> {
    return this.written.length;
  }
  async close(): Promise<void> {}
}

function event(i: number): PredictionEvent {
  return { requestId: `r${i}`, ts: i, model: 'm', version: 1, status: 'ok', latencyMs: 1, inputs: [i], outputs: [i] };
}

function setup(opts: Partial<PredictionLogOptions> = {}) {
  const store = new FakeEventStore();
  const metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const log = new PredictionLog({
    store,
    metrics,
    logger: pino({ level: 'silent' }),
    capacity: 100,
    flushIntervalMs: 60_000,
    batchSize: 10,
    ...opts,
  });
  return { store, metrics, log };
}

/** The value of one sample of a metric (`name` + `suffix`, e.g. `_count`), read through prom-client's text exposition. */
async function sample(metrics: WardenMetrics, name: string, labels = '', suffix = ''): Promise<number | undefined> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}${suffix}${labels} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

/** Nothing offered is lost silently: at rest every event is written, dropped or still queued. */
function expectAccounted(log: PredictionLog): void {
  const s = log.snapshot();
  expect(s.enqueued).toBe(s.written + s.dropped + s.depth);
}

const release = () => {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return { gate, open };
};

describe('PredictionLog', () => {
  it('writes in batches of at most batchSize, in order', async () => {
    const { store, log, metrics } = setup({ batchSize: 7 });
    for (let i = 0; i < 30; i++) expect(log.enqueue(event(i))).toBe(true);
    expect(log.depth()).toBe(30);
    await log.flush();
    expect(store.batches.map((b) => b.length)).toEqual([7, 7, 7, 7, 2]);
    expect(store.written.map((e) => e.requestId)).toEqual(Array.from({ length: 30 }, (_, i) => `r${i}`));
    expect(log.snapshot()).toEqual({ enqueued: 30, written: 30, dropped: 0, depth: 0 });
    expect(await sample(metrics, 'warden_prediction_log_written_total')).toBe(30);
    expect(await sample(metrics, 'warden_prediction_log_queue_depth')).toBe(0);
    expect(await sample(metrics, 'warden_prediction_log_flush_duration_seconds', '', '_count')).toBe(5);
  });

  it('bounds the queue: past capacity, enqueue refuses and counts queue_full drops', async () => {
    const { store, log, metrics } = setup({ capacity: 10 });
    const accepted = Array.from({ length: 15 }, (_, i) => log.enqueue(event(i)));
    expect(accepted.filter(Boolean).length).toBe(10);
    expect(accepted.slice(10).every((a) => a === false)).toBe(true);
    expect(log.depth()).toBe(10);
    expect(log.snapshot()).toEqual({ enqueued: 15, written: 0, dropped: 5, depth: 10 });
    expectAccounted(log);
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="queue_full"}')).toBe(5);
    expect(await sample(metrics, 'warden_prediction_log_queue_capacity')).toBe(10);
    await log.flush();
    // The oldest events are kept; the refused ones are the newest.
    expect(store.written.map((e) => e.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expectAccounted(log);
  });

  it('queues a batch packed elsewhere (a shadow thread\'s) whole, within the bound, written like its own and not handed to listeners', async () => {
    const { store, log, metrics } = setup({ capacity: 10 });
    const seen: string[] = [];
    log.onBatch((b) => seen.push(...b.map((e) => e.requestId)));
    for (let i = 0; i < 4; i++) log.enqueue(event(i));
    // As the shadow thread hands it over: packed there, rebuilt here from its message.
    const packed = (ids: number[]) => PredictionBatch.fromMessage(PredictionBatch.of(ids.map((i) => ({ ...event(i), status: 'shadow' as const }))).toMessage());
    expect(log.append(packed([100, 101, 102]))).toBe(true);
    expect(log.depth()).toBe(7);
    // Four more would pass the bound of 10: the whole batch is refused and counted, not part of it.
    expect(log.append(packed([200, 201, 202, 203]))).toBe(false);
    expect(log.snapshot()).toEqual({ enqueued: 11, written: 0, dropped: 4, depth: 7 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="queue_full"}')).toBe(4);
    await log.flush();
    expect(store.written.map((e) => e.requestId).sort()).toEqual(['r0', 'r1', 'r100', 'r101', 'r102', 'r2', 'r3']);
    expect(store.written.filter((e) => e.status === 'shadow')).toHaveLength(3);
    expect(seen).toEqual(['r0', 'r1', 'r2', 'r3']);
    expectAccounted(log);
  });

  it('retries a failed batch, then writes it once the store recovers', async () => {
    const { store, log, metrics } = setup({ maxRetries: 3 });
    for (let i = 0; i < 5; i++) log.enqueue(event(i));
    store.failures = 2;
    await log.flush();
    expect(log.snapshot()).toEqual({ enqueued: 5, written: 0, dropped: 0, depth: 5 });
    expectAccounted(log);
    await log.flush();
    expect(log.depth()).toBe(5);
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    expect(log.snapshot()).toEqual({ enqueued: 5, written: 5, dropped: 0, depth: 0 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="store_error"}')).toBeUndefined();
  });

  it('drops a batch with reason store_error after maxRetries failed retries, and counts it', async () => {
    const { store, log, metrics } = setup({ maxRetries: 2 });
    for (let i = 0; i < 5; i++) log.enqueue(event(i));
    store.failures = Infinity;
    for (let attempt = 1; attempt <= 3; attempt++) {
      await log.flush();
      expectAccounted(log);
    }
    expect(store.calls).toBe(3);
    expect(log.snapshot()).toEqual({ enqueued: 5, written: 0, dropped: 5, depth: 0 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="store_error"}')).toBe(5);
    // The log keeps working once the store does.
    store.failures = 0;
    log.enqueue(event(5));
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(['r5']);
    expectAccounted(log);
  });

  it('counts a batch out at the store toward capacity, so a failed write is retried whole and newer events are refused', async () => {
    const { store, log, metrics } = setup({ capacity: 10, batchSize: 10 });
    for (let i = 0; i < 10; i++) log.enqueue(event(i));
    const { gate, open } = release();
    store.gate = gate;
    store.failures = 1;
    const flushing = log.flush();
    // The 10 events at the store still fill the log: requests meanwhile are refused and counted.
    for (let i = 10; i < 16; i++) expect(log.enqueue(event(i))).toBe(false);
    open();
    await flushing;
    store.gate = undefined;
    expect(log.snapshot()).toEqual({ enqueued: 16, written: 0, dropped: 6, depth: 10 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="queue_full"}')).toBe(6);
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    expect(log.enqueue(event(16))).toBe(true);
    expectAccounted(log);
  });

  it('hands every accepted event to listeners once, before it is written, however often the write is retried', async () => {
    const { store, log } = setup({ maxRetries: 5, batchSize: 4 });
    const seen: string[] = [];
    log.onBatch((batch) => seen.push(...batch.map((e) => e.requestId)));
    for (let i = 0; i < 6; i++) log.enqueue(event(i));
    // Handed over on the next turn of the event loop, without waiting for a flush.
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    store.failures = 2;
    log.enqueue(event(6));
    // A flush hands over what is pending first, even within the same turn.
    await log.flush();
    expect(seen).toHaveLength(7);
    await log.flush();
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    expect(seen).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
  });

  it('during a store outage keeps filling one batch instead of sealing a small batch per flush', async () => {
    const { store, log } = setup({ maxRetries: 1_000, capacity: 1_000, batchSize: 500 });
    store.failures = Infinity;
    let i = 0;
    for (let flush = 0; flush < 50; flush++) {
      for (let k = 0; k < 5; k++) log.enqueue(event(i++));
      await log.flush();
    }
    // Every flush retried the first batch (5 events) and nothing else was sealed meanwhile.
    expect(store.calls).toBe(50);
    store.failures = 0;
    await log.flush();
    expect(store.batches.map((b) => b.length)).toEqual([5, 245]);
    expect(store.written.map((e) => e.requestId)).toEqual(Array.from({ length: 250 }, (_, k) => `r${k}`));
    expectAccounted(log);
  });

  it('drops and counts an event it cannot pack, and keeps logging the others', async () => {
    const { store, log, metrics } = setup();
    const bad = { ...event(1), inputs: [{ get name(): string { throw new Error('boom'); }, datatype: 'FP32', shape: [1], data: [1] }] };
    expect(log.enqueue(event(0))).toBe(true);
    expect(log.enqueue(bad)).toBe(false);
    expect(log.enqueue(event(2))).toBe(true);
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(['r0', 'r2']);
    expect(log.snapshot()).toEqual({ enqueued: 3, written: 2, dropped: 1, depth: 0 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="pack_error"}')).toBe(1);
  });

  it('shares one flush between concurrent callers and picks up events queued meanwhile', async () => {
    const { store, log } = setup({ batchSize: 100 });
    for (let i = 0; i < 3; i++) log.enqueue(event(i));
    const { gate, open } = release();
    store.gate = gate;
    const a = log.flush();
    const b = log.flush();
    expect(a).toBe(b);
    log.enqueue(event(3));
    open();
    await a;
    expect(store.batches.map((x) => x.length)).toEqual([3, 1]);
    expect(log.depth()).toBe(0);
  });

  it('flushes on its timer once started', async () => {
    const { store, log } = setup({ flushIntervalMs: 20 });
    log.start();
    try {
      for (let i = 0; i < 25; i++) log.enqueue(event(i));
      await expect.poll(() => store.written.length, { timeout: 2_000, interval: 10 }).toBe(25);
    } finally {
      await log.drain();
    }
  });

  it('drain writes everything still queued, including events queued during a flush in progress', async () => {
    const { store, log } = setup({ batchSize: 10, flushIntervalMs: 60_000 });
    log.start();
    for (let i = 0; i < 25; i++) log.enqueue(event(i));
    const { gate, open } = release();
    store.gate = gate;
    const inProgress = log.flush();
    for (let i = 25; i < 40; i++) log.enqueue(event(i));
    const draining = log.drain();
    open();
    await Promise.all([inProgress, draining]);
    expect(store.written.length).toBe(40);
    expect(new Set(store.written.map((e) => e.requestId)).size).toBe(40);
    expect(log.snapshot()).toEqual({ enqueued: 40, written: 40, dropped: 0, depth: 0 });
  });

  it('waits out a store outage (a store fault, not a bad batch) however many retries it takes, then writes everything', async () => {
    const { store, log, metrics } = setup({ maxRetries: 2, capacity: 50 });
    for (let i = 0; i < 20; i++) log.enqueue(event(i));
    store.failCode = 'ECONNREFUSED';
    store.failures = 30;
    for (let attempt = 0; attempt < 30; attempt++) await log.flush();
    // 30 failed attempts, far past maxRetries: nothing dropped, all still queued.
    expect(log.snapshot()).toEqual({ enqueued: 20, written: 0, dropped: 0, depth: 20 });
    // The bound still applies to what arrives meanwhile.
    for (let i = 20; i < 60; i++) log.enqueue(event(i));
    expect(log.snapshot()).toMatchObject({ enqueued: 60, dropped: 10, depth: 50 });
    await log.flush();
    await log.flush();
    expect(store.written.map((e) => e.requestId)).toEqual(Array.from({ length: 50 }, (_, i) => `r${i}`));
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="store_error"}')).toBeUndefined();
    expectAccounted(log);
  });

  it('drain gives up on a store that stays down at its deadline, and counts the rest as dropped', async () => {
    const { store, log } = setup({ drainTimeoutMs: 300 });
    store.failCode = 'ECONNREFUSED';
    store.failures = Infinity;
    for (let i = 0; i < 5; i++) log.enqueue(event(i));
    const t0 = Date.now();
    await log.drain();
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(log.snapshot()).toEqual({ enqueued: 5, written: 0, dropped: 5, depth: 0 });
  });

  it('drain against a dead store finishes, drops and counts everything (never loses silently)', async () => {
    const { store, log, metrics } = setup({ batchSize: 1, capacity: 1_000, maxRetries: 5 });
    store.failures = Infinity;
    // 1,000 single-event batches × 6 attempts each is more than drain's retry guard allows.
    for (let i = 0; i < 1_000; i++) log.enqueue(event(i));
    await log.drain();
    expect(log.snapshot()).toEqual({ enqueued: 1_000, written: 0, dropped: 1_000, depth: 0 });
    expect(await sample(metrics, 'warden_prediction_log_dropped_total', '{reason="store_error"}')).toBe(1_000);
    expect(await sample(metrics, 'warden_prediction_log_queue_depth')).toBe(0);
  });
});
