/**
 * Storage: the three ports (metadata, events, artifacts) and their adapters. Domain code depends
 * on the port types only; `openStores` picks the adapters from config. PostgreSQL and S3 adapters
 * drop in here and must pass the same contract suite (test/storage/contract.ts).
 */
import path from 'node:path';
import type { ArtifactStore, EventStore, MetadataStore } from './ports.ts';
import { SqliteMetadataStore } from './sqlite/metadata-store.ts';
import { SqliteWorkerEventStore } from './sqlite/worker-event-store.ts';
import { LocalDirArtifactStore } from './artifacts/local-dir.ts';

export type * from './ports.ts';
export { PredictionBatch } from './prediction-batch.ts';
export type { PredictionBatchMessage, StoredTensor } from './prediction-batch.ts';
export { SqliteMetadataStore } from './sqlite/metadata-store.ts';
export { SqliteEventStore } from './sqlite/event-store.ts';
export { SqliteWorkerEventStore } from './sqlite/worker-event-store.ts';
export { LocalDirArtifactStore, sha256Hex } from './artifacts/local-dir.ts';
export { StoreHealth, classifyStoreError, storeOfError, storeUnavailable, watchWrites } from './health.ts';
export type { StoreFault, StoreName, StoreStatus } from './health.ts';

export interface Stores {
  metadata: MetadataStore;
  events: EventStore;
  artifacts: ArtifactStore;
  close(): Promise<void>;
}

/** Opens the embedded stores under `dataDir`: metadata.db, events.db and artifacts/. */
export function openStores(dataDir: string, opts: { writerNice?: number } = {}): Stores {
  const metadata = new SqliteMetadataStore(path.join(dataDir, 'metadata.db'));
  // Prediction events are written from a worker thread so inserts never stall the request path.
  const events = new SqliteWorkerEventStore(path.join(dataDir, 'events.db'), opts);
  const artifacts = new LocalDirArtifactStore(path.join(dataDir, 'artifacts'));
  return {
    metadata,
    events,
    artifacts,
    async close() {
      await metadata.close();
      await events.close();
    },
  };
}
