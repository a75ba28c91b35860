/**
 * The metadata tables' rows as both adapters read them, and the port records made from them. The SQLite and
 * PostgreSQL schemas keep the same columns with the same meaning (PostgreSQL's BIGINTs arrive as numbers, see
 * ../postgres/database.ts; JSON is TEXT in both), so one mapping serves both and the two cannot drift apart.
 */
import type {
  CostBudgetRecord,
  QuotaRecord,
  QuotaUsageRecord,
  AuditActor,
  AuditEntry,
  AlertHistoryRecord,
  AliasRecord,
  ApiKeyRecord,
  RateLimitRecord,
  DatasetEnd,
  DatasetRecord,
  JobPatch,
  JobRecord,
  DeploymentEventRecord,
  ModelRecord,
  ModelVersionRecord,
  ReferenceRecord,
  ReviewItemRecord,
  ReviewPolicyRecord,
  ReviewReason,
  Role,
  RolloutDecisionRecord,
  RolloutRecord,
  SilenceRecord,
  SuppressionRecord,
} from '../ports.ts';
import { WardenError } from '../../errors.ts';

export interface ModelRow {
  name: string;
  description: string;
  created_at: number;
}

export const toModel = (r: ModelRow): ModelRecord => ({ name: r.name, description: r.description, createdAt: r.created_at });

export interface VersionRow {
  model: string;
  version: number;
  sha256: string;
  size_bytes: number;
  format: 'onnx';
  signature: string;
  metadata: string;
  created_at: number;
}

export const toVersion = (r: VersionRow): ModelVersionRecord => ({
  model: r.model,
  version: r.version,
  sha256: r.sha256,
  sizeBytes: r.size_bytes,
  format: r.format,
  signature: JSON.parse(r.signature),
  metadata: JSON.parse(r.metadata),
  createdAt: r.created_at,
});

export interface AliasRow {
  model: string;
  alias: string;
  version: number;
  updated_at: number;
}

export const toAlias = (r: AliasRow): AliasRecord => ({ model: r.model, alias: r.alias, version: r.version, updatedAt: r.updated_at });

export interface KeyRow {
  id: string;
  name: string;
  role: Role;
  hash: string;
  created_at: number;
  revoked_at: number | null;
  /** JSON array of model names, or null for an unscoped key. */
  scopes: string | null;
  expires_at: number | null;
  previous_hash: string | null;
  previous_until: number | null;
  /** From the api_key_usage join; absent where a query does not join it. */
  last_used_at?: number | null;
}

export const toKey = (r: KeyRow): ApiKeyRecord => ({
  id: r.id,
  name: r.name,
  role: r.role,
  hash: r.hash,
  createdAt: r.created_at,
  ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at }),
  ...(r.scopes === null ? {} : { scopes: JSON.parse(r.scopes) as string[] }),
  ...(r.expires_at === null ? {} : { expiresAt: Number(r.expires_at) }),
  ...(r.previous_hash === null ? {} : { previousHash: r.previous_hash }),
  ...(r.previous_until === null ? {} : { previousUntil: Number(r.previous_until) }),
  ...(r.last_used_at === null || r.last_used_at === undefined ? {} : { lastUsedAt: Number(r.last_used_at) }),
});

export interface RateLimitRow {
  scope: 'key' | 'deployment';
  name: string;
  rate: number;
  burst: number;
  updated_at: number;
  updated_by: string;
}

export const toRateLimit = (r: RateLimitRow): RateLimitRecord => ({
  scope: r.scope,
  name: r.name,
  rate: Number(r.rate),
  burst: Number(r.burst),
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
});

export interface QuotaRow {
  scope: QuotaRecord['scope'];
  name: string;
  per_day: number | null;
  per_month: number | null;
  updated_at: number;
  updated_by: string;
}

export const toQuota = (r: QuotaRow): QuotaRecord => ({
  scope: r.scope,
  name: r.name,
  ...(r.per_day !== null ? { perDay: Number(r.per_day) } : {}),
  ...(r.per_month !== null ? { perMonth: Number(r.per_month) } : {}),
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
});

export const toQuotaUsage = (r: { scope: QuotaRecord['scope']; name: string; day: number | string; count: number | string }): QuotaUsageRecord => ({
  scope: r.scope,
  name: r.name,
  day: Number(r.day),
  count: Number(r.count),
});

export interface CostBudgetRow {
  deployment: string;
  daily: number | null;
  monthly: number | null;
  cap: CostBudgetRecord['cap'];
  cap_version: number | null;
  updated_at: number;
  updated_by: string;
}

export const toCostBudget = (r: CostBudgetRow): CostBudgetRecord => ({
  deployment: r.deployment,
  ...(r.daily !== null ? { daily: Number(r.daily) } : {}),
  ...(r.monthly !== null ? { monthly: Number(r.monthly) } : {}),
  cap: r.cap,
  ...(r.cap_version !== null ? { capVersion: Number(r.cap_version) } : {}),
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
});

export interface ReferenceRow {
  model: string;
  version: number;
  schema: string;
  profile: string;
  config: string;
  source: string;
  created_at: number;
}

export const toReference = (r: ReferenceRow): ReferenceRecord => ({
  model: r.model,
  version: r.version,
  schema: JSON.parse(r.schema),
  profile: JSON.parse(r.profile),
  config: JSON.parse(r.config),
  source: JSON.parse(r.source),
  createdAt: r.created_at,
});

export interface PolicyRow {
  model: string;
  confidence_threshold: number | null;
  output: string | null;
  sample_rate: number | null;
  max_queue: number;
  updated_at: number;
}

export const toPolicy = (r: PolicyRow): ReviewPolicyRecord => ({
  model: r.model,
  ...(r.confidence_threshold === null ? {} : { confidenceThreshold: r.confidence_threshold }),
  ...(r.output === null ? {} : { output: r.output }),
  ...(r.sample_rate === null ? {} : { sampleRate: r.sample_rate }),
  maxQueue: r.max_queue,
  updatedAt: r.updated_at,
});

/** A policy's columns from an outer join: all null for a model that has review items but no policy. */
export type JoinedPolicyRow = Omit<PolicyRow, 'max_queue' | 'updated_at'> & { max_queue: number | null; updated_at: number | null };

/** The `policy` of a review queue: absent when the join found none (max_queue is NOT NULL in a stored policy). */
export const joinedPolicy = (r: JoinedPolicyRow): { policy?: ReviewPolicyRecord } => (r.max_queue === null ? {} : { policy: toPolicy(r as PolicyRow) });

export interface ReviewItemRow {
  id: number;
  model: string;
  version: number;
  request_id: string;
  row: number;
  inputs: string;
  prediction: string;
  reason: ReviewReason;
  confidence: number;
  created_at: number;
  claimed_by: string | null;
  claimed_at: number | null;
  label: string | null;
  labelled_at: number | null;
  labelled_by: string | null;
}

export const toReviewItem = (r: ReviewItemRow): ReviewItemRecord => ({
  id: r.id,
  model: r.model,
  version: r.version,
  requestId: r.request_id,
  row: r.row,
  inputs: JSON.parse(r.inputs),
  prediction: JSON.parse(r.prediction),
  reason: r.reason,
  confidence: r.confidence,
  createdAt: r.created_at,
  ...(r.claimed_by === null ? {} : { claimedBy: r.claimed_by }),
  ...(r.claimed_at === null ? {} : { claimedAt: r.claimed_at }),
  ...(r.labelled_at === null ? {} : { label: JSON.parse(r.label ?? 'null'), labelledAt: r.labelled_at }),
  ...(r.labelled_by === null ? {} : { labelledBy: r.labelled_by }),
});

export interface AlertHistoryRow {
  id: number;
  at: number;
  kind: AlertHistoryRecord['kind'];
  fingerprints: string;
  alertname: string | null;
  deployment: string | null;
  receiver: string | null;
  data: string;
}

/**
 * The `fingerprints` column: space-delimited with a space at each end, so that one alert's entries are found with
 * LIKE '% fp %' (see `fingerprintPattern`).
 */
export const fingerprintsColumn = (fingerprints: readonly string[]): string => ` ${fingerprints.join(' ')} `;

/** The LIKE pattern (escape character `\`) of the entries that name `fingerprint`. */
export const fingerprintPattern = (fingerprint: string): string => `% ${fingerprint.replace(/[\\%_]/g, (c) => `\\${c}`)} %`;

export const toAlertHistory = (r: AlertHistoryRow): AlertHistoryRecord => ({
  id: r.id,
  at: r.at,
  kind: r.kind,
  fingerprints: r.fingerprints.split(' ').filter(Boolean),
  ...(r.alertname === null ? {} : { alertname: r.alertname }),
  ...(r.deployment === null ? {} : { deployment: r.deployment }),
  ...(r.receiver === null ? {} : { receiver: r.receiver }),
  data: JSON.parse(r.data),
});

export interface SilenceRow {
  id: string;
  matchers: string;
  starts_at: number;
  ends_at: number;
  created_by: string;
  comment: string;
  created_at: number;
  updated_at: number;
}

export const toSilence = (r: SilenceRow): SilenceRecord => ({
  id: r.id,
  matchers: JSON.parse(r.matchers),
  startsAt: r.starts_at,
  endsAt: r.ends_at,
  createdBy: r.created_by,
  comment: r.comment,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface SuppressionRow {
  id: string;
  deployment: string;
  starts_at: number;
  until: number;
  reason: string;
  created_by: string;
  created_at: number;
}

export const toSuppression = (r: SuppressionRow): SuppressionRecord => ({
  id: r.id,
  deployment: r.deployment,
  startsAt: r.starts_at,
  until: r.until,
  reason: r.reason,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

export interface DeploymentEventRow {
  id: number;
  deployment: string;
  at: number;
  kind: DeploymentEventRecord['kind'];
  from_version: number | null;
  to_version: number | null;
  strategy: DeploymentEventRecord['strategy'];
  actor: string;
  reason: string;
  data: string;
}

export const toDeploymentEvent = (r: DeploymentEventRow): DeploymentEventRecord => ({
  id: r.id,
  deployment: r.deployment,
  at: r.at,
  kind: r.kind,
  fromVersion: r.from_version,
  toVersion: r.to_version,
  strategy: r.strategy,
  actor: r.actor,
  reason: r.reason,
  data: JSON.parse(r.data) as Record<string, unknown>,
});

export interface RolloutRow {
  id: number;
  deployment: string;
  strategy: RolloutRecord['strategy'];
  stable_version: number;
  candidate_version: number;
  state: RolloutRecord['state'];
  step: number;
  step_started_at: number;
  spec: string;
  status: string;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  actor: string;
  reason: string;
  revision: number;
}

export const toRollout = (r: RolloutRow): RolloutRecord => ({
  id: r.id,
  deployment: r.deployment,
  strategy: r.strategy,
  stableVersion: r.stable_version,
  candidateVersion: r.candidate_version,
  state: r.state,
  step: r.step,
  stepStartedAt: r.step_started_at,
  spec: JSON.parse(r.spec) as Record<string, unknown>,
  status: JSON.parse(r.status) as Record<string, unknown>,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  endedAt: r.ended_at,
  actor: r.actor,
  reason: r.reason,
  revision: r.revision,
});

export interface DecisionRow {
  id: number;
  rollout_id: number;
  at: number;
  step: number;
  metric: string;
  verdict: RolloutDecisionRecord['verdict'];
  value: number | null;
  threshold: number | null;
  n_stable: number;
  n_candidate: number;
  detail: string;
}

export const toDecision = (r: DecisionRow): RolloutDecisionRecord => ({
  id: r.id,
  rolloutId: r.rollout_id,
  at: r.at,
  step: r.step,
  metric: r.metric,
  verdict: r.verdict,
  value: r.value,
  threshold: r.threshold,
  nStable: r.n_stable,
  nCandidate: r.n_candidate,
  detail: JSON.parse(r.detail) as Record<string, unknown>,
});

/**
 * A decision's value or threshold as stored: NaN and ±Infinity become null, since SQLite has no such REAL values and
 * PostgreSQL must read back what SQLite does.
 */
export const finiteOrNull = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : x);

/** The refusal of a second active rollout of one deployment, naming the one to promote or abort first. */
export function activeRolloutConflict(deployment: string, active: RolloutRecord | undefined): WardenError {
  return new WardenError(
    'WARDEN_CONFLICT',
    `${deployment} already has a ${active?.state ?? 'running'} ${active?.strategy ?? ''} rollout${active ? ` (#${active.id}, v${active.candidateVersion})` : ''}; promote or abort it first`,
  );
}

export interface DatasetRow {
  id: number;
  filter: string;
  format: DatasetRecord['format'];
  columns: string;
  state: DatasetRecord['state'];
  sha256: string | null;
  rows: number | null;
  bytes: number | null;
  skipped: number | null;
  error: string | null;
  actor: string;
  created_at: number;
  finished_at: number | null;
}

export const DATASET_COLUMNS = 'id, filter, format, columns, state, sha256, rows, bytes, skipped, error, actor, created_at, finished_at';

export function toDataset(r: DatasetRow): DatasetRecord {
  const d: DatasetRecord = {
    id: r.id,
    filter: JSON.parse(r.filter) as DatasetRecord['filter'],
    format: r.format,
    columns: JSON.parse(r.columns) as string[],
    state: r.state,
    actor: r.actor,
    createdAt: r.created_at,
  };
  if (r.sha256 !== null) d.sha256 = r.sha256;
  if (r.rows !== null) d.rows = r.rows;
  if (r.bytes !== null) d.bytes = r.bytes;
  if (r.skipped !== null) d.skipped = r.skipped;
  if (r.error !== null) d.error = r.error;
  if (r.finished_at !== null) d.finishedAt = r.finished_at;
  return d;
}

/** The finishDataset columns in the order both adapters bind them: state, sha256, rows, bytes, skipped, error, finished_at. */
export const datasetEndParams = (end: DatasetEnd): unknown[] => [
  end.state,
  end.state === 'complete' ? end.sha256 : null,
  end.rows,
  end.bytes,
  end.skipped,
  end.state === 'failed' ? end.error : null,
  end.at,
];

export interface JobRow {
  id: number;
  kind: 'retrain';
  deployment: string;
  state: JobRecord['state'];
  trigger: string;
  inputs: string;
  outputs: string;
  logs: string;
  error: string | null;
  holder: string | null;
  actor: string;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export const JOB_COLUMNS = 'id, kind, deployment, state, trigger, inputs, outputs, logs, error, holder, actor, created_at, updated_at, started_at, finished_at';

export function toJob(r: JobRow): JobRecord {
  const j: JobRecord = {
    id: Number(r.id),
    kind: r.kind,
    deployment: r.deployment,
    state: r.state,
    trigger: JSON.parse(r.trigger) as Record<string, unknown>,
    inputs: JSON.parse(r.inputs) as Record<string, unknown>,
    outputs: JSON.parse(r.outputs) as Record<string, unknown>,
    logs: r.logs,
    actor: r.actor,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
  if (r.error !== null) j.error = r.error;
  if (r.holder !== null) j.holder = r.holder;
  if (r.started_at !== null) j.startedAt = Number(r.started_at);
  if (r.finished_at !== null) j.finishedAt = Number(r.finished_at);
  return j;
}

/** The SET list of an updateJob and its values, in order, for both adapters (`?` or `$n` placeholders). */
export function jobPatchSql(patch: JobPatch, placeholder: (value: unknown) => string): string {
  const sets: string[] = [`updated_at = ${placeholder(patch.at)}`];
  const add = (column: string, value: unknown) => sets.push(`${column} = ${placeholder(value)}`);
  if (patch.state !== undefined) add('state', patch.state);
  if (patch.inputs !== undefined) add('inputs', JSON.stringify(patch.inputs));
  if (patch.outputs !== undefined) add('outputs', JSON.stringify(patch.outputs));
  if (patch.logs !== undefined) add('logs', patch.logs);
  if (patch.error !== undefined) add('error', patch.error);
  if (patch.holder !== undefined) add('holder', patch.holder);
  if (patch.startedAt !== undefined) add('started_at', patch.startedAt);
  if (patch.finishedAt !== undefined) add('finished_at', patch.finishedAt);
  return sets.join(', ');
}

export function activeJobConflict(deployment: string, active: JobRecord | undefined): WardenError {
  return new WardenError(
    'WARDEN_CONFLICT',
    `${deployment} already has a job ${active ? `#${active.id} (${active.state})` : 'that is awaiting approval, queued or running'}; one retraining runs at a time: wait for it, or cancel it (warden retrain cancel ${active?.id ?? 'JOB'})`,
  );
}

/** An audit_log row as both adapters read it. */
export interface AuditRow {
  seq: number;
  at: number;
  actor_kind: AuditActor['kind'];
  actor_id: string;
  actor_role: string;
  action: string;
  object: string;
  summary: string;
  request_id: string;
  prev_hash: string;
  hash: string;
}

export function toAuditEntry(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    actor: { kind: r.actor_kind, id: r.actor_id, role: r.actor_role },
    action: r.action,
    object: r.object,
    summary: JSON.parse(r.summary) as Record<string, unknown>,
    requestId: r.request_id,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
