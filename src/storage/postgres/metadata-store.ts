/**
 * MetadataStore on PostgreSQL, for several replicas sharing one database. It behaves as the SQLite reference
 * (../sqlite/metadata-store.ts) does; where SQLite relies on being the only writer (BEGIN IMMEDIATE), this adapter
 * keeps each promise of the port under concurrent replicas with one-statement upserts, row locks and
 * transaction-scoped advisory locks.
 *
 * Lock order, so that no two writes can deadlock: lease row (shared) → deployment advisory lock → rollout row →
 * alias row. Every method that takes several of these takes them in that order.
 */
import type { QueryResult, QueryResultRow } from 'pg';
import type {
  AlertHistoryQuery,
  AuditEntry,
  AuditQuery,
  NewAuditEntry,
  ChangeFeed,
  FeatureRepoRecord,
  DeploymentFeaturesRecord,
  AlertHistoryRecord,
  AliasRecord,
  ApiKeyRecord,
  RateLimitRecord,
  CostBudgetRecord,
  QuotaRecord,
  QuotaUsageRecord,
  DeploymentEventRecord,
  LeaseFence,
  LeaseRecord,
  MetadataChange,
  MetadataStore,
  ModelRecord,
  ModelSignature,
  ModelVersionRecord,
  DatasetEnd,
  DatasetRecord,
  JobPatch,
  JobRecord,
  JobState,
  NewJobRecord,
  RetrainPolicyRecord,
  NewAlertHistoryRecord,
  NewDatasetRecord,
  NewDeploymentEvent,
  NewReviewItem,
  NewRollout,
  NewRolloutDecision,
  ReferenceRecord,
  ReviewItemQuery,
  ReviewItemRecord,
  ReviewPolicyRecord,
  ReviewQueueCounts,
  ReviewQueueStats,
  RolloutDecisionRecord,
  RolloutPatch,
  RolloutRecord,
  SilenceRecord,
  SloDefinitionStore,
  SuppressionRecord,
  VersionMetadata,
} from '../ports.ts';
import {
  DATASET_COLUMNS,
  datasetEndParams,
  toDataset,
  type DatasetRow,
  JOB_COLUMNS,
  activeJobConflict,
  jobPatchSql,
  toJob,
  type JobRow,
  activeRolloutConflict,
  finiteOrNull,
  fingerprintPattern,
  fingerprintsColumn,
  joinedPolicy,
  toAlertHistory,
  toAlias,
  toDecision,
  toDeploymentEvent,
  toKey,
  toRateLimit,
  type RateLimitRow,
  toCostBudget,
  type CostBudgetRow,
  toQuota,
  toQuotaUsage,
  type QuotaRow,
  toModel,
  toPolicy,
  toReference,
  toReviewItem,
  toRollout,
  toSilence,
  toSuppression,
  toVersion,
  type AlertHistoryRow,
  type AliasRow,
  type DecisionRow,
  type DeploymentEventRow,
  type JoinedPolicyRow,
  type KeyRow,
  type ModelRow,
  type PolicyRow,
  type ReferenceRow,
  type ReviewItemRow,
  type RolloutRow,
  type SilenceRow,
  type SuppressionRow,
  type VersionRow,
  toAuditEntry,
  type AuditRow,
} from '../rows/metadata-rows.ts';
import { WardenError, type ErrorCode } from '../../errors.ts';
import { canonicalJson, chainEntries } from '../audit-chain.ts';
import * as changeFeed from './change-feed.ts';
import { inTransaction, migratePg, openPgPool, parsePgUrl, type PgMigration, type PgOptions, type PgPool } from './database.ts';

/**
 * Schema history of the `metadata` component, applied in order by `migratePg`. Version 1 is the whole schema the
 * SQLite store reached in its seven migrations, written natively: epoch ms as BIGINT, JSON as TEXT (what was
 * written is what is read back, key order and number spelling included), identity ids, the same foreign keys.
 * Version 2 adds SLO definitions and the change feed's triggers on these tables (change-feed.ts).
 */
export const pgMetadataMigrations: PgMigration[] = [
  [
    `CREATE TABLE models (
       name TEXT PRIMARY KEY,
       description TEXT NOT NULL DEFAULT '',
       created_at BIGINT NOT NULL,
       -- Version numbers are never reused within a model: the counter lives on the model row.
       last_version INTEGER NOT NULL DEFAULT 0)`,
    `CREATE TABLE model_versions (
       model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
       version INTEGER NOT NULL,
       sha256 TEXT NOT NULL,
       size_bytes BIGINT NOT NULL,
       format TEXT NOT NULL,
       signature TEXT NOT NULL,
       metadata TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       PRIMARY KEY (model, version))`,
    `CREATE INDEX model_versions_sha ON model_versions(sha256)`,
    `CREATE TABLE model_aliases (
       model TEXT NOT NULL,
       alias TEXT NOT NULL,
       version INTEGER NOT NULL,
       updated_at BIGINT NOT NULL,
       PRIMARY KEY (model, alias),
       FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE RESTRICT)`,
    `CREATE TABLE api_keys (
       id TEXT PRIMARY KEY,
       name TEXT NOT NULL,
       role TEXT NOT NULL,
       hash TEXT NOT NULL UNIQUE,
       created_at BIGINT NOT NULL,
       revoked_at BIGINT)`,
    `CREATE TABLE monitoring_references (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       schema TEXT NOT NULL,
       profile TEXT NOT NULL,
       config TEXT NOT NULL,
       source TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       PRIMARY KEY (model, version),
       FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE)`,
    `CREATE TABLE review_policies (
       model TEXT PRIMARY KEY REFERENCES models(name) ON DELETE CASCADE,
       confidence_threshold DOUBLE PRECISION,
       output TEXT,
       sample_rate DOUBLE PRECISION,
       max_queue BIGINT NOT NULL,
       updated_at BIGINT NOT NULL)`,
    // No foreign key: a prediction logged just before its model was deleted must not fail the batch it arrives in.
    `CREATE TABLE review_items (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       request_id TEXT NOT NULL,
       "row" INTEGER NOT NULL,
       inputs TEXT NOT NULL,
       prediction TEXT NOT NULL,
       reason TEXT NOT NULL CHECK (reason IN ('low_confidence', 'active_learning')),
       confidence DOUBLE PRECISION NOT NULL,
       created_at BIGINT NOT NULL,
       claimed_by TEXT,
       claimed_at BIGINT,
       label TEXT,
       labelled_at BIGINT,
       labelled_by TEXT)`,
    `CREATE INDEX review_items_model ON review_items(model, id)`,
    `CREATE INDEX review_items_pending ON review_items(model, created_at) WHERE labelled_at IS NULL`,
    // `fingerprints` is space-delimited with a space at each end, so one alert's entries are found with LIKE '% fp %'.
    `CREATE TABLE alert_history (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       at BIGINT NOT NULL,
       kind TEXT NOT NULL CHECK (kind IN ('transition', 'notification')),
       fingerprints TEXT NOT NULL,
       alertname TEXT,
       deployment TEXT,
       receiver TEXT,
       data TEXT NOT NULL)`,
    `CREATE INDEX alert_history_at ON alert_history(at)`,
    `CREATE INDEX alert_history_deployment ON alert_history(deployment, id)`,
    `CREATE TABLE alert_silences (
       id TEXT PRIMARY KEY,
       matchers TEXT NOT NULL,
       starts_at BIGINT NOT NULL,
       ends_at BIGINT NOT NULL,
       created_by TEXT NOT NULL,
       comment TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       updated_at BIGINT NOT NULL)`,
    `CREATE TABLE alert_suppressions (
       id TEXT PRIMARY KEY,
       deployment TEXT NOT NULL,
       starts_at BIGINT NOT NULL,
       until BIGINT NOT NULL,
       reason TEXT NOT NULL,
       created_by TEXT NOT NULL,
       created_at BIGINT NOT NULL)`,
    `CREATE TABLE alert_rules (id INTEGER PRIMARY KEY CHECK (id = 1), rules TEXT NOT NULL, updated_at BIGINT NOT NULL)`,
    `CREATE TABLE deployment_events (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       deployment TEXT NOT NULL,
       at BIGINT NOT NULL,
       kind TEXT NOT NULL,
       from_version INTEGER,
       to_version INTEGER,
       strategy TEXT NOT NULL,
       actor TEXT NOT NULL,
       reason TEXT NOT NULL,
       data TEXT NOT NULL)`,
    `CREATE INDEX deployment_events_at ON deployment_events(deployment, at, id)`,
    `CREATE TABLE rollouts (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       deployment TEXT NOT NULL,
       strategy TEXT NOT NULL CHECK (strategy IN ('shadow', 'canary', 'ab')),
       stable_version INTEGER NOT NULL,
       candidate_version INTEGER NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'promoted', 'aborted')),
       step INTEGER NOT NULL,
       step_started_at BIGINT NOT NULL,
       spec TEXT NOT NULL,
       status TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       updated_at BIGINT NOT NULL,
       ended_at BIGINT,
       actor TEXT NOT NULL,
       reason TEXT NOT NULL,
       revision INTEGER NOT NULL)`,
    // At most one active rollout per deployment, enforced by the database so replicas cannot both start one.
    `CREATE UNIQUE INDEX rollouts_active ON rollouts(deployment) WHERE state IN ('running', 'paused')`,
    `CREATE INDEX rollouts_deployment ON rollouts(deployment, id)`,
    `CREATE TABLE rollout_decisions (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       rollout_id BIGINT NOT NULL,
       at BIGINT NOT NULL,
       step INTEGER NOT NULL,
       metric TEXT NOT NULL,
       verdict TEXT NOT NULL CHECK (verdict IN ('success', 'failure', 'inconclusive')),
       value DOUBLE PRECISION,
       threshold DOUBLE PRECISION,
       n_stable BIGINT NOT NULL,
       n_candidate BIGINT NOT NULL,
       detail TEXT NOT NULL)`,
    `CREATE INDEX rollout_decisions_rollout ON rollout_decisions(rollout_id, id)`,
    `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
  ],
  changeFeed.changeFeedMigration,
  // Training sets exported from the prediction log: the lineage a retrained version points at.
  [
    `CREATE TABLE datasets (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       model TEXT NOT NULL,
       filter TEXT NOT NULL,
       format TEXT NOT NULL CHECK (format IN ('csv', 'parquet')),
       columns TEXT NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'failed')),
       sha256 TEXT,
       rows BIGINT,
       bytes BIGINT,
       skipped BIGINT,
       error TEXT,
       actor TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       finished_at BIGINT)`,
    `CREATE INDEX datasets_model ON datasets(model, id)`,
  ],  // Stored jobs (retraining runs) and each deployment's retraining policy. The partial unique index is the "one run at
  // a time" guardrail, held by the database whichever replica starts the job.
  [
    `CREATE TABLE jobs (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       kind TEXT NOT NULL,
       deployment TEXT NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('awaiting-approval', 'queued', 'running', 'succeeded', 'rejected', 'failed', 'canceled')),
       trigger TEXT NOT NULL,
       inputs TEXT NOT NULL,
       outputs TEXT NOT NULL,
       logs TEXT NOT NULL,
       error TEXT,
       holder TEXT,
       actor TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       updated_at BIGINT NOT NULL,
       started_at BIGINT,
       finished_at BIGINT)`,
    `CREATE INDEX jobs_deployment ON jobs(deployment, id)`,
    `CREATE UNIQUE INDEX jobs_one_active ON jobs(deployment) WHERE state IN ('awaiting-approval', 'queued', 'running')`,
    `CREATE TABLE retrain_policies (deployment TEXT PRIMARY KEY, policy TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL)`,
  ],
  // The feature repository (entities and feature views, docs/features.md): one row, replaced whole; replicas follow it
  // through the change feed (topic `features`).
  [
    `CREATE TABLE feature_repo (id INTEGER PRIMARY KEY CHECK (id = 1), repo TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL)`,
    changeFeed.changeTrigger('feature_repo', 'features', ''),
  ],
  // The feature views each deployment reads at serving time (features/enrich); replicas follow them through the change
  // feed (topic `deployment-features`).
  [
    `CREATE TABLE deployment_features (deployment TEXT PRIMARY KEY, binding TEXT NOT NULL, updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL)`,
    changeFeed.changeTrigger('deployment_features', 'deployment-features', 'deployment'),
  ],
  // The audit log (docs/audit.md): append-only, each entry chained to the one before by its hash; appends take the
  // audit advisory lock so replicas append one at a time.
  [
    `CREATE TABLE audit_log (
       seq BIGINT PRIMARY KEY,
       at BIGINT NOT NULL,
       actor_kind TEXT NOT NULL,
       actor_id TEXT NOT NULL,
       actor_role TEXT NOT NULL,
       action TEXT NOT NULL,
       object TEXT NOT NULL,
       summary TEXT NOT NULL,
       request_id TEXT NOT NULL,
       prev_hash TEXT NOT NULL,
       hash TEXT NOT NULL)`,
    `CREATE INDEX audit_log_object ON audit_log(object, seq)`,
    `CREATE INDEX audit_log_actor ON audit_log(actor_id, seq)`,
    `CREATE INDEX audit_log_request ON audit_log(request_id)`,
    `CREATE INDEX audit_log_at ON audit_log(at)`,
  ],
  // Least-privilege keys (scopes, expiry, rotation) and rate limits set by the API (topic `rate-limits`). Last use
  // lives in its own, unwatched table: its batched writes must not wake every replica to reload its keys.
  [
    `ALTER TABLE api_keys ADD COLUMN scopes TEXT`,
    `ALTER TABLE api_keys ADD COLUMN expires_at BIGINT`,
    `ALTER TABLE api_keys ADD COLUMN previous_hash TEXT`,
    `ALTER TABLE api_keys ADD COLUMN previous_until BIGINT`,
    `CREATE TABLE api_key_usage (key_id TEXT PRIMARY KEY, last_used_at BIGINT NOT NULL)`,
    `CREATE TABLE rate_limits (
       scope TEXT NOT NULL CHECK (scope IN ('key', 'deployment')),
       name TEXT NOT NULL,
       rate DOUBLE PRECISION NOT NULL,
       burst DOUBLE PRECISION NOT NULL,
       updated_at BIGINT NOT NULL,
       updated_by TEXT NOT NULL,
       PRIMARY KEY (scope, name))`,
    changeFeed.changeTrigger('rate_limits', 'rate-limits', 'name'),
  ],
  // Cost budgets and caps per deployment set by the API (cost/, topic `cost-budgets`); spend is priced from traffic.
  [
    `CREATE TABLE cost_budgets (
       deployment TEXT PRIMARY KEY,
       daily DOUBLE PRECISION,
       monthly DOUBLE PRECISION,
       cap TEXT NOT NULL CHECK (cap IN ('none', 'throttle', 'route')),
       cap_version INTEGER,
       updated_at BIGINT NOT NULL,
       updated_by TEXT NOT NULL)`,
    changeFeed.changeTrigger('cost_budgets', 'cost-budgets', 'deployment'),
  ],
  // Request quotas per key and deployment (topic `quotas`), and the counts every replica adds to (unwatched: counts
  // are read on each replica's own timer).
  [
    `CREATE TABLE quotas (
       scope TEXT NOT NULL CHECK (scope IN ('key', 'deployment')),
       name TEXT NOT NULL,
       per_day BIGINT,
       per_month BIGINT,
       updated_at BIGINT NOT NULL,
       updated_by TEXT NOT NULL,
       PRIMARY KEY (scope, name))`,
    changeFeed.changeTrigger('quotas', 'quotas', 'name'),
    `CREATE TABLE quota_usage (
       scope TEXT NOT NULL,
       name TEXT NOT NULL,
       day BIGINT NOT NULL,
       count BIGINT NOT NULL,
       PRIMARY KEY (day, scope, name))`,
  ],
];

/** Keys with their last use (kept apart, see the migration). */
const KEY_SELECT = 'SELECT k.*, u.last_used_at FROM api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id';

/** What both a pool and a transaction's client can run. */
interface Db {
  query<R extends QueryResultRow>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
}

// SQLSTATEs a caller can cause (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';

const sqlState = (e: unknown): string | undefined => {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
};

/** Runs a write, turning the constraint violations listed into the WardenError that says what was refused. */
async function refusing<T>(write: Promise<T>, violations: Partial<Record<string, [ErrorCode, string]>>): Promise<T> {
  try {
    return await write;
  } catch (e) {
    const mapped = violations[sqlState(e) ?? ''];
    if (mapped) throw new WardenError(mapped[0], mapped[1]);
    throw e;
  }
}

/** Byte order, as SQLite's BINARY collation sorts: listings must not change order with the database's locale. */
const BYTES = 'COLLATE "C"';

/**
 * Advisory lock keys, in the two-key form (a key space apart from the migrations' one-key lock). The first key
 * says the component, the second hashes what is serialized; a hash collision only makes two unrelated writes wait.
 */
const LOCK_SPACE = 0x6d657461; // 'meta'
const lockDeployment = (db: Db, deployment: string) => db.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE, `deployment:${deployment}`]);
const lockAudit = (db: Db) => db.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE, 'audit']);
const lockReviewQueue = (db: Db, model: string) => db.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE, `review:${model}`]);

/** PostgreSQL takes at most 65,535 parameters in one statement. */
const MAX_PARAMS = 65_535;

/** `($1, $2, …), (…)`: placeholders for `rows` rows of `width` values. */
function placeholders(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) out.push(`(${Array.from({ length: width }, (_, i) => `$${r * width + i + 1}`).join(', ')})`);
  return out.join(', ');
}

/** Row chunks that each fit in one statement. */
function statements(rows: readonly unknown[][]): unknown[][][] {
  const per = Math.max(1, Math.floor(MAX_PARAMS / (rows[0]?.length ?? 1)));
  const out: unknown[][][] = [];
  for (let i = 0; i < rows.length; i += per) out.push(rows.slice(i, i + per));
  return out;
}

/** Inserts rows in order with as few statements as the parameter limit allows (ids increase in the given order). */
async function insertRows(db: Db, head: string, rows: readonly unknown[][]): Promise<void> {
  for (const chunk of statements(rows)) await db.query(`${head} VALUES ${placeholders(chunk.length, chunk[0]!.length)}`, chunk.flat());
}

/**
 * Optional conditions joined into a WHERE clause: one whose value is undefined is left out; every `?` in a condition
 * stands for its value (a condition without `?` takes none).
 */
function whereOf(conditions: readonly (readonly [string, unknown])[], params: unknown[]): string {
  const parts: string[] = [];
  for (const [sql, value] of conditions) {
    if (value === undefined) continue;
    if (sql.includes('?')) {
      params.push(value);
      parts.push(sql.replaceAll('?', `$${params.length}`));
    } else {
      parts.push(sql);
    }
  }
  return parts.length ? `WHERE ${parts.join(' AND ')}` : '';
}

/** Item statuses as SQL on the row, `e` being the claim-expiry bound: the same terms for listing and counting. */
const STATUS = {
  open: (e: string) => `labelled_at IS NULL AND (claimed_by IS NULL OR claimed_at < ${e})`,
  claimed: (e: string) => `labelled_at IS NULL AND claimed_by IS NOT NULL AND claimed_at >= ${e}`,
  labelled: () => 'labelled_at IS NOT NULL',
} as const;

const UPSERT_ALIAS = `INSERT INTO model_aliases (model, alias, version, updated_at) VALUES ($1, $2, $3, $4)
  ON CONFLICT (model, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`;

const noVersion = (model: string, version: number): [ErrorCode, string] => ['WARDEN_VERSION_NOT_FOUND', `model ${model} has no version ${version}`];

/**
 * MetadataStore on PostgreSQL. Several replicas may share one schema: every write is atomic across them. It also
 * keeps the SLO definitions and the change feed replicas poll to refresh what they cache.
 */
export class PgMetadataStore implements MetadataStore, ChangeFeed, SloDefinitionStore {
  private closed = false;

  /** Takes over `pool`: close() ends it. The schema must be migrated (see `open`). */
  constructor(private readonly pool: PgPool) {}

  /** Connects to `url` (postgres://…?schema=…) and brings the schema up to date, under the migrations' lock. */
  static async open(url: string, opts: PgOptions = {}): Promise<PgMetadataStore> {
    const target = parsePgUrl(url);
    const pool = openPgPool(target, opts);
    try {
      await migratePg(pool, target.schema, 'metadata', pgMetadataMigrations);
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return new PgMetadataStore(pool);
  }

  private async one<R extends QueryResultRow>(sql: string, params: unknown[], db: Db = this.pool): Promise<R | undefined> {
    return (await db.query<R>(sql, params)).rows[0];
  }

  private async all<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R>(sql, params)).rows;
  }

  /** Rows changed by a write. */
  private async changes(sql: string, params: unknown[]): Promise<number> {
    return (await this.pool.query(sql, params)).rowCount ?? 0;
  }

  /** One statement when the rows fit in one, else all of them in one transaction. */
  private async insertAll(head: string, rows: readonly unknown[][]): Promise<void> {
    if (rows.length === 0) return;
    if (statements(rows).length === 1) await insertRows(this.pool, head, rows);
    else await inTransaction(this.pool, (c) => insertRows(c, head, rows));
  }

  async createModel(m: ModelRecord): Promise<void> {
    await refusing(this.pool.query('INSERT INTO models (name, description, created_at) VALUES ($1, $2, $3)', [m.name, m.description, m.createdAt]), {
      [UNIQUE_VIOLATION]: ['WARDEN_CONFLICT', `model ${JSON.stringify(m.name)} already exists`],
    });
  }

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const r = await this.one<ModelRow>('SELECT name, description, created_at FROM models WHERE name = $1', [name]);
    return r && toModel(r);
  }

  async listModels(): Promise<ModelRecord[]> {
    return (await this.all<ModelRow>(`SELECT name, description, created_at FROM models ORDER BY name ${BYTES}`)).map(toModel);
  }

  async deleteModel(name: string): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      await lockDeployment(c, name);
      // A model pushed again under the name starts over (versions from 1), and so do its rollouts and history.
      // Rollouts go before aliases: the lock order updateRollout takes them in.
      await c.query('DELETE FROM rollout_decisions WHERE rollout_id IN (SELECT id FROM rollouts WHERE deployment = $1)', [name]);
      await c.query('DELETE FROM rollouts WHERE deployment = $1', [name]);
      await c.query('DELETE FROM deployment_events WHERE deployment = $1', [name]);
      await c.query('DELETE FROM model_aliases WHERE model = $1', [name]);
      // What was set for the deployment goes with it: a model pushed again under the name may read other inputs.
      await c.query('DELETE FROM deployment_features WHERE deployment = $1', [name]);
      await c.query('DELETE FROM retrain_policies WHERE deployment = $1', [name]);
      await c.query("DELETE FROM rate_limits WHERE scope = 'deployment' AND name = $1", [name]);
      await c.query('DELETE FROM cost_budgets WHERE deployment = $1', [name]);
      await c.query("DELETE FROM quotas WHERE scope = 'deployment' AND name = $1", [name]);
      return ((await c.query('DELETE FROM models WHERE name = $1', [name])).rowCount ?? 0) > 0;
    });
  }

  async createVersion(v: Omit<ModelVersionRecord, 'version'>): Promise<ModelVersionRecord> {
    return inTransaction(this.pool, async (c) => {
      // The row lock of this UPDATE orders concurrent pushes of one model: each gets the next number.
      const row = await this.one<{ next: number }>('UPDATE models SET last_version = last_version + 1 WHERE name = $1 RETURNING last_version AS next', [v.model], c);
      if (!row) throw new WardenError('WARDEN_MODEL_NOT_FOUND', `cannot create a version of ${v.model}: the model does not exist`);
      await c.query(
        `INSERT INTO model_versions (model, version, sha256, size_bytes, format, signature, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [v.model, row.next, v.sha256, v.sizeBytes, v.format, JSON.stringify(v.signature), JSON.stringify(v.metadata), v.createdAt],
      );
      return { ...v, version: row.next };
    });
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined> {
    const r = await this.one<VersionRow>('SELECT * FROM model_versions WHERE model = $1 AND version = $2', [model, version]);
    return r && toVersion(r);
  }

  async amendVersion(model: string, version: number, patch: { signature: ModelSignature; metadata: VersionMetadata }): Promise<ModelVersionRecord> {
    const r = await this.one<VersionRow>('UPDATE model_versions SET signature = $1, metadata = $2 WHERE model = $3 AND version = $4 RETURNING *', [
      JSON.stringify(patch.signature),
      JSON.stringify(patch.metadata),
      model,
      version,
    ]);
    if (!r) throw new WardenError('WARDEN_VERSION_NOT_FOUND', `cannot amend ${model} v${version}: no such version`);
    return toVersion(r);
  }

  async findVersionBySha(model: string, sha256: string): Promise<ModelVersionRecord | undefined> {
    const r = await this.one<VersionRow>('SELECT * FROM model_versions WHERE model = $1 AND sha256 = $2 ORDER BY version LIMIT 1', [model, sha256]);
    return r && toVersion(r);
  }

  async listVersions(model: string): Promise<ModelVersionRecord[]> {
    return (await this.all<VersionRow>('SELECT * FROM model_versions WHERE model = $1 ORDER BY version', [model])).map(toVersion);
  }

  async deleteVersion(model: string, version: number): Promise<boolean> {
    const deleted = await refusing(this.changes('DELETE FROM model_versions WHERE model = $1 AND version = $2', [model, version]), {
      [FOREIGN_KEY_VIOLATION]: ['WARDEN_CONFLICT', `version ${version} of ${model} is in use by an alias; move or delete the alias first`],
    });
    return deleted > 0;
  }

  async countVersionsWithSha(sha256: string): Promise<number> {
    return (await this.one<{ n: number }>('SELECT COUNT(*) AS n FROM model_versions WHERE sha256 = $1', [sha256]))!.n;
  }

  async setAlias(model: string, alias: string, version: number, now: number, event?: NewDeploymentEvent): Promise<AliasRecord> {
    const write = inTransaction(this.pool, async (c) => {
      // Every alias write of a deployment takes its turn: the history's from-version is then the version this write
      // replaces, and a model being deleted cannot gain an alias half-way through.
      await lockDeployment(c, model);
      const from = event ? await this.aliasVersion(c, model, alias) : null;
      await c.query(UPSERT_ALIAS, [model, alias, version, now]);
      if (event) await this.insertDeploymentEvent(c, model, now, from, version, event);
    });
    await refusing(write, { [FOREIGN_KEY_VIOLATION]: noVersion(model, version) });
    return { model, alias, version, updatedAt: now };
  }

  /** The alias's version, its row locked until the transaction ends; null when it is not set. */
  private async aliasVersion(db: Db, model: string, alias: string): Promise<number | null> {
    const r = await this.one<{ version: number }>('SELECT version FROM model_aliases WHERE model = $1 AND alias = $2 FOR UPDATE', [model, alias], db);
    return r?.version ?? null;
  }

  private async insertDeploymentEvent(db: Db, deployment: string, at: number, from: number | null, to: number | null, e: NewDeploymentEvent): Promise<void> {
    await db.query(
      `INSERT INTO deployment_events (deployment, at, kind, from_version, to_version, strategy, actor, reason, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [deployment, at, e.kind, from, to, e.strategy, e.actor, e.reason, JSON.stringify(e.data)],
    );
  }

  async getAlias(model: string, alias: string): Promise<AliasRecord | undefined> {
    const r = await this.one<AliasRow>('SELECT * FROM model_aliases WHERE model = $1 AND alias = $2', [model, alias]);
    return r && toAlias(r);
  }

  async listAliases(model: string): Promise<AliasRecord[]> {
    return (await this.all<AliasRow>(`SELECT * FROM model_aliases WHERE model = $1 ORDER BY alias ${BYTES}`, [model])).map(toAlias);
  }

  async deleteAlias(model: string, alias: string, now = Date.now(), event?: NewDeploymentEvent): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      await lockDeployment(c, model);
      const from = event ? await this.aliasVersion(c, model, alias) : null;
      const deleted = ((await c.query('DELETE FROM model_aliases WHERE model = $1 AND alias = $2', [model, alias])).rowCount ?? 0) > 0;
      if (deleted && event) await this.insertDeploymentEvent(c, model, now, from, null, event);
      return deleted;
    });
  }

  async listDeploymentEvents(
    deployment: string,
    q: { afterId?: number; beforeId?: number; since?: number; until?: number; limit: number; newestFirst?: boolean },
  ): Promise<DeploymentEventRecord[]> {
    const params: unknown[] = [];
    const where = whereOf(
      [
        ['deployment = ?', deployment],
        ['id > ?', q.afterId],
        ['id < ?', q.beforeId],
        ['at >= ?', q.since],
        ['at <= ?', q.until],
      ],
      params,
    );
    const dir = q.newestFirst ? 'DESC' : 'ASC';
    params.push(q.limit);
    const rows = await this.all<DeploymentEventRow>(`SELECT * FROM deployment_events ${where} ORDER BY at ${dir}, id ${dir} LIMIT $${params.length}`, params);
    return rows.map(toDeploymentEvent);
  }

  async createRollout(r: NewRollout, event: NewDeploymentEvent): Promise<RolloutRecord> {
    try {
      return await inTransaction(this.pool, async (c) => {
        const row = (await this.one<RolloutRow>(
          `INSERT INTO rollouts (deployment, strategy, stable_version, candidate_version, state, step, step_started_at, spec, status,
             created_at, updated_at, ended_at, actor, reason, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, NULL, $11, $12, 1) RETURNING *`,
          [r.deployment, r.strategy, r.stableVersion, r.candidateVersion, r.state, r.step, r.stepStartedAt, JSON.stringify(r.spec), JSON.stringify(r.status), r.createdAt, r.actor, r.reason],
          c,
        ))!;
        await this.insertDeploymentEvent(c, r.deployment, r.createdAt, r.stableVersion, r.stableVersion, { ...event, data: { rollout: row.id, ...event.data } });
        return toRollout(row);
      });
    } catch (e) {
      // Only the partial index on active rollouts is unique here besides the id.
      if (sqlState(e) !== UNIQUE_VIOLATION) throw e;
      throw activeRolloutConflict(r.deployment, await this.activeRollout(r.deployment));
    }
  }

  async getRollout(id: number): Promise<RolloutRecord | undefined> {
    const r = await this.one<RolloutRow>('SELECT * FROM rollouts WHERE id = $1', [id]);
    return r && toRollout(r);
  }

  async activeRollout(deployment: string): Promise<RolloutRecord | undefined> {
    const r = await this.one<RolloutRow>(`SELECT * FROM rollouts WHERE deployment = $1 AND state IN ('running', 'paused')`, [deployment]);
    return r && toRollout(r);
  }

  async listRollouts(q: { deployment?: string; active?: boolean; limit: number }): Promise<RolloutRecord[]> {
    const params: unknown[] = [];
    const where = whereOf(
      [
        ['deployment = ?', q.deployment],
        [`state IN ('running', 'paused')`, q.active ? true : undefined],
      ],
      params,
    );
    params.push(q.limit);
    return (await this.all<RolloutRow>(`SELECT * FROM rollouts ${where} ORDER BY id DESC LIMIT $${params.length}`, params)).map(toRollout);
  }

  async updateRollout(
    id: number,
    revision: number,
    patch: RolloutPatch,
    now: number,
    change?: { event: NewDeploymentEvent; stable?: { alias: string; version: number } },
    fence?: LeaseFence,
  ): Promise<RolloutRecord | undefined> {
    let deployment = '';
    const write = inTransaction(this.pool, async (c): Promise<RolloutRow | undefined> => {
      if (fence && !(await this.holds(c, fence))) return undefined;
      if (change) {
        // A rollout's deployment never changes, so it can be read before the lock that orders the history.
        const d = await this.one<{ deployment: string }>('SELECT deployment FROM rollouts WHERE id = $1', [id], c);
        if (!d) return undefined;
        await lockDeployment(c, d.deployment);
      }
      const cur = await this.one<RolloutRow>('SELECT * FROM rollouts WHERE id = $1 FOR UPDATE', [id], c);
      if (!cur || cur.revision !== revision) return undefined;
      deployment = cur.deployment;
      const next = { ...toRollout(cur), ...patch };
      const updated = (await this.one<RolloutRow>(
        `UPDATE rollouts SET state = $1, step = $2, step_started_at = $3, spec = $4, status = $5, ended_at = $6, reason = $7, updated_at = $8,
           revision = revision + 1 WHERE id = $9 RETURNING *`,
        [next.state, next.step, next.stepStartedAt, JSON.stringify(next.spec), JSON.stringify(next.status), next.endedAt, next.reason, now, id],
        c,
      ))!;
      if (change) {
        const from = (await this.aliasVersion(c, cur.deployment, change.stable?.alias ?? 'champion')) ?? cur.stable_version;
        if (change.stable) await c.query(UPSERT_ALIAS, [cur.deployment, change.stable.alias, change.stable.version, now]);
        await this.insertDeploymentEvent(c, cur.deployment, now, from, change.stable?.version ?? from, { ...change.event, data: { rollout: id, ...change.event.data } });
      }
      return updated;
    });
    try {
      const row = await write;
      return row && toRollout(row);
    } catch (e) {
      // Only the stable alias's move references another row; the deployment is known once the rollout was read.
      if (change?.stable && sqlState(e) === FOREIGN_KEY_VIOLATION) throw new WardenError(...noVersion(deployment, change.stable.version));
      throw e;
    }
  }

  /**
   * Whether the fence's lease is still its holder's and unexpired. The lease row stays share-locked until the
   * transaction ends, so a takeover (acquireLease updates the row) waits for the fenced write to commit.
   */
  private async holds(db: Db, f: LeaseFence): Promise<boolean> {
    const r = await this.one<{ holder: string; expires_at: number }>('SELECT holder, expires_at FROM leases WHERE name = $1 FOR SHARE', [f.lease], db);
    return r !== undefined && r.holder === f.holder && r.expires_at > f.now;
  }

  async appendRolloutDecisions(records: readonly NewRolloutDecision[], fence?: LeaseFence): Promise<boolean> {
    const rows = records.map((d) => [d.rolloutId, d.at, d.step, d.metric, d.verdict, finiteOrNull(d.value), finiteOrNull(d.threshold), d.nStable, d.nCandidate, JSON.stringify(d.detail)]);
    const head = 'INSERT INTO rollout_decisions (rollout_id, at, step, metric, verdict, value, threshold, n_stable, n_candidate, detail)';
    if (!fence) {
      await this.insertAll(head, rows);
      return true;
    }
    return inTransaction(this.pool, async (c) => {
      if (!(await this.holds(c, fence))) return false;
      await insertRows(c, head, rows);
      return true;
    });
  }

  async listRolloutDecisions(rolloutId: number, q: { afterId?: number; beforeId?: number; at?: number; newestFirst?: boolean; limit: number }): Promise<RolloutDecisionRecord[]> {
    const params: unknown[] = [];
    const where = whereOf(
      [
        ['rollout_id = ?', rolloutId],
        ['id > ?', q.afterId],
        ['id < ?', q.beforeId],
        ['at = ?', q.at],
      ],
      params,
    );
    params.push(q.limit);
    const rows = await this.all<DecisionRow>(`SELECT * FROM rollout_decisions ${where} ORDER BY id ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT $${params.length}`, params);
    return rows.map(toDecision);
  }

  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<LeaseRecord & { acquired: boolean }> {
    // One statement: the conflicting row is always "updated" (to itself when the lease is another's and live), so
    // RETURNING gives the lease as it stands after the attempt, even when a rival's insert committed a moment ago.
    const r = (await this.one<{ holder: string; expires_at: number }>(
      `INSERT INTO leases AS l (name, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET
         holder = CASE WHEN l.holder = EXCLUDED.holder OR l.expires_at <= $4 THEN EXCLUDED.holder ELSE l.holder END,
         expires_at = CASE WHEN l.holder = EXCLUDED.holder OR l.expires_at <= $4 THEN EXCLUDED.expires_at ELSE l.expires_at END
       RETURNING holder, expires_at`,
      [name, holder, now + ttlMs, now],
    ))!;
    return { name, holder: r.holder, expiresAt: r.expires_at, acquired: r.holder === holder };
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.pool.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }

  async saveReference(r: ReferenceRecord): Promise<void> {
    const write = this.pool.query(
      `INSERT INTO monitoring_references (model, version, schema, profile, config, source, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (model, version) DO UPDATE SET schema = EXCLUDED.schema, profile = EXCLUDED.profile, config = EXCLUDED.config,
         source = EXCLUDED.source, created_at = EXCLUDED.created_at`,
      [r.model, r.version, JSON.stringify(r.schema), JSON.stringify(r.profile), JSON.stringify(r.config), JSON.stringify(r.source), r.createdAt],
    );
    await refusing(write, { [FOREIGN_KEY_VIOLATION]: noVersion(r.model, r.version) });
  }

  async getReference(model: string, version: number): Promise<ReferenceRecord | undefined> {
    const r = await this.one<ReferenceRow>('SELECT * FROM monitoring_references WHERE model = $1 AND version = $2', [model, version]);
    return r && toReference(r);
  }

  async listReferences(): Promise<ReferenceRecord[]> {
    return (await this.all<ReferenceRow>(`SELECT * FROM monitoring_references ORDER BY model ${BYTES}, version`)).map(toReference);
  }

  async deleteReference(model: string, version: number): Promise<boolean> {
    return (await this.changes('DELETE FROM monitoring_references WHERE model = $1 AND version = $2', [model, version])) > 0;
  }

  async createApiKey(k: ApiKeyRecord): Promise<void> {
    const write = this.pool.query(
      `INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at, scopes, expires_at, previous_hash, previous_until)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [k.id, k.name, k.role, k.hash, k.createdAt, k.revokedAt ?? null, k.scopes ? JSON.stringify(k.scopes) : null, k.expiresAt ?? null, k.previousHash ?? null, k.previousUntil ?? null],
    );
    await refusing(write, { [UNIQUE_VIOLATION]: ['WARDEN_CONFLICT', `an API key with id ${k.id} or the same secret already exists`] });
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const r = await this.one<KeyRow>(`${KEY_SELECT} WHERE k.hash = $1`, [hash]);
    return r && toKey(r);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (await this.all<KeyRow>(`${KEY_SELECT} ORDER BY k.created_at, k.id ${BYTES}`)).map(toKey);
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return (await this.changes('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id])) > 0;
  }

  async rotateApiKey(id: string, hash: string, previousUntil: number): Promise<ApiKeyRecord | undefined> {
    // One statement: two rotations at once each keep a secret that was real (SET reads the row before the update).
    const write = this.pool.query<{ id: string }>(
      'UPDATE api_keys SET previous_hash = hash, previous_until = $1, hash = $2 WHERE id = $3 AND revoked_at IS NULL RETURNING id',
      [previousUntil, hash, id],
    );
    const r = await refusing(write, { [UNIQUE_VIOLATION]: ['WARDEN_CONFLICT', `an API key with the same secret already exists`] });
    if (r.rows.length === 0) return undefined;
    const row = await this.one<KeyRow>(`${KEY_SELECT} WHERE k.id = $1`, [id]);
    return row && toKey(row);
  }

  async touchApiKeys(uses: readonly { id: string; at: number }[]): Promise<void> {
    if (uses.length === 0) return;
    // One statement per batch; GREATEST keeps the newest use whichever replica's batch lands last.
    await this.pool.query(
      `INSERT INTO api_key_usage (key_id, last_used_at) SELECT * FROM unnest($1::text[], $2::bigint[])
       ON CONFLICT (key_id) DO UPDATE SET last_used_at = GREATEST(api_key_usage.last_used_at, excluded.last_used_at)`,
      [uses.map((u) => u.id), uses.map((u) => u.at)],
    );
  }

  async listRateLimits(): Promise<RateLimitRecord[]> {
    return (await this.all<RateLimitRow>(`SELECT * FROM rate_limits ORDER BY scope ${BYTES}, name ${BYTES}`)).map(toRateLimit);
  }

  async saveRateLimit(r: RateLimitRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO rate_limits (scope, name, rate, burst, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, name) DO UPDATE SET rate = excluded.rate, burst = excluded.burst, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [r.scope, r.name, r.rate, r.burst, r.updatedAt, r.updatedBy],
    );
  }

  async deleteRateLimit(scope: RateLimitRecord['scope'], name: string): Promise<boolean> {
    return (await this.changes('DELETE FROM rate_limits WHERE scope = $1 AND name = $2', [scope, name])) > 0;
  }

  async listQuotas(): Promise<QuotaRecord[]> {
    return (await this.all<QuotaRow>(`SELECT * FROM quotas ORDER BY scope ${BYTES}, name ${BYTES}`)).map(toQuota);
  }

  async saveQuota(q: QuotaRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO quotas (scope, name, per_day, per_month, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, name) DO UPDATE SET per_day = excluded.per_day, per_month = excluded.per_month, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [q.scope, q.name, q.perDay ?? null, q.perMonth ?? null, q.updatedAt, q.updatedBy],
    );
  }

  async deleteQuota(scope: QuotaRecord['scope'], name: string): Promise<boolean> {
    return (await this.changes('DELETE FROM quotas WHERE scope = $1 AND name = $2', [scope, name])) > 0;
  }

  async addQuotaUsage(rows: readonly QuotaUsageRecord[]): Promise<void> {
    if (rows.length === 0) return;
    // One statement: the rows of a batch are distinct (scope, name, day), and replicas add up in the upsert.
    await this.pool.query(
      `INSERT INTO quota_usage AS u (scope, name, day, count)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
       ON CONFLICT (day, scope, name) DO UPDATE SET count = u.count + excluded.count`,
      [rows.map((r) => r.scope), rows.map((r) => r.name), rows.map((r) => r.day), rows.map((r) => r.count)],
    );
  }

  async quotaUsage(since: number): Promise<QuotaUsageRecord[]> {
    return (await this.all<{ scope: QuotaRecord['scope']; name: string; day: string; count: string }>(`SELECT scope, name, day, count FROM quota_usage WHERE day >= $1 ORDER BY day, scope ${BYTES}, name ${BYTES}`, [since])).map(toQuotaUsage);
  }

  async pruneQuotaUsage(before: number): Promise<number> {
    return this.changes('DELETE FROM quota_usage WHERE day < $1', [before]);
  }

  async listCostBudgets(): Promise<CostBudgetRecord[]> {
    return (await this.all<CostBudgetRow>(`SELECT * FROM cost_budgets ORDER BY deployment ${BYTES}`)).map(toCostBudget);
  }

  async saveCostBudget(b: CostBudgetRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO cost_budgets (deployment, daily, monthly, cap, cap_version, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (deployment) DO UPDATE SET daily = excluded.daily, monthly = excluded.monthly, cap = excluded.cap,
         cap_version = excluded.cap_version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [b.deployment, b.daily ?? null, b.monthly ?? null, b.cap, b.capVersion ?? null, b.updatedAt, b.updatedBy],
    );
  }

  async deleteCostBudget(deployment: string): Promise<boolean> {
    return (await this.changes('DELETE FROM cost_budgets WHERE deployment = $1', [deployment])) > 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async saveReviewPolicy(p: ReviewPolicyRecord): Promise<void> {
    const write = this.pool.query(
      `INSERT INTO review_policies (model, confidence_threshold, output, sample_rate, max_queue, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (model) DO UPDATE SET confidence_threshold = EXCLUDED.confidence_threshold, output = EXCLUDED.output,
         sample_rate = EXCLUDED.sample_rate, max_queue = EXCLUDED.max_queue, updated_at = EXCLUDED.updated_at`,
      [p.model, p.confidenceThreshold ?? null, p.output ?? null, p.sampleRate ?? null, p.maxQueue, p.updatedAt],
    );
    await refusing(write, { [FOREIGN_KEY_VIOLATION]: ['WARDEN_MODEL_NOT_FOUND', `model ${JSON.stringify(p.model)} is not registered`] });
  }

  async getReviewPolicy(model: string): Promise<ReviewPolicyRecord | undefined> {
    const r = await this.one<PolicyRow>('SELECT * FROM review_policies WHERE model = $1', [model]);
    return r && toPolicy(r);
  }

  async listReviewPolicies(): Promise<ReviewPolicyRecord[]> {
    return (await this.all<PolicyRow>(`SELECT * FROM review_policies ORDER BY model ${BYTES}`)).map(toPolicy);
  }

  async deleteReviewPolicy(model: string): Promise<boolean> {
    return (await this.changes('DELETE FROM review_policies WHERE model = $1', [model])) > 0;
  }

  async enqueueReviewItems(model: string, items: readonly NewReviewItem[], maxPending: number): Promise<number> {
    if (items.length === 0) return 0;
    return inTransaction(this.pool, async (c) => {
      // Count and insert under one lock per model: replicas enqueueing together cannot both see room for the same slot.
      await lockReviewQueue(c, model);
      const { n } = (await this.one<{ n: number }>('SELECT COUNT(*) AS n FROM review_items WHERE model = $1 AND labelled_at IS NULL', [model], c))!;
      const room = Math.max(0, Math.min(items.length, maxPending - n));
      const rows = items
        .slice(0, room)
        .map((it) => [model, it.version, it.requestId, it.row, JSON.stringify(it.inputs ?? null), JSON.stringify(it.prediction ?? null), it.reason, it.confidence, it.createdAt]);
      if (rows.length) await insertRows(c, 'INSERT INTO review_items (model, version, request_id, "row", inputs, prediction, reason, confidence, created_at)', rows);
      return room;
    });
  }

  async getReviewItem(id: number): Promise<ReviewItemRecord | undefined> {
    const r = await this.one<ReviewItemRow>('SELECT * FROM review_items WHERE id = $1', [id]);
    return r && toReviewItem(r);
  }

  async listReviewItems(q: ReviewItemQuery): Promise<ReviewItemRecord[]> {
    const params: unknown[] = [];
    const where = whereOf(
      [
        ['model = ?', q.model],
        [q.status ? STATUS[q.status]('?') : '', q.status && (q.claimExpiredBefore ?? -1)],
        ['id > ?', q.afterId],
      ],
      params,
    );
    params.push(q.limit);
    return (await this.all<ReviewItemRow>(`SELECT * FROM review_items ${where} ORDER BY id LIMIT $${params.length}`, params)).map(toReviewItem);
  }

  async claimReviewItem(id: number, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined> {
    const r = await this.one<ReviewItemRow>(
      `UPDATE review_items SET claimed_by = $2, claimed_at = $3
        WHERE id = $1 AND labelled_at IS NULL AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_at < $4) RETURNING *`,
      [id, reviewer, now, claimExpiredBefore],
    );
    return r && toReviewItem(r);
  }

  async labelReviewItem(id: number, label: unknown, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined> {
    const r = await this.one<ReviewItemRow>(
      `UPDATE review_items SET label = $5, labelled_at = $3, labelled_by = $2
        WHERE id = $1 AND labelled_at IS NULL AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_at < $4) RETURNING *`,
      [id, reviewer, now, claimExpiredBefore, JSON.stringify(label ?? null)],
    );
    return r && toReviewItem(r);
  }

  async reviewQueueStats(): Promise<ReviewQueueStats[]> {
    const rows = await this.all<{ model: string; pending: number; oldest: number }>(
      `SELECT model, COUNT(*) AS pending, MIN(created_at) AS oldest FROM review_items WHERE labelled_at IS NULL GROUP BY model ORDER BY model ${BYTES}`,
    );
    return rows.map((r) => ({ model: r.model, pending: r.pending, oldestCreatedAt: r.oldest }));
  }

  async reviewQueues(claimExpiredBefore: number): Promise<ReviewQueueCounts[]> {
    // The status conditions are listReviewItems' own, so counts equal what listing per status gives.
    const e = '$1::bigint';
    const rows = await this.all<
      JoinedPolicyRow & {
        n_open: number | null;
        n_claimed: number | null;
        n_labelled: number | null;
        oldest_open: number | null;
      }
    >(
      `WITH counts AS (
         SELECT model,
                COUNT(*) FILTER (WHERE ${STATUS.open(e)}) AS n_open,
                COUNT(*) FILTER (WHERE ${STATUS.claimed(e)}) AS n_claimed,
                COUNT(*) FILTER (WHERE ${STATUS.labelled()}) AS n_labelled,
                MIN(created_at) FILTER (WHERE ${STATUS.open(e)}) AS oldest_open
           FROM review_items GROUP BY model),
       names AS (SELECT model FROM review_policies UNION SELECT model FROM counts)
       SELECT n.model, p.confidence_threshold, p.output, p.sample_rate, p.max_queue, p.updated_at,
              c.n_open, c.n_claimed, c.n_labelled, c.oldest_open
         FROM names n LEFT JOIN review_policies p ON p.model = n.model LEFT JOIN counts c ON c.model = n.model
        ORDER BY n.model ${BYTES}`,
      [claimExpiredBefore],
    );
    return rows.map((r) => ({
      model: r.model,
      ...joinedPolicy(r),
      open: r.n_open ?? 0,
      claimed: r.n_claimed ?? 0,
      labelled: r.n_labelled ?? 0,
      ...(r.oldest_open === null ? {} : { oldestOpenCreatedAt: r.oldest_open }),
    }));
  }

  async appendAlertHistory(records: readonly NewAlertHistoryRecord[]): Promise<void> {
    const rows = records.map((r) => [r.at, r.kind, fingerprintsColumn(r.fingerprints), r.alertname ?? null, r.deployment ?? null, r.receiver ?? null, JSON.stringify(r.data ?? null)]);
    await this.insertAll('INSERT INTO alert_history (at, kind, fingerprints, alertname, deployment, receiver, data)', rows);
  }

  async listAlertHistory(q: AlertHistoryQuery): Promise<AlertHistoryRecord[]> {
    const params: unknown[] = [];
    const fp = q.fingerprint === undefined ? undefined : fingerprintPattern(q.fingerprint);
    const where = whereOf(
      [
        ['at >= ?', q.since],
        ['at < ?', q.until],
        ['deployment = ?', q.deployment],
        ['alertname = ?', q.alertname],
        ['kind = ?', q.kind],
        ['id > ?', q.afterId],
        ["fingerprints LIKE ? ESCAPE '\\'", fp],
      ],
      params,
    );
    params.push(q.limit);
    return (await this.all<AlertHistoryRow>(`SELECT * FROM alert_history ${where} ORDER BY id LIMIT $${params.length}`, params)).map(toAlertHistory);
  }

  async pruneAlertHistory(before: number): Promise<number> {
    return this.changes('DELETE FROM alert_history WHERE at < $1', [before]);
  }

  async saveSilence(x: SilenceRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET matchers = EXCLUDED.matchers, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
         created_by = EXCLUDED.created_by, comment = EXCLUDED.comment, updated_at = EXCLUDED.updated_at`,
      [x.id, JSON.stringify(x.matchers), x.startsAt, x.endsAt, x.createdBy, x.comment, x.createdAt, x.updatedAt],
    );
  }

  async getSilence(id: string): Promise<SilenceRecord | undefined> {
    const r = await this.one<SilenceRow>('SELECT * FROM alert_silences WHERE id = $1', [id]);
    return r && toSilence(r);
  }

  async listSilences(): Promise<SilenceRecord[]> {
    return (await this.all<SilenceRow>(`SELECT * FROM alert_silences ORDER BY created_at, id ${BYTES}`)).map(toSilence);
  }

  async saveSuppression(x: SuppressionRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO alert_suppressions (id, deployment, starts_at, until, reason, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET deployment = EXCLUDED.deployment, starts_at = EXCLUDED.starts_at, until = EXCLUDED.until,
         reason = EXCLUDED.reason, created_by = EXCLUDED.created_by`,
      [x.id, x.deployment, x.startsAt, x.until, x.reason, x.createdBy, x.createdAt],
    );
  }

  async listSuppressions(): Promise<SuppressionRecord[]> {
    return (await this.all<SuppressionRow>(`SELECT * FROM alert_suppressions ORDER BY created_at, id ${BYTES}`)).map(toSuppression);
  }

  async getAlertRules(): Promise<{ rules: unknown[]; updatedAt: number } | undefined> {
    const r = await this.one<{ rules: string; updated_at: number }>('SELECT rules, updated_at FROM alert_rules WHERE id = 1', []);
    return r && { rules: JSON.parse(r.rules) as unknown[], updatedAt: r.updated_at };
  }

  async saveAlertRules(rules: readonly unknown[], now: number): Promise<void> {
    await this.pool.query(
      'INSERT INTO alert_rules (id, rules, updated_at) VALUES (1, $1, $2) ON CONFLICT (id) DO UPDATE SET rules = EXCLUDED.rules, updated_at = EXCLUDED.updated_at',
      [JSON.stringify(rules), now],
    );
  }

  async getFeatureRepo(): Promise<FeatureRepoRecord | undefined> {
    const r = await this.one<{ repo: string; updated_at: number; updated_by: string }>('SELECT repo, updated_at, updated_by FROM feature_repo WHERE id = 1', []);
    return r && { repo: JSON.parse(r.repo) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by };
  }

  async saveFeatureRepo(repo: unknown, now: number, actor: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO feature_repo (id, repo, updated_at, updated_by) VALUES (1, $1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET repo = EXCLUDED.repo, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
      [JSON.stringify(repo), now, actor],
    );
  }

  async createDataset(d: NewDatasetRecord): Promise<DatasetRecord> {
    const r = await this.one<DatasetRow>(
      `INSERT INTO datasets (model, filter, format, columns, state, actor, created_at) VALUES ($1, $2, $3, $4, 'writing', $5, $6) RETURNING ${DATASET_COLUMNS}`,
      [d.filter.model, JSON.stringify(d.filter), d.format, JSON.stringify(d.columns), d.actor, d.createdAt],
    );
    return toDataset(r!);
  }

  async finishDataset(id: number, end: DatasetEnd): Promise<DatasetRecord | undefined> {
    const r = await this.one<DatasetRow>(
      `UPDATE datasets SET state = $1, sha256 = $2, rows = $3, bytes = $4, skipped = $5, error = $6, finished_at = $7
       WHERE id = $8 AND state = 'writing' RETURNING ${DATASET_COLUMNS}`,
      [...datasetEndParams(end), id],
    );
    return r && toDataset(r);
  }

  async getDataset(id: number): Promise<DatasetRecord | undefined> {
    const r = await this.one<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = $1`, [id]);
    return r && toDataset(r);
  }

  async listDatasets(q: { model?: string; beforeId?: number; limit: number }): Promise<DatasetRecord[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.model !== undefined) parts.push(`model = $${args.push(q.model)}`);
    if (q.beforeId !== undefined) parts.push(`id < $${args.push(q.beforeId)}`);
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const rows = await this.all<DatasetRow>(`SELECT ${DATASET_COLUMNS} FROM datasets ${where} ORDER BY id DESC LIMIT $${args.push(q.limit)}`, args);
    return rows.map(toDataset);
  }

  async createJob(j: NewJobRecord): Promise<JobRecord> {
    try {
      const r = await this.one<JobRow>(
        `INSERT INTO jobs (kind, deployment, state, trigger, inputs, outputs, logs, actor, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, '{}', '', $6, $7, $7) RETURNING ${JOB_COLUMNS}`,
        [j.kind, j.deployment, j.state, JSON.stringify(j.trigger), JSON.stringify(j.inputs), j.actor, j.createdAt],
      );
      return toJob(r!);
    } catch (e) {
      if (sqlState(e) !== UNIQUE_VIOLATION) throw e;
      throw activeJobConflict(j.deployment, (await this.listJobs({ deployment: j.deployment, states: ['awaiting-approval', 'queued', 'running'], limit: 1 }))[0]);
    }
  }

  async updateJob(id: number, from: readonly JobState[], patch: JobPatch): Promise<JobRecord | undefined> {
    if (from.length === 0) return undefined;
    const args: unknown[] = [];
    const sets = jobPatchSql(patch, (v) => `$${args.push(v)}`);
    try {
      const r = await this.one<JobRow>(`UPDATE jobs SET ${sets} WHERE id = $${args.push(id)} AND state = ANY($${args.push([...from])}) RETURNING ${JOB_COLUMNS}`, args);
      return r && toJob(r);
    } catch (e) {
      if (sqlState(e) !== UNIQUE_VIOLATION) throw e;
      const job = await this.getJob(id);
      throw activeJobConflict(job?.deployment ?? '', (await this.listJobs({ deployment: job?.deployment ?? '', states: ['awaiting-approval', 'queued', 'running'], limit: 1 }))[0]);
    }
  }

  async getJob(id: number): Promise<JobRecord | undefined> {
    const r = await this.one<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = $1`, [id]);
    return r && toJob(r);
  }

  async listJobs(q: { deployment?: string; states?: readonly JobState[]; beforeId?: number; limit: number }): Promise<JobRecord[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.deployment !== undefined) parts.push(`deployment = $${args.push(q.deployment)}`);
    if (q.states !== undefined) {
      if (q.states.length === 0) return [];
      parts.push(`state = ANY($${args.push([...q.states])})`);
    }
    if (q.beforeId !== undefined) parts.push(`id < $${args.push(q.beforeId)}`);
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const rows = await this.all<JobRow>(`SELECT ${JOB_COLUMNS} FROM jobs ${where} ORDER BY id DESC LIMIT $${args.push(q.limit)}`, args);
    return rows.map(toJob);
  }

  async getRetrainPolicy(deployment: string): Promise<RetrainPolicyRecord | undefined> {
    const r = await this.one<{ deployment: string; policy: string; updated_at: number; updated_by: string }>(
      'SELECT deployment, policy, updated_at, updated_by FROM retrain_policies WHERE deployment = $1',
      [deployment],
    );
    return r && { deployment: r.deployment, policy: JSON.parse(r.policy) as unknown, updatedAt: Number(r.updated_at), updatedBy: r.updated_by };
  }

  async saveRetrainPolicy(p: RetrainPolicyRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO retrain_policies (deployment, policy, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (deployment) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [p.deployment, JSON.stringify(p.policy), p.updatedAt, p.updatedBy],
    );
  }

  async deleteRetrainPolicy(deployment: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM retrain_policies WHERE deployment = $1', [deployment]);
    return (r.rowCount ?? 0) > 0;
  }

  async listRetrainPolicies(): Promise<RetrainPolicyRecord[]> {
    const rows = await this.all<{ deployment: string; policy: string; updated_at: number; updated_by: string }>(
      `SELECT deployment, policy, updated_at, updated_by FROM retrain_policies ORDER BY deployment ${BYTES}`,
      [],
    );
    return rows.map((r) => ({ deployment: r.deployment, policy: JSON.parse(r.policy) as unknown, updatedAt: Number(r.updated_at), updatedBy: r.updated_by }));
  }

  async getDeploymentFeatures(deployment: string): Promise<DeploymentFeaturesRecord | undefined> {
    const r = await this.one<{ deployment: string; binding: string; updated_at: number; updated_by: string }>(
      'SELECT deployment, binding, updated_at, updated_by FROM deployment_features WHERE deployment = $1',
      [deployment],
    );
    return r && { deployment: r.deployment, binding: JSON.parse(r.binding) as unknown, updatedAt: Number(r.updated_at), updatedBy: r.updated_by };
  }

  async saveDeploymentFeatures(r: DeploymentFeaturesRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO deployment_features (deployment, binding, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (deployment) DO UPDATE SET binding = excluded.binding, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [r.deployment, JSON.stringify(r.binding), r.updatedAt, r.updatedBy],
    );
  }

  async deleteDeploymentFeatures(deployment: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM deployment_features WHERE deployment = $1', [deployment]);
    return (r.rowCount ?? 0) > 0;
  }

  async listDeploymentFeatures(): Promise<DeploymentFeaturesRecord[]> {
    const rows = await this.all<{ deployment: string; binding: string; updated_at: number; updated_by: string }>(
      `SELECT deployment, binding, updated_at, updated_by FROM deployment_features ORDER BY deployment ${BYTES}`,
      [],
    );
    return rows.map((r) => ({ deployment: r.deployment, binding: JSON.parse(r.binding) as unknown, updatedAt: Number(r.updated_at), updatedBy: r.updated_by }));
  }

  async appendAudit(entries: readonly NewAuditEntry[]): Promise<AuditEntry[]> {
    if (entries.length === 0) return [];
    return inTransaction(this.pool, async (c) => {
      await lockAudit(c);
      const head = await this.one<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1', [], c);
      const chained = chainEntries(head && { seq: Number(head.seq), hash: head.hash }, entries);
      const cols = 11;
      const values: unknown[] = [];
      for (const e of chained) {
        values.push(e.seq, e.at, e.actor.kind, e.actor.id, e.actor.role, e.action, e.object, canonicalJson(e.summary), e.requestId, e.prevHash, e.hash);
      }
      const rows = chained.map((_, r) => `(${Array.from({ length: cols }, (_, k) => `$${r * cols + k + 1}`).join(', ')})`).join(', ');
      await c.query(`INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_role, action, object, summary, request_id, prev_hash, hash) VALUES ${rows}`, values);
      return chained;
    });
  }

  async listAudit(q: AuditQuery): Promise<AuditEntry[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.afterSeq !== undefined) parts.push(`seq > $${args.push(q.afterSeq)}`);
    if (q.beforeSeq !== undefined) parts.push(`seq < $${args.push(q.beforeSeq)}`);
    if (q.since !== undefined) parts.push(`at >= $${args.push(q.since)}`);
    if (q.until !== undefined) parts.push(`at < $${args.push(q.until)}`);
    if (q.actorId !== undefined) parts.push(`actor_id = $${args.push(q.actorId)}`);
    if (q.objects !== undefined) {
      if (q.objects.length === 0) return [];
      parts.push(`object = ANY($${args.push([...q.objects])})`);
    }
    if (q.requestId !== undefined) parts.push(`request_id = $${args.push(q.requestId)}`);
    // left(), not LIKE: a prefix with % or _ in it means itself.
    if (q.actionPrefix !== undefined) parts.push(`left(action, $${args.push(q.actionPrefix.length)}) = $${args.push(q.actionPrefix)}`);
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const asc = q.order === 'asc' || (q.order === undefined && q.afterSeq !== undefined);
    const rows = await this.all<AuditRow>(`SELECT * FROM audit_log ${where} ORDER BY seq ${asc ? 'ASC' : 'DESC'} LIMIT $${args.push(q.limit)}`, args);
    return rows.map(toAuditEntry);
  }

  async auditHead(): Promise<AuditEntry | undefined> {
    const r = await this.one<AuditRow>('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1', []);
    return r && toAuditEntry(r);
  }

  listChanges(q: { sinceAt: number; limit: number }): Promise<MetadataChange[]> {
    return changeFeed.listChanges(this.pool, q);
  }

  storeNow(): Promise<number> {
    return changeFeed.storeNow(this.pool);
  }

  pruneChanges(before: number): Promise<number> {
    return changeFeed.pruneChanges(this.pool, before);
  }

  listSloDefinitions(): Promise<{ definitions: unknown[]; revision: number }> {
    return changeFeed.listSloDefinitions(this.pool);
  }

  saveSloDefinition(name: string, definition: unknown, now: number): Promise<number> {
    return changeFeed.saveSloDefinition(this.pool, name, definition, now);
  }

  deleteSloDefinition(name: string): Promise<number | undefined> {
    return changeFeed.deleteSloDefinition(this.pool, name);
  }
}
