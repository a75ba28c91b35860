/**
 * Storage: the ports (metadata, events, artifacts, features) and their adapters. Domain code depends
 * on the port types only; `openConfiguredStores` picks the adapters from config: the embedded SQLite
 * store under storage.dataDir, or PostgreSQL at storage.url for several replicas. Every adapter passes
 * the same contract suite (test/storage/contract.ts).
 */
import path from 'node:path';
import type { ArtifactStore, EventStore, FeatureStore, MetadataStore } from './ports.ts';
import { SqliteMetadataStore } from './sqlite/metadata-store.ts';
import { SqliteFeatureStore } from './sqlite/feature-store.ts';
import { SqliteWorkerEventStore } from './sqlite/worker-event-store.ts';
import { LocalDirArtifactStore } from './artifacts/local-dir.ts';
import { migrationStatus, openPgPool, parsePgUrl, redactPgUrl } from './postgres/database.ts';
import { PgMetadataStore, pgMetadataMigrations } from './postgres/metadata-store.ts';
import { PgEventStore, pgEventMigrations } from './postgres/event-store.ts';
import { PgArtifactStore, pgArtifactMigrations } from './postgres/artifact-store.ts';
import { PgFeatureStore, pgFeatureMigrations } from './postgres/feature-store.ts';
import { classifyStoreError } from './health.ts';
import { WardenError } from '../errors.ts';

export type * from './ports.ts';
export { ACTIVE_JOB_STATES, WAVE_SPAN_MS } from './ports.ts';
export { PredictionBatch } from './prediction-batch.ts';
export type { PredictionBatchMessage, StoredTensor } from './prediction-batch.ts';
export { SqliteMetadataStore } from './sqlite/metadata-store.ts';
export { SqliteEventStore } from './sqlite/event-store.ts';
export { SqliteWorkerEventStore } from './sqlite/worker-event-store.ts';
export { LocalDirArtifactStore, sha256Hex } from './artifacts/local-dir.ts';
export { redactPgUrl, parsePgUrl } from './postgres/database.ts';
export { PgMetadataStore } from './postgres/metadata-store.ts';
export { PgEventStore } from './postgres/event-store.ts';
export { PgArtifactStore } from './postgres/artifact-store.ts';
export { SqliteFeatureStore } from './sqlite/feature-store.ts';
export { PgFeatureStore } from './postgres/feature-store.ts';
export { MAX_FEATURE_BATCH } from './rows/feature-rows.ts';
export { auditEntryHash, canonicalJson, chainEntries, GENESIS_HASH } from './audit-chain.ts';
export { StoreHealth, classifyStoreError, storeOfError, storeUnavailable, watchWrites } from './health.ts';
export type { StoreFault, StoreName, StoreStatus } from './health.ts';

export interface Stores {
  metadata: MetadataStore;
  events: EventStore;
  artifacts: ArtifactStore;
  /** Feature data: pushed rows, the online store, materialization state (features.db, or the PostgreSQL schema). */
  features: FeatureStore;
  /** `sqlite` (embedded, one process) or `postgres` (shared by replicas). */
  kind?: 'sqlite' | 'postgres';
  close(): Promise<void>;
}

/** What `openConfiguredStores` reads of the config. */
export interface StorageConfig {
  dataDir: string;
  url?: string | undefined;
  maxConnections?: number;
}

/** Opens the embedded stores under `dataDir`: metadata.db, events.db, features.db and artifacts/. */
export function openStores(dataDir: string, opts: { writerNice?: number } = {}): Stores {
  const metadata = new SqliteMetadataStore(path.join(dataDir, 'metadata.db'));
  // Prediction events are written from a worker thread so inserts never stall the request path.
  const events = new SqliteWorkerEventStore(path.join(dataDir, 'events.db'), opts);
  const artifacts = new LocalDirArtifactStore(path.join(dataDir, 'artifacts'));
  let features: SqliteFeatureStore;
  try {
    features = new SqliteFeatureStore(path.join(dataDir, 'features.db'));
  } catch (e) {
    // The two opened before it must not stay open (the event store's worker thread would keep the process up).
    void metadata.close().catch(() => {});
    void events.close().catch(() => {});
    throw e;
  }
  return {
    metadata,
    events,
    artifacts,
    features,
    async close() {
      await metadata.close();
      await events.close();
      await features.close();
    },
  };
}

/**
 * Opens the stores the config names: PostgreSQL when `storage.url` is set (migrating each store's schema first,
 * under a lock, so replicas starting together migrate once), else the embedded SQLite stores under dataDir.
 */
export async function openConfiguredStores(
  storage: StorageConfig,
  opts: { writerNice?: number; applicationName?: string; waitMs?: number; onWait?: (err: unknown, attempt: number) => void } = {},
): Promise<Stores> {
  if (!storage.url) return { ...openStores(path.resolve(storage.dataDir), opts), kind: 'sqlite' };
  // A replica may start before its database (compose, Kubernetes): wait for it, within a bound, before giving up.
  const deadline = Date.now() + (opts.waitMs ?? 30_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await openPostgresStores(storage.url, storage, opts);
    } catch (e) {
      const fault = classifyStoreError(e);
      if (!fault) throw e;
      if (Date.now() >= deadline) {
        throw new WardenError('WARDEN_STORE_UNAVAILABLE', `cannot open the PostgreSQL store at ${redactPgUrl(storage.url)}: ${fault.cause} (${fault.code}); ${fault.fix}`);
      }
      opts.onWait?.(e, attempt);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** Math.min(attempt, 5))));
    }
  }
}

async function openPostgresStores(url: string, storage: StorageConfig, opts: { applicationName?: string }): Promise<Stores> {
  const pgOpts = { maxConnections: storage.maxConnections ?? 10, applicationName: opts.applicationName ?? 'warden' };
  // In turn, not at once: all four would queue on the one migration lock anyway.
  const metadata = await PgMetadataStore.open(url, pgOpts);
  const closeAll: (() => Promise<void>)[] = [() => metadata.close()];
  try {
    const events = await PgEventStore.open(url, pgOpts);
    closeAll.push(() => events.close());
    const artifacts = await PgArtifactStore.open(url, { ...pgOpts, maxConnections: Math.min(4, pgOpts.maxConnections) });
    closeAll.push(() => artifacts.close());
    const features = await PgFeatureStore.open(url, { ...pgOpts, maxConnections: Math.min(4, pgOpts.maxConnections) });
    closeAll.push(() => features.close());
    return {
      metadata,
      events,
      artifacts,
      features,
      kind: 'postgres',
      async close() {
        for (const c of closeAll) await c();
      },
    };
  } catch (e) {
    for (const c of closeAll) await c().catch(() => {});
    throw e;
  }
}

/** The metadata store alone (the CLI's `keys`): PostgreSQL when `storage.url` is set, else the embedded file. */
export async function openMetadataStore(storage: StorageConfig): Promise<MetadataStore> {
  if (storage.url) return PgMetadataStore.open(storage.url, { maxConnections: 1, applicationName: 'warden-cli' });
  return new SqliteMetadataStore(path.join(path.resolve(storage.dataDir), 'metadata.db'));
}

/** Per part of a PostgreSQL schema (metadata, events, artifacts, features): the migrations applied and known to this Warden. */
export async function postgresSchemaStatus(url: string): Promise<{ part: string; applied: number; known: number }[]> {
  const pool = openPgPool(parsePgUrl(url), { maxConnections: 1, applicationName: 'warden-cli' });
  try {
    const applied = await migrationStatus(pool);
    const known: [string, number][] = [
      ['metadata', pgMetadataMigrations.length],
      ['events', pgEventMigrations.length],
      ['artifacts', pgArtifactMigrations.length],
      ['features', pgFeatureMigrations.length],
    ];
    return known.map(([part, n]) => ({ part, applied: applied.get(part) ?? 0, known: n }));
  } finally {
    await pool.end();
  }
}
