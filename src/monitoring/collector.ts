import type { PredictionEvent } from '../storage/index.ts';
import type { ColumnLayout } from './columns.ts';
import { eventRows } from './columns.ts';
import { ProfileBuilder, type DatasetProfile, type ProfileSchema } from './profile/index.ts';

/** Tumbling windows by event time (ms), or by row count per model version. */
export type WindowSpec = { kind: 'time'; sizeMs: number } | { kind: 'count'; size: number };

/** What the collector profiles for one model version. */
export interface CollectorTarget {
  model: string;
  version: number;
  schema: ProfileSchema;
  layout: ColumnLayout;
  window: WindowSpec;
}

export interface ClosedWindow {
  model: string;
  version: number;
  windowStart: number;
  windowEnd: number;
  rows: number;
  profile: DatasetProfile;
  /** Names of unknown features sent in refused requests, with counts (at most 50 names). */
  extraFeatures: Record<string, number>;
}

interface OpenWindow {
  target: CollectorTarget;
  start: number;
  end: number;
  builder: ProfileBuilder;
  extra: Map<string, number>;
  /** Wall-clock ms of the last event added. */
  touched: number;
}

const featureCount = (t: CollectorTarget) => t.schema.columns.filter((c) => c.role === 'feature').length;

const targetKey = (model: string, version: number) => `${model}\u0000${version}`;

/**
 * Builds window profiles from batches of prediction events, off the request path (the prediction log
 * hands it each batch as it flushes). A time window closes when an event of a later window arrives for
 * the same version (event time moved past it), or when wall time has passed its end and no event came
 * for `idleCloseMs`. Late events reopen a new partial profile of the same window; partials merge exactly
 * when the window is evaluated, so nothing is lost.
 */
export class WindowCollector {
  private readonly targets = new Map<string, CollectorTarget>();
  private readonly open = new Map<string, OpenWindow>();
  private readonly watermark = new Map<string, number>();
  private readonly closed: ClosedWindow[] = [];

  constructor(
    private readonly opts: { idleCloseMs: number; now?: () => number; maxOpenWindows?: number },
  ) {}

  setTarget(t: CollectorTarget): void {
    const k = targetKey(t.model, t.version);
    // A new reference changes bins and columns: close what was built against the old one.
    for (const [wk, w] of this.open) if (targetKey(w.target.model, w.target.version) === k) this.close(wk, w);
    this.targets.set(k, t);
  }

  removeTarget(model: string, version: number): void {
    const k = targetKey(model, version);
    for (const [wk, w] of this.open) if (targetKey(w.target.model, w.target.version) === k) this.close(wk, w);
    this.targets.delete(k);
  }

  hasTarget(model: string, version: number): boolean {
    return this.targets.has(targetKey(model, version));
  }

  add(events: readonly PredictionEvent[]): void {
    const now = (this.opts.now ?? Date.now)();
    for (const e of events) {
      if (e.version === 0) continue;
      const tk = targetKey(e.model, e.version);
      const target = this.targets.get(tk);
      if (!target) continue;
      const columns = target.schema.columns.map((c) => c.name);
      const { rows, extra } = eventRows(target.layout, columns, e);
      if (rows.length === 0 && extra.length === 0) continue;
      const w = this.windowFor(target, tk, e.ts, now);
      // Features come first in the schema; a refused request has no predictions to count.
      const upto = e.status !== 'error' ? columns.length : featureCount(target);
      for (let r = 0; r < rows.length; r++) w.builder.add(rows[r]!, `${e.requestId}:${r}`, upto);
      for (const name of extra) if (w.extra.has(name) || w.extra.size < 50) w.extra.set(name, (w.extra.get(name) ?? 0) + 1);
      w.touched = now;
      if (target.window.kind === 'count' && w.builder.rows >= target.window.size) {
        w.end = Math.max(w.end, e.ts + 1);
        this.close(this.keyOf(w), w);
      }
    }
  }

  private keyOf(w: OpenWindow): string {
    return `${targetKey(w.target.model, w.target.version)}\u0000${w.target.window.kind === 'count' ? 'count' : w.start}`;
  }

  private windowFor(target: CollectorTarget, tk: string, ts: number, now: number): OpenWindow {
    if (target.window.kind === 'count') {
      const key = `${tk}\u0000count`;
      let w = this.open.get(key);
      if (!w) {
        w = { target, start: ts, end: ts + 1, builder: new ProfileBuilder(target.schema), extra: new Map(), touched: now };
        this.open.set(key, w);
      }
      w.start = Math.min(w.start, ts);
      w.end = Math.max(w.end, ts + 1);
      return w;
    }
    const size = target.window.sizeMs;
    const start = Math.floor(ts / size) * size;
    const key = `${tk}\u0000${start}`;
    let w = this.open.get(key);
    if (!w) {
      w = { target, start, end: start + size, builder: new ProfileBuilder(target.schema), extra: new Map(), touched: now };
      this.open.set(key, w);
      this.boundOpenWindows();
    }
    const mark = this.watermark.get(tk) ?? -Infinity;
    if (start > mark) {
      this.watermark.set(tk, start);
      // Event time moved on: earlier windows of this version are complete.
      for (const [k, o] of this.open) if (o !== w && o.target === target && o.end <= start) this.close(k, o);
    }
    return w;
  }

  /** Replay of old traffic out of order could open many windows: past the bound, close the oldest. */
  private boundOpenWindows(): void {
    const max = this.opts.maxOpenWindows ?? 1000;
    if (this.open.size <= max) return;
    const oldest = [...this.open.entries()].sort((a, b) => a[1].touched - b[1].touched)[0];
    if (oldest) this.close(oldest[0], oldest[1]);
  }

  private close(key: string, w: OpenWindow): void {
    this.open.delete(key);
    if (w.builder.rows === 0 && w.extra.size === 0) return;
    this.closed.push({
      model: w.target.model,
      version: w.target.version,
      windowStart: w.start,
      windowEnd: w.end,
      rows: w.builder.rows,
      profile: w.builder.finish(),
      extraFeatures: Object.fromEntries(w.extra),
    });
  }

  /** Closes windows that are due by wall time (or all, when `all`), and returns every closed window not yet taken. */
  takeClosed(opts: { all?: boolean } = {}): ClosedWindow[] {
    const now = (this.opts.now ?? Date.now)();
    for (const [k, w] of this.open) {
      const idle = now - w.touched >= this.opts.idleCloseMs;
      if (opts.all || (w.target.window.kind === 'time' && w.end <= now && idle)) this.close(k, w);
    }
    return this.closed.splice(0, this.closed.length);
  }

  openWindows(): number {
    return this.open.size;
  }
}
