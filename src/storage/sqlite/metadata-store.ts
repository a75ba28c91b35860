import type {
  AlertHistoryQuery,
  AuditEntry,
  AuditQuery,
  NewAuditEntry,
  AlertHistoryRecord,
  AliasRecord,
  DatasetEnd,
  DatasetRecord,
  FeatureRepoRecord,
  DeploymentFeaturesRecord,
  NewDatasetRecord,
  JobPatch,
  JobRecord,
  JobState,
  NewJobRecord,
  RetrainPolicyRecord,
  ApiKeyRecord,
  RateLimitRecord,
  CostBudgetRecord,
  QuotaRecord,
  QuotaUsageRecord,
  MetadataStore,
  ModelRecord,
  ModelSignature,
  DeploymentEventRecord,
  NewDeploymentEvent,
  LeaseFence,
  LeaseRecord,
  NewRollout,
  NewRolloutDecision,
  RolloutDecisionRecord,
  RolloutPatch,
  RolloutRecord,
  ModelVersionRecord,
  NewAlertHistoryRecord,
  NewReviewItem,
  ReferenceRecord,
  ReviewItemQuery,
  ReviewItemRecord,
  ReviewPolicyRecord,
  ReviewQueueCounts,
  ReviewQueueStats,
  SilenceRecord,
  SuppressionRecord,
  VersionMetadata,
} from '../ports.ts';
import { canonicalJson, chainEntries } from '../audit-chain.ts';
import {
  toAuditEntry,
  type AuditRow,
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
} from '../rows/metadata-rows.ts';
import { openSqlite, type Migration, type SqliteDb } from './database.ts';

/** Schema history, applied in order by `openSqlite` (exported so upgrade tests can stop part-way). */
export const metadataMigrations: Migration[] = [
  [
    `CREATE TABLE models (
       name TEXT PRIMARY KEY,
       description TEXT NOT NULL DEFAULT '',
       created_at INTEGER NOT NULL)`,
    `CREATE TABLE model_versions (
       model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
       version INTEGER NOT NULL,
       sha256 TEXT NOT NULL,
       size_bytes INTEGER NOT NULL,
       format TEXT NOT NULL,
       signature TEXT NOT NULL,
       metadata TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (model, version))`,
    `CREATE INDEX model_versions_sha ON model_versions(sha256)`,
    `CREATE TABLE model_aliases (
       model TEXT NOT NULL,
       alias TEXT NOT NULL,
       version INTEGER NOT NULL,
       updated_at INTEGER NOT NULL,
       PRIMARY KEY (model, alias),
       FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE RESTRICT)`,
    `CREATE TABLE api_keys (
       id TEXT PRIMARY KEY,
       name TEXT NOT NULL,
       role TEXT NOT NULL,
       hash TEXT NOT NULL UNIQUE,
       created_at INTEGER NOT NULL,
       revoked_at INTEGER)`,
  ],
  // Version numbers are never reused within a model: `MAX(version) + 1` handed the number of a
  // deleted latest version to the next push, so prediction events and caches keyed by (model,
  // version) would silently refer to a different artifact. The counter lives on the model row.
  [
    `ALTER TABLE models ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0`,
    `UPDATE models SET last_version = (SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model_versions.model = models.name)`,
  ],
  [
    `CREATE TABLE monitoring_references (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       schema TEXT NOT NULL,
       profile TEXT NOT NULL,
       config TEXT NOT NULL,
       source TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (model, version),
       FOREIGN KEY (model, version) REFERENCES model_versions(model, version) ON DELETE CASCADE)`,
  ],
  // Human review queue (lifecycle/review). Items keep no foreign key: a prediction logged just before its
  // model was deleted must not fail the insert of the batch it arrives in.
  [
    `CREATE TABLE review_policies (
       model TEXT PRIMARY KEY REFERENCES models(name) ON DELETE CASCADE,
       confidence_threshold REAL,
       output TEXT,
       sample_rate REAL,
       max_queue INTEGER NOT NULL,
       updated_at INTEGER NOT NULL)`,
    `CREATE TABLE review_items (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       request_id TEXT NOT NULL,
       row INTEGER NOT NULL,
       inputs TEXT NOT NULL,
       prediction TEXT NOT NULL,
       reason TEXT NOT NULL CHECK (reason IN ('low_confidence', 'active_learning')),
       confidence REAL NOT NULL,
       created_at INTEGER NOT NULL,
       claimed_by TEXT,
       claimed_at INTEGER,
       label TEXT,
       labelled_at INTEGER,
       labelled_by TEXT)`,
    `CREATE INDEX review_items_model ON review_items(model, id)`,
    `CREATE INDEX review_items_pending ON review_items(model, created_at) WHERE labelled_at IS NULL`,
  ],
  // Alerting: history of alert transitions and notification attempts, silences, rollout suppressions and the
  // custom rules. `fingerprints` is space-delimited with a space at each end, so one alert's entries are found
  // with LIKE '% fp %'.
  [
    `CREATE TABLE alert_history (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       at INTEGER NOT NULL,
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
       starts_at INTEGER NOT NULL,
       ends_at INTEGER NOT NULL,
       created_by TEXT NOT NULL,
       comment TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       updated_at INTEGER NOT NULL)`,
    `CREATE TABLE alert_suppressions (
       id TEXT PRIMARY KEY,
       deployment TEXT NOT NULL,
       starts_at INTEGER NOT NULL,
       until INTEGER NOT NULL,
       reason TEXT NOT NULL,
       created_by TEXT NOT NULL,
       created_at INTEGER NOT NULL)`,
    `CREATE TABLE alert_rules (id INTEGER PRIMARY KEY CHECK (id = 1), rules TEXT NOT NULL, updated_at INTEGER NOT NULL)`,
  ],
  // Deployments: every change of a model's stable version (its champion alias), written with the alias change.
  [
    `CREATE TABLE deployment_events (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       deployment TEXT NOT NULL,
       at INTEGER NOT NULL,
       kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback', 'alias')),
       from_version INTEGER,
       to_version INTEGER,
       strategy TEXT NOT NULL,
       actor TEXT NOT NULL,
       reason TEXT NOT NULL,
       data TEXT NOT NULL)`,
    `CREATE INDEX deployment_events_at ON deployment_events(deployment, at, id)`,
  ],
  // Rollouts: progressive delivery state, every analysis decision, and leases. The history's kind is no longer a
  // fixed list (rollout steps joined it), so the table is rebuilt without the CHECK.
  [
    `CREATE TABLE deployment_events_v2 (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       deployment TEXT NOT NULL,
       at INTEGER NOT NULL,
       kind TEXT NOT NULL,
       from_version INTEGER,
       to_version INTEGER,
       strategy TEXT NOT NULL,
       actor TEXT NOT NULL,
       reason TEXT NOT NULL,
       data TEXT NOT NULL)`,
    `INSERT INTO deployment_events_v2 SELECT * FROM deployment_events`,
    `DROP TABLE deployment_events`,
    `ALTER TABLE deployment_events_v2 RENAME TO deployment_events`,
    `CREATE INDEX deployment_events_at ON deployment_events(deployment, at, id)`,
    `CREATE TABLE rollouts (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       deployment TEXT NOT NULL,
       strategy TEXT NOT NULL CHECK (strategy IN ('shadow', 'canary', 'ab')),
       stable_version INTEGER NOT NULL,
       candidate_version INTEGER NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'promoted', 'aborted')),
       step INTEGER NOT NULL,
       step_started_at INTEGER NOT NULL,
       spec TEXT NOT NULL,
       status TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       updated_at INTEGER NOT NULL,
       ended_at INTEGER,
       actor TEXT NOT NULL,
       reason TEXT NOT NULL,
       revision INTEGER NOT NULL)`,
    // At most one active rollout per deployment, enforced by the store so replicas cannot both start one.
    `CREATE UNIQUE INDEX rollouts_active ON rollouts(deployment) WHERE state IN ('running', 'paused')`,
    `CREATE INDEX rollouts_deployment ON rollouts(deployment, id)`,
    `CREATE TABLE rollout_decisions (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       rollout_id INTEGER NOT NULL,
       at INTEGER NOT NULL,
       step INTEGER NOT NULL,
       metric TEXT NOT NULL,
       verdict TEXT NOT NULL CHECK (verdict IN ('success', 'failure', 'inconclusive')),
       value REAL,
       threshold REAL,
       n_stable INTEGER NOT NULL,
       n_candidate INTEGER NOT NULL,
       detail TEXT NOT NULL)`,
    `CREATE INDEX rollout_decisions_rollout ON rollout_decisions(rollout_id, id)`,
    `CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`,
  ],
  // SLO definitions in the store (replicas on a shared store edit one set); `position` keeps their order, the
  // one-row revision counter tells a replica that anything changed, deletions included.
  [
    `CREATE TABLE slo_definitions (
       name TEXT PRIMARY KEY,
       position INTEGER NOT NULL,
       definition TEXT NOT NULL,
       updated_at INTEGER NOT NULL)`,
    `CREATE TABLE slo_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL)`,
    `INSERT INTO slo_revision (id, revision) VALUES (1, 0)`,
  ],
  // Training sets exported from the prediction log: the lineage a retrained version points at.
  [
    `CREATE TABLE datasets (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       model TEXT NOT NULL,
       filter TEXT NOT NULL,
       format TEXT NOT NULL CHECK (format IN ('csv', 'parquet')),
       columns TEXT NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('writing', 'complete', 'failed')),
       sha256 TEXT,
       rows INTEGER,
       bytes INTEGER,
       skipped INTEGER,
       error TEXT,
       actor TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       finished_at INTEGER)`,
    `CREATE INDEX datasets_model ON datasets(model, id)`,
  ],  // Stored jobs (retraining runs) and each deployment's retraining policy. The partial unique index is the "one run at
  // a time" guardrail, held by the database whichever replica starts the job.
  [
    `CREATE TABLE jobs (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
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
       created_at INTEGER NOT NULL,
       updated_at INTEGER NOT NULL,
       started_at INTEGER,
       finished_at INTEGER)`,
    `CREATE INDEX jobs_deployment ON jobs(deployment, id)`,
    `CREATE UNIQUE INDEX jobs_one_active ON jobs(deployment) WHERE state IN ('awaiting-approval', 'queued', 'running')`,
    `CREATE TABLE retrain_policies (deployment TEXT PRIMARY KEY, policy TEXT NOT NULL, updated_at INTEGER NOT NULL, updated_by TEXT NOT NULL)`,
  ],
  // The feature repository (entities and feature views, docs/features.md): one row, replaced whole.
  [`CREATE TABLE feature_repo (id INTEGER PRIMARY KEY CHECK (id = 1), repo TEXT NOT NULL, updated_at INTEGER NOT NULL, updated_by TEXT NOT NULL)`],
  // The feature views each deployment reads at serving time (features/enrich).
  [`CREATE TABLE deployment_features (deployment TEXT PRIMARY KEY, binding TEXT NOT NULL, updated_at INTEGER NOT NULL, updated_by TEXT NOT NULL)`],
  // The audit log (docs/audit.md): append-only, each entry chained to the one before by its hash.
  [
    `CREATE TABLE audit_log (
       seq INTEGER PRIMARY KEY,
       at INTEGER NOT NULL,
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
  // Least-privilege keys (scopes, expiry, rotation) and rate limits set by the API. Last use lives in its own table:
  // its batched writes must not look like a change of the keys (on PostgreSQL, api_keys changes wake every replica).
  [
    `ALTER TABLE api_keys ADD COLUMN scopes TEXT`,
    `ALTER TABLE api_keys ADD COLUMN expires_at INTEGER`,
    `ALTER TABLE api_keys ADD COLUMN previous_hash TEXT`,
    `ALTER TABLE api_keys ADD COLUMN previous_until INTEGER`,
    `CREATE TABLE api_key_usage (key_id TEXT PRIMARY KEY, last_used_at INTEGER NOT NULL)`,
    `CREATE TABLE rate_limits (
       scope TEXT NOT NULL CHECK (scope IN ('key', 'deployment')),
       name TEXT NOT NULL,
       rate REAL NOT NULL,
       burst REAL NOT NULL,
       updated_at INTEGER NOT NULL,
       updated_by TEXT NOT NULL,
       PRIMARY KEY (scope, name))`,
  ],
  // Cost budgets and caps per deployment set by the API (cost/); spend itself is priced from the traffic table.
  [
    `CREATE TABLE cost_budgets (
       deployment TEXT PRIMARY KEY,
       daily REAL,
       monthly REAL,
       cap TEXT NOT NULL CHECK (cap IN ('none', 'throttle', 'route')),
       cap_version INTEGER,
       updated_at INTEGER NOT NULL,
       updated_by TEXT NOT NULL)`,
  ],
  // Request quotas (a total per UTC day or month) per key and deployment, and the counts every replica adds to.
  [
    `CREATE TABLE quotas (
       scope TEXT NOT NULL CHECK (scope IN ('key', 'deployment')),
       name TEXT NOT NULL,
       per_day INTEGER,
       per_month INTEGER,
       updated_at INTEGER NOT NULL,
       updated_by TEXT NOT NULL,
       PRIMARY KEY (scope, name))`,
    `CREATE TABLE quota_usage (
       scope TEXT NOT NULL,
       name TEXT NOT NULL,
       day INTEGER NOT NULL,
       count INTEGER NOT NULL,
       PRIMARY KEY (day, scope, name)) WITHOUT ROWID`,
  ],
];

/** Keys with their last use (kept apart, see the migration). */
const KEY_SELECT = 'SELECT k.*, u.last_used_at FROM api_keys k LEFT JOIN api_key_usage u ON u.key_id = k.id';

/** A claim the caller may take over: none, their own, or one older than the expiry (all as SQL on the row). */
const CLAIMABLE = 'labelled_at IS NULL AND (claimed_by IS NULL OR claimed_by = @reviewer OR claimed_at < @expiredBefore)';

/** MetadataStore on an embedded SQLite file. Calls are synchronous underneath; all are control-plane. */
export class SqliteMetadataStore implements MetadataStore {
  private readonly db: SqliteDb;

  constructor(file: string) {
    this.db = openSqlite(file, metadataMigrations);
  }

  async createModel(m: ModelRecord): Promise<void> {
    this.db.prepare('INSERT INTO models (name, description, created_at) VALUES (?, ?, ?)').run(m.name, m.description, m.createdAt);
  }

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const r = this.db.prepare('SELECT name, description, created_at FROM models WHERE name = ?').get(name) as ModelRow | undefined;
    return r && toModel(r);
  }

  async listModels(): Promise<ModelRecord[]> {
    return (this.db.prepare('SELECT name, description, created_at FROM models ORDER BY name').all() as ModelRow[]).map(toModel);
  }

  async deleteModel(name: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.prepare('DELETE FROM model_aliases WHERE model = ?').run(name);
      // A model pushed again under the name starts over (versions from 1), and so does its deployment history.
      this.db.prepare('DELETE FROM deployment_events WHERE deployment = ?').run(name);
      this.db.prepare('DELETE FROM rollout_decisions WHERE rollout_id IN (SELECT id FROM rollouts WHERE deployment = ?)').run(name);
      this.db.prepare('DELETE FROM rollouts WHERE deployment = ?').run(name);
      // What was set for the deployment goes with it: a model pushed again under the name may read other inputs.
      this.db.prepare('DELETE FROM deployment_features WHERE deployment = ?').run(name);
      this.db.prepare('DELETE FROM retrain_policies WHERE deployment = ?').run(name);
      this.db.prepare("DELETE FROM rate_limits WHERE scope = 'deployment' AND name = ?").run(name);
      this.db.prepare('DELETE FROM cost_budgets WHERE deployment = ?').run(name);
      this.db.prepare("DELETE FROM quotas WHERE scope = 'deployment' AND name = ?").run(name);
      return this.db.prepare('DELETE FROM models WHERE name = ?').run(name).changes > 0;
    })();
  }

  async createVersion(v: Omit<ModelVersionRecord, 'version'>): Promise<ModelVersionRecord> {
    return this.db.transaction(() => {
      const row = this.db
        .prepare('UPDATE models SET last_version = last_version + 1 WHERE name = ? RETURNING last_version AS next')
        .get(v.model) as { next: number } | undefined;
      if (!row) throw new Error(`cannot create a version of ${v.model}: the model does not exist`);
      this.db
        .prepare(
          `INSERT INTO model_versions (model, version, sha256, size_bytes, format, signature, metadata, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(v.model, row.next, v.sha256, v.sizeBytes, v.format, JSON.stringify(v.signature), JSON.stringify(v.metadata), v.createdAt);
      return { ...v, version: row.next };
    }).immediate();
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM model_versions WHERE model = ? AND version = ?').get(model, version) as VersionRow | undefined;
    return r && toVersion(r);
  }

  async amendVersion(model: string, version: number, patch: { signature: ModelSignature; metadata: VersionMetadata }): Promise<ModelVersionRecord> {
    const r = this.db
      .prepare('UPDATE model_versions SET signature = ?, metadata = ? WHERE model = ? AND version = ? RETURNING *')
      .get(JSON.stringify(patch.signature), JSON.stringify(patch.metadata), model, version) as VersionRow | undefined;
    if (!r) throw new Error(`cannot amend ${model} v${version}: no such version`);
    return toVersion(r);
  }

  async findVersionBySha(model: string, sha256: string): Promise<ModelVersionRecord | undefined> {
    const r = this.db
      .prepare('SELECT * FROM model_versions WHERE model = ? AND sha256 = ? ORDER BY version LIMIT 1')
      .get(model, sha256) as VersionRow | undefined;
    return r && toVersion(r);
  }

  async listVersions(model: string): Promise<ModelVersionRecord[]> {
    const rows = this.db.prepare('SELECT * FROM model_versions WHERE model = ? ORDER BY version').all(model) as VersionRow[];
    return rows.map(toVersion);
  }

  async deleteVersion(model: string, version: number): Promise<boolean> {
    return this.db.prepare('DELETE FROM model_versions WHERE model = ? AND version = ?').run(model, version).changes > 0;
  }

  async countVersionsWithSha(sha256: string): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM model_versions WHERE sha256 = ?').get(sha256) as { n: number }).n;
  }

  async setAlias(model: string, alias: string, version: number, now: number, event?: NewDeploymentEvent): Promise<AliasRecord> {
    this.db.transaction(() => {
      const from = event ? this.aliasVersion(model, alias) : null;
      this.db
        .prepare(
          `INSERT INTO model_aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
        )
        .run(model, alias, version, now);
      if (event) this.insertDeploymentEvent(model, now, from, version, event);
    }).immediate();
    return { model, alias, version, updatedAt: now };
  }

  private aliasVersion(model: string, alias: string): number | null {
    const r = this.db.prepare('SELECT version FROM model_aliases WHERE model = ? AND alias = ?').get(model, alias) as { version: number } | undefined;
    return r?.version ?? null;
  }

  private insertDeploymentEvent(model: string, at: number, from: number | null, to: number | null, e: NewDeploymentEvent): void {
    this.db
      .prepare(
        `INSERT INTO deployment_events (deployment, at, kind, from_version, to_version, strategy, actor, reason, data)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(model, at, e.kind, from, to, e.strategy, e.actor, e.reason, JSON.stringify(e.data));
  }

  async listDeploymentEvents(deployment: string, q: { afterId?: number; beforeId?: number; since?: number; until?: number; limit: number; newestFirst?: boolean }): Promise<DeploymentEventRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM deployment_events WHERE deployment = ? AND id > ? AND id < ? AND at >= ? AND at <= ?
         ORDER BY at ${q.newestFirst ? 'DESC' : 'ASC'}, id ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT ?`,
      )
      .all(deployment, q.afterId ?? 0, q.beforeId ?? Number.MAX_SAFE_INTEGER, q.since ?? Number.MIN_SAFE_INTEGER, q.until ?? Number.MAX_SAFE_INTEGER, q.limit) as DeploymentEventRow[];
    return rows.map(toDeploymentEvent);
  }

  async createRollout(r: NewRollout, event: NewDeploymentEvent): Promise<RolloutRecord> {
    const run = this.db.transaction(() => {
      const id = Number(
        this.db
          .prepare(
            `INSERT INTO rollouts (deployment, strategy, stable_version, candidate_version, state, step, step_started_at, spec, status,
               created_at, updated_at, ended_at, actor, reason, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 1)`,
          )
          .run(r.deployment, r.strategy, r.stableVersion, r.candidateVersion, r.state, r.step, r.stepStartedAt, JSON.stringify(r.spec), JSON.stringify(r.status), r.createdAt, r.createdAt, r.actor, r.reason)
          .lastInsertRowid,
      );
      this.insertDeploymentEvent(r.deployment, r.createdAt, r.stableVersion, r.stableVersion, { ...event, data: { rollout: id, ...event.data } });
      return id;
    });
    let id: number;
    try {
      id = run.immediate();
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw activeRolloutConflict(r.deployment, await this.activeRollout(r.deployment));
      throw e;
    }
    return (await this.getRollout(id))!;
  }

  async getRollout(id: number): Promise<RolloutRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
    return r && toRollout(r);
  }

  async activeRollout(deployment: string): Promise<RolloutRecord | undefined> {
    const r = this.db.prepare(`SELECT * FROM rollouts WHERE deployment = ? AND state IN ('running', 'paused')`).get(deployment) as RolloutRow | undefined;
    return r && toRollout(r);
  }

  async listRollouts(q: { deployment?: string; active?: boolean; limit: number }): Promise<RolloutRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.deployment !== undefined) {
      where.push('deployment = ?');
      args.push(q.deployment);
    }
    if (q.active) where.push(`state IN ('running', 'paused')`);
    const rows = this.db
      .prepare(`SELECT * FROM rollouts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, q.limit) as RolloutRow[];
    return rows.map(toRollout);
  }

  async updateRollout(
    id: number,
    revision: number,
    patch: RolloutPatch,
    now: number,
    change?: { event: NewDeploymentEvent; stable?: { alias: string; version: number } },
    fence?: LeaseFence,
  ): Promise<RolloutRecord | undefined> {
    const run = this.db.transaction((): boolean => {
      if (fence && !this.holds(fence)) return false;
      const cur = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
      if (!cur || cur.revision !== revision) return false;
      const next = { ...toRollout(cur), ...patch };
      this.db
        .prepare(
          `UPDATE rollouts SET state = ?, step = ?, step_started_at = ?, spec = ?, status = ?, ended_at = ?, reason = ?, updated_at = ?,
             revision = revision + 1 WHERE id = ? AND revision = ?`,
        )
        .run(next.state, next.step, next.stepStartedAt, JSON.stringify(next.spec), JSON.stringify(next.status), next.endedAt, next.reason, now, id, revision);
      if (change) {
        const from = this.aliasVersion(cur.deployment, change.stable?.alias ?? 'champion') ?? cur.stable_version;
        if (change.stable) {
          this.db
            .prepare(
              `INSERT INTO model_aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
            )
            .run(cur.deployment, change.stable.alias, change.stable.version, now);
        }
        this.insertDeploymentEvent(cur.deployment, now, from, change.stable?.version ?? from, { ...change.event, data: { rollout: id, ...change.event.data } });
      }
      return true;
    });
    if (!run.immediate()) return undefined;
    return this.getRollout(id);
  }

  private holds(f: LeaseFence): boolean {
    const r = this.db.prepare('SELECT holder, expires_at FROM leases WHERE name = ?').get(f.lease) as { holder: string; expires_at: number } | undefined;
    return r !== undefined && r.holder === f.holder && r.expires_at > f.now;
  }

  async appendRolloutDecisions(records: readonly NewRolloutDecision[], fence?: LeaseFence): Promise<boolean> {
    const stmt = this.db.prepare(
      `INSERT INTO rollout_decisions (rollout_id, at, step, metric, verdict, value, threshold, n_stable, n_candidate, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    return this.db.transaction((): boolean => {
      if (fence && !this.holds(fence)) return false;
      for (const d of records) {
        stmt.run(d.rolloutId, d.at, d.step, d.metric, d.verdict, finiteOrNull(d.value), finiteOrNull(d.threshold), d.nStable, d.nCandidate, JSON.stringify(d.detail));
      }
      return true;
    }).immediate();
  }

  async listRolloutDecisions(rolloutId: number, q: { afterId?: number; beforeId?: number; at?: number; newestFirst?: boolean; limit: number }): Promise<RolloutDecisionRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT * FROM rollout_decisions WHERE rollout_id = ? AND id > ? AND id < ?${q.at !== undefined ? ' AND at = ?' : ''} ORDER BY id ${q.newestFirst ? 'DESC' : 'ASC'} LIMIT ?`,
      )
      .all(rolloutId, q.afterId ?? 0, q.beforeId ?? Number.MAX_SAFE_INTEGER, ...(q.at !== undefined ? [q.at] : []), q.limit) as DecisionRow[];
    return rows.map(toDecision);
  }

  async acquireLease(name: string, holder: string, ttlMs: number, now: number): Promise<LeaseRecord & { acquired: boolean }> {
    this.db
      .prepare(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
      )
      .run(name, holder, now + ttlMs, now);
    const r = this.db.prepare('SELECT holder, expires_at FROM leases WHERE name = ?').get(name) as { holder: string; expires_at: number };
    return { name, holder: r.holder, expiresAt: r.expires_at, acquired: r.holder === holder };
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?').run(name, holder);
  }

  async getAlias(model: string, alias: string): Promise<AliasRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM model_aliases WHERE model = ? AND alias = ?').get(model, alias) as AliasRow | undefined;
    return r && toAlias(r);
  }

  async listAliases(model: string): Promise<AliasRecord[]> {
    return (this.db.prepare('SELECT * FROM model_aliases WHERE model = ? ORDER BY alias').all(model) as AliasRow[]).map(toAlias);
  }

  async deleteAlias(model: string, alias: string, now = Date.now(), event?: NewDeploymentEvent): Promise<boolean> {
    return this.db.transaction(() => {
      const from = event ? this.aliasVersion(model, alias) : null;
      const deleted = this.db.prepare('DELETE FROM model_aliases WHERE model = ? AND alias = ?').run(model, alias).changes > 0;
      if (deleted && event) this.insertDeploymentEvent(model, now, from, null, event);
      return deleted;
    }).immediate();
  }

  async saveReference(r: ReferenceRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO monitoring_references (model, version, schema, profile, config, source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (model, version) DO UPDATE SET schema = excluded.schema, profile = excluded.profile, config = excluded.config,
           source = excluded.source, created_at = excluded.created_at`,
      )
      .run(r.model, r.version, JSON.stringify(r.schema), JSON.stringify(r.profile), JSON.stringify(r.config), JSON.stringify(r.source), r.createdAt);
  }

  async getReference(model: string, version: number): Promise<ReferenceRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM monitoring_references WHERE model = ? AND version = ?').get(model, version) as ReferenceRow | undefined;
    return r && toReference(r);
  }

  async listReferences(): Promise<ReferenceRecord[]> {
    return (this.db.prepare('SELECT * FROM monitoring_references ORDER BY model, version').all() as ReferenceRow[]).map(toReference);
  }

  async deleteReference(model: string, version: number): Promise<boolean> {
    return this.db.prepare('DELETE FROM monitoring_references WHERE model = ? AND version = ?').run(model, version).changes > 0;
  }

  async createApiKey(k: ApiKeyRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO api_keys (id, name, role, hash, created_at, revoked_at, scopes, expires_at, previous_hash, previous_until)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(k.id, k.name, k.role, k.hash, k.createdAt, k.revokedAt ?? null, k.scopes ? JSON.stringify(k.scopes) : null, k.expiresAt ?? null, k.previousHash ?? null, k.previousUntil ?? null);
  }

  async findApiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const r = this.db.prepare(`${KEY_SELECT} WHERE k.hash = ?`).get(hash) as KeyRow | undefined;
    return r && toKey(r);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.db.prepare(`${KEY_SELECT} ORDER BY k.created_at, k.id`).all() as KeyRow[]).map(toKey);
  }

  async revokeApiKey(id: string, now: number): Promise<boolean> {
    return this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id).changes > 0;
  }

  async rotateApiKey(id: string, hash: string, previousUntil: number): Promise<ApiKeyRecord | undefined> {
    const changed = this.db
      .prepare('UPDATE api_keys SET previous_hash = hash, previous_until = ?, hash = ? WHERE id = ? AND revoked_at IS NULL')
      .run(previousUntil, hash, id).changes;
    if (changed === 0) return undefined;
    return toKey(this.db.prepare(`${KEY_SELECT} WHERE k.id = ?`).get(id) as KeyRow);
  }

  async touchApiKeys(uses: readonly { id: string; at: number }[]): Promise<void> {
    const upsert = this.db.prepare(
      `INSERT INTO api_key_usage (key_id, last_used_at) VALUES (?, ?)
       ON CONFLICT (key_id) DO UPDATE SET last_used_at = MAX(last_used_at, excluded.last_used_at)`,
    );
    this.db.transaction(() => {
      for (const u of uses) upsert.run(u.id, u.at);
    })();
  }

  async listRateLimits(): Promise<RateLimitRecord[]> {
    return (this.db.prepare('SELECT * FROM rate_limits ORDER BY scope, name').all() as RateLimitRow[]).map(toRateLimit);
  }

  async saveRateLimit(r: RateLimitRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO rate_limits (scope, name, rate, burst, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (scope, name) DO UPDATE SET rate = excluded.rate, burst = excluded.burst, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(r.scope, r.name, r.rate, r.burst, r.updatedAt, r.updatedBy);
  }

  async deleteRateLimit(scope: RateLimitRecord['scope'], name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM rate_limits WHERE scope = ? AND name = ?').run(scope, name).changes > 0;
  }

  async listQuotas(): Promise<QuotaRecord[]> {
    return (this.db.prepare('SELECT * FROM quotas ORDER BY scope, name').all() as QuotaRow[]).map(toQuota);
  }

  async saveQuota(q: QuotaRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO quotas (scope, name, per_day, per_month, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (scope, name) DO UPDATE SET per_day = excluded.per_day, per_month = excluded.per_month, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(q.scope, q.name, q.perDay ?? null, q.perMonth ?? null, q.updatedAt, q.updatedBy);
  }

  async deleteQuota(scope: QuotaRecord['scope'], name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM quotas WHERE scope = ? AND name = ?').run(scope, name).changes > 0;
  }

  async addQuotaUsage(rows: readonly QuotaUsageRecord[]): Promise<void> {
    const add = this.db.prepare(
      `INSERT INTO quota_usage (scope, name, day, count) VALUES (?, ?, ?, ?)
       ON CONFLICT (day, scope, name) DO UPDATE SET count = count + excluded.count`,
    );
    this.db.transaction(() => {
      for (const r of rows) add.run(r.scope, r.name, r.day, r.count);
    })();
  }

  async quotaUsage(since: number): Promise<QuotaUsageRecord[]> {
    return (this.db.prepare('SELECT scope, name, day, count FROM quota_usage WHERE day >= ? ORDER BY day, scope, name').all(since) as QuotaUsageRecord[]).map(toQuotaUsage);
  }

  async pruneQuotaUsage(before: number): Promise<number> {
    return this.db.prepare('DELETE FROM quota_usage WHERE day < ?').run(before).changes;
  }

  async listCostBudgets(): Promise<CostBudgetRecord[]> {
    return (this.db.prepare('SELECT * FROM cost_budgets ORDER BY deployment').all() as CostBudgetRow[]).map(toCostBudget);
  }

  async saveCostBudget(b: CostBudgetRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO cost_budgets (deployment, daily, monthly, cap, cap_version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (deployment) DO UPDATE SET daily = excluded.daily, monthly = excluded.monthly, cap = excluded.cap,
           cap_version = excluded.cap_version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(b.deployment, b.daily ?? null, b.monthly ?? null, b.cap, b.capVersion ?? null, b.updatedAt, b.updatedBy);
  }

  async deleteCostBudget(deployment: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM cost_budgets WHERE deployment = ?').run(deployment).changes > 0;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async saveReviewPolicy(p: ReviewPolicyRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO review_policies (model, confidence_threshold, output, sample_rate, max_queue, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (model) DO UPDATE SET confidence_threshold = excluded.confidence_threshold, output = excluded.output,
           sample_rate = excluded.sample_rate, max_queue = excluded.max_queue, updated_at = excluded.updated_at`,
      )
      .run(p.model, p.confidenceThreshold ?? null, p.output ?? null, p.sampleRate ?? null, p.maxQueue, p.updatedAt);
  }

  async getReviewPolicy(model: string): Promise<ReviewPolicyRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM review_policies WHERE model = ?').get(model) as PolicyRow | undefined;
    return r && toPolicy(r);
  }

  async listReviewPolicies(): Promise<ReviewPolicyRecord[]> {
    return (this.db.prepare('SELECT * FROM review_policies ORDER BY model').all() as PolicyRow[]).map(toPolicy);
  }

  async deleteReviewPolicy(model: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM review_policies WHERE model = ?').run(model).changes > 0;
  }

  async enqueueReviewItems(model: string, items: readonly NewReviewItem[], maxPending: number): Promise<number> {
    if (items.length === 0) return 0;
    return this.db.transaction(() => {
      const { n } = this.db.prepare('SELECT COUNT(*) AS n FROM review_items WHERE model = ? AND labelled_at IS NULL').get(model) as { n: number };
      const room = Math.max(0, Math.min(items.length, maxPending - n));
      const insert = this.db.prepare(
        `INSERT INTO review_items (model, version, request_id, row, inputs, prediction, reason, confidence, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (let i = 0; i < room; i++) {
        const it = items[i]!;
        insert.run(model, it.version, it.requestId, it.row, JSON.stringify(it.inputs ?? null), JSON.stringify(it.prediction ?? null), it.reason, it.confidence, it.createdAt);
      }
      return room;
    }).immediate();
  }

  async getReviewItem(id: number): Promise<ReviewItemRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM review_items WHERE id = ?').get(id) as ReviewItemRow | undefined;
    return r && toReviewItem(r);
  }

  async listReviewItems(q: ReviewItemQuery): Promise<ReviewItemRecord[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: q.limit, expiredBefore: q.claimExpiredBefore ?? -1 };
    if (q.model !== undefined) {
      where.push('model = @model');
      params.model = q.model;
    }
    if (q.status === 'open') where.push('labelled_at IS NULL AND (claimed_by IS NULL OR claimed_at < @expiredBefore)');
    else if (q.status === 'claimed') where.push('labelled_at IS NULL AND claimed_by IS NOT NULL AND claimed_at >= @expiredBefore');
    else if (q.status === 'labelled') where.push('labelled_at IS NOT NULL');
    if (q.afterId !== undefined) {
      where.push('id > @afterId');
      params.afterId = q.afterId;
    }
    const sql = `SELECT * FROM review_items ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as ReviewItemRow[]).map(toReviewItem);
  }

  async claimReviewItem(id: number, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined> {
    const r = this.db
      .prepare(`UPDATE review_items SET claimed_by = @reviewer, claimed_at = @now WHERE id = @id AND ${CLAIMABLE} RETURNING *`)
      .get({ id, reviewer, now, expiredBefore: claimExpiredBefore }) as ReviewItemRow | undefined;
    return r && toReviewItem(r);
  }

  async labelReviewItem(id: number, label: unknown, reviewer: string, now: number, claimExpiredBefore: number): Promise<ReviewItemRecord | undefined> {
    const r = this.db
      .prepare(
        `UPDATE review_items SET label = @label, labelled_at = @now, labelled_by = @reviewer WHERE id = @id AND ${CLAIMABLE} RETURNING *`,
      )
      .get({ id, label: JSON.stringify(label ?? null), reviewer, now, expiredBefore: claimExpiredBefore }) as ReviewItemRow | undefined;
    return r && toReviewItem(r);
  }

  async reviewQueueStats(): Promise<ReviewQueueStats[]> {
    const rows = this.db
      .prepare('SELECT model, COUNT(*) AS pending, MIN(created_at) AS oldest FROM review_items WHERE labelled_at IS NULL GROUP BY model ORDER BY model')
      .all() as { model: string; pending: number; oldest: number }[];
    return rows.map((r) => ({ model: r.model, pending: r.pending, oldestCreatedAt: r.oldest }));
  }

  async reviewQueues(claimExpiredBefore: number): Promise<ReviewQueueCounts[]> {
    // The status conditions are listReviewItems' own, so counts equal what listing per status gives.
    const open = `labelled_at IS NULL AND (claimed_by IS NULL OR claimed_at < @expiredBefore)`;
    const rows = this.db
      .prepare(
        `WITH counts AS (
           SELECT model,
                  SUM(CASE WHEN ${open} THEN 1 ELSE 0 END) AS open,
                  SUM(CASE WHEN labelled_at IS NULL AND claimed_by IS NOT NULL AND claimed_at >= @expiredBefore THEN 1 ELSE 0 END) AS claimed,
                  SUM(CASE WHEN labelled_at IS NOT NULL THEN 1 ELSE 0 END) AS labelled,
                  MIN(CASE WHEN ${open} THEN created_at END) AS oldest_open
             FROM review_items GROUP BY model),
         names AS (SELECT model FROM review_policies UNION SELECT model FROM counts)
         SELECT n.model, p.confidence_threshold, p.output, p.sample_rate, p.max_queue, p.updated_at,
                c.open, c.claimed, c.labelled, c.oldest_open
           FROM names n LEFT JOIN review_policies p ON p.model = n.model LEFT JOIN counts c ON c.model = n.model
          ORDER BY n.model`,
      )
      .all({ expiredBefore: claimExpiredBefore }) as (JoinedPolicyRow & {
      open: number | null;
      claimed: number | null;
      labelled: number | null;
      oldest_open: number | null;
    })[];
    return rows.map((r) => ({
      model: r.model,
      ...joinedPolicy(r),
      open: r.open ?? 0,
      claimed: r.claimed ?? 0,
      labelled: r.labelled ?? 0,
      ...(r.oldest_open === null ? {} : { oldestOpenCreatedAt: r.oldest_open }),
    }));
  }

  async appendAlertHistory(records: readonly NewAlertHistoryRecord[]): Promise<void> {
    if (records.length === 0) return;
    const insert = this.db.prepare('INSERT INTO alert_history (at, kind, fingerprints, alertname, deployment, receiver, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const r of records) {
        insert.run(r.at, r.kind, fingerprintsColumn(r.fingerprints), r.alertname ?? null, r.deployment ?? null, r.receiver ?? null, JSON.stringify(r.data ?? null));
      }
    })();
  }

  async listAlertHistory(q: AlertHistoryQuery): Promise<AlertHistoryRecord[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: q.limit };
    const add = (sql: string, name: string, value: unknown) => {
      if (value === undefined) return;
      where.push(sql);
      params[name] = value;
    };
    add('at >= @since', 'since', q.since);
    add('at < @until', 'until', q.until);
    add('deployment = @deployment', 'deployment', q.deployment);
    add('alertname = @alertname', 'alertname', q.alertname);
    add('kind = @kind', 'kind', q.kind);
    add('id > @afterId', 'afterId', q.afterId);
    add("fingerprints LIKE @fp ESCAPE '\\'", 'fp', q.fingerprint === undefined ? undefined : fingerprintPattern(q.fingerprint));
    const sql = `SELECT * FROM alert_history ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as AlertHistoryRow[]).map(toAlertHistory);
  }

  async pruneAlertHistory(before: number): Promise<number> {
    return this.db.prepare('DELETE FROM alert_history WHERE at < ?').run(before).changes;
  }

  async saveSilence(x: SilenceRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO alert_silences (id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers, starts_at = excluded.starts_at, ends_at = excluded.ends_at,
           created_by = excluded.created_by, comment = excluded.comment, updated_at = excluded.updated_at`,
      )
      .run(x.id, JSON.stringify(x.matchers), x.startsAt, x.endsAt, x.createdBy, x.comment, x.createdAt, x.updatedAt);
  }

  async getSilence(id: string): Promise<SilenceRecord | undefined> {
    const r = this.db.prepare('SELECT * FROM alert_silences WHERE id = ?').get(id) as SilenceRow | undefined;
    return r && toSilence(r);
  }

  async listSilences(): Promise<SilenceRecord[]> {
    return (this.db.prepare('SELECT * FROM alert_silences ORDER BY created_at, id').all() as SilenceRow[]).map(toSilence);
  }

  async saveSuppression(x: SuppressionRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO alert_suppressions (id, deployment, starts_at, until, reason, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET deployment = excluded.deployment, starts_at = excluded.starts_at, until = excluded.until,
           reason = excluded.reason, created_by = excluded.created_by`,
      )
      .run(x.id, x.deployment, x.startsAt, x.until, x.reason, x.createdBy, x.createdAt);
  }

  async listSuppressions(): Promise<SuppressionRecord[]> {
    return (this.db.prepare('SELECT * FROM alert_suppressions ORDER BY created_at, id').all() as SuppressionRow[]).map(toSuppression);
  }

  async getAlertRules(): Promise<{ rules: unknown[]; updatedAt: number } | undefined> {
    const r = this.db.prepare('SELECT rules, updated_at FROM alert_rules WHERE id = 1').get() as { rules: string; updated_at: number } | undefined;
    return r && { rules: JSON.parse(r.rules) as unknown[], updatedAt: r.updated_at };
  }

  async saveAlertRules(rules: readonly unknown[], now: number): Promise<void> {
    this.db
      .prepare('INSERT INTO alert_rules (id, rules, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at')
      .run(JSON.stringify(rules), now);
  }

  async getFeatureRepo(): Promise<FeatureRepoRecord | undefined> {
    const r = this.db.prepare('SELECT repo, updated_at, updated_by FROM feature_repo WHERE id = 1').get() as { repo: string; updated_at: number; updated_by: string } | undefined;
    return r && { repo: JSON.parse(r.repo) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by };
  }

  async saveFeatureRepo(repo: unknown, now: number, actor: string): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO feature_repo (id, repo, updated_at, updated_by) VALUES (1, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET repo = excluded.repo, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(JSON.stringify(repo), now, actor);
  }

  async createDataset(d: NewDatasetRecord): Promise<DatasetRecord> {
    const r = this.db
      .prepare(
        `INSERT INTO datasets (model, filter, format, columns, state, actor, created_at) VALUES (?, ?, ?, ?, 'writing', ?, ?) RETURNING ${DATASET_COLUMNS}`,
      )
      .get(d.filter.model, JSON.stringify(d.filter), d.format, JSON.stringify(d.columns), d.actor, d.createdAt) as DatasetRow;
    return toDataset(r);
  }

  async finishDataset(id: number, end: DatasetEnd): Promise<DatasetRecord | undefined> {
    const r = this.db
      .prepare(
        `UPDATE datasets SET state = ?, sha256 = ?, rows = ?, bytes = ?, skipped = ?, error = ?, finished_at = ?
         WHERE id = ? AND state = 'writing' RETURNING ${DATASET_COLUMNS}`,
      )
      .get(...datasetEndParams(end), id) as DatasetRow | undefined;
    return r && toDataset(r);
  }

  async getDataset(id: number): Promise<DatasetRecord | undefined> {
    const r = this.db.prepare(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = ?`).get(id) as DatasetRow | undefined;
    return r && toDataset(r);
  }

  async listDatasets(q: { model?: string; beforeId?: number; limit: number }): Promise<DatasetRecord[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.model !== undefined) {
      parts.push('model = ?');
      args.push(q.model);
    }
    if (q.beforeId !== undefined) {
      parts.push('id < ?');
      args.push(q.beforeId);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT ${DATASET_COLUMNS} FROM datasets ${where} ORDER BY id DESC LIMIT ?`).all(...args, q.limit) as DatasetRow[];
    return rows.map(toDataset);
  }

  async createJob(j: NewJobRecord): Promise<JobRecord> {
    try {
      const r = this.db
        .prepare(
          `INSERT INTO jobs (kind, deployment, state, trigger, inputs, outputs, logs, actor, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, '{}', '', ?, ?, ?) RETURNING ${JOB_COLUMNS}`,
        )
        .get(j.kind, j.deployment, j.state, JSON.stringify(j.trigger), JSON.stringify(j.inputs), j.actor, j.createdAt, j.createdAt) as JobRow;
      return toJob(r);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw activeJobConflict(j.deployment, (await this.listJobs({ deployment: j.deployment, states: ['awaiting-approval', 'queued', 'running'], limit: 1 }))[0]);
      }
      throw e;
    }
  }

  async updateJob(id: number, from: readonly JobState[], patch: JobPatch): Promise<JobRecord | undefined> {
    if (from.length === 0) return undefined;
    const args: unknown[] = [];
    const sets = jobPatchSql(patch, (v) => {
      args.push(v);
      return '?';
    });
    try {
      const r = this.db
        .prepare(`UPDATE jobs SET ${sets} WHERE id = ? AND state IN (${from.map(() => '?').join(', ')}) RETURNING ${JOB_COLUMNS}`)
        .get(...args, id, ...from) as JobRow | undefined;
      return r && toJob(r);
    } catch (e) {
      // Only a job coming back to an active state can meet the one-active index (a retry while another runs).
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const job = await this.getJob(id);
        throw activeJobConflict(job?.deployment ?? '', (await this.listJobs({ deployment: job?.deployment ?? '', states: ['awaiting-approval', 'queued', 'running'], limit: 1 }))[0]);
      }
      throw e;
    }
  }

  async getJob(id: number): Promise<JobRecord | undefined> {
    const r = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
    return r && toJob(r);
  }

  async listJobs(q: { deployment?: string; states?: readonly JobState[]; beforeId?: number; limit: number }): Promise<JobRecord[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.deployment !== undefined) {
      parts.push('deployment = ?');
      args.push(q.deployment);
    }
    if (q.states !== undefined) {
      if (q.states.length === 0) return [];
      parts.push(`state IN (${q.states.map(() => '?').join(', ')})`);
      args.push(...q.states);
    }
    if (q.beforeId !== undefined) {
      parts.push('id < ?');
      args.push(q.beforeId);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const rows = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs ${where} ORDER BY id DESC LIMIT ?`).all(...args, q.limit) as JobRow[];
    return rows.map(toJob);
  }

  async getRetrainPolicy(deployment: string): Promise<RetrainPolicyRecord | undefined> {
    const r = this.db.prepare('SELECT deployment, policy, updated_at, updated_by FROM retrain_policies WHERE deployment = ?').get(deployment) as
      | { deployment: string; policy: string; updated_at: number; updated_by: string }
      | undefined;
    return r && { deployment: r.deployment, policy: JSON.parse(r.policy) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by };
  }

  async saveRetrainPolicy(p: RetrainPolicyRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO retrain_policies (deployment, policy, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (deployment) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(p.deployment, JSON.stringify(p.policy), p.updatedAt, p.updatedBy);
  }

  async deleteRetrainPolicy(deployment: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM retrain_policies WHERE deployment = ?').run(deployment).changes > 0;
  }

  async listRetrainPolicies(): Promise<RetrainPolicyRecord[]> {
    const rows = this.db.prepare('SELECT deployment, policy, updated_at, updated_by FROM retrain_policies ORDER BY deployment').all() as {
      deployment: string;
      policy: string;
      updated_at: number;
      updated_by: string;
    }[];
    return rows.map((r) => ({ deployment: r.deployment, policy: JSON.parse(r.policy) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by }));
  }

  async getDeploymentFeatures(deployment: string): Promise<DeploymentFeaturesRecord | undefined> {
    const r = this.db.prepare('SELECT deployment, binding, updated_at, updated_by FROM deployment_features WHERE deployment = ?').get(deployment) as
      | { deployment: string; binding: string; updated_at: number; updated_by: string }
      | undefined;
    return r && { deployment: r.deployment, binding: JSON.parse(r.binding) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by };
  }

  async saveDeploymentFeatures(r: DeploymentFeaturesRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO deployment_features (deployment, binding, updated_at, updated_by) VALUES (?, ?, ?, ?)
         ON CONFLICT (deployment) DO UPDATE SET binding = excluded.binding, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(r.deployment, JSON.stringify(r.binding), r.updatedAt, r.updatedBy);
  }

  async deleteDeploymentFeatures(deployment: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM deployment_features WHERE deployment = ?').run(deployment).changes > 0;
  }

  async listDeploymentFeatures(): Promise<DeploymentFeaturesRecord[]> {
    const rows = this.db.prepare('SELECT deployment, binding, updated_at, updated_by FROM deployment_features ORDER BY deployment').all() as {
      deployment: string;
      binding: string;
      updated_at: number;
      updated_by: string;
    }[];
    return rows.map((r) => ({ deployment: r.deployment, binding: JSON.parse(r.binding) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by }));
  }

  async appendAudit(entries: readonly NewAuditEntry[]): Promise<AuditEntry[]> {
    if (entries.length === 0) return [];
    return this.db.transaction(() => {
      const head = this.db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
      const chained = chainEntries(head, entries);
      const insert = this.db.prepare(
        `INSERT INTO audit_log (seq, at, actor_kind, actor_id, actor_role, action, object, summary, request_id, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const e of chained) {
        insert.run(e.seq, e.at, e.actor.kind, e.actor.id, e.actor.role, e.action, e.object, canonicalJson(e.summary), e.requestId, e.prevHash, e.hash);
      }
      return chained;
    }).immediate();
  }

  async listAudit(q: AuditQuery): Promise<AuditEntry[]> {
    const parts: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      parts.push(sql);
      args.push(v);
    };
    if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
    if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
    if (q.since !== undefined) add('at >= ?', q.since);
    if (q.until !== undefined) add('at < ?', q.until);
    if (q.actorId !== undefined) add('actor_id = ?', q.actorId);
    if (q.objects !== undefined) {
      if (q.objects.length === 0) return [];
      parts.push(`object IN (${q.objects.map(() => '?').join(', ')})`);
      args.push(...q.objects);
    }
    if (q.requestId !== undefined) add('request_id = ?', q.requestId);
    // substr, not LIKE: a prefix with % or _ in it means itself.
    if (q.actionPrefix !== undefined) {
      parts.push('substr(action, 1, ?) = ?');
      args.push(q.actionPrefix.length, q.actionPrefix);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const asc = q.order === 'asc' || (q.order === undefined && q.afterSeq !== undefined);
    const rows = this.db.prepare(`SELECT * FROM audit_log ${where} ORDER BY seq ${asc ? 'ASC' : 'DESC'} LIMIT ?`).all(...args, q.limit) as AuditRow[];
    return rows.map(toAuditEntry);
  }

  async auditHead(): Promise<AuditEntry | undefined> {
    const r = this.db.prepare('SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1').get() as AuditRow | undefined;
    return r && toAuditEntry(r);
  }

  async listSloDefinitions(): Promise<{ definitions: unknown[]; revision: number }> {
    const read = this.db.transaction(() => {
      const rows = this.db.prepare('SELECT definition FROM slo_definitions ORDER BY position, name').all() as { definition: string }[];
      const rev = this.db.prepare('SELECT revision FROM slo_revision WHERE id = 1').get() as { revision: number };
      return { definitions: rows.map((r) => JSON.parse(r.definition) as unknown), revision: rev.revision };
    });
    return read();
  }

  async saveSloDefinition(name: string, definition: unknown, now: number): Promise<number> {
    const save = this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO slo_definitions (name, position, definition, updated_at)
           VALUES (?, (SELECT COALESCE(MAX(position), 0) + 1 FROM slo_definitions), ?, ?)
           ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at`,
        )
        .run(name, JSON.stringify(definition), now);
      return this.bumpSloRevision();
    });
    return save.immediate();
  }

  async deleteSloDefinition(name: string): Promise<number | undefined> {
    const del = this.db.transaction(() => {
      const r = this.db.prepare('DELETE FROM slo_definitions WHERE name = ?').run(name);
      return r.changes > 0 ? this.bumpSloRevision() : undefined;
    });
    return del.immediate();
  }

  private bumpSloRevision(): number {
    return (this.db.prepare('UPDATE slo_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision').get() as { revision: number }).revision;
  }
}
