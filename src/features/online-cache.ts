/**
 * The online store as each replica serves it (docs/features.md#online-store-and-enrichment): an in-memory copy of the
 * online rows of every view a deployment reads, one index per view, loaded with `scanOnline` and kept current with
 * `onlineChangedSince` every `features.syncMs`. A read never touches the store: it is a Map lookup per view and
 * entity, and its cost does not depend on how many views are defined (only the views asked for are touched).
 *
 * Each value read comes back with a status: `present`, `expired` (its event time is older than the view's TTL: the
 * value is not served) or `missing` (no row for the entity, or no value in it). The copy holds at most
 * `features.maxOnlineRows` rows over all views: past that, new entities are refused (counted, logged), never evicted
 * or dropped unseen; their reads say the view's copy is incomplete.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { FeatureRowRecord, FeatureStore } from '../storage/index.ts';
import type { FeatureViewDef, ValueStatus } from './types.ts';
import type { FeatureValue } from './values.ts';


/** One value read from the online store. */
export interface OnlineValue {
  /** The value when present; null when expired or missing (an expired value is never served). */
  value: FeatureValue;
  status: ValueStatus;
  /** Event time of the entity's row (epoch ms), null when there is none. */
  eventTs: number | null;
}

/** An entity's row as held: its times and its values in the view's schema order. */
export interface CachedRow {
  eventTs: number;
  createdTs: number;
  values: FeatureValue[];
}

/** Rows read from the store per call (the FeatureStore's largest page). */
const PAGE = 5_000;

/** One view's rows: entity key → newest row by event time (then created time). */
export class ViewIndex {
  readonly rows = new Map<string, CachedRow>();
  /** Feature name → position in a row's values. */
  readonly positions: ReadonlyMap<string, number>;
  /** Entities refused because the cache was full: reads of absent entities then say so. */
  refused = 0;
  /** True once the initial scan finished. */
  loaded = false;
  /** The newest event time among the rows held (epoch ms); -Infinity while none is held. */
  newestEventTs = -Infinity;

  /** The view's definition; replaced in place when only its TTL, owner, tags or description change. */
  constructor(public def: FeatureViewDef) {
    this.positions = new Map(def.schema.map((f, i) => [f.name, i]));
  }

  get ttlMs(): number {
    return this.def.ttlMs;
  }

  /** The status of feature position `pos` of `row` at `now`. */
  status(row: CachedRow | undefined, pos: number, now: number): ValueStatus {
    if (row === undefined) return 'missing';
    const ttl = this.def.ttlMs;
    // At least TTL old is expired, as the point-in-time join has it (event time > t - ttl is within).
    if (ttl > 0 && row.eventTs <= now - ttl) return 'expired';
    const v = row.values[pos];
    return v === null || v === undefined ? 'missing' : 'present';
  }

  /** True when this copy may lack entities the store has (features.maxOnlineRows was reached). */
  get incomplete(): boolean {
    return this.refused > 0;
  }
}

/** What makes two definitions of a view need a reload (a changed TTL, owner or tags does not). */
function shapeOf(def: FeatureViewDef): string {
  return JSON.stringify([def.schema.map((f) => [f.name, f.dtype]), def.entities]);
}

export interface OnlineCacheOptions {
  store: FeatureStore;
  logger: Logger;
  promRegistry: Registry;
  /** How often changes written by any replica are read (features.syncMs). */
  syncMs: number;
  /** Rows held over all views at most (features.maxOnlineRows). */
  maxRows: number;
  /**
   * Each read of the changes goes back this far before the newest write seen (ms): a write stamped earlier but
   * committed later (a long batch, another replica's clock) is then still read. Reading a row twice is harmless.
   */
  overlapMs?: number;
  now?: () => number;
}

/**
 * The replica's copy of the online store. `track(views)` says which views to hold (the views of the deployments that
 * read features); `start()` begins the sync loop. Writers in this process (materialization) also `apply()` what they
 * wrote, so it is served before the next sync.
 */
export class OnlineCache {
  private readonly views = new Map<string, ViewIndex>();
  private total = 0;
  /**
   * When the last read of the changes began, by this replica's clock: every write committed before then was read.
   * The next read starts `overlapMs` before it, so each write is read once or twice, never again and again.
   */
  private cursor: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<number> | undefined;
  private lastSyncOk = 0;
  private readonly lastFullWarn = new Map<string, number>();
  private readonly metrics: { refused: Counter<'view'>; syncFailures: Counter; applied: Counter };
  private readonly now: () => number;

  constructor(private readonly opts: OnlineCacheOptions) {
    this.now = opts.now ?? Date.now;
    const registers = [opts.promRegistry];
    const views = this.views;
    new Gauge({
      name: 'warden_feature_online_rows',
      help: 'Online rows this replica holds in memory, by feature view (the views the deployments read).',
      labelNames: ['view'],
      registers,
      collect() {
        this.reset();
        for (const [name, v] of views) this.set({ view: name }, v.rows.size);
      },
    });
    new Gauge({
      name: 'warden_feature_online_capacity_rows',
      help: 'Online rows a replica holds at most over all views (features.maxOnlineRows); new entities past it are refused.',
      registers,
      collect() {
        this.set(opts.maxRows);
      },
    });
    const staleness = (view: string) => this.stalenessMs(view);
    new Gauge({
      name: 'warden_feature_staleness_seconds',
      help: 'Seconds since the newest event time among the online rows this replica holds, by feature view (now - max event time): how fresh the newest value served is. Views with no rows are not reported.',
      labelNames: ['view'],
      registers,
      collect() {
        this.reset();
        for (const name of views.keys()) {
          const ms = staleness(name);
          if (ms !== undefined) this.set({ view: name }, ms / 1000);
        }
      },
    });
    const syncAge = () => (this.lastSyncOk === 0 ? 0 : (this.now() - this.lastSyncOk) / 1000);
    new Gauge({
      name: 'warden_feature_online_sync_age_seconds',
      help: 'Seconds since this replica last read the online store\'s changes: with features.syncMs, how stale its copy may be.',
      registers,
      collect() {
        this.set(syncAge());
      },
    });
    this.metrics = {
      refused: new Counter({
        name: 'warden_feature_online_rows_refused_total',
        help: 'Online rows of new entities not held because this replica held features.maxOnlineRows rows (raise it, or read fewer views).',
        labelNames: ['view'],
        registers,
      }),
      syncFailures: new Counter({
        name: 'warden_feature_online_sync_failures_total',
        help: 'Reads of the online store\'s changes that failed (retried at the next sync).',
        registers,
      }),
      applied: new Counter({
        name: 'warden_feature_online_changes_total',
        help: 'Online rows read from the store (initial loads and changes) and applied to this replica\'s copy.',
        registers,
      }),
    };
  }

  /** The index of a view held, or undefined. */
  index(view: string): ViewIndex | undefined {
    return this.views.get(view);
  }

  /**
   * Freshness of a view held (docs/features.md#freshness): now minus the newest event time among its online rows,
   * in ms (at least 0). Undefined when the view is not held or holds no rows yet.
   */
  stalenessMs(view: string): number | undefined {
    const idx = this.views.get(view);
    if (!idx || idx.newestEventTs === -Infinity) return undefined;
    return Math.max(0, this.now() - idx.newestEventTs);
  }

  /** Names of the views held. */
  viewNames(): string[] {
    return [...this.views.keys()];
  }

  /** Rows held over all views. */
  get size(): number {
    return this.total;
  }

  get maxRows(): number {
    return this.opts.maxRows;
  }

  /**
   * Holds exactly these views: loads the ones not held yet (a view whose schema or entities changed is loaded
   * again), drops the others. Resolves once every view is loaded.
   */
  async track(defs: readonly FeatureViewDef[]): Promise<void> {
    // The change cursor starts before the first load, so writes made while a view loads are read by the next sync.
    this.cursor ??= this.now();
    const want = new Map(defs.map((d) => [d.name, d]));
    for (const [name, idx] of this.views) {
      const def = want.get(name);
      if (!def || shapeOf(def) !== shapeOf(idx.def)) this.drop(name);
      else idx.def = def;
    }
    const loads: Promise<void>[] = [];
    for (const def of defs) {
      if (this.views.has(def.name)) continue;
      const idx = new ViewIndex(def);
      this.views.set(def.name, idx);
      loads.push(this.load(idx));
    }
    await Promise.all(loads);
  }

  private drop(name: string): void {
    const idx = this.views.get(name);
    if (!idx) return;
    this.total -= idx.rows.size;
    this.views.delete(name);
  }

  private async load(idx: ViewIndex): Promise<void> {
    const started = this.now();
    let afterKey: string | undefined;
    let n = 0;
    for (;;) {
      const page = await this.opts.store.scanOnline({ view: idx.def.name, limit: PAGE, ...(afterKey !== undefined ? { afterKey } : {}) });
      // Dropped (untracked, or replaced by a new definition) while loading: stop.
      if (this.views.get(idx.def.name) !== idx) return;
      for (const r of page) this.put(idx, r);
      n += page.length;
      if (page.length < PAGE) break;
      afterKey = page[page.length - 1]!.entityKey;
    }
    idx.loaded = true;
    this.metrics.applied.inc(n);
    this.opts.logger.info({ view: idx.def.name, rows: idx.rows.size, refused: idx.refused, ms: this.now() - started }, 'features: online rows of the view loaded');
  }

  /** Applies rows (written by this process, or read from the store): each replaces the held row only when newer. */
  apply(rows: readonly FeatureRowRecord[]): number {
    let replaced = 0;
    for (const r of rows) {
      const idx = this.views.get(r.view);
      if (idx && this.put(idx, r)) replaced++;
    }
    return replaced;
  }

  private put(idx: ViewIndex, r: FeatureRowRecord): boolean {
    const held = idx.rows.get(r.entityKey);
    if (held) {
      if (!(r.eventTs > held.eventTs || (r.eventTs === held.eventTs && r.createdTs > held.createdTs))) return false;
    } else if (this.total >= this.opts.maxRows) {
      idx.refused++;
      this.metrics.refused.inc({ view: idx.def.name });
      const now = this.now();
      if (now - (this.lastFullWarn.get(idx.def.name) ?? 0) > 60_000) {
        this.lastFullWarn.set(idx.def.name, now);
        this.opts.logger.warn(
          { view: idx.def.name, held: this.total, maxOnlineRows: this.opts.maxRows, refused: idx.refused },
          `features: the online cache holds features.maxOnlineRows (${this.opts.maxRows}) rows; new entities of view ${idx.def.name} are refused (their reads answer missing, saying the copy is incomplete): raise features.maxOnlineRows`,
        );
      }
      return false;
    }
    const schema = idx.def.schema;
    const values: FeatureValue[] = new Array<FeatureValue>(schema.length);
    for (let i = 0; i < schema.length; i++) {
      const v = r.values[schema[i]!.name];
      values[i] = v === undefined ? null : v;
    }
    if (!held) this.total++;
    if (r.eventTs > idx.newestEventTs) idx.newestEventTs = r.eventTs;
    idx.rows.set(r.entityKey, { eventTs: r.eventTs, createdTs: r.createdTs, values });
    return true;
  }

  /**
   * Reads the online store's changes since the last read (going back `overlapMs`) and applies those of the views
   * held. Returns how many rows it read.
   */
  async sync(): Promise<number> {
    if (this.syncing) return this.syncing;
    this.syncing = this.syncOnce().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<number> {
    const overlap = this.opts.overlapMs ?? 1_000;
    const started = this.now();
    // Writes are stamped by their writer's clock and become visible at commit: going back `overlap` before the last
    // read's start catches a write stamped before it but committed after, or stamped by a clock behind this one.
    let since = Math.floor((this.cursor ?? started) - overlap);
    let read = 0;
    for (;;) {
      const page = await this.opts.store.onlineChangedSince({ since, limit: PAGE });
      read += page.length;
      this.apply(page);
      if (page.length < PAGE) break;
      const last = page[page.length - 1]!.updatedAt;
      if (last <= since) {
        // A full page written in one millisecond: the cursor cannot step past it, so read the views whole instead.
        this.opts.logger.warn({ since }, 'features: more online writes in one millisecond than a page of changes; reloading the views held');
        await this.reloadAll();
        break;
      }
      since = last;
    }
    this.cursor = started;
    this.lastSyncOk = this.now();
    this.metrics.applied.inc(read);
    return read;
  }

  /** Loads every held view again from the store (rows newer than held replace them; nothing is removed). */
  private async reloadAll(): Promise<void> {
    for (const idx of [...this.views.values()]) await this.load(idx);
  }

  start(): void {
    if (this.timer) return;
    this.lastSyncOk = this.now();
    this.timer = setInterval(() => {
      void this.sync().catch((err: unknown) => {
        this.metrics.syncFailures.inc();
        this.opts.logger.warn({ err }, 'features: reading the online store\'s changes failed; retrying at the next sync');
      });
    }, this.opts.syncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.syncing?.catch(() => undefined);
  }

  /**
   * Reads features of entities of any view: from this copy when it holds the view, else from the store (for views no
   * deployment reads: the online read API, not the request path). Statuses as {@link read}.
   */
  async readAny(def: FeatureViewDef, entityKeys: readonly string[], features?: readonly string[], now = this.now()): Promise<{ rows: Record<string, OnlineValue>[]; from: 'cache' | 'store' }> {
    if (this.views.has(def.name)) return { rows: this.read(def.name, entityKeys, features, now), from: 'cache' };
    const idx = new ViewIndex(def);
    const held = new Map<string, CachedRow>();
    for (let i = 0; i < entityKeys.length; i += PAGE) {
      for (const r of await this.opts.store.getOnline(def.name, entityKeys.slice(i, i + PAGE))) {
        held.set(r.entityKey, { eventTs: r.eventTs, createdTs: r.createdTs, values: def.schema.map((f) => r.values[f.name] ?? null) });
      }
    }
    const names = features ?? def.schema.map((f) => f.name);
    const rows = entityKeys.map((k) => {
      const row = held.get(k);
      const out: Record<string, OnlineValue> = {};
      for (const n of names) {
        const pos = idx.positions.get(n);
        if (pos === undefined) throw new Error(`view ${def.name} has no feature ${n}`);
        const status = idx.status(row, pos, now);
        out[n] = { value: status === 'present' ? row!.values[pos]! : null, status, eventTs: row ? row.eventTs : null };
      }
      return out;
    });
    return { rows, from: 'store' };
  }

  /**
   * Reads features of entities of one view held: per entity key, per feature (default: the view's whole schema), the
   * value with its status at `now`. A view not held, or a feature not in its schema, is an error naming it.
   */
  read(view: string, entityKeys: readonly string[], features?: readonly string[], now = this.now()): Record<string, OnlineValue>[] {
    const idx = this.views.get(view);
    if (!idx) throw new Error(`view ${view} is not held in the online cache`);
    const names = features ?? idx.def.schema.map((f) => f.name);
    const positions = names.map((n) => {
      const p = idx.positions.get(n);
      if (p === undefined) throw new Error(`view ${view} has no feature ${n}`);
      return p;
    });
    return entityKeys.map((k) => {
      const row = idx.rows.get(k);
      const out: Record<string, OnlineValue> = {};
      for (let i = 0; i < names.length; i++) {
        const status = idx.status(row, positions[i]!, now);
        out[names[i]!] = { value: status === 'present' ? row!.values[positions[i]!]! : null, status, eventTs: row ? row.eventTs : null };
      }
      return out;
    });
  }
}
