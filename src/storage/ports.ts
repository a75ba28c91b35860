/**
 * Storage ports: everything a replica must remember goes through these three interfaces,
 * so the embedded SQLite store and shared databases run the same domain code. Every adapter
 * passes the contract suite in test/storage/contract.ts.
 */
import type { PredictionBatch } from './prediction-batch.ts';

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

/** What moved a deployment's stable version: a deploy, a rollback, or an alias write to `champion`. */
export type DeploymentEventKind =
  | 'deploy'
  | 'rollback'
  | 'alias'
  | 'rollout-start'
  | 'rollout-step'
  | 'rollout-pause'
  | 'rollout-resume'
  | 'rollout-promote'
  | 'rollout-abort';

/**
 * One change of a deployment's stable version (its `champion` alias), stored in the same transaction as the alias
 * write, so the history is complete: who or what made it, when, why, and what was checked.
 */
export interface DeploymentEventRecord {
  id: number;
  deployment: string;
  at: number;
  kind: DeploymentEventKind;
  /** The stable version before; null when none was set. */
  fromVersion: number | null;
  /** The stable version after; null when the alias was deleted (the latest version serves). */
  toVersion: number | null;
  strategy: 'direct' | RolloutStrategy;
  actor: string;
  reason: string;
  /** What the change measured or checked (warm-up time, signature comparison, the analysis behind it …). */
  data: Record<string, unknown>;
}

export type NewDeploymentEvent = Omit<DeploymentEventRecord, 'id' | 'deployment' | 'fromVersion' | 'toVersion' | 'at'>;

/** Progressive strategies: a candidate beside the stable version. */
export type RolloutStrategy = 'shadow' | 'canary' | 'ab';
/** running and paused are active (at most one per deployment); promoted and aborted are final. */
export type RolloutState = 'running' | 'paused' | 'promoted' | 'aborted';

/**
 * A rollout: a candidate version served beside a deployment's stable version under a strategy, stepping through its
 * spec. `revision` increases with every update, so two controllers (or an operator and a controller) cannot both
 * apply a change made against the same state.
 */
export interface RolloutRecord {
  id: number;
  deployment: string;
  strategy: RolloutStrategy;
  stableVersion: number;
  candidateVersion: number;
  state: RolloutState;
  /** Index of the current step in the spec. */
  step: number;
  stepStartedAt: number;
  /** The rollout's spec (steps, analysis, experiment), validated by rollouts/. */
  spec: Record<string, unknown>;
  /** What the controller carries between intervals (running p-values, counts of failed and inconclusive runs …). */
  status: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
  actor: string;
  reason: string;
  revision: number;
}

export type NewRollout = Omit<RolloutRecord, 'id' | 'revision' | 'endedAt' | 'updatedAt'>;
export type RolloutPatch = Partial<Pick<RolloutRecord, 'state' | 'step' | 'stepStartedAt' | 'spec' | 'status' | 'endedAt' | 'reason'>>;

/** One measured metric of one analysis run: the number, the threshold it was held to and the data behind it. */
export interface RolloutDecisionRecord {
  id: number;
  rolloutId: number;
  at: number;
  step: number;
  metric: string;
  verdict: 'success' | 'failure' | 'inconclusive';
  value: number | null;
  threshold: number | null;
  nStable: number;
  nCandidate: number;
  detail: Record<string, unknown>;
}

export type NewRolloutDecision = Omit<RolloutDecisionRecord, 'id'>;

/**
 * A write made on behalf of a lease applies only while that lease is still unexpired and the holder's, checked in the
 * write's own transaction: a controller that stalled past its lease cannot act beside the one that took over.
 */
export interface LeaseFence {
  lease: string;
  holder: string;
  now: number;
}

/** A lease: who holds a named role (e.g. the rollout controller) until when. */
export interface LeaseRecord {
  name: string;
  holder: string;
  expiresAt: number;
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
  /** Model (deployment) names the key is limited to; absent: every model its role allows. */
  scopes?: string[];
  /** Refused from this time on (epoch ms); absent: never expires. */
  expiresAt?: number;
  /** After a rotation: the replaced secret's hash, still accepted until `previousUntil`. */
  previousHash?: string;
  previousUntil?: number;
  /** When a server last accepted the key (written in batches, so up to `auth.lastUsedFlushMs` behind). */
  lastUsedAt?: number;
}

/** A token bucket's settings for one key (by id) or one deployment (by model name), set by the API. */
export interface RateLimitRecord {
  scope: 'key' | 'deployment';
  name: string;
  /** Requests per second refilled. */
  rate: number;
  /** Bucket size: requests allowed at once after an idle spell. */
  burst: number;
  updatedAt: number;
  updatedBy: string;
}

/** A request quota for one key (by id) or one deployment (by model name), set by the API: a total per UTC day or month. */
export interface QuotaRecord {
  scope: 'key' | 'deployment';
  name: string;
  perDay?: number;
  perMonth?: number;
  updatedAt: number;
  updatedBy: string;
}

/** Requests counted against quotas: one subject's count in one UTC day (epoch ms of its start). */
export interface QuotaUsageRecord {
  scope: 'key' | 'deployment';
  name: string;
  day: number;
  count: number;
}

/** A deployment's cost budgets and what happens past them (cost/), set by the API. */
export interface CostBudgetRecord {
  deployment: string;
  /** Spend allowed per UTC day and per UTC calendar month, in the configured currency; absent: no budget. */
  daily?: number;
  monthly?: number;
  /** Past 100 % of a budget: nothing more than the alert, 429 with WARDEN_BUDGET_EXCEEDED, or serve `capVersion`. */
  cap: 'none' | 'throttle' | 'route';
  capVersion?: number;
  updatedAt: number;
  updatedBy: string;
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

/** A model's human review policy (lifecycle/review): which of its predictions enter the review queue. */
export interface ReviewPolicyRecord {
  model: string;
  /** Rows whose confidence max(p, 1 − p) is below this go to review. */
  confidenceThreshold?: number;
  /** Output holding P(y = 1); default: the first single-column floating-point output. */
  output?: string;
  /** Share of the remaining rows picked for active learning, in [0, 1]. */
  sampleRate?: number;
  /** Bound on the model's unlabelled (open + claimed) items; new items beyond it are dropped and counted. */
  maxQueue: number;
  updatedAt: number;
}

export type ReviewReason = 'low_confidence' | 'active_learning';

/** One prediction row in the human review queue, with its claim and label once given. */
export interface ReviewItemRecord {
  /** Assigned by the store, increasing: also the paging cursor. */
  id: number;
  model: string;
  version: number;
  requestId: string;
  /** Row index of the item within its request. */
  row: number;
  /** The row's inputs: feature name (or tensor name) → value(s). */
  inputs: unknown;
  /** The row's outputs: output name → value(s). */
  prediction: unknown;
  reason: ReviewReason;
  /** max(p, 1 − p) of the probability output. */
  confidence: number;
  createdAt: number;
  claimedBy?: string;
  claimedAt?: number;
  label?: unknown;
  labelledAt?: number;
  labelledBy?: string;
}

/** What the review queue is given to store; the store assigns the id. */
export type NewReviewItem = Omit<ReviewItemRecord, 'id' | 'model' | 'claimedBy' | 'claimedAt' | 'label' | 'labelledAt' | 'labelledBy'>;

/** open: unlabelled and unclaimed (or its claim expired); claimed: unlabelled with a live claim; labelled. */
export type ReviewItemStatus = 'open' | 'claimed' | 'labelled';

export interface ReviewItemQuery {
  model?: string;
  status?: ReviewItemStatus;
  /** Claims made before this (epoch ms) have expired: such items count as open. Default: claims never expire. */
  claimExpiredBefore?: number;
  /** Items with an id greater than this (forward paging). */
  afterId?: number;
  limit: number;
}

/** One model's review queue by status: every model with a policy, and models with items but no policy any more. */
export interface ReviewQueueCounts {
  model: string;
  /** Undefined when the model has items but no policy (deleted since, or the model itself was). */
  policy?: ReviewPolicyRecord;
  /** Statuses as `ReviewItemQuery.status` with the same `claimExpiredBefore`. */
  open: number;
  claimed: number;
  labelled: number;
  /** createdAt of the oldest open item; undefined when none is open. */
  oldestOpenCreatedAt?: number;
}

/** Unlabelled (open + claimed) items of one model. */
export interface ReviewQueueStats {
  model: string;
  pending: number;
  /** createdAt of the oldest unlabelled item. */
  oldestCreatedAt: number;
}

/** One entry of the alert history (alerting): an alert's state transition, or a notification attempt. */
export interface AlertHistoryRecord {
  /** Assigned by the store, increasing: also the paging cursor. */
  id: number;
  at: number;
  kind: 'transition' | 'notification';
  /** The alerts it is about (one for a transition, the group's for a notification). */
  fingerprints: string[];
  alertname?: string;
  deployment?: string;
  receiver?: string;
  /** The transition or the delivery, as alerting records it. */
  data: unknown;
}

export type NewAlertHistoryRecord = Omit<AlertHistoryRecord, 'id'>;

export interface AlertHistoryQuery {
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  deployment?: string;
  alertname?: string;
  fingerprint?: string;
  kind?: AlertHistoryRecord['kind'];
  /** Entries with an id greater than this (forward paging). */
  afterId?: number;
  limit: number;
}

/** A silence (alerting): matchers are kept as alerting wrote them. */
export interface SilenceRecord {
  id: string;
  matchers: unknown;
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  createdAt: number;
  updatedAt: number;
}

/** A rollout suppression window of one deployment (alerting). */
export interface SuppressionRecord {
  id: string;
  deployment: string;
  startsAt: number;
  until: number;
  reason: string;
  createdBy: string;
  createdAt: number;
}

/**
 * SLO definitions kept in the metadata store, for replicas sharing one (a single process keeps them in slo.yaml).
 * Definitions are stored as slo/ validated them; `revision` increases with every save and delete, so a replica
 * polling it knows when to re-read.
 */
export interface SloDefinitionStore {
  /** Every definition in creation order, and the current revision (0 before any write). */
  listSloDefinitions(): Promise<{ definitions: unknown[]; revision: number }>;
  /** Creates (appended last) or replaces the definition named `name`; returns the new revision. */
  saveSloDefinition(name: string, definition: unknown, now: number): Promise<number>;
  /** Removes it; the new revision, or undefined when there was none by that name. */
  deleteSloDefinition(name: string): Promise<number | undefined>;
}

/** What a metadata change touched, for replicas to refresh what they hold in memory. */
export type ChangeTopic = 'model' | 'keys' | 'rate-limits' | 'quotas' | 'cost-budgets' | 'reference' | 'review-policy' | 'slo' | 'rollout' | 'alerting' | 'features' | 'deployment-features';

/** One recorded change: which topic, and the key within it (a model name; '' where the topic has none). */
export interface MetadataChange {
  seq: number;
  /** When it was recorded, by the store's clock (epoch ms). */
  at: number;
  topic: ChangeTopic;
  key: string;
}

/**
 * The metadata store's change feed (shared stores only): every committed write to what replicas cache is recorded
 * in the write's own transaction, so a replica that polls it misses nothing.
 */
export interface ChangeFeed {
  /** Changes recorded at or after `sinceAt` (store clock), in seq order, at most `limit`. */
  listChanges(q: { sinceAt: number; limit: number }): Promise<MetadataChange[]>;
  /** The store's clock now (epoch ms): where a replica starts reading. */
  storeNow(): Promise<number>;
  /** Removes changes recorded before `before`; returns how many. */
  pruneChanges(before: number): Promise<number>;
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
  /** Replaces a version's signature and metadata (the registry only adds what it lacked); returns the stored record. */
  amendVersion(model: string, version: number, patch: { signature: ModelSignature; metadata: VersionMetadata }): Promise<ModelVersionRecord>;
  listVersions(model: string): Promise<ModelVersionRecord[]>;
  deleteVersion(model: string, version: number): Promise<boolean>;
  /** How many versions, across all models, reference this artifact. */
  countVersionsWithSha(sha256: string): Promise<number>;

  /**
   * Creates or moves an alias in one statement (atomic). With `event`, the move is also appended to the model's
   * deployment history in the same transaction (from and to versions filled in from the alias itself).
   */
  setAlias(model: string, alias: string, version: number, now: number, event?: NewDeploymentEvent): Promise<AliasRecord>;
  getAlias(model: string, alias: string): Promise<AliasRecord | undefined>;
  listAliases(model: string): Promise<AliasRecord[]>;
  /** Deletes an alias; with `event`, records it in the deployment history in the same transaction. */
  deleteAlias(model: string, alias: string, now?: number, event?: NewDeploymentEvent): Promise<boolean>;
  /** A deployment's history, oldest first (or newest first): events after `afterId` and before `beforeId`, at or after `since` and at or before `until`, at most `limit`. */
  listDeploymentEvents(deployment: string, q: { afterId?: number; beforeId?: number; since?: number; until?: number; limit: number; newestFirst?: boolean }): Promise<DeploymentEventRecord[]>;

  /** Creates a rollout; WARDEN_CONFLICT when the deployment already has an active (running or paused) one. */
  createRollout(r: NewRollout, event: NewDeploymentEvent): Promise<RolloutRecord>;
  getRollout(id: number): Promise<RolloutRecord | undefined>;
  /** The deployment's running or paused rollout. */
  activeRollout(deployment: string): Promise<RolloutRecord | undefined>;
  /** Rollouts newest first: of one deployment, or (active) every running or paused one. */
  listRollouts(q: { deployment?: string; active?: boolean; limit: number }): Promise<RolloutRecord[]>;
  /**
   * Applies `patch` when the rollout is still at `revision`, in one transaction with the history entry and, with
   * `stable`, the move of the deployment's stable alias (a promotion). Undefined when someone else changed it first.
   */
  updateRollout(
    id: number,
    revision: number,
    patch: RolloutPatch,
    now: number,
    change?: { event: NewDeploymentEvent; stable?: { alias: string; version: number } },
    fence?: LeaseFence,
  ): Promise<RolloutRecord | undefined>;
  /** Stores decisions in one transaction; with `fence`, only while the lease is still the holder's (false otherwise). */
  appendRolloutDecisions(records: readonly NewRolloutDecision[], fence?: LeaseFence): Promise<boolean>;
  /** A rollout's decisions in id order (or newest first) after `afterId` and before `beforeId`; with `at`, only those of the run at that time. */
  listRolloutDecisions(rolloutId: number, q: { afterId?: number; beforeId?: number; at?: number; newestFirst?: boolean; limit: number }): Promise<RolloutDecisionRecord[]>;
  /**
   * Takes or renews a lease in one statement: granted when free, expired, or already the holder's. Returns the
   * lease as it stands after the attempt (another holder's when not granted).
   */
  acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<LeaseRecord & { acquired: boolean }>;
  releaseLease(name: string, holder: string): Promise<void>;

  /** Creates or replaces the reference of a model version. */
  saveReference(r: ReferenceRecord): Promise<void>;
  getReference(model: string, version: number): Promise<ReferenceRecord | undefined>;
  listReferences(): Promise<ReferenceRecord[]>;
  deleteReference(model: string, version: number): Promise<boolean>;

  createApiKey(key: ApiKeyRecord): Promise<void>;
  findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  revokeApiKey(id: string, now: number): Promise<boolean>;
  /**
   * Replaces an active key's secret hash, keeping the old one as `previousHash` until `previousUntil` (a second
   * rotation drops the first old secret). Undefined when there is no active key `id`.
   */
  rotateApiKey(id: string, hash: string, previousUntil: number): Promise<ApiKeyRecord | undefined>;
  /** Records when keys were last used (one batch from a server's memory); a time older than the stored one is ignored. */
  touchApiKeys(uses: readonly { id: string; at: number }[]): Promise<void>;
  /** Rate limits set by the API, by scope then name. */
  listRateLimits(): Promise<RateLimitRecord[]>;
  /** Creates or replaces the limit of one key or deployment. */
  saveRateLimit(r: RateLimitRecord): Promise<void>;
  deleteRateLimit(scope: RateLimitRecord['scope'], name: string): Promise<boolean>;
  /** Quotas set by the API, by scope then name. */
  listQuotas(): Promise<QuotaRecord[]>;
  saveQuota(q: QuotaRecord): Promise<void>;
  deleteQuota(scope: QuotaRecord['scope'], name: string): Promise<boolean>;
  /** Adds counts to each (scope, name, day), in one transaction: every replica adds its own. */
  addQuotaUsage(rows: readonly QuotaUsageRecord[]): Promise<void>;
  /** Counts of the days at or after `since`, summed over replicas. */
  quotaUsage(since: number): Promise<QuotaUsageRecord[]>;
  /** Deletes counts of days before `before`; returns how many rows went. */
  pruneQuotaUsage(before: number): Promise<number>;
  /** Cost budgets set by the API, by deployment. */
  listCostBudgets(): Promise<CostBudgetRecord[]>;
  /** Creates or replaces a deployment's budgets. */
  saveCostBudget(b: CostBudgetRecord): Promise<void>;
  deleteCostBudget(deployment: string): Promise<boolean>;

  close(): Promise<void>;

  /** Creates or replaces a model's review policy (deleted with the model). */
  saveReviewPolicy(p: ReviewPolicyRecord): Promise<void>;
  getReviewPolicy(model: string): Promise<ReviewPolicyRecord | undefined>;
  listReviewPolicies(): Promise<ReviewPolicyRecord[]>;
  deleteReviewPolicy(model: string): Promise<boolean>;
  /**
   * Adds items of one model, in order, while its unlabelled items stay within `maxPending` — the count and
   * the inserts in one transaction, so replicas cannot overshoot together. Returns how many were stored (a prefix).
   */
  enqueueReviewItems(model: string, items: readonly NewReviewItem[], maxPending: number): Promise<number>;
  getReviewItem(id: number): Promise<ReviewItemRecord | undefined>;
  /** Items in id order (oldest first). */
  listReviewItems(q: ReviewItemQuery): Promise<ReviewItemRecord[]>;
  /**
   * Claims an unlabelled item for `reviewer` in one statement when it is unclaimed, already theirs (the claim
   * is renewed) or claimed before `claimExpiredBefore`. Undefined when refused or missing.
   */
  claimReviewItem(id: number, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined>;
  /** Labels an unlabelled item under the same rule as a claim, in one statement. Undefined when refused or missing. */
  labelReviewItem(id: number, label: unknown, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined>;
  /** Per model with unlabelled items: how many, and the oldest one's createdAt. */
  reviewQueueStats(): Promise<ReviewQueueStats[]>;
  /**
   * Per model, ordered by name: its policy and its items counted by status in one query, claims made before
   * `claimExpiredBefore` counting as open (as in `listReviewItems`).
   */
  reviewQueues(claimExpiredBefore: number): Promise<ReviewQueueCounts[]>;

  /** Appends alert history entries in one transaction, in order. */
  appendAlertHistory(records: readonly NewAlertHistoryRecord[]): Promise<void>;
  /** History entries in id order (oldest first). */
  listAlertHistory(q: AlertHistoryQuery): Promise<AlertHistoryRecord[]>;
  /** Removes entries older than `before`; returns how many. */
  pruneAlertHistory(before: number): Promise<number>;
  /** Creates or replaces a silence by id. */
  saveSilence(s: SilenceRecord): Promise<void>;
  getSilence(id: string): Promise<SilenceRecord | undefined>;
  /** Silences in creation order. */
  listSilences(): Promise<SilenceRecord[]>;
  /** Creates or replaces a suppression by id. */
  saveSuppression(s: SuppressionRecord): Promise<void>;
  /** Suppressions in creation order. */
  listSuppressions(): Promise<SuppressionRecord[]>;
  /** The custom alert rules (as given to the API, validated by alerting), or undefined when never set. */
  getAlertRules(): Promise<{ rules: unknown[]; updatedAt: number } | undefined>;
  /** Replaces the custom alert rules. */
  saveAlertRules(rules: readonly unknown[], now: number): Promise<void>;
  /** The feature repository (entities and feature views as validated by features/), or undefined when never set. */
  getFeatureRepo(): Promise<FeatureRepoRecord | undefined>;
  /** Replaces the feature repository (one row, like the alert rules), so every replica reads the same definitions. */
  saveFeatureRepo(repo: unknown, now: number, actor: string): Promise<void>;
  /** Records a dataset export as it starts (state `writing`); returns it with its id. */
  createDataset(d: NewDatasetRecord): Promise<DatasetRecord>;
  /**
   * Ends a `writing` export: `complete` with its sha256, rows and bytes, or `failed` with the reason. Returns the stored
   * record, or undefined when there is no such dataset or it was not `writing` (an export ends once).
   */
  finishDataset(id: number, end: DatasetEnd): Promise<DatasetRecord | undefined>;
  getDataset(id: number): Promise<DatasetRecord | undefined>;
  /** Newest first; `model` filters, `beforeId` pages. */
  listDatasets(q: { model?: string; beforeId?: number; limit: number }): Promise<DatasetRecord[]>;
  /**
   * Records a job. A deployment has at most one active job (awaiting approval, queued or running): creating a second
   * is refused with WARDEN_CONFLICT naming the one there is.
   */
  createJob(j: NewJobRecord): Promise<JobRecord>;
  /**
   * Changes a job if its state is one of `from` (compare-and-set: two replicas cannot both start or end it). Returns
   * the stored record, or undefined when there is no such job or it was in another state.
   */
  updateJob(id: number, from: readonly JobState[], patch: JobPatch): Promise<JobRecord | undefined>;
  getJob(id: number): Promise<JobRecord | undefined>;
  /** Newest first; filters by deployment and states, `beforeId` pages. */
  listJobs(q: { deployment?: string; states?: readonly JobState[]; beforeId?: number; limit: number }): Promise<JobRecord[]>;
  /** A deployment's retraining policy (as validated by lifecycle/retrain), or undefined when it has none. */
  getRetrainPolicy(deployment: string): Promise<RetrainPolicyRecord | undefined>;
  /** Creates or replaces a deployment's retraining policy. */
  saveRetrainPolicy(r: RetrainPolicyRecord): Promise<void>;
  /** Returns whether there was one to delete. */
  deleteRetrainPolicy(deployment: string): Promise<boolean>;
  listRetrainPolicies(): Promise<RetrainPolicyRecord[]>;
  /** The feature views a deployment reads at serving time (as validated by features/), or undefined when none. */
  getDeploymentFeatures(deployment: string): Promise<DeploymentFeaturesRecord | undefined>;
  /** Creates or replaces a deployment's feature binding. */
  saveDeploymentFeatures(r: DeploymentFeaturesRecord): Promise<void>;
  /** Returns whether there was one to delete. */
  deleteDeploymentFeatures(deployment: string): Promise<boolean>;
  /** Every deployment's binding, by deployment name. */
  listDeploymentFeatures(): Promise<DeploymentFeaturesRecord[]>;
  /**
   * Appends entries to the audit log, in order, each chained to the one before by its hash (auditEntryHash in
   * audit-chain.ts): one writer at a time across replicas, so the chain has no forks or gaps. Returns them as stored.
   */
  appendAudit(entries: readonly NewAuditEntry[]): Promise<AuditEntry[]>;
  /** Entries by seq: ascending from `afterSeq` (verification, export) or descending before `beforeSeq` (newest first). */
  listAudit(q: AuditQuery): Promise<AuditEntry[]>;
  /** The newest entry, or undefined when the log is empty. */
  auditHead(): Promise<AuditEntry | undefined>;
}

/** Who did something: an API key (or a caller with auth off), one of Warden's control loops, or a local CLI user. */
export interface AuditActor {
  kind: 'key' | 'anonymous' | 'loop' | 'local';
  /** The key's id, the loop's name (rollouts, retraining), or the OS user of a CLI command that wrote the store; empty for anonymous. */
  id: string;
  /** The key's role then; empty otherwise. */
  role: string;
}

export interface NewAuditEntry {
  at: number;
  actor: AuditActor;
  /** What was done, e.g. `PUT /api/v1/models/:name/aliases/:alias` or `rollout.abort`. */
  action: string;
  /** What it was done to, e.g. `deployment:bike-demand`, `key:1a2b3c`; empty when no one object. */
  object: string;
  /** Before → after, the request's parameters and status: bounded JSON made by the audit recorder. */
  summary: Record<string, unknown>;
  /** The request's id (x-request-id), or the loop action's own id: deployment events made by it carry it too. */
  requestId: string;
}

export interface AuditEntry extends NewAuditEntry {
  /** 1, 2, 3, … without gaps: the chain's order. */
  seq: number;
  /** The hash of the entry before (64 zeros for the first). */
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  afterSeq?: number;
  beforeSeq?: number;
  /** Only entries at or after / before this time (epoch ms). */
  since?: number;
  until?: number;
  /** Exact matches (`objects`: any of them). */
  actorId?: string;
  objects?: readonly string[];
  requestId?: string;
  /** Entries whose action starts with this. */
  actionPrefix?: string;
  /** Ascending when `afterSeq` is given (or `order: 'asc'`), else newest first. */
  order?: 'asc' | 'desc';
  limit: number;
}

/**
 * A job's life: `awaiting-approval` (a person must approve it) or `queued` → `running` → `succeeded` (a version was
 * registered and handed to delivery), `rejected` (the validation gate said no), `failed` (an error: the message says
 * which step) or `canceled`.
 */
export type JobState = 'awaiting-approval' | 'queued' | 'running' | 'succeeded' | 'rejected' | 'failed' | 'canceled';
export const ACTIVE_JOB_STATES: readonly JobState[] = ['awaiting-approval', 'queued', 'running'];

/** A stored unit of background work (today: a retraining run), with what went in, what came out and its log. */
export interface JobRecord {
  id: number;
  kind: 'retrain';
  deployment: string;
  state: JobState;
  /** Why it was started: the trigger and the numbers that fired it. */
  trigger: Record<string, unknown>;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** The log's last 64 KiB (progress lines and the trainer's output). */
  logs: string;
  error?: string;
  /** Which replica runs it (set when it starts). */
  holder?: string;
  actor: string;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
}

export type NewJobRecord = Pick<JobRecord, 'kind' | 'deployment' | 'state' | 'trigger' | 'inputs' | 'actor' | 'createdAt'>;

export interface JobPatch {
  state?: JobState;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  logs?: string;
  error?: string;
  holder?: string;
  startedAt?: number;
  finishedAt?: number;
  at: number;
}

export interface RetrainPolicyRecord {
  deployment: string;
  policy: unknown;
  updatedAt: number;
  updatedBy: string;
}

/** Which feature views a deployment's model reads at serving time, and how requests name entities (features/enrich). */
export interface DeploymentFeaturesRecord {
  deployment: string;
  binding: unknown;
  updatedAt: number;
  updatedBy: string;
}

/** What a training-set export selected: labelled predictions of one deployment. */
export interface DatasetFilter {
  /** The deployment (model name). */
  model: string;
  /** Versions whose predictions are exported, ascending. */
  versions: number[];
  /** Prediction time, epoch ms, inclusive. */
  since?: number;
  /** Prediction time, epoch ms, exclusive. */
  until?: number;
  /** Label sources kept; every source when absent. */
  sources?: LabelSource[];
  /** Feature-store features joined to each row at its prediction time (`view:feature` or `view`), when asked for. */
  features?: string[];
  /** Where each join key's value came from: a model input column, `key` (the caller key) or `key:<RE2 pattern>`. */
  featureKeys?: Record<string, string>;
}

export type DatasetFormat = 'csv' | 'parquet';
export type DatasetState = 'writing' | 'complete' | 'failed';

/** A training set exported from the prediction log, as lineage: what was selected and what was written. */
export interface DatasetRecord {
  id: number;
  filter: DatasetFilter;
  format: DatasetFormat;
  /** Column names in file order. */
  columns: string[];
  state: DatasetState;
  /** Lowercase hex sha256 of the file's bytes, once complete. */
  sha256?: string;
  rows?: number;
  bytes?: number;
  /** Labelled rows left out because their prediction is no longer in the log (retention). */
  skipped?: number;
  error?: string;
  actor: string;
  createdAt: number;
  finishedAt?: number;
}

export type NewDatasetRecord = Pick<DatasetRecord, 'filter' | 'format' | 'columns' | 'actor' | 'createdAt'>;

export type DatasetEnd =
  | { state: 'complete'; sha256: string; rows: number; bytes: number; skipped: number; at: number }
  | { state: 'failed'; error: string; rows: number; bytes: number; skipped: number; at: number };

/** `shadow`: a candidate's answer to a mirrored request, logged for comparison and never returned to the caller. */
export type PredictionStatus = 'ok' | 'error' | 'shadow';

/** Which side of a rollout served a request the rollout routed (absent for requests that named a version). */
export type PredictionRoute = 'stable' | 'candidate';

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
  /**
   * Caller keys, one per row (`parameters.keys`), so labels can name a row without Warden's request id.
   * Absent when the caller sent none.
   */
  keys?: string[];
  /** W3C trace id (32 hex digits) of the request's trace, when tracing is on; links the event to its spans. */
  traceId?: string;
  /** Set when a rollout routed the request (its analysis counts only these). */
  route?: PredictionRoute;
  /**
   * Whether the request asked for an explanation (`parameters.explain`) and got one: true when it was answered with
   * its explanation (status ok); false when the model answered but the explanation failed, failing the request
   * (status error); absent when no explanation was asked for, or the request failed before its model answered.
   * In memory only: the prediction log hands it to its listeners (the `explanation_coverage` SLI counts it, each
   * replica its own requests) and the store does not keep it.
   */
  explained?: boolean;
  /**
   * A shadow wave: the mirrored copies one candidate run answered, logged as one record (one row instead of one per
   * copy: the row, not its few numbers, was the cost of a 100 % shadow). `requestId`, `ts` and `keys` are then the
   * first copy's, `outputs` the run's outputs stacked in copy order, `latencyMs` the run's time. Only status
   * `shadow` has it, and only on the way in: the store reads a wave back as one event per copy.
   */
  copies?: ShadowCopies;
}

/** The copies of a shadow wave, in the order their rows are stacked; every list has one entry per copy. */
export interface ShadowCopies {
  requestIds: string[];
  /** Each copy's request arrival (epoch ms): within `WAVE_SPAN_MS` of the first, never before it. */
  ts: number[];
  /** Rows each copy contributed to the stacked outputs. */
  rows: number[];
  /** Each copy's caller keys, when any copy had some. */
  keys?: (string[] | undefined)[];
}

/**
 * How far a wave's copies' arrival times may lie after its first one. The store files a wave under its first
 * copy's time, so a read from `since` also looks this far before it for waves.
 */
export const WAVE_SPAN_MS = 1000;

export interface StoredPredictionEvent extends PredictionEvent {
  /**
   * Position in the log, used as the paging cursor: increasing from record to record; the copies of one shadow wave
   * share their wave's, and a page always holds a wave whole (so it may hold up to 255 events more than its limit).
   */
  seq: number;
}

export interface PredictionQuery {
  model?: string;
  version?: number;
  status?: PredictionStatus;
  route?: PredictionRoute;
  requestId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /** Return events with seq greater than this (forward paging). */
  afterSeq?: number;
  /** Return events with seq less than this (backward paging, with newestFirst). */
  beforeSeq?: number;
  /** Newest first (seq descending) instead of oldest first. */
  newestFirst?: boolean;
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
  /** A compact summary of the report (monitoring/summary), stored beside it so listings need not parse the report. */
  summary?: unknown;
  createdAt: number;
}

/** A window's stored summary, or its full result where none was stored (windows written before summaries were). */
export interface MonitorSummaryRecord {
  windowStart: number;
  windowEnd: number;
  /**
   * Exactly one of summaryJson and result is set. The summary stays JSON text: a route answering a year of windows
   * passes it through instead of parsing and re-encoding 8,760 objects.
   */
  summaryJson?: string;
  result?: MonitorResultRecord;
}

export interface WindowQuery {
  model: string;
  version: number;
  /** Windows starting at or after (epoch ms). */
  since?: number;
  /** Windows starting before (epoch ms). */
  until?: number;
  limit?: number;
  /** 'newest' returns the latest windows first (default oldest first). */
  order?: 'oldest' | 'newest';
}

/** A ground-truth value; stored as JSON. */
export type LabelValue = number | string | boolean;

/** Who produced a label: a person, a system of record, or a model ('model' marks machine labels, for feedback-loop metrics). */
export type LabelSource = 'human' | 'system' | 'model';

/** One delayed label (ground truth) for one prediction row, named by request id + row or by a caller key. */
export interface LabelInput {
  /** Warden's request id (the `x-request-id` of the prediction). Give this or `key`, not both. */
  requestId?: string;
  /** A caller key sent in `parameters.keys`; it names one row of one request. */
  key?: string;
  /** Row within the request, with `requestId` only. Default 0. */
  row?: number;
  value: LabelValue;
  /** When the label became known (epoch ms). Default: the ingest time. */
  ts?: number;
  /** Default 'system'. */
  source?: LabelSource;
}

/**
 * What one ingest did with every label it was given: `accepted + invalid` is the number given.
 * `duplicates`, `unmatched` and `late` count accepted labels and may overlap.
 */
export interface LabelIngestResult {
  /** Valid labels, stored (or folded into an earlier label of the same row). */
  accepted: number;
  /** Labels for a row that already had one: the value with the later label time is kept. */
  duplicates: number;
  /** Labels with no logged prediction yet: stored, and joined when the prediction is logged. */
  unmatched: number;
  /** Labels whose time is more than `lateAfterMs` after the prediction's time. */
  late: number;
  /** Labels refused; each has an entry in `errors`. */
  invalid: number;
  /** Index (in the input) and reason of every invalid label. */
  errors: { index: number; error: string }[];
}

export interface LabelIngestOptions {
  /** A label later than this after its prediction counts as late. Default 7 days. */
  lateAfterMs?: number;
}

/** Joined reads of one model version's labelled predictions. */
export interface LabelledQuery {
  model: string;
  version: number;
  /** Prediction time, epoch ms, inclusive. */
  since?: number;
  /** Prediction time, epoch ms, exclusive. */
  until?: number;
  /** Labels with an id greater than this (forward paging). */
  afterId?: number;
  limit: number;
}

/** A label joined to the prediction row it labels. */
export interface LabelledRow {
  /** The label's id: the paging cursor. */
  id: number;
  requestId: string;
  row: number;
  key?: string;
  /** Prediction event time (epoch ms). */
  ts: number;
  /** Output tensor name → this row's values (kept with the label when retention removed the prediction); null when not known. */
  outputs: Record<string, unknown[]> | null;
  /** Input tensor name → this row's values (features in column order); null as for outputs. */
  inputs: Record<string, unknown[]> | null;
  label: LabelValue;
  labelTs: number;
  source: LabelSource;
  late: boolean;
}

/** Label counters read from the store (they survive restarts). */
export interface LabelStats {
  /** Labelled rows (a duplicate updates its row, it adds none). */
  total: number;
  matched: number;
  /** Labels waiting for their prediction; they belong to no model yet, so a model filter shows 0. */
  unmatched: number;
  /** Labels that arrived for an already labelled row. */
  duplicates: number;
  late: number;
  bySource: Record<LabelSource, number>;
  /** Caller keys refused by prediction logging because an earlier prediction had the same key (the first keeps it). */
  duplicateKeys: number;
}

/** Good/total events of one SLO in one recording bucket, from one source (slo/). */
export interface SliCountRecord {
  slo: string;
  /** Start of the bucket (epoch ms). */
  ts: number;
  /** What counted them: `traffic` (request events, added up) or one monitoring window's id (replaced on re-evaluation). */
  source: string;
  good: number;
  total: number;
}

export interface SliQuery {
  slo: string;
  /** Buckets starting at or after (epoch ms). */
  since?: number;
  /** Buckets starting before (epoch ms). */
  until?: number;
}

/** One bucket of an SLO's series, summed over sources. */
export interface SliBucket {
  ts: number;
  good: number;
  total: number;
}

/** A business outcome posted after the prediction (a conversion, revenue …), named by the caller key of its row. */
export interface OutcomeInput {
  key: string;
  metric: string;
  value: number;
  /** Epoch ms of the outcome. */
  ts: number;
}

export interface OutcomeIngestResult {
  accepted: number;
  matched: number;
  unmatched: number;
  /** Up to 20 of the keys that matched no prediction. */
  unknownKeys: string[];
}

export interface OutcomeStatsRow {
  version: number;
  route: PredictionRoute | null;
  metric: string;
  n: number;
  sum: number;
  sumSq: number;
}

/** Resolution of a traffic bucket: one minute or one hour. */
export type TrafficStep = 'minute' | 'hour';

/**
 * Request counts of one model version in one minute or hour (telemetry/traffic): what the request path counted,
 * summed over replicas. `histogram` holds latency counts on the fixed log-spaced bins of telemetry/traffic
 * (dense, trailing zeros may be cut); `errors` counts by error code (at most a few dozen, the rest as `other`).
 */
export interface TrafficBucketRecord {
  model: string;
  /** 0 for requests that failed before a version was resolved. */
  version: number;
  step: TrafficStep;
  /** Start of the bucket (epoch ms, a multiple of the step). */
  ts: number;
  requests: number;
  ok: number;
  clientErrors: number;
  serverErrors: number;
  /** Shadow copies the candidate ran (not requests: no caller saw them). */
  shadow: number;
  rows: number;
  latencySumMs: number;
  /** Smallest and largest request latency of the bucket (ms); 0 when it had no requests. */
  minMs: number;
  maxMs: number;
  /** Process CPU time attributed to this version's requests (ms). */
  cpuMs: number;
  histogram: number[];
  errors: Record<string, number>;
}

/** One traffic bucket's counts and CPU time, as cost/ reads them for every model at once. */
export type TrafficUsageRecord = Pick<TrafficBucketRecord, 'model' | 'version' | 'ts' | 'requests' | 'ok' | 'shadow' | 'cpuMs'>;

export interface TrafficQuery {
  model: string;
  step: TrafficStep;
  /** Buckets starting at or after (epoch ms). */
  since: number;
  /** Buckets starting before (epoch ms). */
  until: number;
  version?: number;
}

export interface EventStore {
  appendProfiles(records: readonly WindowProfileRecord[]): Promise<void>;
  /** Profiles of windows in the range, oldest first. */
  listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]>;
  /**
   * Stores a window's evaluation, replacing the stored one unless that covered more rows: replicas evaluate the
   * same window from the partial profiles stored so far, and one that merged fewer must not overwrite a fuller
   * merge. A re-evaluation over as many rows (labels arrived, a new reference) replaces it.
   */
  saveMonitorResult(r: MonitorResultRecord): Promise<void>;
  listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]>;
  /** As listMonitorResults, reading each window's stored summary instead of its report when it has one. */
  listMonitorSummaries(q: WindowQuery): Promise<MonitorSummaryRecord[]>;

  appendPredictions(events: readonly PredictionEvent[]): Promise<void>;
  /** Appends a packed batch (what the prediction log hands over); same rows as appendPredictions of its events. */
  appendBatch(batch: PredictionBatch): Promise<void>;
  queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]>;
  countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number>;

  /**
   * Validates and stores labels in one transaction, durable when the promise resolves; joins each to its
   * logged prediction (by request id and row, or by key). `now` is the ingest time.
   */
  appendLabels(labels: readonly LabelInput[], now: number, opts?: LabelIngestOptions): Promise<LabelIngestResult>;
  /** Matched labels of a model version with their prediction rows, in label id order. Joins waiting labels first. */
  queryLabelled(q: LabelledQuery): Promise<LabelledRow[]>;
  /** Counters over stored labels, optionally of one model (and version). Joins waiting labels first. */
  labelStats(q?: { model?: string; version?: number }): Promise<LabelStats>;

  /**
   * Stores business outcomes (A/B experiments) in one transaction, each joined to the prediction its key names
   * (`parameters.keys`); one with a key no prediction carries is stored unmatched and counted in the result.
   */
  appendOutcomes(outcomes: readonly OutcomeInput[], now: number): Promise<OutcomeIngestResult>;
  /** Count, sum and sum of squares of matched outcomes per version, route and metric, by prediction time. */
  outcomeStats(q: { model: string; since: number; until?: number }): Promise<OutcomeStatsRow[]>;
  /** Outcomes received since `since` whose key matched no prediction. */
  unmatchedOutcomes(since: number): Promise<number>;
  /** Distinct caller keys logged for a model version's served predictions, by prediction time in [since, until). */
  countKeys(q: { model: string; version: number; since: number; until?: number }): Promise<number>;

  /** Adds to the counts of each (slo, ts, source) bucket, in one transaction: replicas' traffic counts add up. */
  addSliCounts(records: readonly SliCountRecord[]): Promise<void>;
  /** Sets the counts of each (slo, ts, source) bucket, in one transaction: a re-evaluated window replaces its own. */
  setSliCounts(records: readonly SliCountRecord[]): Promise<void>;
  /** Buckets of one SLO in the range, summed over sources, oldest first. */
  querySli(q: SliQuery): Promise<SliBucket[]>;
  /**
   * Good and total of one SLO summed over each range [since, until) in one read: what an SLO's status needs (its
   * period and burn windows) without moving a month of minute buckets out of the store.
   */
  sumSli(q: { slo: string; ranges: readonly { since: number; until: number }[] }): Promise<{ good: number; total: number }[]>;
  /** Removes buckets of one SLO, or older than `before` (both: the SLO's older ones); returns how many rows went. */
  deleteSli(q: { slo?: string; before?: number }): Promise<number>;
  /**
   * Adds each record to its stored (model, version, step, ts) bucket in one transaction: counts, sums and histogram
   * bins add, min/max merge. Several replicas write the same bucket.
   */
  addTraffic(records: readonly TrafficBucketRecord[]): Promise<void>;
  /** Buckets of one model in the range (of one version, or all), oldest first, then by version. */
  queryTraffic(q: TrafficQuery): Promise<TrafficBucketRecord[]>;
  /**
   * The counts and CPU time of every model's buckets of a step in [since, until), without histograms: what cost/
   * prices (oldest first, then by model and version).
   */
  trafficUsage(q: { step: TrafficStep; since: number; until: number }): Promise<TrafficUsageRecord[]>;
  /** Removes buckets of a step older than `before`; returns how many went. */
  pruneTraffic(q: { step: TrafficStep; before: number }): Promise<number>;
  /**
   * Retention of the prediction log: removes every prediction of the UTC days that end at or before `before`
   * (epoch ms), or at or before `byModel[model]` for the models it names (-Infinity keeps a model's predictions),
   * with the caller keys logged for them; a label naming one afterwards is unmatched, as for a key never logged.
   * A labelled row's inputs and outputs are kept with its label first, so queryLabelled still returns them.
   * Returns how many days had predictions removed. PostgreSQL drops a day's partition whole when every model in it
   * expired, else deletes the expired models' rows; SQLite deletes rows in batches.
   */
  prunePredictions(before: number, byModel?: Readonly<Record<string, number>>): Promise<number>;
  close(): Promise<void>;
}

export interface ArtifactStore {
  /** Stores bytes under their sha256 and returns it; storing the same bytes twice is a no-op. */
  /** `written` is false when an intact copy was already stored (nothing was written). */
  put(bytes: Uint8Array): Promise<{ sha256: string; sizeBytes: number; written?: boolean }>;
  /** Reads and verifies the bytes; throws WARDEN_ARTIFACT_TAMPERED when they no longer match. */
  get(sha256: string): Promise<Uint8Array>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<boolean>;
}

/** The stored feature repository: what features/ validated, when and by whom it was last replaced. */
export interface FeatureRepoRecord {
  repo: unknown;
  updatedAt: number;
  updatedBy: string;
}

/** One row of a feature view (features/): its entity key, event and created times (epoch ms) and values by feature. */
export interface FeatureRowRecord {
  view: string;
  entityKey: string;
  eventTs: number;
  createdTs: number;
  values: Record<string, number | string | boolean | null>;
}

/** How far a view has been materialized into the online store. */
export interface MaterializationRecord {
  view: string;
  /** The newest created time copied so far: the next run reads rows created after it. */
  watermark: number;
  /** For a file source: how far into the file the last run got (its sha256 and bytes), so a run continues there. */
  cursor?: Record<string, unknown>;
  rows: number;
  updatedAt: number;
}

/**
 * Feature data (docs/features.md): rows pushed to a view (its offline store when the source is `push`), the online
 * store (the latest row per view and entity, by event time), and each view's materialization state. Adapters: SQLite
 * (`features.db` beside the other embedded stores) and PostgreSQL; one contract suite runs against both.
 */
export interface FeatureStore {
  /** Appends pushed rows; returns how many. */
  appendFeatureRows(rows: readonly FeatureRowRecord[]): Promise<number>;
  /** A view's pushed rows in insertion order after `afterId`, optionally only those created after `createdAfter`. */
  scanFeatureRows(q: { view: string; afterId?: number; createdAfter?: number; limit: number }): Promise<(FeatureRowRecord & { id: number })[]>;
  /**
   * Writes rows to the online store: each replaces the stored row of its (view, entity) only when it is newer by event
   * time (or equal event time and newer created time), so rows may arrive in any order. Returns how many replaced.
   */
  upsertOnline(rows: readonly FeatureRowRecord[], now: number): Promise<number>;
  /** The stored rows of these entities of one view (missing ones are left out). */
  getOnline(view: string, entityKeys: readonly string[]): Promise<FeatureRowRecord[]>;
  /** A view's online rows in entity-key order after `afterKey`: how a replica loads its cache. */
  scanOnline(q: { view: string; afterKey?: string; limit: number }): Promise<FeatureRowRecord[]>;
  /** Online rows written at or after `since` (epoch ms, the write time), oldest write first: how replicas catch up. */
  onlineChangedSince(q: { since: number; limit: number }): Promise<(FeatureRowRecord & { updatedAt: number })[]>;
  getMaterialization(view: string): Promise<MaterializationRecord | undefined>;
  saveMaterialization(m: MaterializationRecord): Promise<void>;
  /** Removes a view's pushed rows, online rows and materialization state (a view deleted from the definitions). */
  deleteView(view: string): Promise<void>;
  close(): Promise<void>;
}
