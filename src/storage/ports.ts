/**
 * Storage ports: everything a replica must remember goes through these three interfaces,
 * so the embedded SQLite store and shared databases run the same domain code. Every adapter
 * passes the contract suite in test/storage/contract.ts.
 */

/** A tensor or feature description read from a model file. */
export interface TensorSpec {
  name: string;
  /** Open Inference Protocol datatype: FP32, INT64, BOOL, BYTES … */
  datatype: string;
  /** -1 marks a dynamic dimension (usually the batch). */
  shape: number[];
}

/** An optional named feature, mapped onto a column of an input tensor. */
export interface FeatureSpec {
  name: string;
  datatype: string;
  min?: number;
  max?: number;
  /** Statistics from training data when the trainer wrote them. */
  mean?: number;
  std?: number;
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Named features in column order of the first input (for the `:predict` form). */
  features?: FeatureSpec[];
}

export interface VersionMetadata {
  description?: string;
  params?: Record<string, string | number | boolean>;
  metrics?: Record<string, number>;
  trainingDataSha256?: string;
  sourceCommit?: string;
  tags?: Record<string, string>;
}

export interface ModelRecord {
  name: string;
  description: string;
  createdAt: number;
}

export interface ModelVersionRecord {
  model: string;
  version: number;
  /** Content address of the artifact: lowercase hex sha256 of the file bytes. */
  sha256: string;
  sizeBytes: number;
  format: 'onnx';
  signature: ModelSignature;
  metadata: VersionMetadata;
  createdAt: number;
}

export interface AliasRecord {
  model: string;
  alias: string;
  version: number;
  updatedAt: number;
}

export type Role = 'admin' | 'deployer' | 'predictor' | 'viewer';

export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  /** sha256 of the secret; the secret itself is never stored. */
  hash: string;
  createdAt: number;
  revokedAt?: number;
}

/** A monitoring reference of one model version: only its profile is kept, never the raw rows. */
export interface ReferenceRecord {
  model: string;
  version: number;
  /** Monitoring's ProfileSchema (columns, kinds, bins), stored as JSON. */
  schema: unknown;
  /** Monitoring's DatasetProfile of the reference. */
  profile: unknown;
  /** Drift, quality and window settings. */
  config: unknown;
  /** Where it came from: file name and sha256, or the logged time range. */
  source: Record<string, unknown>;
  createdAt: number;
}

export interface MetadataStore {
  createModel(model: ModelRecord): Promise<void>;
  getModel(name: string): Promise<ModelRecord | undefined>;
  listModels(): Promise<ModelRecord[]>;
  /** Deletes the model with its versions and aliases. */
  deleteModel(name: string): Promise<boolean>;

  /** Assigns the next version number atomically (never reusing a deleted one); returns the stored record. */
  createVersion(v: Omit<ModelVersionRecord, 'version'>): Promise<ModelVersionRecord>;
  getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined>;
  findVersionBySha(model: string, sha256: string): Promise<ModelVersionRecord | undefined>;
  listVersions(model: string): Promise<ModelVersionRecord[]>;
  deleteVersion(model: string, version: number): Promise<boolean>;
  /** How many versions, across all models, reference this artifact. */
  countVersionsWithSha(sha256: string): Promise<number>;

  /** Creates or moves an alias in one statement (atomic). */
  setAlias(model: string, alias: string, version: number, now: number): Promise<AliasRecord>;
  getAlias(model: string, alias: string): Promise<AliasRecord | undefined>;
  listAliases(model: string): Promise<AliasRecord[]>;
  deleteAlias(model: string, alias: string): Promise<boolean>;

  /** Creates or replaces the reference of a model version. */
  saveReference(r: ReferenceRecord): Promise<void>;
  getReference(model: string, version: number): Promise<ReferenceRecord | undefined>;
  listReferences(): Promise<ReferenceRecord[]>;
  deleteReference(model: string, version: number): Promise<boolean>;

  createApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, now: number): Promise<boolean>;

  close(): Promise<void>;
}

export type PredictionStatus = 'ok' | 'error';

/** One served (or refused) inference, as the prediction log keeps it. */
export interface PredictionEvent {
  requestId: string;
  /** Unix epoch milliseconds when the request arrived. */
  ts: number;
  model: string;
  /** 0 when the request never resolved to a version (e.g. unknown alias). */
  version: number;
  status: PredictionStatus;
  latencyMs: number;
  /** Inputs as received, keyed by tensor or feature name. */
  inputs: unknown;
  outputs: unknown;
  error?: string;
}

export interface StoredPredictionEvent extends PredictionEvent {
  /** Monotonic position in the log, used as the paging cursor. */
  seq: number;
}

export interface PredictionQuery {
  model?: string;
  version?: number;
  status?: PredictionStatus;
  requestId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /** Return events with seq greater than this (forward paging). */
  afterSeq?: number;
  limit: number;
}

/** One replica's profile of one window of traffic for a model version; several may share a window. */
export interface WindowProfileRecord {
  model: string;
  version: number;
  /** Epoch ms, inclusive. */
  windowStart: number;
  /** Epoch ms, exclusive. */
  windowEnd: number;
  /** Which process built it (replicas' partial profiles of a window are merged when evaluated). */
  replica: string;
  rows: number;
  profile: unknown;
  createdAt: number;
}

/** The drift and data-quality verdict of one window, replaced when late data re-evaluates it. */
export interface MonitorResultRecord {
  model: string;
  version: number;
  windowStart: number;
  windowEnd: number;
  rows: number;
  datasetDrift: boolean;
  qualityFailures: number;
  report: unknown;
  createdAt: number;
}

export interface WindowQuery {
  model: string;
  version: number;
  /** Windows starting at or after (epoch ms). */
  since?: number;
  /** Windows starting before (epoch ms). */
  until?: number;
  limit?: number;
}

export interface EventStore {
  appendProfiles(records: readonly WindowProfileRecord[]): Promise<void>;
  /** Profiles of windows in the range, oldest first. */
  listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]>;
  saveMonitorResult(r: MonitorResultRecord): Promise<void>;
  listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]>;

  appendPredictions(events: readonly PredictionEvent[]): Promise<void>;
  queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]>;
  countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number>;
  close(): Promise<void>;
}

export interface ArtifactStore {
  /** Stores bytes under their sha256 and returns it; storing the same bytes twice is a no-op. */
  put(bytes: Uint8Array): Promise<{ sha256: string; sizeBytes: number }>;
  /** Reads and verifies the bytes; throws WARDEN_ARTIFACT_TAMPERED when they no longer match. */
  get(sha256: string): Promise<Uint8Array>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<boolean>;
}
