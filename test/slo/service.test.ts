/**
 * SloService with a real SQLite event store, an injected clock and CPU meter: recording from prediction log
 * batches and monitoring windows, slo.yaml as the definitions' home (API edits keep comments), series resets,
 * retention, time scaling and the alert source.
 */
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors.ts';
import type { WindowResult } from '../../src/monitoring/index.ts';
import { SLO_ALERTNAME, SloService, type SloServiceDeps } from '../../src/slo/index.ts';
import { SqliteEventStore, type PredictionEvent } from '../../src/storage/index.ts';

const M = 60_000;
const D = 24 * 60 * M;
const T0 = 28_333_333 * M;

let dir: string;
let events: SqliteEventStore;
let now: number;
let cpu: number;
let services: SloService[];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-slo-'));
  events = new SqliteEventStore(path.join(dir, 'events.db'));
  now = T0;
  cpu = 0;
  services = [];
});

afterEach(async () => {
  for (const s of services) await s.stop();
  await events.close();
  rmSync(dir, { recursive: true, force: true });
});

const file = () => path.join(dir, 'slo.yaml');

async function service(over: Partial<SloServiceDeps> = {}): Promise<SloService> {
  const s = new SloService({
    events,
    logger: pino({ level: 'silent' }),
    file: file(),
    timeScale: 1,
    retentionDays: 35,
    // The loop's own timer never fires in these tests: they call tick() with the clock where they want it.
    tickMs: 600_000,
    now: () => now,
    cpuSeconds: () => cpu,
    ...over,
  });
  await s.start();
  services.push(s);
  return s;
}

function event(over: Partial<PredictionEvent>): PredictionEvent {
  return { requestId: 'r', ts: now, model: 'busy', version: 1, status: 'ok', latencyMs: 3, inputs: null, outputs: null, ...over };
}

const SLO_YAML = `# Team SLOs — reviewed in PRs.
slos:
  # Answered at all.
  - name: busy-availability
    deployment: busy
    sli: { kind: availability }
    objective: 0.999
    period: 30d
  - name: busy-latency
    deployment: busy
    sli:
      kind: latency
      thresholdMs: 25
    objective: 0.99
    period: 30d
`;

describe('SloService: definitions in slo.yaml', () => {
  it('starts with no SLOs when the file does not exist', async () => {
    const s = await service();
    expect(s.list()).toEqual([]);
    expect(() => s.get('x')).toThrow(/no SLO named x/);
  });

  it('refuses to start on an invalid file, naming the entry (WARDEN_CONFIG_INVALID)', async () => {
    writeFileSync(file(), 'slos:\n  - name: a\n    deployment: busy\n    sli: { kind: latency }\n    objective: 0.99\n    period: 30d\n');
    await expect(service()).rejects.toMatchObject({ code: 'WARDEN_CONFIG_INVALID', message: expect.stringContaining('slos[0].sli.thresholdMs: Required') });
    writeFileSync(file(), 'slos: [ {');
    await expect(service()).rejects.toMatchObject({ code: 'WARDEN_CONFIG_INVALID', message: expect.stringContaining('not valid YAML') });
  });

  it('refuses what the schema cannot see: a period beyond retention, a cost SLO without a price', async () => {
    writeFileSync(file(), 'slos:\n  - { name: a, deployment: busy, sli: { kind: availability }, objective: 0.99, period: 90d }\n');
    await expect(service()).rejects.toMatchObject({ message: expect.stringContaining('period 90d is longer than the 35 days of recorded series (slo.retentionDays)') });
    rmSync(file());
    const s = await service();
    await expect(s.put('c', { deployment: 'busy', sli: { kind: 'cost', maxCostPer1k: 0.1 }, objective: 0.9, period: '1d' })).rejects.toMatchObject({
      code: 'WARDEN_BAD_REQUEST',
      message: expect.stringContaining('a cost SLI needs slo.costPerCpuHour'),
    });
  });

  it('creates, replaces and deletes through the file, keeping its comments', async () => {
    writeFileSync(file(), SLO_YAML);
    const s = await service();
    expect(s.list().map((x) => x.name)).toEqual(['busy-availability', 'busy-latency']);
    const put = await s.put('busy-availability', { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.995, period: '28d' });
    expect(put.created).toBe(false);
    const created = await s.put('busy-drift', { name: 'busy-drift', deployment: 'busy', sli: { kind: 'drift_free' }, objective: 0.9, period: '7d' });
    expect(created.created).toBe(true);
    const text = readFileSync(file(), 'utf8');
    expect(text).toContain('# Team SLOs — reviewed in PRs.');
    expect(text).toContain('# Answered at all.');
    expect(text).toContain('objective: 0.995');
    expect(text).toContain('name: busy-drift');
    await s.remove('busy-latency');
    expect(readFileSync(file(), 'utf8')).not.toContain('busy-latency');
    // A fresh service (another replica, a restart) reads the same definitions.
    const again = await service();
    expect(again.list().map((x) => [x.name, x.objective])).toEqual([
      ['busy-availability', 0.995],
      ['busy-drift', 0.9],
    ]);
    await expect(s.remove('busy-latency')).rejects.toMatchObject({ code: 'WARDEN_NOT_FOUND' });
  });

  it('adds the first SLO under an empty `slos:` key, keeping the file\'s comments', async () => {
    writeFileSync(file(), '# SLOs of the bike team\nslos:\n');
    const s = await service();
    expect(s.list()).toEqual([]);
    await s.put('a', { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.99, period: '1d' });
    const text = readFileSync(file(), 'utf8');
    expect(text.startsWith('# SLOs of the bike team\n')).toBe(true);
    expect(text).toContain('  - name: a\n    deployment: busy');
  });

  it('refuses bodies that are not objects or name another SLO (400)', async () => {
    const s = await service();
    await expect(s.put('a', [])).rejects.toBeInstanceOf(WardenError);
    await expect(s.put('a', { name: 'b', deployment: 'busy', sli: { kind: 'availability' }, objective: 0.9, period: '1d' })).rejects.toThrow(
      /body names SLO "b" but the path names a/,
    );
    await expect(s.put('a', { deployment: 'busy', sli: { kind: 'availability' }, objective: 1, period: '1d' })).rejects.toThrow(/objective: must be below 1/);
    expect(s.list()).toEqual([]);
  });

  it('picks up edits of the file on the next tick; an invalid edit keeps the previous definitions', async () => {
    writeFileSync(file(), SLO_YAML);
    const s = await service();
    writeFileSync(file(), SLO_YAML.replace('objective: 0.999', 'objective: 0.9'));
    utimesSync(file(), new Date(), new Date(Date.now() + 5000));
    await s.tick();
    expect(s.get('busy-availability').objective).toBe(0.9);
    writeFileSync(file(), 'slos: nope');
    utimesSync(file(), new Date(), new Date(Date.now() + 10_000));
    await s.tick();
    expect(s.list()).toHaveLength(2);
  });
});

describe('SloService: recording', () => {
  beforeEach(() => writeFileSync(file(), SLO_YAML));

  it('counts prediction log batches per SLO and bucket; 4xx failures count for neither SLI', async () => {
    const s = await service();
    s.onEvents([
      event({ latencyMs: 3 }),
      event({ latencyMs: 30 }),
      event({ status: 'error', error: 'WARDEN_INVALID_INPUT: bad shape' }),
      event({ status: 'error', error: 'WARDEN_INFERENCE_FAILED: runtime error' }),
      event({ ts: T0 + M + 5, latencyMs: 4 }),
      // Another deployment: none of these SLOs.
      event({ model: 'other', status: 'error', error: 'WARDEN_INFERENCE_FAILED: x' }),
    ]);
    await s.tick();
    // Availability: 3 ok good + 1 server error; the 400 is left out. Latency: 3 ok requests, one over 25 ms.
    expect(await events.querySli({ slo: 'busy-availability' })).toEqual([
      { ts: T0, good: 2, total: 3 },
      { ts: T0 + M, good: 1, total: 1 },
    ]);
    expect(await events.querySli({ slo: 'busy-latency' })).toEqual([
      { ts: T0, good: 1, total: 2 },
      { ts: T0 + M, good: 1, total: 1 },
    ]);
    // A later flush adds to the same bucket (as another replica's would).
    s.onEvents([event({})]);
    await s.flush();
    expect((await events.querySli({ slo: 'busy-availability', until: T0 + 1 }))[0]).toEqual({ ts: T0, good: 3, total: 4 });
  });

  it('an SLO of one version counts only that version (a candidate during a rollout); shadow copies count for none', async () => {
    writeFileSync(
      file(),
      `${SLO_YAML}  - name: busy-v2-availability\n    deployment: busy\n    version: 2\n    sli: { kind: availability }\n    objective: 0.99\n    period: 7d\n`,
    );
    const s = await service();
    s.onEvents([
      event({ version: 1 }),
      event({ version: 1, status: 'error', error: 'WARDEN_INFERENCE_FAILED: x' }),
      event({ version: 2 }),
      event({ version: 2, status: 'error', error: 'WARDEN_INFERENCE_FAILED: x' }),
      event({ version: 2 }),
      event({ version: 2, status: 'shadow' }),
    ]);
    await s.tick();
    expect(await events.querySli({ slo: 'busy-v2-availability' })).toEqual([{ ts: T0, good: 2, total: 3 }]);
    expect(await events.querySli({ slo: 'busy-availability' })).toEqual([{ ts: T0, good: 3, total: 5 }]);
    await expect(s.put('busy-v2-cost', { deployment: 'busy', version: 2, sli: { kind: 'cost', maxCostPer1k: 1 }, objective: 0.9, period: '7d' })).rejects.toThrow(/a cost SLO is per deployment/);
  });

  it('reports SLI, budget and burn rates; status includes counts not written yet', async () => {
    const s = await service();
    // 1000 requests a minute for an hour; 20 server errors a minute in the last 5 minutes.
    for (let m = 0; m < 60; m++) {
      const batch: PredictionEvent[] = [];
      for (let i = 0; i < 1000; i++) {
        batch.push(event({ ts: T0 + m * M + i, ...(m >= 55 && i < 20 ? { status: 'error', error: 'WARDEN_INFERENCE_FAILED: x' } : {}) }));
      }
      s.onEvents(batch);
    }
    now = T0 + 60 * M;
    const st = await s.status('busy-availability');
    // 100 bad of 60,000; allowed 60 → 166.7% spent. 5m burn 2% / 0.1% = 20; 1h burn 1.667: no page (1h below 14.4).
    expect(st.budget.total).toBe(60_000);
    expect(st.budget.bad).toBe(100);
    expect(st.budget.remaining).toBeCloseTo(1 - 100 / 60, 9);
    expect(st.burnRates[0]).toMatchObject({ name: '1h/5m', severity: 'page', factor: 14.4 });
    expect(st.burnRates[0]!.shortBurnRate).toBeCloseTo(20, 6);
    expect(st.burnRates[0]!.longBurnRate).toBeCloseTo(1.6667, 3);
    expect(st.firing).toEqual(['3d/6h']);
    expect(st.measures).toContain('client (4xx) errors are not counted');
    expect(st.periodMs).toBe(30 * D);
  });

  it('changing what an SLO measures starts its series afresh; objective or period alone keeps it', async () => {
    const s = await service();
    s.onEvents([event({ latencyMs: 30 })]);
    await s.flush();
    await s.put('busy-latency', { deployment: 'busy', sli: { kind: 'latency', thresholdMs: 25 }, objective: 0.9, period: '7d' });
    expect(await events.querySli({ slo: 'busy-latency' })).toHaveLength(1);
    await s.put('busy-latency', { deployment: 'busy', sli: { kind: 'latency', thresholdMs: 50 }, objective: 0.9, period: '7d' });
    expect(await events.querySli({ slo: 'busy-latency' })).toEqual([]);
    expect(await events.querySli({ slo: 'busy-availability' })).toHaveLength(1);
    await s.remove('busy-availability');
    expect(await events.querySli({ slo: 'busy-availability' })).toEqual([]);
  });

  it('deletes buckets past the retention', async () => {
    const s = await service({ retentionDays: 31 });
    // Replayed traffic (parameters.event_time) can land in old buckets: 32 days ago is past 31 days of retention.
    s.onEvents([event({ ts: T0 - 32 * D }), event({ ts: T0 - 30 * D }), event({ ts: T0 - D })]);
    await s.tick();
    expect((await events.querySli({ slo: 'busy-availability' })).map((p) => p.ts)).toEqual([T0 - 30 * D, T0 - D]);
  });

  it('records one bucket per scaled minute with timeScale (0.001: 60 ms)', async () => {
    const s = await service({ timeScale: 0.001 });
    expect(s.bucketMs).toBe(60);
    s.onEvents([event({ ts: T0 + 10 }), event({ ts: T0 + 59 }), event({ ts: T0 + 61, status: 'error', error: 'WARDEN_INTERNAL: x' })]);
    now = T0 + 120;
    await s.tick();
    expect(await events.querySli({ slo: 'busy-availability' })).toEqual([
      { ts: T0, good: 2, total: 2 },
      { ts: T0 + 60, good: 0, total: 1 },
    ]);
    // A 30-day SLO lasts 43.2 minutes; its fast page looks at 3.6 s and 0.3 s: the 60 ms error bucket burns.
    const st = await s.status('busy-availability');
    expect(st.periodMs).toBe(2_592_000);
    expect(st.burnRates[0]).toMatchObject({ longMs: 3600, shortMs: 300, firing: true });
  });
});

describe('SloService: window SLIs from monitoring', () => {
  const windows: WindowResult[] = [];
  const result = (version: number, start: number, drift: boolean, completenessFailed: boolean, correct?: number): WindowResult =>
    ({
      model: 'busy',
      version,
      windowStart: start,
      windowEnd: start + 10 * M,
      rows: 100,
      drift: { datasetDrift: drift },
      quality: { rows: 100, failed: 0, checks: [{ column: 'temp', metric: 'completeness', value: 1, threshold: 0.95, failed: completenessFailed }] },
      extraFeatures: {},
      histograms: [],
      ...(correct !== undefined
        ? { performance: { task: 'binary', labelled: 100, labelsBySource: { human: 0, system: 100, model: 0 }, lateLabels: 0, realized: { accuracy: correct / 100 } } }
        : {}),
    }) as unknown as WindowResult;

  beforeEach(() => {
    windows.length = 0;
    writeFileSync(
      file(),
      `slos:
  - { name: drift, deployment: busy, sli: { kind: drift_free }, objective: 0.9, period: 1d }
  - { name: complete, deployment: busy, sli: { kind: completeness }, objective: 0.99, period: 1d }
  - { name: accuracy, deployment: busy, sli: { kind: accuracy }, objective: 0.8, period: 1d }
`,
    );
  });

  it('reads evaluated windows (whole period first), one event per window or per labelled prediction', async () => {
    const asked: { since: number; until: number }[] = [];
    const s = await service({
      windows: async (deployment, q) => {
        asked.push(q);
        return deployment === 'busy' ? windows.filter((w) => w.windowStart >= q.since && w.windowStart < q.until) : [];
      },
    });
    windows.push(result(1, T0 - 30 * M, false, false, 90), result(1, T0 - 20 * M, true, false), result(2, T0 - 20 * M, false, true, 70));
    const res = await s.tick();
    expect(res).toEqual([{ deployment: 'busy', ok: true, windows: 3 }]);
    // First poll: the whole 1-day period.
    expect(asked[0]!.since).toBe(T0 - D);
    // Each window lands in the bucket of its last millisecond.
    expect(await events.querySli({ slo: 'drift' })).toEqual([
      { ts: T0 - 21 * M, good: 1, total: 1 },
      { ts: T0 - 11 * M, good: 1, total: 2 },
    ]);
    expect(await events.querySli({ slo: 'complete' })).toEqual([
      { ts: T0 - 21 * M, good: 1, total: 1 },
      { ts: T0 - 11 * M, good: 1, total: 2 },
    ]);
    expect(await events.querySli({ slo: 'accuracy' })).toEqual([
      { ts: T0 - 21 * M, good: 90, total: 100 },
      { ts: T0 - 11 * M, good: 70, total: 100 },
    ]);
    // Late labels re-evaluate v2's window: its counts are replaced, not added.
    windows[2] = result(2, T0 - 20 * M, false, true, 85);
    // Windows are read at most every tickMs (here 10 minutes), then over the last day only.
    now += 10 * M;
    await s.tick();
    expect(asked[1]!.since).toBe(now - D);
    expect((await events.querySli({ slo: 'accuracy' }))[1]).toEqual({ ts: T0 - 11 * M, good: 85, total: 100 });
    // 175 correct of 200 = 87.5% against 80%: 12.5% errors of a 20% budget → 62.5% spent.
    const st = await s.status('accuracy');
    expect(st.budget.sli).toBeCloseTo(0.875, 12);
    expect(st.budget.consumed).toBeCloseTo(0.625, 9);
  });

  it('reports a failing deployment and carries on', async () => {
    const s = await service({
      windows: async () => {
        throw new Error('monitoring store unavailable');
      },
    });
    expect(await s.tick()).toEqual([{ deployment: 'busy', ok: false, error: 'monitoring store unavailable' }]);
  });
});

describe('SloService: cost', () => {
  it('prices CPU time per bucket and counts a good minute when the cost per 1,000 is within the objective', async () => {
    writeFileSync(file(), 'slos:\n  - { name: cheap, deployment: busy, sli: { kind: cost, maxCostPer1k: 0.05 }, objective: 0.9, period: 1d }\n');
    const s = await service({ costPerCpuHour: 0.5 });
    // Minute 1: 36 CPU-seconds, busy alone with 150 inferences → 0.5 × 36/3600 / 150 × 1000 = 0.0333 ≤ 0.05: good.
    s.onEvents(Array.from({ length: 150 }, () => event({ latencyMs: 2 })));
    cpu = 36;
    now = T0 + M;
    await s.tick();
    // Minute 2: 36 CPU-seconds, but other takes 3/4 of request time: busy pays 0.00125 for 10 → 0.125 > 0.05: bad.
    s.onEvents([...Array.from({ length: 10 }, () => event({ ts: now, latencyMs: 10 })), event({ ts: now, model: 'other', latencyMs: 300 })]);
    cpu = 72;
    now = T0 + 2 * M;
    await s.tick();
    expect(await events.querySli({ slo: 'cheap' })).toEqual([
      { ts: T0, good: 1, total: 1 },
      { ts: T0 + M, good: 0, total: 1 },
    ]);
    const st = await s.status('cheap');
    expect(st.lastCost!.costPer1k).toBeCloseTo(0.125, 9);
    // A minute without inferences adds no event.
    cpu = 80;
    now = T0 + 3 * M;
    await s.tick();
    expect(await events.querySli({ slo: 'cheap' })).toHaveLength(2);
  });
});

describe('SloAlertSource', () => {
  it('emits SLOErrorBudgetBurn per SLO and window, with severity, runbook and a shared inhibit group', async () => {
    writeFileSync(file(), SLO_YAML);
    const s = await service();
    // Every request of the last 10 minutes fails with a 5xx: all windows of availability burn at 1000.
    for (let m = 0; m < 10; m++) s.onEvents(Array.from({ length: 10 }, (_, i) => event({ ts: T0 + m * M + i, status: 'error', error: 'WARDEN_INFERENCE_FAILED: x' })));
    now = T0 + 10 * M;
    const conditions = await s.alertSource().evaluate(now);
    expect(conditions).toHaveLength(8);
    const avail = conditions.filter((c) => c.labels.slo === 'busy-availability');
    expect(avail.map((c) => [c.labels.window, c.severity, c.active])).toEqual([
      ['1h/5m', 'page', true],
      ['6h/30m', 'page', true],
      ['1d/2h', 'ticket', true],
      ['3d/6h', 'ticket', true],
    ]);
    const page = avail[0]!;
    expect(page.alertname).toBe(SLO_ALERTNAME);
    expect(page.labels).toEqual({ deployment: 'busy', slo: 'busy-availability', window: '1h/5m', sli: 'availability', inhibit_group: 'SLOErrorBudgetBurn:busy-availability' });
    expect(page.value).toBeCloseTo(1000, 6);
    expect(page.runbookUrl).toBe('docs/runbooks/pipeline-failure-nans.md');
    expect(page.summary).toContain('busy: SLO busy-availability is burning its error budget at 1000×');
    expect(page.description).toContain('budget remaining');
    // Latency saw no successful request: nothing burns, nothing is active.
    const lat = conditions.filter((c) => c.labels.slo === 'busy-latency');
    expect(lat.every((c) => !c.active && c.runbookUrl === 'docs/runbooks/latency-spike.md')).toBe(true);
  });
});

describe('SloService: reads include counts made while a write is at the store', () => {
  it('a series read after a count waits for the write in flight and then writes the new count too', async () => {
    writeFileSync(file(), SLO_YAML);
    // A store whose writes take a turn of the event loop, as the writer thread's do.
    const slow: typeof events = Object.create(events);
    slow.addSliCounts = async (records) => {
      await new Promise((r) => setTimeout(r, 20));
      return events.addSliCounts(records);
    };
    const s = await service({ events: slow });
    s.onEvents([event({ requestId: 'a' })]);
    const first = s.series('busy-availability', { since: now - D, until: now + M });
    s.onEvents([event({ requestId: 'b' })]);
    const second = await s.series('busy-availability', { since: now - D, until: now + M });
    await first;
    expect(second.reduce((n, p) => n + p.total, 0)).toBe(2);
  });
});
