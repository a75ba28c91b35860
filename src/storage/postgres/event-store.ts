/**
 * EventStore on PostgreSQL, for several replicas sharing one database. It behaves as the SQLite reference
 * (sqlite/event-store.ts) does, and differs where many writers need it to:
 *
 * - A batch of predictions is one INSERT … SELECT FROM unnest(…) (a fixed number of array parameters whatever the
 *   batch size); with caller keys, one statement writes the events, their keys and the key collisions.
 * - `predictions` is partitioned by range of `ts`, one partition per UTC day, created before the first write that
 *   needs it and dropped whole by `prunePredictions`.
 * - Counters several replicas add to (SLI counts, traffic buckets, key collisions) are single-statement upserts that
 *   add in SQL, so concurrent adds sum exactly.
 * - Label joins need "every prediction up to seq H is visible" (see `barrier`), which a sequence shared by
 *   concurrent writers does not give by itself.
 */
import { DEFAULT_LATE_AFTER_MS, checkLabel, type CheckedLabel } from '../label-input.ts';
import type {
  EventStore,
  LabelIngestOptions,
  LabelIngestResult,
  LabelInput,
  LabelledQuery,
  LabelledRow,
  LabelStats,
  MonitorResultRecord,
  MonitorSummaryRecord,
  OutcomeIngestResult,
  OutcomeInput,
  OutcomeStatsRow,
  PredictionEvent,
  PredictionQuery,
  PredictionRoute,
  SliBucket,
  SliCountRecord,
  SliQuery,
  StoredPredictionEvent,
  TrafficBucketRecord,
  TrafficQuery,
  TrafficUsageRecord,
  TrafficStep,
  WindowProfileRecord,
  WindowQuery,
} from '../ports.ts';
import { PredictionBatch } from '../prediction-batch.ts';
import { classifyStoreError } from '../health.ts';
import { encodeRaw, pgBool, toMonitorResult, toProfile, type MonitorResultRow, type PredictionRow, type ProfileRow } from '../rows/event-rows.ts';
import { arrivingLabel, fold, isLate, joined, labelStatsOf, keptRow, rowOutOfRange, toLabelledRow, type LabelGroup, type LabelRow as SharedLabelRow, type LabelTarget } from '../rows/label-rows.ts';
import { countWithWaves, mayHoldWaves, queryWithWaves, waveColumns, waveCountFilter, type WaveReads } from '../rows/shadow-waves.ts';
import { MAX_ERROR_CODES, mergeTraffic, rowToUsage, STEP_MS, toTraffic, trimZeros, type TrafficCounts } from '../rows/traffic-rows.ts';
import { brokenConnection, inTransaction, migratePg, openPgPool, parsePgUrl, type PgClient, type PgMigration, type PgOptions, type PgPool } from './database.ts';

const DAY_MS = 24 * 3600 * 1000;

export const pgEventMigrations: PgMigration[] = [
  [
    // The paging cursor. Replicas draw from it concurrently and commit in their own time, so across replicas seq
    // order is roughly commit order, not strictly time order (ts orders by time); within one batch it is the
    // batch's order. Label joins must not assume "seq ≤ n visible" from it alone: see PgEventStore.barrier.
    `CREATE SEQUENCE prediction_seq`,
    `CREATE TABLE predictions (
       seq BIGINT NOT NULL DEFAULT nextval('prediction_seq'),
       request_id TEXT NOT NULL,
       ts BIGINT NOT NULL,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       status TEXT NOT NULL,
       route TEXT,
       latency_ms DOUBLE PRECISION NOT NULL,
       inputs TEXT NOT NULL,
       outputs TEXT NOT NULL,
       error TEXT,
       keys TEXT,
       trace_id TEXT
     ) PARTITION BY RANGE (ts)`,
    // Partitioned indexes: every day's partition gets its own copy when attached.
    `CREATE INDEX predictions_seq ON predictions (seq)`,
    // Listings of one model (the API's predictions page pages by seq within a model).
    `CREATE INDEX predictions_model_seq ON predictions (model, seq)`,
    // Window reads of one model version by time.
    `CREATE INDEX predictions_model_version_ts ON predictions (model, version, ts)`,
    // Label joins by request id (probes every partition: a label does not say its prediction's day).
    `CREATE INDEX predictions_request_id ON predictions (request_id)`,
    // The newest failures of a model without walking its successes: failures are few, so the index is small.
    `CREATE INDEX predictions_errors ON predictions (model, seq) WHERE status = 'error'`,
    // Caller keys → the row they name. The primary key makes the first prediction with a key keep it; later ones
    // are counted in key_collisions. `route` is copied here so outcomes join without reading the event.
    `CREATE TABLE prediction_keys (
       key TEXT PRIMARY KEY,
       request_id TEXT NOT NULL,
       "row" INTEGER NOT NULL,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       route TEXT,
       ts BIGINT NOT NULL,
       seq BIGINT NOT NULL)`,
    `CREATE INDEX prediction_keys_model ON prediction_keys (model, version, ts)`,
    `CREATE INDEX prediction_keys_seq ON prediction_keys (seq)`,
    // Pruning removes keys with their day's partition.
    `CREATE INDEX prediction_keys_ts ON prediction_keys (ts)`,
    `CREATE TABLE key_collisions (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       n BIGINT NOT NULL,
       PRIMARY KEY (model, version))`,
    // One label per prediction row and per key. NULLs are distinct, so waiting labels by key (no row yet) do not
    // collide. Deferred: a join pass rewrites several labels in one UPDATE and may move a key or row between them.
    `CREATE TABLE labels (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       request_id TEXT,
       "row" INTEGER,
       key TEXT,
       value TEXT NOT NULL,
       label_ts BIGINT NOT NULL,
       received_ts BIGINT NOT NULL,
       source TEXT NOT NULL,
       matched BOOLEAN NOT NULL,
       late BOOLEAN NOT NULL,
       late_after_ms BIGINT NOT NULL,
       duplicates INTEGER NOT NULL DEFAULT 0,
       model TEXT,
       version INTEGER,
       pred_seq BIGINT,
       pred_ts BIGINT,
       CONSTRAINT labels_target UNIQUE (request_id, "row") DEFERRABLE INITIALLY DEFERRED,
       CONSTRAINT labels_key UNIQUE (key) DEFERRABLE INITIALLY DEFERRED)`,
    `CREATE INDEX labels_unmatched ON labels (id) WHERE NOT matched`,
    `CREATE INDEX labels_joined ON labels (model, version, id)`,
    // Covers labelStats: counting never reads the label rows themselves.
    `CREATE INDEX labels_stats ON labels (model, version, source, matched, late, duplicates)`,
    `CREATE TABLE label_state (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
    `CREATE TABLE window_profiles (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start BIGINT NOT NULL,
       window_end BIGINT NOT NULL,
       replica TEXT NOT NULL,
       rows BIGINT NOT NULL,
       profile TEXT NOT NULL,
       created_at BIGINT NOT NULL)`,
    `CREATE INDEX window_profiles_key ON window_profiles (model, version, window_start, id)`,
    `CREATE TABLE monitor_results (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start BIGINT NOT NULL,
       window_end BIGINT NOT NULL,
       rows BIGINT NOT NULL,
       dataset_drift BOOLEAN NOT NULL,
       quality_failures INTEGER NOT NULL,
       report TEXT NOT NULL,
       created_at BIGINT NOT NULL,
       PRIMARY KEY (model, version, window_start, window_end))`,
    // Summaries apart from the (large) reports, so a listing of a year of windows never reads a report.
    `CREATE TABLE monitor_summaries (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start BIGINT NOT NULL,
       window_end BIGINT NOT NULL,
       summary TEXT NOT NULL,
       PRIMARY KEY (model, version, window_start, window_end))`,
    `CREATE TABLE slo_series (
       slo TEXT NOT NULL,
       ts BIGINT NOT NULL,
       source TEXT NOT NULL,
       good DOUBLE PRECISION NOT NULL,
       total DOUBLE PRECISION NOT NULL,
       PRIMARY KEY (slo, ts, source))`,
    `CREATE INDEX slo_series_ts ON slo_series (ts)`,
    `CREATE TABLE outcomes (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       key TEXT NOT NULL,
       metric TEXT NOT NULL,
       value DOUBLE PRECISION NOT NULL,
       ts BIGINT NOT NULL,
       received_ts BIGINT NOT NULL,
       model TEXT,
       version INTEGER,
       route TEXT,
       pred_ts BIGINT)`,
    `CREATE INDEX outcomes_model ON outcomes (model, metric, pred_ts)`,
    `CREATE INDEX outcomes_unmatched ON outcomes (received_ts) WHERE model IS NULL`,
    // `step` is the bucket length in ms; `errors` code → count.
    `CREATE TABLE traffic (
       model TEXT NOT NULL,
       step INTEGER NOT NULL,
       ts BIGINT NOT NULL,
       version INTEGER NOT NULL,
       requests BIGINT NOT NULL,
       ok BIGINT NOT NULL,
       client_errors BIGINT NOT NULL,
       server_errors BIGINT NOT NULL,
       shadow BIGINT NOT NULL,
       rows BIGINT NOT NULL,
       latency_sum_ms DOUBLE PRECISION NOT NULL,
       min_ms DOUBLE PRECISION NOT NULL,
       max_ms DOUBLE PRECISION NOT NULL,
       cpu_ms DOUBLE PRECISION NOT NULL,
       histogram BIGINT[] NOT NULL,
       errors JSONB NOT NULL,
       PRIMARY KEY (model, step, ts, version))`,
    `CREATE INDEX traffic_step_ts ON traffic (step, ts)`,
    // Latency histograms add bin by bin; the longer one's tail is kept.
    `CREATE FUNCTION warden_add_bins(a BIGINT[], b BIGINT[]) RETURNS BIGINT[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
       SELECT COALESCE(array_agg(COALESCE(x.v, 0) + COALESCE(y.v, 0) ORDER BY i), '{}')
       FROM unnest(a) WITH ORDINALITY AS x(v, i) FULL JOIN unnest(b) WITH ORDINALITY AS y(v, i) USING (i)
     $$`,
    // Error counts add up per code; past \`cap\` codes the smallest fold into \`other\` (as mergeErrors in the SQLite
    // adapter; ties among equal counts go by code here, not by insertion order, which JSONB does not keep).
    `CREATE FUNCTION warden_merge_errors(a JSONB, b JSONB, cap INTEGER) RETURNS JSONB LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
       WITH summed AS (
         SELECT k, SUM(v) AS v FROM (
           SELECT key AS k, value::numeric AS v FROM jsonb_each(a)
           UNION ALL SELECT key, value::numeric FROM jsonb_each(b)) s
         GROUP BY k),
       ranked AS (SELECT k, v, row_number() OVER (ORDER BY v DESC, k) AS r FROM summed WHERE k <> 'other')
       SELECT CASE WHEN (SELECT count(*) FROM summed) <= cap THEN (SELECT COALESCE(jsonb_object_agg(k, v), '{}'::jsonb) FROM summed)
         ELSE COALESCE((SELECT jsonb_object_agg(k, v) FROM ranked WHERE r < cap), '{}'::jsonb)
           || jsonb_build_object('other', COALESCE((SELECT SUM(v) FROM ranked WHERE r >= cap), 0) + COALESCE((SELECT v FROM summed WHERE k = 'other'), 0))
       END
     $$`,
    // Rows of a logged request as the SQLite adapter reads them (json_extract of $[0].dims[0], else $[0].shape[0]):
    // the first non-null of the two, as text when it is a number (the caller checks it is an integer).
    `CREATE FUNCTION warden_request_rows(inputs TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
       SELECT CASE WHEN json_typeof(v) = 'number' THEN v::text END FROM (
         SELECT COALESCE(
           CASE WHEN json_typeof(j -> 0 -> 'dims' -> 0) <> 'null' THEN j -> 0 -> 'dims' -> 0 END,
           CASE WHEN json_typeof(j -> 0 -> 'shape' -> 0) <> 'null' THEN j -> 0 -> 'shape' -> 0 END) AS v
         FROM (SELECT inputs::json AS j) a) b
     $$`,
  ],
  // Retention keeps a labelled row's inputs and outputs with its label (training sets outlive the raw log); the
  // index finds a day's labels by the predictions about to go.
  [`ALTER TABLE labels ADD COLUMN kept TEXT`, `CREATE INDEX labels_pred_seq ON labels (pred_seq) WHERE pred_seq IS NOT NULL`],
  // Shadow waves (rows/shadow-waves.ts): the copies one candidate run answered, one row for all of them. The partial
  // index finds a request's copies inside waves, and counts them, without touching the other rows.
  [
    `ALTER TABLE predictions ADD COLUMN copies INTEGER`,
    `ALTER TABLE predictions ADD COLUMN ts_last BIGINT`,
    `ALTER TABLE predictions ADD COLUMN copy_list TEXT`,
    `CREATE INDEX predictions_waves ON predictions (model, ts) WHERE copies IS NOT NULL`,
  ],
];

/** Advisory lock kinds (first key); the second key is the schema's hash, so Warden schemas sharing a database do not contend. */
const LOCK_PARTITIONS = 0x57450001;
/** Appends hold it shared; `barrier` takes it exclusively for an instant. */
const LOCK_APPEND = 0x57450002;
/** Label ingest and the join pass: one at a time across replicas (they read, fold and rewrite label rows). */
const LOCK_LABELS = 0x57450003;

/** Days of partitions remembered as existing; more are forgotten oldest first (and checked again if written). */
const MAX_REMEMBERED_PARTITIONS = 1024;
/** Labels considered per round of a join pass: bounds what a pass holds in memory. */
const JOIN_CHUNK = 5_000;

function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** An epoch-ms bound as a BIGINT parameter: `ts >= x` and `ts < x` hold for the same integers as with ⌈x⌉. */
function bound(x: number): number {
  if (Number.isFinite(x)) return Math.ceil(x);
  return x > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER;
}

/** PostgreSQL text cannot hold NUL; a NUL in a logged string must not fail the batch it travels in. */
function pgText(s: string): string {
  return s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s;
}

const pgTextOrNull = (s: string | undefined): string | null => (s === undefined ? null : pgText(s));

/** `predictions_pYYYYMMDD` for the UTC day starting at `day`. */
function partitionName(day: number): string {
  return `predictions_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

const PARTITION_NAME = /^predictions_p(\d{4})(\d{2})(\d{2})$/;

function partitionDay(name: string): number | undefined {
  const m = PARTITION_NAME.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
}

const dayOf = (ts: number) => Math.floor(ts / DAY_MS) * DAY_MS;

/** SQL parameters numbered as they are added. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

function predictionWhere(q: Omit<PredictionQuery, 'limit'>, p: Params): string {
  const parts: string[] = [];
  if (q.model !== undefined) parts.push(`model = ${p.add(q.model)}`);
  if (q.version !== undefined) parts.push(`version = ${p.add(q.version)}`);
  if (q.status !== undefined) parts.push(`status = ${p.add(q.status)}`);
  if (q.route !== undefined) parts.push(`route = ${p.add(q.route)}`);
  if (q.requestId !== undefined) parts.push(`request_id = ${p.add(pgText(q.requestId))}`);
  if (q.since !== undefined) parts.push(`ts >= ${p.add(bound(q.since))}`);
  if (q.until !== undefined) parts.push(`ts < ${p.add(bound(q.until))}`);
  if (q.afterSeq !== undefined) parts.push(`seq > ${p.add(bound(q.afterSeq))}`);
  if (q.beforeSeq !== undefined) parts.push(`seq < ${p.add(bound(q.beforeSeq))}`);
  return parts.length ? `WHERE ${parts.join(' AND ')}` : '';
}

function windowWhere(q: WindowQuery, p: Params, alias = ''): string {
  const parts = [`${alias}model = ${p.add(q.model)}`, `${alias}version = ${p.add(q.version)}`];
  if (q.since !== undefined) parts.push(`${alias}window_start >= ${p.add(bound(q.since))}`);
  if (q.until !== undefined) parts.push(`${alias}window_start < ${p.add(bound(q.until))}`);
  return `WHERE ${parts.join(' AND ')}`;
}

/** A label row (PostgreSQL holds flags as booleans); `id` < 0 marks one created in this transaction and not inserted yet. */
type LabelRow = SharedLabelRow<boolean>;

type ResultRow = MonitorResultRow<boolean>;
const resultOf = (r: ResultRow) => toMonitorResult(r, pgBool);

interface TrafficRow extends TrafficCounts {
  /** BIGINT[] arrives as strings (the global BIGINT parser covers scalars only). */
  histogram: (string | number)[];
  errors: Record<string, number>;
}

const rowToTraffic = (r: TrafficRow) => toTraffic(r, r.histogram.map(Number), r.errors);

const LABEL_COLUMNS = `request_id, "row", key, value, label_ts, received_ts, source, matched, late, late_after_ms, duplicates, model, version, pred_seq, pred_ts`;
const LABEL_TYPES = `$1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bool[], $9::bool[], $10::bigint[], $11::int[], $12::text[], $13::int[], $14::bigint[], $15::bigint[]`;

function labelColumns(rows: readonly LabelRow[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: 15 }, () => []);
  for (const r of rows) {
    const v = [r.request_id, r.row, r.key, r.value, r.label_ts, r.received_ts, r.source, r.matched, r.late, r.late_after_ms, r.duplicates, r.model, r.version, r.pred_seq, r.pred_ts];
    for (let i = 0; i < v.length; i++) cols[i]!.push(v[i]);
  }
  return cols;
}

const targetKey = (requestId: string, row: number) => `${requestId}\u0000${row}`;

/**
 * The label rows one transaction reads and rewrites, indexed as the unique constraints index them, so the
 * reference's row-at-a-time fold and join logic runs in memory and is written back in three statements.
 * Whoever fills it loads every stored row a lookup of the transaction can hit.
 */
class LabelWork {
  private readonly rows = new Map<number, LabelRow>();
  private readonly byKeyIndex = new Map<string, number>();
  private readonly byTargetIndex = new Map<string, number>();
  private readonly changed = new Set<number>();
  private readonly removed = new Set<number>();
  private nextNew = -1;

  load(r: LabelRow): void {
    if (this.rows.has(r.id) || this.removed.has(r.id)) return;
    this.rows.set(r.id, r);
    this.index(r);
  }

  get(id: number): LabelRow | undefined {
    return this.rows.get(id);
  }

  byKey(key: string): LabelRow | undefined {
    const id = this.byKeyIndex.get(key);
    return id === undefined ? undefined : this.rows.get(id);
  }

  byTarget(requestId: string, row: number): LabelRow | undefined {
    const id = this.byTargetIndex.get(targetKey(requestId, row));
    return id === undefined ? undefined : this.rows.get(id);
  }

  put(r: LabelRow): void {
    const old = this.rows.get(r.id);
    if (old) this.unindex(old);
    this.rows.set(r.id, r);
    this.index(r);
    if (r.id > 0) this.changed.add(r.id);
  }

  insert(r: Omit<LabelRow, 'id'>): void {
    this.put({ ...r, id: this.nextNew-- });
  }

  remove(id: number): void {
    const old = this.rows.get(id);
    if (!old) return;
    this.unindex(old);
    this.rows.delete(id);
    this.changed.delete(id);
    if (id > 0) this.removed.add(id);
  }

  /** Deletes, then updates, then inserts (new rows in the order they were made, so ids follow it). */
  async flush(c: PgClient): Promise<void> {
    if (this.removed.size) await c.query('DELETE FROM labels WHERE id = ANY($1::bigint[])', [[...this.removed]]);
    const changed = [...this.changed].map((id) => this.rows.get(id)!);
    if (changed.length) {
      const cols = labelColumns(changed);
      await c.query(
        `UPDATE labels AS l SET (${LABEL_COLUMNS}) = (u.request_id, u."row", u.key, u.value, u.label_ts, u.received_ts, u.source, u.matched, u.late,
           u.late_after_ms, u.duplicates, u.model, u.version, u.pred_seq, u.pred_ts)
         FROM unnest(${LABEL_TYPES}, $16::bigint[]) AS u(${LABEL_COLUMNS}, id)
         WHERE l.id = u.id`,
        [...cols, changed.map((r) => r.id)],
      );
    }
    const fresh = [...this.rows.values()].filter((r) => r.id < 0).sort((a, b) => b.id - a.id);
    if (fresh.length) {
      await c.query(
        `INSERT INTO labels (${LABEL_COLUMNS})
         SELECT ${LABEL_COLUMNS} FROM unnest(${LABEL_TYPES}) WITH ORDINALITY AS u(${LABEL_COLUMNS}, ord) ORDER BY ord`,
        labelColumns(fresh),
      );
    }
    this.removed.clear();
    this.changed.clear();
  }

  private index(r: LabelRow): void {
    if (r.key !== null) this.byKeyIndex.set(r.key, r.id);
    if (r.request_id !== null && r.row !== null) this.byTargetIndex.set(targetKey(r.request_id, r.row), r.id);
  }

  private unindex(r: LabelRow): void {
    if (r.key !== null && this.byKeyIndex.get(r.key) === r.id) this.byKeyIndex.delete(r.key);
    if (r.request_id !== null && r.row !== null) {
      const k = targetKey(r.request_id, r.row);
      if (this.byTargetIndex.get(k) === r.id) this.byTargetIndex.delete(k);
    }
  }
}

/** `no partition of relation "predictions" found for row`: a day this replica thought existed was dropped meanwhile. */
const isMissingPartition = (e: unknown) => (e as { code?: unknown }).code === '23514' && /no partition/.test((e as Error).message ?? '');

/** EventStore on a PostgreSQL schema shared by every replica. */
export class PgEventStore implements EventStore {
  /** Days (UTC midnight, epoch ms) whose partition this replica knows exists, oldest remembered first. */
  private readonly partitions = new Set<number>();
  private readonly lockKey: number;
  private closed = false;

  private constructor(
    private readonly pool: PgPool,
    private readonly schema: string,
  ) {
    this.lockKey = fnv1a32(schema);
  }

  /** Opens a pool on `url` (its `schema` parameter names the schema) and migrates the events tables. */
  static async open(url: string, opts: PgOptions = {}): Promise<PgEventStore> {
    const target = parsePgUrl(url);
    return PgEventStore.onPool(openPgPool(target, { applicationName: 'warden-events', ...opts }), target.schema);
  }

  /** As `open`, on a pool made by the caller (whose connections work in `schema`); the store ends it on close. */
  static async onPool(pool: PgPool, schema: string): Promise<PgEventStore> {
    try {
      await migratePg(pool, schema, 'events', pgEventMigrations);
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return new PgEventStore(pool, schema);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /**
   * Runs one port call. The server's refusals (unreachable, disk full, standby …) pass unchanged, as the SQLite
   * adapter's do: health.ts classifies them into WARDEN_STORE_UNAVAILABLE, and the prediction log waits out what it
   * classifies (a WardenError here would make it drop batches instead). They are tagged as this store's: the three
   * PostgreSQL stores share one server, so the error alone cannot say which refused.
   */
  private async db<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (typeof e === 'object' && e !== null && (e as { store?: unknown }).store === undefined && classifyStoreError(e)) (e as { store?: string }).store = 'events';
      throw e;
    }
  }

  // ---- predictions ---------------------------------------------------------------------------------------------

  async appendPredictions(events: readonly PredictionEvent[]): Promise<void> {
    return this.appendBatch(PredictionBatch.of(events));
  }

  async appendBatch(batch: PredictionBatch): Promise<void> {
    const n = batch.length;
    if (n === 0) return;
    return this.db(async () => {
      const cols: unknown[][] = Array.from({ length: 15 }, () => []);
      const [requestIds, tss, models, versions, statuses, routes, latencies, inputs, outputs, errors, keysJson, traceIds, copies, tsLasts, copyLists] = cols as [
        unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[], unknown[],
      ];
      const keyNames: string[] = [];
      const keyEvents: number[] = [];
      const keyRows: number[] = [];
      const days = new Set<number>();
      for (let i = 0; i < n; i++) {
        // BIGINT: Warden's times are whole milliseconds; a fraction must not fail the batch.
        const ts = Math.floor(batch.ts(i));
        days.add(dayOf(ts));
        const keys = batch.keys(i);
        requestIds.push(pgText(batch.requestId(i)));
        tss.push(ts);
        models.push(pgText(batch.model(i)));
        versions.push(batch.version(i));
        statuses.push(batch.status(i));
        routes.push(batch.route(i) ?? null);
        latencies.push(batch.latencyMs(i));
        inputs.push(batch.tensorsJson(i, 'inputs') ?? encodeRaw(batch.inputs(i)));
        outputs.push(batch.tensorsJson(i, 'outputs') ?? encodeRaw(batch.outputs(i)));
        errors.push(pgTextOrNull(batch.error(i)));
        keysJson.push(keys === undefined ? null : JSON.stringify(keys));
        traceIds.push(pgTextOrNull(batch.traceId(i)));
        const w = waveColumns(batch, i);
        copies.push(w.copies);
        tsLasts.push(w.tsLast);
        copyLists.push(w.copyList === null ? null : pgText(w.copyList));
        // Keys of failed requests name no prediction a label could join.
        if (keys === undefined || batch.status(i) !== 'ok') continue;
        for (let r = 0; r < keys.length; r++) {
          keyNames.push(pgText(keys[r]!));
          keyEvents.push(i + 1);
          keyRows.push(r);
        }
      }
      const params = keyNames.length ? [...cols, keyNames, keyEvents, keyRows] : cols;
      const sql = keyNames.length ? INSERT_WITH_KEYS : INSERT_EVENTS;
      const write = () =>
        inTransaction(this.pool, async (c) => {
          // Shared: appends run side by side; only `barrier` waits for them.
          await c.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [LOCK_APPEND, this.lockKey]);
          await c.query(sql, params);
        });
      await this.ensurePartitions(days);
      try {
        await write();
      } catch (e) {
        if (!isMissingPartition(e)) throw e;
        // Another replica pruned a day this one remembered: look again and retry once.
        for (const d of days) this.partitions.delete(d);
        await this.ensurePartitions(days);
        await write();
      }
    });
  }

  /**
   * Creates the missing day partitions, under an advisory lock so replicas creating the same day take turns (two
   * concurrent CREATE TABLE IF NOT EXISTS of one name can both pass the check and one fail). CREATE TABLE … (LIKE)
   * plus ATTACH PARTITION rather than CREATE TABLE … PARTITION OF: the latter takes an ACCESS EXCLUSIVE lock on
   * `predictions`, which queues behind any running read and blocks every replica's appends behind it at midnight;
   * ATTACH takes SHARE UPDATE EXCLUSIVE, which appends and reads do not conflict with.
   */
  private async ensurePartitions(days: Iterable<number>): Promise<void> {
    const missing = [...days].filter((d) => !this.partitions.has(d)).sort((a, b) => a - b);
    if (missing.length === 0) return;
    await inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_PARTITIONS, this.lockKey]);
      const names = missing.map(partitionName);
      const { rows } = await c.query<{ relname: string; relispartition: boolean }>(
        `SELECT c.relname, c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = ANY($2::text[])`,
        [this.schema, names],
      );
      const found = new Map(rows.map((r) => [r.relname, r.relispartition]));
      for (let i = 0; i < missing.length; i++) {
        const name = names[i]!;
        // A table of that name that is no partition is a pruned day being dropped: leave it (the write then fails).
        if (found.has(name)) continue;
        const from = missing[i]!;
        await c.query(`CREATE TABLE "${name}" (LIKE predictions INCLUDING DEFAULTS)`);
        await c.query(`ALTER TABLE predictions ATTACH PARTITION "${name}" FOR VALUES FROM (${from}) TO (${from + DAY_MS})`);
      }
    });
    for (const d of missing) {
      this.partitions.add(d);
      if (this.partitions.size > MAX_REMEMBERED_PARTITIONS) this.partitions.delete(this.partitions.values().next().value!);
    }
  }

  /**
   * Retention: drops every day partition of `predictions` that lies entirely before `before` (epoch ms), with the
   * caller keys logged in those days (a label or outcome naming one afterwards is unmatched, as for a key never
   * logged; labels already joined keep their row and read null inputs and outputs). Returns the number of
   * **partitions** (days) dropped, not rows: counting a day's rows would read the whole day first.
   *
   * DETACH PARTITION … CONCURRENTLY, then DROP TABLE: neither takes a lock that blocks other replicas' appends or
   * reads. A detach interrupted before (timeout, crash) is finished on the next call.
   */
  async prunePredictions(before: number, byModel: Readonly<Record<string, number>> = {}): Promise<number> {
    return this.db(async () => {
      const dayStart = (t: number) => dayOf(bound(t));
      const cutoffOf = (model: string) => dayStart(byModel[model] ?? before);
      // No day ends before the latest cutoff: nothing to look at.
      const latest = Math.max(dayStart(before), ...Object.values(byModel).map(dayStart));
      const c = await this.pool.connect();
      let pruned = 0;
      let broken = false;
      try {
        // Session-level: DETACH … CONCURRENTLY cannot run inside a transaction.
        await c.query('SELECT pg_advisory_lock($1, $2)', [LOCK_PARTITIONS, this.lockKey]);
        try {
          const { rows } = await c.query<{ relname: string; relispartition: boolean; pending: boolean }>(
            `SELECT c.relname, c.relispartition, COALESCE(i.inhdetachpending, false) AS pending
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname ~ '^predictions_p[0-9]{8}$'`,
            [this.schema],
          );
          for (const r of rows.sort((a, b) => (a.relname < b.relname ? -1 : 1))) {
            const day = partitionDay(r.relname);
            if (day === undefined || day + DAY_MS > latest) continue;
            const table = `"${r.relname}"`;
            const present = (await c.query<{ model: string }>(`SELECT DISTINCT model FROM ${table}`)).rows.map((m) => m.model);
            const expired = present.filter((m) => day + DAY_MS <= cutoffOf(m));
            if (expired.length === 0 && present.length > 0) continue;
            await this.keepLabelled(c, table, expired);
            if (expired.length === present.length) {
              if (r.relispartition) await c.query(`ALTER TABLE predictions DETACH PARTITION ${table} ${r.pending ? 'FINALIZE' : 'CONCURRENTLY'}`);
              await c.query(`DROP TABLE IF EXISTS ${table}`);
              this.partitions.delete(day);
            } else {
              // Other models keep this day: only the expired models' rows go, in batches.
              while ((await c.query(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM ${table} WHERE model = ANY($1) LIMIT 5000)`, [expired])).rowCount === 5000);
            }
            await c.query('DELETE FROM prediction_keys WHERE ts >= $1 AND ts < $2 AND model = ANY($3)', [day, day + DAY_MS, expired]);
            if (present.length) pruned++;
          }
        } finally {
          await c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_PARTITIONS, this.lockKey]);
        }
      } catch (err) {
        // A dead session has released its lock with it; the connection is closed, not reused.
        broken = brokenConnection(err);
        throw err;
      } finally {
        c.release(broken);
      }
      return pruned;
    });
  }

  /** Copies each labelled row of the expired models' predictions in `table` into its label, before they go. */
  private async keepLabelled(c: PgClient, table: string, models: string[]): Promise<void> {
    for (;;) {
      const { rows } = await c.query<{ id: number; row: number; inputs: string; outputs: string }>(
        `SELECT l.id, l."row", p.inputs, p.outputs FROM ${table} p JOIN labels l ON l.pred_seq = p.seq
         WHERE p.model = ANY($1) AND l.kept IS NULL LIMIT 1000`,
        [models],
      );
      if (rows.length === 0) return;
      await c.query(`UPDATE labels AS l SET kept = u.kept FROM unnest($1::bigint[], $2::text[]) AS u(id, kept) WHERE l.id = u.id`, [
        rows.map((r) => r.id),
        rows.map((r) => pgText(keptRow(r, r.row))),
      ]);
    }
  }

  async queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    return this.db(() => queryWithWaves(q, this.waveReads));
  }

  async countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number> {
    return this.db(() => countWithWaves(q, this.waveReads));
  }

  /** The SQL under queryWithWaves and countWithWaves (rows/shadow-waves.ts). */
  private readonly waveReads: WaveReads = {
    rows: async (q) => {
      const p = new Params();
      const where = predictionWhere(q, p);
      return (await this.pool.query<PredictionRow>(`SELECT * FROM predictions ${where} ORDER BY seq${q.newestFirst ? ' DESC' : ''} LIMIT ${p.add(q.limit)}`, p.values)).rows;
    },
    wavesHolding: async (needle, model, from, to, q) => {
      const p = new Params();
      const version = q.version === undefined ? '' : ` AND version = ${p.add(q.version)}`;
      const sql = `SELECT * FROM predictions WHERE copies IS NOT NULL AND model = ${p.add(pgText(model))} AND ts >= ${p.add(bound(from))} AND ts <= ${p.add(Math.floor(to))}${version}
        AND strpos(copy_list, ${p.add(pgText(needle))}) > 0 ORDER BY seq LIMIT 1000`;
      return (await this.pool.query<PredictionRow>(sql, p.values)).rows;
    },
    anchors: async (requestId) =>
      (await this.pool.query<{ model: string; ts: number }>(`SELECT DISTINCT model, ts FROM predictions WHERE request_id = $1 LIMIT 1000`, [pgText(requestId)])).rows,
    countPlain: async (q) => {
      const p = new Params();
      const where = predictionWhere(q, p);
      const plain = mayHoldWaves(q) ? (where ? `${where} AND copies IS NULL` : 'WHERE copies IS NULL') : where;
      return (await this.pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM predictions ${plain}`, p.values)).rows[0]!.n;
    },
    waveCounts: async (q) => {
      const p = new Params();
      const since = p.add(bound(q.since ?? -Infinity));
      const until = p.add(bound(q.until ?? Infinity));
      const where = predictionWhere(waveCountFilter(q), p);
      const sql = `SELECT copies, ts, ts_last, CASE WHEN ts < ${since} OR ts_last >= ${until} THEN copy_list END AS copy_list FROM predictions ${where} AND copies IS NOT NULL`;
      return (await this.pool.query<{ copies: number; ts: number; ts_last: number; copy_list: string | null }>(sql, p.values)).rows;
    },
  };

  // ---- labels ----------------------------------------------------------------------------------------------------

  /**
   * The highest seq below which every prediction is committed. Appends hold LOCK_APPEND shared from before they
   * draw a seq until they commit; taking it exclusively waits for the appends in flight and orders every later one
   * after it, so the sequence's last value read under it is such a bound. (A plain MAX(seq) is not: a replica may
   * commit seq 100 after another's 101 is visible, and a join pass that skipped past 101 would never see 100.)
   */
  private async barrier(): Promise<number> {
    return inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_APPEND, this.lockKey]);
      const { rows } = await c.query<{ last: number }>(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS last FROM prediction_seq`);
      return rows[0]!.last;
    });
  }

  /** Whether labels wait, the sequence's last value and the join watermark, in one read without locks. */
  private async joinState(): Promise<{ waiting: boolean; last: number; watermark: number }> {
    const { rows } = await this.pool.query<{ waiting: boolean; last: number; watermark: number }>(
      `SELECT EXISTS (SELECT 1 FROM labels WHERE NOT matched) AS waiting,
         (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM prediction_seq) AS last,
         COALESCE((SELECT value FROM label_state WHERE name = 'rejoin_seq'), 0) AS watermark`,
    );
    return rows[0]!;
  }

  /** A safe horizon: the watermark when nothing was logged since it was set (it was safe then), else a barrier. */
  private async horizon(state: { last: number; watermark: number }): Promise<number> {
    return state.last <= state.watermark ? state.watermark : this.barrier();
  }

  /** The join pass readers run first (queryLabelled, labelStats); skipped when no label waits or nothing is new. */
  private async joinWaiting(): Promise<void> {
    const state = await this.joinState();
    if (!state.waiting || state.last <= state.watermark) return;
    const h = await this.barrier();
    await inTransaction(this.pool, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_LABELS, this.lockKey]);
      await this.rejoin(c, h);
    });
  }

  /** The first successful prediction of each request id up to `horizon` (a caller may reuse an x-request-id). */
  private async requestTargets(c: PgClient, requestIds: readonly string[], horizon: number): Promise<Map<string, Omit<LabelTarget, 'row'>>> {
    const out = new Map<string, Omit<LabelTarget, 'row'>>();
    if (requestIds.length === 0) return out;
    const { rows } = await c.query<{ request_id: string; seq: number; ts: number; model: string; version: number; rows: string | null }>(
      `SELECT DISTINCT ON (request_id) request_id, seq, ts, model, version, warden_request_rows(inputs) AS rows
       FROM predictions WHERE request_id = ANY($1::text[]) AND status = 'ok' AND seq <= $2 ORDER BY request_id, seq`,
      [[...new Set(requestIds)], horizon],
    );
    for (const p of rows) {
      const n = p.rows === null ? NaN : Number(p.rows);
      out.set(p.request_id, { requestId: p.request_id, seq: p.seq, ts: p.ts, model: p.model, version: p.version, rows: Number.isInteger(n) ? n : null });
    }
    return out;
  }

  private async keyTargets(c: PgClient, keys: readonly string[], horizon: number): Promise<Map<string, LabelTarget>> {
    const out = new Map<string, LabelTarget>();
    if (keys.length === 0) return out;
    const { rows } = await c.query<{ key: string; request_id: string; row: number; model: string; version: number; ts: number; seq: number }>(
      `SELECT key, request_id, "row", model, version, ts, seq FROM prediction_keys WHERE key = ANY($1::text[]) AND seq <= $2`,
      [[...new Set(keys)], horizon],
    );
    for (const k of rows) out.set(k.key, { requestId: k.request_id, row: k.row, seq: k.seq, ts: k.ts, model: k.model, version: k.version, rows: null });
    return out;
  }

  /** Loads into `work` the labels holding any of `keys` or any of the (request id, row) `targets`. */
  private static async loadLabels(c: PgClient, work: LabelWork, keys: readonly string[], targets: readonly { requestId: string; row: number }[]): Promise<void> {
    if (keys.length === 0 && targets.length === 0) return;
    const { rows } = await c.query<LabelRow>(
      `SELECT * FROM labels WHERE key = ANY($1::text[])
       UNION SELECT l.* FROM labels l JOIN unnest($2::text[], $3::int[]) AS u(request_id, "row") ON l.request_id = u.request_id AND l."row" = u."row"`,
      [[...new Set(keys)], targets.map((t) => t.requestId), targets.map((t) => t.row)],
    );
    for (const r of rows) work.load(r);
  }

  /**
   * Joins labels stored before their prediction was logged, up to the safe `horizon`. As the reference: a
   * watermark (the highest seq already considered) is kept in the database, and each pass costs min(waiting
   * labels, predictions logged since) index probes. Runs in the caller's transaction, under LOCK_LABELS.
   */
  private async rejoin(c: PgClient, horizon: number): Promise<number> {
    const { rows: st } = await c.query<{ value: number }>(`SELECT value FROM label_state WHERE name = 'rejoin_seq'`);
    const watermark = st[0]?.value ?? 0;
    // The watermark was a safe horizon when it was set, so a later caller's (possibly older) one is raised to it.
    const h = Math.max(horizon, watermark);
    if (h <= watermark) return h;
    const { rows: cnt } = await c.query<{ n: number }>(`SELECT COUNT(*) AS n FROM labels WHERE NOT matched`);
    const waiting = cnt[0]!.n;
    if (waiting > 0) {
      const ids =
        waiting <= h - watermark
          ? (await c.query<{ id: number }>(`SELECT id FROM labels WHERE NOT matched ORDER BY id`)).rows.map((r) => r.id)
          : (
              await c.query<{ id: number }>(
                `SELECT l.id FROM predictions p JOIN labels l ON l.request_id = p.request_id
                 WHERE p.seq > $1 AND p.seq <= $2 AND p.status = 'ok' AND NOT l.matched
                 UNION SELECT l.id FROM prediction_keys k JOIN labels l ON l.key = k.key
                 WHERE k.seq > $1 AND k.seq <= $2 AND NOT l.matched
                 ORDER BY id`,
                [watermark, h],
              )
            ).rows.map((r) => r.id);
      for (let at = 0; at < ids.length; at += JOIN_CHUNK) await this.attachAll(c, ids.slice(at, at + JOIN_CHUNK), h);
    }
    await c.query(`INSERT INTO label_state (name, value) VALUES ('rejoin_seq', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [h]);
    return h;
  }

  /** Joins the waiting labels `ids` whose prediction is logged (up to `horizon`); merges a label into its row's label if there is one. */
  private async attachAll(c: PgClient, ids: readonly number[], horizon: number): Promise<void> {
    const work = new LabelWork();
    const { rows } = await c.query<LabelRow>(`SELECT * FROM labels WHERE id = ANY($1::bigint[])`, [ids]);
    for (const r of rows) work.load(r);
    const byKey = rows.filter((r) => r.key !== null && r.request_id === null);
    const keyTargets = await this.keyTargets(c, byKey.map((r) => r.key!), horizon);
    const requestTargets = await this.requestTargets(c, rows.filter((r) => r.request_id !== null).map((r) => r.request_id!), horizon);
    await PgEventStore.loadLabels(c, work, [], [...keyTargets.values()]);
    for (const id of ids) {
      // Re-read: an earlier label of this pass may have merged this one away or joined it.
      const label = work.get(id);
      if (!label || label.matched) continue;
      if (label.key !== null && label.request_id === null) {
        const t = keyTargets.get(label.key);
        if (!t) continue;
        const other = work.byTarget(t.requestId, t.row);
        if (!other) {
          work.put(joined(label, t, pgBool));
          continue;
        }
        // The same row was labelled by request id as well: one label remains.
        work.remove(label.id);
        work.put(joined(fold(other, label), t, pgBool));
        continue;
      }
      if (label.request_id === null) continue;
      const p = requestTargets.get(label.request_id);
      const t = p && { ...p, row: label.row ?? 0 };
      // A row beyond the request's rows never joins: it stays unmatched (and visible in the stats).
      if (!t || (t.rows !== null && t.row >= t.rows)) continue;
      work.put(joined(label, t, pgBool));
    }
    await work.flush(c);
  }

  async appendLabels(labels: readonly LabelInput[], now: number, opts: LabelIngestOptions = {}): Promise<LabelIngestResult> {
    return this.db(async () => {
      const lateAfterMs = opts.lateAfterMs ?? DEFAULT_LATE_AFTER_MS;
      // BIGINT columns: whole milliseconds.
      const at = Math.floor(now);
      const result: LabelIngestResult = { accepted: 0, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] };
      const items = labels.map((raw, index): { index: number; error: string } | { index: number; label: CheckedLabel } => {
        const checked = checkLabel(raw, at);
        if ('error' in checked) return { index, error: checked.error };
        const l = checked.label;
        return { index, label: { ...l, ...(l.key !== undefined ? { key: pgText(l.key) } : {}), ...(l.requestId !== undefined ? { requestId: pgText(l.requestId) } : {}) } };
      });
      const valid = items.flatMap((i) => ('label' in i ? [i.label] : []));
      const h0 = await this.horizon(await this.joinState());
      await inTransaction(this.pool, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_LABELS, this.lockKey]);
        const h = await this.rejoin(c, h0);
        const keys = valid.flatMap((l) => (l.key !== undefined ? [l.key] : []));
        const keyTargets = await this.keyTargets(c, keys, h);
        const requestTargets = await this.requestTargets(c, valid.flatMap((l) => (l.requestId !== undefined ? [l.requestId] : [])), h);
        const targetOf = (l: CheckedLabel): LabelTarget | undefined => {
          if (l.key !== undefined) return keyTargets.get(l.key);
          const p = requestTargets.get(l.requestId!);
          return p && { ...p, row: l.row };
        };
        const work = new LabelWork();
        const targets = valid.flatMap((l) => {
          const t = targetOf(l);
          return t ? [t] : l.requestId !== undefined ? [{ requestId: l.requestId, row: l.row }] : [];
        });
        await PgEventStore.loadLabels(c, work, keys, targets);

        const ingest = (l: CheckedLabel): string | undefined => {
          const t = targetOf(l);
          const outOfRange = rowOutOfRange(l, t);
          if (outOfRange !== undefined) return outOfRange;
          const incoming = arrivingLabel(l, t, at, lateAfterMs, pgBool);
          if (l.key !== undefined && t) {
            // A waiting label of this key and another label of its row: the join pass folds such a pair before
            // anything reads them, and does here if one was logged past the horizon it ran to.
            const mine = work.byKey(l.key);
            const other = work.byTarget(t.requestId, t.row);
            if (mine && other && mine.id !== other.id) {
              work.remove(mine.id);
              work.put(joined(fold(other, mine), t, pgBool));
            }
          }
          const existing = (l.key !== undefined ? work.byKey(l.key) : undefined) ?? (incoming.request_id !== null ? work.byTarget(incoming.request_id, incoming.row!) : undefined);
          result.accepted++;
          if (existing) {
            result.duplicates++;
            const folded = fold(existing, incoming);
            work.put(t ? joined(folded, t, pgBool) : folded);
          } else {
            work.insert(t ? joined({ ...incoming, id: 0 }, t, pgBool) : incoming);
          }
          if (!t) result.unmatched++;
          else if (isLate(l.ts, t.ts, lateAfterMs)) result.late++;
          return undefined;
        };
        for (const item of items) {
          const error = 'error' in item ? item.error : ingest(item.label);
          if (error !== undefined) {
            result.invalid++;
            result.errors.push({ index: item.index, error });
          }
        }
        await work.flush(c);
      });
      return result;
    });
  }

  async queryLabelled(q: LabelledQuery): Promise<LabelledRow[]> {
    return this.db(async () => {
      await this.joinWaiting();
      const p = new Params();
      const parts = [`model = ${p.add(q.model)}`, `version = ${p.add(q.version)}`, 'matched'];
      if (q.since !== undefined) parts.push(`pred_ts >= ${p.add(bound(q.since))}`);
      if (q.until !== undefined) parts.push(`pred_ts < ${p.add(bound(q.until))}`);
      if (q.afterId !== undefined) parts.push(`id > ${p.add(bound(q.afterId))}`);
      const { rows } = await this.pool.query<LabelRow>(`SELECT * FROM labels WHERE ${parts.join(' AND ')} ORDER BY id LIMIT ${p.add(q.limit)}`, p.values);
      // Each logged event is read and parsed once per page, however many of its rows are labelled; the page's
      // time range prunes the partitions read.
      const events = new Map<number, { inputs: unknown; outputs: unknown }>();
      if (rows.length) {
        const seqs = [...new Set(rows.map((r) => r.pred_seq!))];
        const times = rows.map((r) => r.pred_ts!);
        const { rows: found } = await this.pool.query<{ seq: number; inputs: string; outputs: string }>(
          `SELECT seq, inputs, outputs FROM predictions WHERE seq = ANY($1::bigint[]) AND ts >= $2 AND ts <= $3`,
          [seqs, Math.min(...times), Math.max(...times)],
        );
        for (const e of found) events.set(e.seq, { inputs: JSON.parse(e.inputs), outputs: JSON.parse(e.outputs) });
      }
      return rows.map((r) => toLabelledRow(r, events.get(r.pred_seq!), pgBool));
    });
  }

  async labelStats(q: { model?: string; version?: number } = {}): Promise<LabelStats> {
    return this.db(async () => {
      await this.joinWaiting();
      const p = new Params();
      const parts: string[] = [];
      if (q.model !== undefined) parts.push(`model = ${p.add(q.model)}`);
      if (q.version !== undefined) parts.push(`version = ${p.add(q.version)}`);
      const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
      const { rows: groups } = await this.pool.query<LabelGroup<boolean>>(
        `SELECT source, matched, late, COUNT(*) AS n, COALESCE(SUM(duplicates), 0)::bigint AS d FROM labels ${where} GROUP BY source, matched, late`,
        p.values,
      );
      const stats = labelStatsOf(groups, pgBool);
      const { rows } = await this.pool.query<{ n: number }>(`SELECT COALESCE(SUM(n), 0)::bigint AS n FROM key_collisions ${where}`, p.values);
      stats.duplicateKeys = rows[0]!.n;
      return stats;
    });
  }

  // ---- outcomes --------------------------------------------------------------------------------------------------

  async appendOutcomes(outcomes: readonly OutcomeInput[], now: number): Promise<OutcomeIngestResult> {
    if (outcomes.length === 0) return { accepted: 0, matched: 0, unmatched: 0, unknownKeys: [] };
    return this.db(async () => {
      // One statement: its inserts commit together, as the reference's transaction.
      const { rows } = await this.pool.query<{ matched: number; unknown: string[] | null }>(
        `WITH o AS MATERIALIZED (
           SELECT u.ord, u.key, u.metric, u.value, u.ts, k.model, k.version, k.route, k.ts AS pred_ts
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::bigint[]) WITH ORDINALITY AS u(key, metric, value, ts, ord)
           LEFT JOIN prediction_keys k ON k.key = u.key),
         ins AS (
           INSERT INTO outcomes (key, metric, value, ts, received_ts, model, version, route, pred_ts)
           SELECT key, metric, value, ts, $5, model, version, route, pred_ts FROM o ORDER BY ord)
         SELECT COUNT(*) FILTER (WHERE model IS NOT NULL) AS matched,
           (array_agg(key ORDER BY ord) FILTER (WHERE model IS NULL))[1:20] AS unknown
         FROM o`,
        [outcomes.map((o) => pgText(o.key)), outcomes.map((o) => o.metric), outcomes.map((o) => o.value), outcomes.map((o) => Math.floor(o.ts)), Math.floor(now)],
      );
      const matched = rows[0]!.matched;
      return { accepted: outcomes.length, matched, unmatched: outcomes.length - matched, unknownKeys: rows[0]!.unknown ?? [] };
    });
  }

  async outcomeStats(q: { model: string; since: number; until?: number }): Promise<OutcomeStatsRow[]> {
    return this.db(async () => {
      const { rows } = await this.pool.query<{ version: number; route: PredictionRoute | null; metric: string; n: number; sum: number; sum_sq: number }>(
        `SELECT version, route, metric, COUNT(*) AS n, SUM(value) AS sum, SUM(value * value) AS sum_sq FROM outcomes
         WHERE model = $1 AND pred_ts >= $2 AND pred_ts < $3
         GROUP BY version, route, metric ORDER BY version, route COLLATE "C" NULLS FIRST, metric COLLATE "C"`,
        [q.model, bound(q.since), bound(q.until ?? Number.MAX_SAFE_INTEGER)],
      );
      return rows.map((r) => ({ version: r.version, route: r.route, metric: r.metric, n: r.n, sum: r.sum, sumSq: r.sum_sq }));
    });
  }

  async unmatchedOutcomes(since: number): Promise<number> {
    return this.db(async () => {
      const { rows } = await this.pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM outcomes WHERE model IS NULL AND received_ts >= $1`, [bound(since)]);
      return rows[0]!.n;
    });
  }

  async countKeys(q: { model: string; version: number; since: number; until?: number }): Promise<number> {
    return this.db(async () => {
      const { rows } = await this.pool.query<{ n: number }>(
        'SELECT COUNT(*) AS n FROM prediction_keys WHERE model = $1 AND version = $2 AND ts >= $3 AND ts < $4',
        [q.model, q.version, bound(q.since), bound(q.until ?? Number.MAX_SAFE_INTEGER)],
      );
      return rows[0]!.n;
    });
  }

  // ---- SLO series --------------------------------------------------------------------------------------------------

  async addSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    // A batch naming one bucket twice adds both (ON CONFLICT cannot touch a row twice in one statement: summed first).
    return this.writeSli(
      records,
      `SELECT slo, ts, source, SUM(good), SUM(total) FROM u GROUP BY slo, ts, source`,
      'good = s.good + excluded.good, total = s.total + excluded.total',
    );
  }

  async setSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    // A batch naming one bucket twice keeps the last, as one set after the other.
    return this.writeSli(
      records,
      `SELECT DISTINCT ON (slo, ts, source) slo, ts, source, good, total FROM u ORDER BY slo, ts, source, ord DESC`,
      'good = excluded.good, total = excluded.total',
    );
  }

  /**
   * One upsert for the batch: atomic against other replicas writing the same buckets. Rows are written in key
   * order, so two replicas' batches lock shared buckets in the same order and cannot deadlock.
   */
  private async writeSli(records: readonly SliCountRecord[], select: string, onConflict: string): Promise<void> {
    if (records.length === 0) return;
    return this.db(async () => {
      await this.pool.query(
        `WITH u AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::float8[]) WITH ORDINALITY AS u(slo, ts, source, good, total, ord)),
         v AS (${select})
         INSERT INTO slo_series AS s (slo, ts, source, good, total) SELECT * FROM v ORDER BY 1, 2, 3
         ON CONFLICT (slo, ts, source) DO UPDATE SET ${onConflict}`,
        [records.map((r) => r.slo), records.map((r) => Math.floor(r.ts)), records.map((r) => r.source), records.map((r) => r.good), records.map((r) => r.total)],
      );
    });
  }

  async querySli(q: SliQuery): Promise<SliBucket[]> {
    return this.db(async () => {
      const p = new Params();
      const parts = [`slo = ${p.add(q.slo)}`];
      if (q.since !== undefined) parts.push(`ts >= ${p.add(bound(q.since))}`);
      if (q.until !== undefined) parts.push(`ts < ${p.add(bound(q.until))}`);
      const { rows } = await this.pool.query<SliBucket>(`SELECT ts, SUM(good) AS good, SUM(total) AS total FROM slo_series WHERE ${parts.join(' AND ')} GROUP BY ts ORDER BY ts`, p.values);
      return rows;
    });
  }

  async sumSli(q: { slo: string; ranges: readonly { since: number; until: number }[] }): Promise<{ good: number; total: number }[]> {
    if (q.ranges.length === 0) return [];
    return this.db(async () => {
      // One round trip; each range one index range scan (the primary key leads with slo, ts).
      const { rows } = await this.pool.query<{ good: number; total: number }>(
        `SELECT COALESCE(s.good, 0) AS good, COALESCE(s.total, 0) AS total
         FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS r(since, until, i)
         CROSS JOIN LATERAL (SELECT SUM(good) AS good, SUM(total) AS total FROM slo_series WHERE slo = $1 AND ts >= r.since AND ts < r.until) s
         ORDER BY r.i`,
        [q.slo, q.ranges.map((r) => bound(r.since)), q.ranges.map((r) => bound(r.until))],
      );
      return rows.map((r) => ({ good: r.good, total: r.total }));
    });
  }

  async deleteSli(q: { slo?: string; before?: number }): Promise<number> {
    const p = new Params();
    const parts: string[] = [];
    if (q.slo !== undefined) parts.push(`slo = ${p.add(q.slo)}`);
    if (q.before !== undefined) parts.push(`ts < ${p.add(bound(q.before))}`);
    // Neither bound would delete every series: refuse rather than guess.
    if (parts.length === 0) return 0;
    return this.db(async () => (await this.pool.query(`DELETE FROM slo_series WHERE ${parts.join(' AND ')}`, p.values)).rowCount ?? 0);
  }

  // ---- traffic -----------------------------------------------------------------------------------------------------

  /**
   * One upsert that adds in SQL (counts and sums add, min/max merge, histograms add bin by bin, error counts merge),
   * so replicas adding to one bucket at once sum exactly. Records of one bucket within the batch are merged first
   * (ON CONFLICT cannot touch a row twice in one statement); rows go in key order so batches cannot deadlock.
   */
  async addTraffic(records: readonly TrafficBucketRecord[]): Promise<void> {
    if (records.length === 0) return;
    const merged = new Map<string, TrafficBucketRecord>();
    for (const r of records) {
      const k = JSON.stringify([r.model, STEP_MS[r.step], r.ts, r.version]);
      const old = merged.get(k);
      merged.set(k, old ? mergeTraffic(old, r, 'by-code') : r);
    }
    const rs = [...merged.values()];
    const col = <T>(f: (r: TrafficBucketRecord) => T) => rs.map(f);
    return this.db(async () => {
      await this.pool.query(
        `INSERT INTO traffic AS t (model, step, ts, version, requests, ok, client_errors, server_errors, shadow, rows, latency_sum_ms, min_ms, max_ms, cpu_ms, histogram, errors)
         SELECT model, step, ts, version, requests, ok, client_errors, server_errors, shadow, rows, latency_sum_ms, min_ms, max_ms, cpu_ms, histogram::bigint[], errors::jsonb
         FROM unnest($1::text[], $2::int[], $3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::text[], $16::text[])
           AS u(model, step, ts, version, requests, ok, client_errors, server_errors, shadow, rows, latency_sum_ms, min_ms, max_ms, cpu_ms, histogram, errors)
         ORDER BY model, step, ts, version
         ON CONFLICT (model, step, ts, version) DO UPDATE SET
           requests = t.requests + excluded.requests,
           ok = t.ok + excluded.ok,
           client_errors = t.client_errors + excluded.client_errors,
           server_errors = t.server_errors + excluded.server_errors,
           shadow = t.shadow + excluded.shadow,
           rows = t.rows + excluded.rows,
           latency_sum_ms = t.latency_sum_ms + excluded.latency_sum_ms,
           min_ms = CASE WHEN t.requests > 0 AND excluded.requests > 0 THEN LEAST(t.min_ms, excluded.min_ms)
                         WHEN t.requests > 0 THEN t.min_ms ELSE excluded.min_ms END,
           max_ms = GREATEST(t.max_ms, excluded.max_ms),
           cpu_ms = t.cpu_ms + excluded.cpu_ms,
           histogram = warden_add_bins(t.histogram, excluded.histogram),
           errors = warden_merge_errors(t.errors, excluded.errors, ${MAX_ERROR_CODES})`,
        [
          col((r) => r.model),
          col((r) => STEP_MS[r.step]),
          col((r) => Math.floor(r.ts)),
          col((r) => r.version),
          col((r) => r.requests),
          col((r) => r.ok),
          col((r) => r.clientErrors),
          col((r) => r.serverErrors),
          col((r) => r.shadow),
          col((r) => r.rows),
          col((r) => r.latencySumMs),
          col((r) => r.minMs),
          col((r) => r.maxMs),
          col((r) => r.cpuMs),
          // Bins are counts; the stored histogram's tail of zeros is cut, as the reference stores it.
          col((r) => `{${trimZeros(r.histogram).map(Math.round).join(',')}}`),
          col((r) => JSON.stringify(r.errors)),
        ],
      );
    });
  }

  async queryTraffic(q: TrafficQuery): Promise<TrafficBucketRecord[]> {
    return this.db(async () => {
      const p = new Params();
      let sql = `SELECT * FROM traffic WHERE model = ${p.add(q.model)} AND step = ${p.add(STEP_MS[q.step])} AND ts >= ${p.add(bound(q.since))} AND ts < ${p.add(bound(q.until))}`;
      if (q.version !== undefined) sql += ` AND version = ${p.add(q.version)}`;
      const { rows } = await this.pool.query<TrafficRow>(`${sql} ORDER BY ts, version`, p.values);
      return rows.map(rowToTraffic);
    });
  }

  async trafficUsage(q: { step: TrafficStep; since: number; until: number }): Promise<TrafficUsageRecord[]> {
    return this.db(async () => {
      const { rows } = await this.pool.query<Pick<TrafficRow, 'model' | 'version' | 'ts' | 'requests' | 'ok' | 'shadow' | 'cpu_ms'>>(
        `SELECT model, version, ts, requests, ok, shadow, cpu_ms FROM traffic WHERE step = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, model, version`,
        [STEP_MS[q.step], bound(q.since), bound(q.until)],
      );
      return rows.map(rowToUsage);
    });
  }

  async pruneTraffic(q: { step: TrafficStep; before: number }): Promise<number> {
    return this.db(async () => (await this.pool.query(`DELETE FROM traffic WHERE step = $1 AND ts < $2`, [STEP_MS[q.step], bound(q.before)])).rowCount ?? 0);
  }

  // ---- profiles and window results ---------------------------------------------------------------------------------

  async appendProfiles(records: readonly WindowProfileRecord[]): Promise<void> {
    if (records.length === 0) return;
    return this.db(async () => {
      await this.pool.query(
        `INSERT INTO window_profiles (model, version, window_start, window_end, replica, rows, profile, created_at)
         SELECT model, version, window_start, window_end, replica, rows, profile, created_at
         FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::bigint[]) WITH ORDINALITY
           AS u(model, version, window_start, window_end, replica, rows, profile, created_at, ord)
         ORDER BY ord`,
        [
          records.map((r) => r.model),
          records.map((r) => r.version),
          records.map((r) => r.windowStart),
          records.map((r) => r.windowEnd),
          records.map((r) => r.replica),
          records.map((r) => r.rows),
          records.map((r) => JSON.stringify(r.profile)),
          records.map((r) => Math.floor(r.createdAt)),
        ],
      );
    });
  }

  async listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]> {
    return this.db(async () => {
      const p = new Params();
      const where = windowWhere(q, p);
      const { rows } = await this.pool.query<ProfileRow>(`SELECT * FROM window_profiles ${where} ORDER BY window_start, id LIMIT ${p.add(q.limit ?? 100_000)}`, p.values);
      return rows.map(toProfile);
    });
  }

  async saveMonitorResult(r: MonitorResultRecord): Promise<void> {
    return this.db(async () => {
      const key = [r.model, r.version, r.windowStart, r.windowEnd];
      const upsert = `INSERT INTO monitor_results (model, version, window_start, window_end, rows, dataset_drift, quality_failures, report, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (model, version, window_start, window_end) DO UPDATE SET rows = excluded.rows, dataset_drift = excluded.dataset_drift,
           quality_failures = excluded.quality_failures, report = excluded.report, created_at = excluded.created_at
         WHERE monitor_results.rows <= excluded.rows
         RETURNING 1`;
      const args = [...key, r.rows, r.datasetDrift, r.qualityFailures, JSON.stringify(r.report), Math.floor(r.createdAt)];
      // One statement writes both tables, so a reader sees the result and its summary change together; when the
      // result was not replaced (fewer rows than the stored one) neither is its summary. A result stored without a
      // summary must not keep its previous evaluation's.
      if (r.summary === undefined) {
        await this.pool.query(
          `WITH r AS (${upsert}) DELETE FROM monitor_summaries WHERE model = $1 AND version = $2 AND window_start = $3 AND window_end = $4 AND EXISTS (SELECT 1 FROM r)`,
          args,
        );
      } else {
        await this.pool.query(
          `WITH r AS (${upsert}) INSERT INTO monitor_summaries (model, version, window_start, window_end, summary)
           SELECT $1, $2, $3, $4, $10::text WHERE EXISTS (SELECT 1 FROM r)
           ON CONFLICT (model, version, window_start, window_end) DO UPDATE SET summary = excluded.summary`,
          [...args, JSON.stringify(r.summary)],
        );
      }
    });
  }

  async listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]> {
    return this.db(async () => {
      const p = new Params();
      const where = windowWhere(q, p);
      const { rows } = await this.pool.query<ResultRow>(
        `SELECT * FROM monitor_results ${where} ORDER BY window_start ${q.order === 'newest' ? 'DESC' : 'ASC'}, window_end LIMIT ${p.add(q.limit ?? 10_000)}`,
        p.values,
      );
      return rows.map(resultOf);
    });
  }

  async listMonitorSummaries(q: WindowQuery): Promise<MonitorSummaryRecord[]> {
    return this.db(async () => {
      const limit = q.limit ?? 10_000;
      const order = `ORDER BY window_start ${q.order === 'newest' ? 'DESC' : 'ASC'}, window_end`;
      const p = new Params();
      const where = windowWhere(q, p);
      const lim = p.add(limit);
      const { rows } = await this.pool.query<{ window_start: number; window_end: number; summary: string }>(
        `SELECT window_start, window_end, summary FROM monitor_summaries ${where} ${order} LIMIT ${lim}`,
        p.values,
      );
      const summaries = rows.map((r): MonitorSummaryRecord => ({ windowStart: r.window_start, windowEnd: r.window_end, summaryJson: r.summary }));
      // Windows stored without a summary: their full result, to be summarised by the caller.
      const pr = new Params();
      const whereR = windowWhere(q, pr, 'r.');
      const { rows: bare } = await this.pool.query<ResultRow>(
        `SELECT r.* FROM monitor_results r ${whereR} AND NOT EXISTS (SELECT 1 FROM monitor_summaries s
           WHERE s.model = r.model AND s.version = r.version AND s.window_start = r.window_start AND s.window_end = r.window_end)
         ${order} LIMIT ${pr.add(limit)}`,
        pr.values,
      );
      if (bare.length === 0) return summaries;
      const legacy = bare.map((r): MonitorSummaryRecord => ({ windowStart: r.window_start, windowEnd: r.window_end, result: resultOf(r) }));
      const sign = q.order === 'newest' ? -1 : 1;
      return [...summaries, ...legacy].sort((a, b) => sign * (a.windowStart - b.windowStart) || a.windowEnd - b.windowEnd).slice(0, limit);
    });
  }
}

const EVENT_COLUMNS = 'request_id, ts, model, version, status, route, latency_ms, inputs, outputs, error, keys, trace_id, copies, ts_last, copy_list';
const EVENT_ARRAYS = `$1::text[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::float8[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int[], $14::bigint[], $15::text[]`;

/** A batch without caller keys: one INSERT, seq from the column default in the batch's order. */
const INSERT_EVENTS = `INSERT INTO predictions (${EVENT_COLUMNS})
  SELECT ${EVENT_COLUMNS} FROM unnest(${EVENT_ARRAYS}) WITH ORDINALITY AS u(${EVENT_COLUMNS}, ord) ORDER BY ord`;

/**
 * A batch with caller keys, one statement: events get their seq first (in the batch's order), then events, keys and
 * collisions are written from them. ON CONFLICT DO NOTHING keeps a key with the prediction that has it already —
 * across replicas the one committed first — and within the batch with its first event (rows go in key, seq, row
 * order, which also makes two batches lock shared keys in the same order). Keys not inserted are collisions.
 */
const INSERT_WITH_KEYS = `WITH ev AS MATERIALIZED (
    SELECT nextval('prediction_seq') AS seq, u.* FROM unnest(${EVENT_ARRAYS}) WITH ORDINALITY AS u(${EVENT_COLUMNS}, ord)),
  p AS (
    INSERT INTO predictions (seq, ${EVENT_COLUMNS}) SELECT seq, ${EVENT_COLUMNS} FROM ev ORDER BY ord),
  want AS MATERIALIZED (
    SELECT k.key, k."row", e.request_id, e.model, e.version, e.route, e.ts, e.seq
    FROM unnest($16::text[], $17::bigint[], $18::int[]) AS k(key, ev, "row") JOIN ev e ON e.ord = k.ev),
  got AS (
    INSERT INTO prediction_keys (key, request_id, "row", model, version, route, ts, seq)
    SELECT key, request_id, "row", model, version, route, ts, seq FROM want ORDER BY key, seq, "row"
    ON CONFLICT (key) DO NOTHING
    RETURNING key, seq, "row")
  INSERT INTO key_collisions AS c (model, version, n)
  SELECT w.model, w.version, COUNT(*) FROM want w LEFT JOIN got g ON g.key = w.key AND g.seq = w.seq AND g."row" = w."row"
  WHERE g.key IS NULL GROUP BY w.model, w.version ORDER BY w.model, w.version
  ON CONFLICT (model, version) DO UPDATE SET n = c.n + excluded.n`;
