// WindowCollector: window profiles built from prediction events, with injected wall time. Events are
// built by hand in the shape the prediction log hands over (decoded tensors for served requests, the
// instances as sent for refused ones).
import { describe, expect, it } from 'vitest';
import {
  ProfileBuilder,
  WindowCollector,
  columnLayout,
  eventRows,
  inferSchema,
  mergeProfiles,
  type CollectorTarget,
  type DatasetProfile,
  type ProfileSchema,
  type WindowSpec,
} from '../../src/monitoring/index.ts';
import type { ModelSignature, PredictionEvent } from '../../src/storage/index.ts';
import { mulberry32 as rng } from '../../src/random.ts';


const signature: ModelSignature = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }],
  outputs: [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }],
  features: [
    { name: 'temp', datatype: 'FP32' },
    { name: 'hum', datatype: 'FP32' },
    { name: 'season', datatype: 'FP32' },
  ],
};
const layout = columnLayout(signature);

const rand = rng(5);
const referenceRows = Array.from({ length: 500 }, () => {
  const temp = Math.fround(rand());
  const hum = Math.fround(rand());
  return [temp, hum, 1 + Math.floor(rand() * 4), Math.fround(100 * temp + 20 * hum)];
});
const schema: ProfileSchema = inferSchema(
  { names: [...layout.features, ...layout.predictions], rows: referenceRows },
  { predictionColumns: layout.predictions, sampleSize: 200 },
);

const MINUTE = 60_000;

function target(window: WindowSpec, over: Partial<CollectorTarget> = {}): CollectorTarget {
  return { model: 'bikes', version: 1, schema, layout, window, ...over };
}

let seq = 0;
/** A served request of `n` rows at event time `ts`. */
function served(ts: number, n = 2, over: Partial<PredictionEvent> = {}): PredictionEvent & { rows: number[][] } {
  const rows = Array.from({ length: n }, () => referenceRows[Math.floor(rand() * referenceRows.length)]!);
  return {
    requestId: `req-${++seq}`,
    ts,
    model: 'bikes',
    version: 1,
    status: 'ok',
    latencyMs: 1,
    inputs: [{ name: 'input', datatype: 'FP32', dims: [n, 3], data: Float32Array.from(rows.flatMap((r) => r.slice(0, 3))) }],
    outputs: [{ name: 'variable', datatype: 'FP32', shape: [n, 1], data: rows.map((r) => r[3]!) }],
    ...over,
    rows,
  };
}

/** The profile one builder makes of these events, keyed as the collector keys rows. */
function profileOf(events: readonly PredictionEvent[], s: ProfileSchema = schema): DatasetProfile {
  const b = new ProfileBuilder(s);
  for (const e of events) {
    const { rows } = eventRows(layout, s.columns.map((c) => c.name), e);
    rows.forEach((r, i) => b.add(r, `${e.requestId}:${i}`));
  }
  return b.finish();
}

function clock(start = 0) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('time windows', () => {
  it('assigns events to tumbling windows by event time, not arrival time', () => {
    const c = clock(10 * MINUTE);
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: c.now });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    const early = [served(1_000), served(59_999)];
    const late = served(60_000);
    col.add(early);
    expect(col.openWindows()).toBe(1);
    col.add([late]);
    expect(col.openWindows()).toBe(1);
    const [w0, ...more] = col.takeClosed();
    expect(more).toEqual([]);
    expect(w0).toMatchObject({ model: 'bikes', version: 1, windowStart: 0, windowEnd: MINUTE, rows: 4, extraFeatures: {} });
    expect(w0!.profile).toEqual(profileOf(early));
    const [w1] = col.takeClosed({ all: true });
    expect(w1).toMatchObject({ windowStart: MINUTE, windowEnd: 2 * MINUTE, rows: 2 });
    expect(w1!.profile).toEqual(profileOf([late]));
  });

  it('counts features and predictions of served rows', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    const e = served(0, 3);
    col.add([e]);
    const [w] = col.takeClosed({ all: true });
    const p = w!.profile;
    expect(p.rows).toBe(3);
    expect(p.columns.map((c) => c.count)).toEqual([3, 3, 3, 3]);
    expect(p.columns.every((c) => c.missing + c.typeErrors + c.nonFinite === 0)).toBe(true);
    expect(schema.columns.map((s) => [s.name, s.kind, s.role])).toEqual([
      ['temp', 'numeric', 'feature'],
      ['hum', 'numeric', 'feature'],
      ['season', 'categorical', 'feature'],
      ['variable', 'numeric', 'prediction'],
    ]);
    // Sampled cells are the decoded tensor values, row by row.
    const sampled = new Set(p.sample.map((r) => JSON.stringify(r)));
    for (const r of e.rows) expect(sampled.has(JSON.stringify([r[0], r[1], String(r[2]), r[3]]))).toBe(true);
  });

  it('closes a window by wall time once its end has passed and no event came for idleCloseMs', () => {
    const c = clock(30_000);
    const col = new WindowCollector({ idleCloseMs: 20_000, now: c.now });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.add([served(10_000)]);
    c.t = 59_999; // idle long enough, but the window has not ended
    expect(col.takeClosed()).toEqual([]);
    c.t = 55_000;
    col.add([served(50_000)]); // touched again
    c.t = 70_000; // ended, idle only 15 s
    expect(col.takeClosed()).toEqual([]);
    c.t = 75_000;
    const closed = col.takeClosed();
    expect(closed.map((w) => [w.windowStart, w.rows])).toEqual([[0, 4]]);
    expect(col.openWindows()).toBe(0);
  });

  it('gives late events a second partial profile of the same window; the partials merge into the whole', () => {
    const c = clock(0);
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: c.now });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    const onTime = [served(5_000), served(20_000, 3)];
    col.add(onTime);
    col.add([served(MINUTE + 1)]); // watermark passes window 0: it closes
    const first = col.takeClosed();
    expect(first.map((w) => w.windowStart)).toEqual([0]);
    const lateEvents = [served(30_000, 4), served(59_000)];
    col.add(lateEvents);
    expect(col.openWindows()).toBe(2);
    col.add([served(2 * MINUTE + 5)]); // event time moves on again: both earlier windows close
    const second = col.takeClosed();
    expect(second.map((w) => [w.windowStart, w.windowEnd, w.rows])).toEqual([
      [MINUTE, 2 * MINUTE, 2],
      [0, MINUTE, 6],
    ]);
    const partials = [first[0]!, second[1]!];
    expect(partials[1]!.profile).toEqual(profileOf(lateEvents));
    expect(mergeProfiles(schema, partials.map((w) => w.profile))).toEqual(profileOf([...onTime, ...lateEvents]));
  });

  it('keeps a watermark per model version', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }, { version: 2 }));
    col.add([served(1_000), served(5 * MINUTE, 1, { version: 2 })]);
    expect(col.takeClosed()).toEqual([]);
    expect(col.openWindows()).toBe(2);
    col.add([served(5 * MINUTE)]);
    expect(col.takeClosed().map((w) => [w.version, w.windowStart])).toEqual([[1, 0]]);
  });

  it('bounds open windows when old traffic is replayed out of order, closing the least recently touched', () => {
    const c = clock(0);
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: c.now, maxOpenWindows: 3 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    for (const w of [9, 5, 6, 7]) {
      c.t += 1;
      col.add([served(w * MINUTE)]);
    }
    expect(col.openWindows()).toBe(3);
    expect(col.takeClosed().map((w) => w.windowStart)).toEqual([9 * MINUTE]);
  });
});

describe('count windows', () => {
  it('close when they reach `size` rows, spanning the event times they hold', () => {
    const col = new WindowCollector({ idleCloseMs: 1, now: () => 0 });
    col.setTarget(target({ kind: 'count', size: 10 }));
    const events = Array.from({ length: 25 }, (_, i) => served(1_000 + 500 * i, 1));
    col.add(events.slice(0, 9));
    expect(col.takeClosed()).toEqual([]);
    col.add(events.slice(9, 10));
    const [w] = col.takeClosed();
    expect(w).toMatchObject({ rows: 10, windowStart: 1_000, windowEnd: 1_000 + 500 * 9 + 1 });
    expect(w!.profile).toEqual(profileOf(events.slice(0, 10)));
    col.add(events.slice(10));
    expect(col.takeClosed().map((x) => x.rows)).toEqual([10]);
    expect(col.openWindows()).toBe(1);
  });

  it('close after the event that reaches the size (a batch is never split)', () => {
    const col = new WindowCollector({ idleCloseMs: 1, now: () => 0 });
    col.setTarget(target({ kind: 'count', size: 10 }));
    col.add([served(1, 4), served(2, 4), served(3, 4)]);
    expect(col.takeClosed().map((w) => w.rows)).toEqual([12]);
  });

  it('do not close by wall time; takeClosed({ all }) flushes them', () => {
    const c = clock(0);
    const col = new WindowCollector({ idleCloseMs: 1, now: c.now });
    col.setTarget(target({ kind: 'count', size: 100 }));
    col.add([served(1, 3)]);
    c.t = 1e12;
    expect(col.takeClosed()).toEqual([]);
    expect(col.takeClosed({ all: true }).map((w) => w.rows)).toEqual([3]);
  });
});

describe('refused requests', () => {
  const refused = (instances: unknown[], ts = 1_000): PredictionEvent => ({
    requestId: `bad-${++seq}`,
    ts,
    model: 'bikes',
    version: 1,
    status: 'error',
    latencyMs: 1,
    inputs: instances,
    outputs: undefined,
    error: 'WARDEN_INVALID_INPUT',
  });

  it('count feature columns only (missing, type errors) and record unknown features', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.add([
      refused([
        { temp: 0.3, hum: 'wet', season: 2, colour: 'red' },
        { temp: null, season: 9, colour: 'blue', wind: 3 },
      ]),
      refused([{ hum: 0.5, season: 1, colour: 'x', variable: 12 }]),
    ]);
    const [w] = col.takeClosed({ all: true });
    const [temp, hum, season, variable] = w!.profile.columns;
    expect(w!.rows).toBe(3);
    // Numbers are profiled as the float32 the model would have received, like served values.
    expect(temp).toMatchObject({ count: 3, missing: 2, typeErrors: 0, min: Math.fround(0.3), max: Math.fround(0.3) });
    expect(hum).toMatchObject({ count: 3, missing: 1, typeErrors: 1, min: 0.5, max: 0.5 });
    expect(season).toMatchObject({ count: 3, missing: 0, outOfRange: 1, newCategories: { 9: 1 } });
    expect(season!.categories).toMatchObject({ 1: 1, 2: 1 });
    // A refused request has no predictions, even when an instance carries a key of that name.
    expect(variable).toMatchObject({ count: 0, missing: 0 });
    expect(variable!.hist!.every((n) => n === 0)).toBe(true);
    expect(w!.extraFeatures).toEqual({ colour: 3, wind: 1 });
  });

  it('compare with the bounds at float32 like served values: a refused value at the reference maximum is in range', () => {
    // A reference profiled at the tensor's precision: temp tops out at float32 0.96 = 0.9599999785.
    const bounded = inferSchema(
      { names: ['temp', 'hum', 'season', 'variable'], rows: [[Math.fround(0.02), 0.5, 1, 10], [Math.fround(0.96), 0.5, 2, 20]] },
      { predictionColumns: ['variable'], numeric: ['temp'], sampleSize: 10 },
    );
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }, { schema: bounded }));
    // Refused for the null humidity; temp is sent as 0.96 and 0.02, the values the served log holds as float32.
    col.add([refused([{ temp: 0.96, hum: null, season: 1 }, { temp: 0.02, hum: null, season: 2 }, { temp: 0.97, hum: null, season: 2 }])]);
    const [w] = col.takeClosed({ all: true });
    expect(w!.profile.columns[0]).toMatchObject({ count: 3, outOfRange: 1 });
  });

  it('do not report signature features that are not monitored as extra', () => {
    const narrow = inferSchema(
      { names: ['temp', 'variable'], rows: referenceRows.map((r) => [r[0], r[3]]) },
      { predictionColumns: ['variable'], sampleSize: 10 },
    );
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }, { schema: narrow }));
    col.add([refused([{ temp: 'hot', hum: 0.4, season: 1, colour: 'red' }])]);
    const [w] = col.takeClosed({ all: true });
    expect(w!.extraFeatures).toEqual({ colour: 1 });
    expect(w!.profile.columns[0]).toMatchObject({ count: 1, typeErrors: 1 });
    expect(w!.profile.columns[1]).toMatchObject({ count: 0 });
  });

  it('keep at most 50 extra feature names, still counting the ones kept', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    const names = Array.from({ length: 60 }, (_, i) => `f${i}`);
    col.add([refused([Object.fromEntries(names.map((n) => [n, 1]))]), refused([{ f0: 1, f59: 1 }])]);
    const [w] = col.takeClosed({ all: true });
    expect(Object.keys(w!.extraFeatures)).toHaveLength(50);
    expect(w!.extraFeatures.f0).toBe(2);
    expect(w!.extraFeatures.f59).toBeUndefined();
  });

  it('with only unknown features still close a window that reports them', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.add([{ ...refused([]), inputs: 'not a list' }]);
    expect(col.openWindows()).toBe(0);
    col.add([refused([{ colour: 'red' }])]);
    const [w] = col.takeClosed({ all: true });
    expect(w!.extraFeatures).toEqual({ colour: 1 });
    expect(w!.profile.columns[0]).toMatchObject({ count: 1, missing: 1 });
  });
});

describe('targets', () => {
  it('ignores events of versions without a target and of unresolved requests (version 0)', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.add([served(1_000, 2, { version: 2 }), served(1_000, 2, { version: 0 }), served(1_000, 2, { model: 'other' })]);
    expect(col.openWindows()).toBe(0);
    expect(col.takeClosed({ all: true })).toEqual([]);
    expect(col.hasTarget('bikes', 1)).toBe(true);
    expect(col.hasTarget('bikes', 2)).toBe(false);
  });

  it('closes the open windows of a version whose target is replaced, then profiles with the new schema', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }, { version: 2 }));
    const before = [served(1_000), served(2_000)];
    col.add([...before, served(1_000, 1, { version: 2 })]);
    const narrow = inferSchema({ names: ['temp'], rows: referenceRows.map((r) => [r[0]]) }, { sampleSize: 10 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }, { schema: narrow }));
    const closed = col.takeClosed();
    expect(closed.map((w) => [w.version, w.windowStart, w.rows])).toEqual([[1, 0, 4]]);
    expect(closed[0]!.profile).toEqual(profileOf(before));
    expect(col.openWindows()).toBe(1); // version 2 is untouched
    const after = served(3_000);
    col.add([after]);
    const [w] = col.takeClosed({ all: true }).filter((x) => x.version === 1);
    expect(w!.profile.columns).toHaveLength(1);
    expect(w!.profile).toEqual(profileOf([after], narrow));
  });

  it('closes windows of a removed target and ignores its later events', () => {
    const col = new WindowCollector({ idleCloseMs: MINUTE, now: () => 0 });
    col.setTarget(target({ kind: 'time', sizeMs: MINUTE }));
    col.add([served(1_000)]);
    col.removeTarget('bikes', 1);
    expect(col.takeClosed().map((w) => w.rows)).toEqual([2]);
    col.add([served(2_000)]);
    expect(col.openWindows()).toBe(0);
    expect(col.hasTarget('bikes', 1)).toBe(false);
  });
});
