/**
 * The online side of the feature store on one replica (docs/features.md#online-store-and-enrichment): the in-memory
 * copy of the online store, the deployments' feature bindings that fill requests from it, and materialization.
 * app.ts builds it; http/ reads through it.
 */
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { WardenError } from '../errors.ts';
import type { FeatureStore, MetadataStore } from '../storage/index.ts';
import { viewJoinKeys } from './definitions.ts';
import { Enrichment, entityKeyOf } from './enrich.ts';
import { Materializer } from './materialize.ts';
import { OnlineCache, type OnlineValue } from './online-cache.ts';
import { SkewMonitor } from './skew.ts';
import type { FeatureRepo } from './types.ts';

export interface OnlineFeaturesOptions {
  store: FeatureStore;
  metadata: MetadataStore;
  /** The current definitions. */
  repo: () => FeatureRepo;
  logger: Logger;
  promRegistry: Registry;
  /** This replica, as materialization lease holder. */
  holder: string;
  config: { syncMs: number; maxOnlineRows: number; materializeEveryMs: number; syncOverlapMs?: number; skewEveryMs?: number; skewSampleRows?: number };
  /**
   * Whether other replicas write the same online store (a shared PostgreSQL): then the copy reads their writes every
   * `syncMs`. Alone (the embedded store), this replica's materialization is the only writer and applies what it
   * writes, so there is nothing to read back. Default true.
   */
  replicas?: boolean;
  /** A folder the skew checks' joins take folders under; default the system's temporary folder. */
  tmpDir?: string;
  now?: () => number;
}

export interface OnlineRead {
  view: string;
  /** `cache`: this replica's copy (a view a deployment reads); `store`: read from the online store. */
  from: 'cache' | 'store';
  results: { entity: Record<string, unknown>; features: Record<string, OnlineValue> }[];
}

export class OnlineFeatures {
  readonly cache: OnlineCache;
  readonly enrichment: Enrichment;
  readonly materializer: Materializer;
  /** Served rows compared with the offline store (docs/features.md#skew). */
  readonly skew: SkewMonitor;

  constructor(private readonly opts: OnlineFeaturesOptions) {
    const { store, metadata, repo, logger, promRegistry } = opts;
    const now = opts.now ? { now: opts.now } : {};
    this.cache = new OnlineCache({
      store,
      logger,
      promRegistry,
      syncMs: opts.config.syncMs,
      maxRows: opts.config.maxOnlineRows,
      ...(opts.config.syncOverlapMs !== undefined ? { overlapMs: opts.config.syncOverlapMs } : {}),
      ...now,
    });
    this.skew = new SkewMonitor({
      repo,
      store,
      tmpDir: opts.tmpDir ?? path.join(os.tmpdir(), 'warden-feature-skew'),
      logger,
      promRegistry,
      everyMs: opts.config.skewEveryMs ?? 0,
      ...(opts.config.skewSampleRows !== undefined ? { sampleRows: opts.config.skewSampleRows } : {}),
      lease: { metadata, holder: opts.holder },
      ...now,
    });
    this.enrichment = new Enrichment({ cache: this.cache, metadata, repo, logger, promRegistry, ...now, ...((opts.config.skewEveryMs ?? 0) > 0 ? { skew: this.skew } : {}) });
    this.materializer = new Materializer({ store, metadata, repo, cache: this.cache, logger, promRegistry, holder: opts.holder, ...now });
  }

  /** Loads the bindings and their views, then keeps the copy current and runs the schedule. */
  async start(): Promise<void> {
    await this.enrichment.start();
    if (this.opts.replicas !== false) this.cache.start();
    this.materializer.schedule(this.opts.config.materializeEveryMs);
    this.skew.start();
  }

  /** Stops the schedule and the runs (each after its current batch, its cursor saved) and the sync. */
  async stop(): Promise<void> {
    await this.materializer.stop();
    await this.skew.stop();
    await this.cache.stop();
  }

  /** The definitions changed (API, file, another replica): plans and the views held follow. */
  definitionsChanged(): Promise<void> {
    return this.enrichment.definitionsChanged();
  }

  /** A binding names a deployment that exists. */
  async checkDeployment(name: string): Promise<void> {
    if (!(await this.opts.metadata.getModel(name))) {
      throw new WardenError('WARDEN_MODEL_NOT_FOUND', `no model ${JSON.stringify(name.slice(0, 64))}; push a version first, then name the feature views it reads`);
    }
  }

  /** Values of entities of a view with their status (present, expired, missing) and event time. */
  async read(view: string, entities: readonly Record<string, unknown>[], features?: readonly string[]): Promise<OnlineRead> {
    const repo = this.opts.repo();
    const def = repo.featureViews.find((v) => v.name === view);
    if (!def) throw new WardenError('WARDEN_NOT_FOUND', `no feature view ${JSON.stringify(view.slice(0, 64))}; defined: ${repo.featureViews.map((v) => v.name).slice(0, 20).join(', ') || 'none'}`);
    const joinKeys = viewJoinKeys(repo, def);
    const keys = entities.map((e, i) => {
      const k = entityKeyOf(e, joinKeys);
      if (k === undefined) throw new WardenError('WARDEN_BAD_REQUEST', `entities[${i}] lacks a value of join key ${joinKeys.find((j) => e[j] === undefined || e[j] === null) ?? joinKeys.join(', ')} (view ${view} is keyed by ${joinKeys.join(', ')})`);
      return k;
    });
    const unknown = features?.find((f) => !def.schema.some((s) => s.name === f));
    if (unknown !== undefined) throw new WardenError('WARDEN_BAD_REQUEST', `view ${view} has no feature ${JSON.stringify(unknown.slice(0, 64))}; it has ${def.schema.map((f) => f.name).join(', ')}`);
    const { rows, from } = await this.cache.readAny(def, keys, features);
    return { view, from, results: rows.map((f, i) => ({ entity: entities[i]!, features: f })) };
  }
}
