import { DEFAULT_LATE_AFTER_MS, checkLabel, type CheckedLabel } from '../label-input.ts';
import type {
  EventStore,
  LabelIngestOptions,
  LabelIngestResult,
  LabelInput,
  LabelledQuery,
  LabelledRow,
  LabelStats,
  OutcomeInput,
  OutcomeIngestResult,
  OutcomeStatsRow,
  PredictionRoute,
  MonitorResultRecord,
  MonitorSummaryRecord,
  PredictionEvent,
  PredictionQuery,
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
import { openSqlite, type Migration, type SqliteDb } from './database.ts';
import { PredictionBatch } from '../prediction-batch.ts';
import { encodeRaw, sqliteBool, toMonitorResult, toProfile, type PredictionRow, type ProfileRow, type MonitorResultRow } from '../rows/event-rows.ts';
import { arrivingLabel, fold, isLate, joined, labelStatsOf, keptRow, rowOutOfRange, toLabelledRow, type LabelGroup, type LabelRow, type LabelTarget } from '../rows/label-rows.ts';
import { countWithWaves, mayHoldWaves, queryWithWaves, waveColumns, waveCountFilter, type WaveReads } from '../rows/shadow-waves.ts';
import { mergeTraffic, rowToUsage, STEP_MS, toTraffic, trimZeros, type TrafficCounts } from '../rows/traffic-rows.ts';

const migrations: Migration[] = [
  [
    `CREATE TABLE predictions (
       seq INTEGER PRIMARY KEY,
       request_id TEXT NOT NULL,
       ts INTEGER NOT NULL,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       status TEXT NOT NULL,
       latency_ms REAL NOT NULL,
       inputs TEXT NOT NULL,
       outputs TEXT NOT NULL,
       error TEXT)`,
    `CREATE INDEX predictions_model_ts ON predictions(model, ts)`,
    `CREATE INDEX predictions_request_id ON predictions(request_id)`,
  ],
  [
    `CREATE TABLE window_profiles (
       id INTEGER PRIMARY KEY,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start INTEGER NOT NULL,
       window_end INTEGER NOT NULL,
       replica TEXT NOT NULL,
       rows INTEGER NOT NULL,
       profile TEXT NOT NULL,
       created_at INTEGER NOT NULL)`,
    `CREATE INDEX window_profiles_key ON window_profiles(model, version, window_start)`,
    `CREATE TABLE monitor_results (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start INTEGER NOT NULL,
       window_end INTEGER NOT NULL,
       rows INTEGER NOT NULL,
       dataset_drift INTEGER NOT NULL,
       quality_failures INTEGER NOT NULL,
       report TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (model, version, window_start, window_end))`,
  ],
  // Delayed labels. A label names its row by request id + row, or by a caller key (prediction_keys maps keys to
  // rows). Unmatched labels (prediction not logged yet) keep request_id or key only and are joined later; the
  // joined prediction's model, version, seq and time are copied onto the label for reads and stats.
  [
    `ALTER TABLE predictions ADD COLUMN keys TEXT`,
    `CREATE TABLE prediction_keys (
       key TEXT PRIMARY KEY,
       request_id TEXT NOT NULL,
       row INTEGER NOT NULL,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       ts INTEGER NOT NULL,
       seq INTEGER NOT NULL)`,
    `CREATE INDEX prediction_keys_seq ON prediction_keys(seq)`,
    `CREATE TABLE key_collisions (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       n INTEGER NOT NULL,
       PRIMARY KEY (model, version))`,
    `CREATE TABLE labels (
       id INTEGER PRIMARY KEY,
       request_id TEXT,
       row INTEGER,
       key TEXT,
       value TEXT NOT NULL,
       label_ts INTEGER NOT NULL,
       received_ts INTEGER NOT NULL,
       source TEXT NOT NULL,
       matched INTEGER NOT NULL,
       late INTEGER NOT NULL,
       late_after_ms INTEGER NOT NULL,
       duplicates INTEGER NOT NULL DEFAULT 0,
       model TEXT,
       version INTEGER,
       pred_seq INTEGER,
       pred_ts INTEGER)`,
    // One label per prediction row and per key: a second one is a duplicate folded into the first.
    `CREATE UNIQUE INDEX labels_target ON labels(request_id, row) WHERE request_id IS NOT NULL`,
    `CREATE UNIQUE INDEX labels_key ON labels(key) WHERE key IS NOT NULL`,
    `CREATE INDEX labels_unmatched ON labels(id) WHERE matched = 0`,
    `CREATE INDEX labels_joined ON labels(model, version, id)`,
    // Covers labelStats: counting never reads the label rows themselves.
    `CREATE INDEX labels_stats ON labels(model, version, source, matched, late, duplicates)`,
    `CREATE TABLE label_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
  ],
  // OpenTelemetry trace id of each prediction (when tracing is on), to go from an event to its spans.
  [`ALTER TABLE predictions ADD COLUMN trace_id TEXT`],
  // SLO series (slo/): good/total per SLO per recording bucket and source. Traffic counts of several replicas add
  // up in one `traffic` row; each monitoring window has its own row, replaced when the window is re-evaluated.
  [
    `CREATE TABLE slo_series (
       slo TEXT NOT NULL,
       ts INTEGER NOT NULL,
       source TEXT NOT NULL,
       good REAL NOT NULL,
       total REAL NOT NULL,
       PRIMARY KEY (slo, ts, source)) WITHOUT ROWID`,
    `CREATE INDEX slo_series_ts ON slo_series(ts)`,
  ],
  // Rollouts: which side of a rollout served each routed request, and business outcomes posted by caller key
  // (A/B experiments), each joined at ingest to the prediction its key names.
  [
    `ALTER TABLE predictions ADD COLUMN route TEXT`,
    `CREATE TABLE outcomes (
       id INTEGER PRIMARY KEY,
       key TEXT NOT NULL,
       metric TEXT NOT NULL,
       value REAL NOT NULL,
       ts INTEGER NOT NULL,
       received_ts INTEGER NOT NULL,
       model TEXT,
       version INTEGER,
       route TEXT,
       pred_ts INTEGER)`,
    `CREATE INDEX outcomes_model ON outcomes(model, metric, pred_ts)`,
  ],
  // Request traffic per model version per minute and per hour (telemetry/traffic), added up across replicas.
  // `step` is the bucket length in ms; `histogram` a JSON array of latency bin counts, `errors` code → count.
  [
    `CREATE TABLE traffic (
       model TEXT NOT NULL,
       step INTEGER NOT NULL,
       ts INTEGER NOT NULL,
       version INTEGER NOT NULL,
       requests INTEGER NOT NULL,
       ok INTEGER NOT NULL,
       client_errors INTEGER NOT NULL,
       server_errors INTEGER NOT NULL,
       shadow INTEGER NOT NULL,
       rows INTEGER NOT NULL,
       latency_sum_ms REAL NOT NULL,
       min_ms REAL NOT NULL,
       max_ms REAL NOT NULL,
       cpu_ms REAL NOT NULL,
       histogram TEXT NOT NULL,
       errors TEXT NOT NULL,
       PRIMARY KEY (model, step, ts, version)) WITHOUT ROWID`,
    `CREATE INDEX traffic_step_ts ON traffic(step, ts)`,
  ],
  // A compact summary of each window's report (per-feature drift verdicts, no histograms); moved to its own table below.
  [`ALTER TABLE monitor_results ADD COLUMN summary TEXT`],
  // The newest failures of a model (GET /api/v1/predictions?status=error&order=newest) without walking its
  // successes: failures are few, so the partial index is small.
  [`CREATE INDEX predictions_errors ON predictions(model, seq) WHERE status = 'error'`],
  // Window summaries in their own table: a column after the report made every read of it walk the report's overflow
  // pages (a year of windows read ~200 MB). Insertion order is time order, so a range of summaries is contiguous.
  [
    `CREATE TABLE monitor_summaries (
       id INTEGER PRIMARY KEY,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start INTEGER NOT NULL,
       window_end INTEGER NOT NULL,
       summary TEXT NOT NULL)`,
    `CREATE UNIQUE INDEX monitor_summaries_key ON monitor_summaries(model, version, window_start, window_end)`,
    `INSERT INTO monitor_summaries (model, version, window_start, window_end, summary)
       SELECT model, version, window_start, window_end, summary FROM monitor_results WHERE summary IS NOT NULL ORDER BY window_start`,
    `ALTER TABLE monitor_results DROP COLUMN summary`,
  ],
  // Retention keeps a labelled row's inputs and outputs with its label (training sets outlive the raw log); the
  // index finds a batch's labels by the predictions about to go.
  [`ALTER TABLE labels ADD COLUMN kept TEXT`, `CREATE INDEX labels_pred_seq ON labels(pred_seq) WHERE pred_seq IS NOT NULL`],
  // Shadow waves (rows/shadow-waves.ts): the copies one candidate run answered, one row for all of them. The partial
  // index finds a request's copies inside waves, and counts them, without touching the other rows.
  [
    `ALTER TABLE predictions ADD COLUMN copies INTEGER`,
    `ALTER TABLE predictions ADD COLUMN ts_last INTEGER`,
    `ALTER TABLE predictions ADD COLUMN copy_list TEXT`,
    `CREATE INDEX predictions_waves ON predictions(model, ts) WHERE copies IS NOT NULL`,
  ],
];

// SQLite has no boolean type: flags are 0 or 1.
type LabelRecordRow = LabelRow<number>;
type ResultRow = MonitorResultRow<number>;
const resultOf = (r: ResultRow) => toMonitorResult(r, sqliteBool);

/** SQLite has no array or JSON type: histogram and errors are JSON text. */
interface TrafficRow extends TrafficCounts {
  histogram: string;
  errors: string;
}

const rowToTraffic = (r: TrafficRow) => toTraffic(r, JSON.parse(r.histogram) as number[], JSON.parse(r.errors) as Record<string, number>);

function windowWhere(q: WindowQuery): { sql: string; args: unknown[] } {
  const parts = ['model = ?', 'version = ?'];
  const args: unknown[] = [q.model, q.version];
  if (q.since !== undefined) {
    parts.push('window_start >= ?');
    args.push(q.since);
  }
  if (q.until !== undefined) {
    parts.push('window_start < ?');
    args.push(q.until);
  }
  return { sql: `WHERE ${parts.join(' AND ')}`, args };
}

function whereClause(q: Omit<PredictionQuery, 'limit'>): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    parts.push(sql);
    args.push(value);
  };
  if (q.model !== undefined) add('model = ?', q.model);
  if (q.version !== undefined) add('version = ?', q.version);
  if (q.status !== undefined) add('status = ?', q.status);
  if (q.route !== undefined) add('route = ?', q.route);
  if (q.requestId !== undefined) add('request_id = ?', q.requestId);
  if (q.since !== undefined) add('ts >= ?', q.since);
  if (q.until !== undefined) add('ts < ?', q.until);
  if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
  if (q.beforeSeq !== undefined) add('seq < ?', q.beforeSeq);
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

/** Rows bound by one INSERT statement (15 parameters each; SQLite allows 32,766 per statement). */
const ROWS_PER_INSERT = 64;

/** One predictions row; packed tensors become OIP tensor JSON without JSON.stringify's generic walk. */
function rowOf(b: PredictionBatch, i: number): unknown[] {
  const keys = b.keys(i);
  const w = waveColumns(b, i);
  return [
    b.requestId(i),
    b.ts(i),
    b.model(i),
    b.version(i),
    b.status(i),
    b.latencyMs(i),
    b.tensorsJson(i, 'inputs') ?? encodeRaw(b.inputs(i)),
    b.tensorsJson(i, 'outputs') ?? encodeRaw(b.outputs(i)),
    b.error(i) ?? null,
    keys === undefined ? null : JSON.stringify(keys),
    b.traceId(i) ?? null,
    b.route(i) ?? null,
    w.copies,
    w.tsLast,
    w.copyList,
  ];
}

/** EventStore on an embedded SQLite file; appends run as one transaction per batch. */
export class SqliteEventStore implements EventStore {
  private readonly db: SqliteDb;
  private readonly insertKey;
  private labelSql: ReturnType<SqliteEventStore['prepareLabelSql']> | undefined;

  constructor(file: string) {
    this.db = openSqlite(file, migrations);
    this.insertKey = this.db.prepare(
      `INSERT OR IGNORE INTO prediction_keys (key, request_id, row, model, version, ts, seq) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  async appendPredictions(events: readonly PredictionEvent[]): Promise<void> {
    return this.appendBatch(PredictionBatch.of(events));
  }

  /** Multi-row INSERT statements by row count: one call binds many rows (better-sqlite3's per-call cost shared). */
  private readonly insertMany = new Map<number, ReturnType<SqliteDb['prepare']>>();

  private insertRows(n: number) {
    let stmt = this.insertMany.get(n);
    if (!stmt) {
      const values = Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
      stmt = this.db.prepare(
        `INSERT INTO predictions (request_id, ts, model, version, status, latency_ms, inputs, outputs, error, keys, trace_id, route, copies, ts_last, copy_list) VALUES ${values}`,
      );
      this.insertMany.set(n, stmt);
    }
    return stmt;
  }

  async appendBatch(batch: PredictionBatch): Promise<void> {
    this.db.transaction(() => {
      let collisions: Map<string, { model: string; version: number; n: number }> | undefined;
      const seqs = new Array<number>(batch.length);
      for (let start = 0; start < batch.length; start += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, batch.length - start);
        const args: unknown[] = [];
        for (let i = start; i < start + n; i++) for (const v of rowOf(batch, i)) args.push(v);
        // Rows of one INSERT get consecutive rowids, the last one reported.
        const last = Number(this.insertRows(n).run(args).lastInsertRowid);
        for (let j = 0; j < n; j++) seqs[start + j] = last - (n - 1 - j);
      }
      for (let i = 0; i < batch.length; i++) {
        const lastInsertRowid = seqs[i]!;
        const keys = batch.keys(i);
        // Keys of failed requests name no prediction a label could join.
        if (keys === undefined || batch.status(i) !== 'ok') continue;
        const requestId = batch.requestId(i);
        const model = batch.model(i);
        const version = batch.version(i);
        const ts = batch.ts(i);
        for (let r = 0; r < keys.length; r++) {
          // A key already taken stays with its first prediction; the collision is counted, not silent.
          if (this.insertKey.run(keys[r], requestId, r, model, version, ts, lastInsertRowid).changes > 0) continue;
          collisions ??= new Map();
          const k = `${model}\u0000${version}`;
          const c = collisions.get(k) ?? { model, version, n: 0 };
          c.n++;
          collisions.set(k, c);
        }
      }
      if (collisions) {
        const bump = this.db.prepare(
          `INSERT INTO key_collisions (model, version, n) VALUES (?, ?, ?) ON CONFLICT (model, version) DO UPDATE SET n = n + excluded.n`,
        );
        for (const c of collisions.values()) bump.run(c.model, c.version, c.n);
      }
    })();
  }

  private prepareLabelSql() {
    const db = this.db;
    return {
      findRequest: db.prepare(
        // The first successful prediction with the id (a caller may reuse an x-request-id); its rows from the
        // decoded inputs the log keeps.
        `SELECT seq, ts, model, version, COALESCE(json_extract(inputs, '$[0].dims[0]'), json_extract(inputs, '$[0].shape[0]')) AS rows
         FROM predictions WHERE request_id = ? AND status = 'ok' ORDER BY seq LIMIT 1`,
      ),
      findKey: db.prepare(`SELECT request_id, row, model, version, ts, seq FROM prediction_keys WHERE key = ?`),
      byId: db.prepare(`SELECT * FROM labels WHERE id = ?`),
      byKey: db.prepare(`SELECT * FROM labels WHERE key = ?`),
      byTarget: db.prepare(`SELECT * FROM labels WHERE request_id = ? AND row = ?`),
      insert: db.prepare(
        `INSERT INTO labels (request_id, row, key, value, label_ts, received_ts, source, matched, late, late_after_ms, duplicates, model, version, pred_seq, pred_ts)
         VALUES (@request_id, @row, @key, @value, @label_ts, @received_ts, @source, @matched, @late, @late_after_ms, @duplicates, @model, @version, @pred_seq, @pred_ts)`,
      ),
      update: db.prepare(
        `UPDATE labels SET request_id = @request_id, row = @row, key = @key, value = @value, label_ts = @label_ts, received_ts = @received_ts,
           source = @source, matched = @matched, late = @late, late_after_ms = @late_after_ms, duplicates = @duplicates,
           model = @model, version = @version, pred_seq = @pred_seq, pred_ts = @pred_ts
         WHERE id = @id`,
      ),
      remove: db.prepare(`DELETE FROM labels WHERE id = ?`),
      maxSeq: db.prepare(`SELECT COALESCE(MAX(seq), 0) AS seq FROM predictions`),
      unmatchedCount: db.prepare(`SELECT COUNT(*) AS n FROM labels WHERE matched = 0`),
      unmatchedIds: db.prepare(`SELECT id FROM labels WHERE matched = 0 ORDER BY id`),
      // CROSS JOIN fixes the loop order: these walk the predictions logged since the watermark.
      unmatchedByRequestSince: db.prepare(
        `SELECT DISTINCT l.id FROM predictions p CROSS JOIN labels l ON l.request_id = p.request_id
         WHERE p.seq > ? AND p.status = 'ok' AND l.matched = 0 AND l.request_id IS NOT NULL`,
      ),
      unmatchedByKeySince: db.prepare(
        `SELECT l.id FROM prediction_keys k CROSS JOIN labels l ON l.key = k.key WHERE k.seq > ? AND l.matched = 0 AND l.key IS NOT NULL`,
      ),
      getState: db.prepare(`SELECT value FROM label_state WHERE name = ?`),
      setState: db.prepare(`INSERT INTO label_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
    };
  }

  private labels() {
    this.labelSql ??= this.prepareLabelSql();
    return this.labelSql;
  }

  private requestTarget(requestId: string, row: number): LabelTarget | undefined {
    const p = this.labels().findRequest.get(requestId) as { seq: number; ts: number; model: string; version: number; rows: unknown } | undefined;
    if (!p) return undefined;
    const rows = typeof p.rows === 'number' && Number.isInteger(p.rows) ? p.rows : null;
    return { requestId, row, seq: p.seq, ts: p.ts, model: p.model, version: p.version, rows };
  }

  private keyTarget(key: string): LabelTarget | undefined {
    const k = this.labels().findKey.get(key) as { request_id: string; row: number; model: string; version: number; ts: number; seq: number } | undefined;
    return k && { requestId: k.request_id, row: k.row, seq: k.seq, ts: k.ts, model: k.model, version: k.version, rows: null };
  }

  /**
   * Joins labels stored before their prediction was logged. Costs min(waiting labels, predictions logged since
   * the last pass) index probes: a watermark (the highest prediction seq already considered) is kept in the
   * database, and labels are checked against everything logged up to their insert. Runs inside a write transaction.
   */
  private rejoin(): void {
    const s = this.labels();
    const maxSeq = (s.maxSeq.get() as { seq: number }).seq;
    const watermark = (s.getState.get('rejoin_seq') as { value: number } | undefined)?.value ?? 0;
    if (maxSeq <= watermark) return;
    const waiting = (s.unmatchedCount.get() as { n: number }).n;
    if (waiting > 0) {
      const ids: number[] =
        waiting <= maxSeq - watermark
          ? (s.unmatchedIds.all() as { id: number }[]).map((r) => r.id)
          : [
              ...new Set([
                ...(s.unmatchedByRequestSince.all(watermark) as { id: number }[]).map((r) => r.id),
                ...(s.unmatchedByKeySince.all(watermark) as { id: number }[]).map((r) => r.id),
              ]),
            ];
      for (const id of ids) {
        // Re-read: an earlier label in this pass may have merged this one away.
        const label = s.byId.get(id) as LabelRecordRow | undefined;
        if (label && label.matched === 0) this.attach(label);
      }
    }
    s.setState.run('rejoin_seq', maxSeq);
  }

  /** Joins one waiting label when its prediction is logged now; merges it into the row's label if there is one. */
  private attach(label: LabelRecordRow): void {
    const s = this.labels();
    if (label.key !== null && label.request_id === null) {
      const t = this.keyTarget(label.key);
      if (!t) return;
      const other = s.byTarget.get(t.requestId, t.row) as LabelRecordRow | undefined;
      if (!other) {
        s.update.run(joined(label, t, sqliteBool));
        return;
      }
      // The same row was labelled by request id as well: one label remains.
      s.remove.run(label.id);
      s.update.run(joined(fold(other, label), t, sqliteBool));
      return;
    }
    if (label.request_id === null) return;
    const t = this.requestTarget(label.request_id, label.row ?? 0);
    // A row beyond the request's rows never joins: it stays unmatched (and visible in the stats).
    if (!t || (t.rows !== null && t.row >= t.rows)) return;
    s.update.run(joined(label, t, sqliteBool));
  }

  async appendLabels(labels: readonly LabelInput[], now: number, opts: LabelIngestOptions = {}): Promise<LabelIngestResult> {
    const lateAfterMs = opts.lateAfterMs ?? DEFAULT_LATE_AFTER_MS;
    const result: LabelIngestResult = { accepted: 0, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] };
    const s = this.labels();
    const ingest = (l: CheckedLabel): string | undefined => {
      const t = l.key !== undefined ? this.keyTarget(l.key) : this.requestTarget(l.requestId!, l.row);
      const outOfRange = rowOutOfRange(l, t);
      if (outOfRange !== undefined) return outOfRange;
      const incoming = arrivingLabel(l, t, now, lateAfterMs, sqliteBool);
      const existing =
        (l.key !== undefined ? (s.byKey.get(l.key) as LabelRecordRow | undefined) : undefined) ??
        (incoming.request_id !== null ? (s.byTarget.get(incoming.request_id, incoming.row) as LabelRecordRow | undefined) : undefined);
      result.accepted++;
      if (existing) {
        result.duplicates++;
        const folded = fold(existing, incoming);
        s.update.run(t ? joined(folded, t, sqliteBool) : folded);
      } else {
        s.insert.run(t ? joined({ ...incoming, id: 0 }, t, sqliteBool) : incoming);
      }
      if (!t) result.unmatched++;
      else if (isLate(l.ts, t.ts, lateAfterMs)) result.late++;
      return undefined;
    };
    // IMMEDIATE: take the write lock first, so what the rejoin and the lookups read cannot change under them
    // (the prediction writer is another connection). Committed before this resolves: a crash after the
    // answer keeps every accepted label (WAL, synchronous = NORMAL).
    this.db
      .transaction(() => {
        this.rejoin();
        labels.forEach((raw, index) => {
          const checked = checkLabel(raw, now);
          const error = 'error' in checked ? checked.error : ingest(checked.label);
          if (error !== undefined) {
            result.invalid++;
            result.errors.push({ index, error });
          }
        });
      })
      .immediate();
    return result;
  }

  async queryLabelled(q: LabelledQuery): Promise<LabelledRow[]> {
    this.db.transaction(() => this.rejoin()).immediate();
    const parts = ['model = ?', 'version = ?', 'matched = 1'];
    const args: unknown[] = [q.model, q.version];
    if (q.since !== undefined) {
      parts.push('pred_ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      parts.push('pred_ts < ?');
      args.push(q.until);
    }
    if (q.afterId !== undefined) {
      parts.push('id > ?');
      args.push(q.afterId);
    }
    const rows = this.db.prepare(`SELECT * FROM labels WHERE ${parts.join(' AND ')} ORDER BY id LIMIT ?`).all(...args, q.limit) as LabelRecordRow[];
    // Each logged event is read and parsed once per page, however many of its rows are labelled.
    const seqs = [...new Set(rows.map((r) => r.pred_seq!))];
    const events = new Map<number, { inputs: unknown; outputs: unknown }>();
    const read = this.db.prepare(`SELECT seq, inputs, outputs FROM predictions WHERE seq = ?`);
    for (const seq of seqs) {
      const e = read.get(seq) as { seq: number; inputs: string; outputs: string } | undefined;
      if (e) events.set(seq, { inputs: JSON.parse(e.inputs), outputs: JSON.parse(e.outputs) });
    }
    return rows.map((r) => toLabelledRow(r, events.get(r.pred_seq!), sqliteBool));
  }

  async labelStats(q: { model?: string; version?: number } = {}): Promise<LabelStats> {
    this.db.transaction(() => this.rejoin()).immediate();
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.model !== undefined) {
      parts.push('model = ?');
      args.push(q.model);
    }
    if (q.version !== undefined) {
      parts.push('version = ?');
      args.push(q.version);
    }
    const where = parts.length ? `WHERE ${parts.join(' AND ')}` : '';
    const groups = this.db
      .prepare(`SELECT source, matched, late, COUNT(*) AS n, SUM(duplicates) AS d FROM labels ${where} GROUP BY source, matched, late`)
      .all(...args) as LabelGroup<number>[];
    const stats = labelStatsOf(groups, sqliteBool);
    stats.duplicateKeys = (this.db.prepare(`SELECT COALESCE(SUM(n), 0) AS n FROM key_collisions ${where}`).get(...args) as { n: number }).n;
    return stats;
  }

  async appendProfiles(records: readonly WindowProfileRecord[]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO window_profiles (model, version, window_start, window_end, replica, rows, profile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const r of records) insert.run(r.model, r.version, r.windowStart, r.windowEnd, r.replica, r.rows, JSON.stringify(r.profile), r.createdAt);
    })();
  }

  async listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]> {
    const { sql, args } = windowWhere(q);
    const rows = this.db
      .prepare(`SELECT * FROM window_profiles ${sql} ORDER BY window_start, id LIMIT ?`)
      .all(...args, q.limit ?? 100_000) as ProfileRow[];
    return rows.map(toProfile);
  }

  async saveMonitorResult(r: MonitorResultRecord): Promise<void> {
    const key = [r.model, r.version, r.windowStart, r.windowEnd];
    this.db.transaction(() => {
      // A result over fewer rows than the stored one does not replace it (see EventStore.saveMonitorResult).
      const { changes } = this.db
        .prepare(
          `INSERT INTO monitor_results (model, version, window_start, window_end, rows, dataset_drift, quality_failures, report, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (model, version, window_start, window_end) DO UPDATE SET rows = excluded.rows, dataset_drift = excluded.dataset_drift,
             quality_failures = excluded.quality_failures, report = excluded.report, created_at = excluded.created_at
           WHERE monitor_results.rows <= excluded.rows`,
        )
        .run(...key, r.rows, r.datasetDrift ? 1 : 0, r.qualityFailures, JSON.stringify(r.report), r.createdAt);
      if (changes === 0) return;
      // A result stored without a summary must not keep its previous evaluation's.
      if (r.summary === undefined) {
        this.db.prepare(`DELETE FROM monitor_summaries WHERE model = ? AND version = ? AND window_start = ? AND window_end = ?`).run(...key);
      } else {
        this.db
          .prepare(
            `INSERT INTO monitor_summaries (model, version, window_start, window_end, summary) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (model, version, window_start, window_end) DO UPDATE SET summary = excluded.summary`,
          )
          .run(...key, JSON.stringify(r.summary));
      }
    })();
  }

  async listMonitorSummaries(q: WindowQuery): Promise<MonitorSummaryRecord[]> {
    const { sql, args } = windowWhere(q);
    const order = `ORDER BY window_start ${q.order === 'newest' ? 'DESC' : 'ASC'}, window_end LIMIT ?`;
    const limit = q.limit ?? 10_000;
    const summaries = (this.db.prepare(`SELECT window_start, window_end, summary FROM monitor_summaries ${sql} ${order}`).all(...args, limit) as { window_start: number; window_end: number; summary: string }[]).map(
      (r): MonitorSummaryRecord => ({ windowStart: r.window_start, windowEnd: r.window_end, summaryJson: r.summary }),
    );
    // Windows stored before summaries were: their full result, to be summarised by the caller.
    const legacy = (
      this.db
        .prepare(
          `SELECT * FROM monitor_results r ${sql} AND NOT EXISTS (SELECT 1 FROM monitor_summaries s
             WHERE s.model = r.model AND s.version = r.version AND s.window_start = r.window_start AND s.window_end = r.window_end) ${order}`,
        )
        .all(...args, limit) as ResultRow[]
    ).map((r): MonitorSummaryRecord => ({ windowStart: r.window_start, windowEnd: r.window_end, result: resultOf(r) }));
    if (legacy.length === 0) return summaries;
    const sign = q.order === 'newest' ? -1 : 1;
    return [...summaries, ...legacy].sort((a, b) => sign * (a.windowStart - b.windowStart) || a.windowEnd - b.windowEnd).slice(0, limit);
  }

  async listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]> {
    const { sql, args } = windowWhere(q);
    const rows = this.db
      .prepare(`SELECT * FROM monitor_results ${sql} ORDER BY window_start ${q.order === 'newest' ? 'DESC' : 'ASC'}, window_end LIMIT ?`)
      .all(...args, q.limit ?? 10_000) as ResultRow[];
    return rows.map(resultOf);
  }

  async queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    return queryWithWaves(q, this.waveReads);
  }

  /** The SQL under queryWithWaves and countWithWaves (rows/shadow-waves.ts). */
  private readonly waveReads: WaveReads = {
    rows: async (q) => {
      const { sql, args } = whereClause(q);
      return this.db.prepare(`SELECT * FROM predictions ${sql} ORDER BY seq${q.newestFirst ? ' DESC' : ''} LIMIT ?`).all(...args, q.limit) as PredictionRow[];
    },
    wavesHolding: async (needle, model, from, to, q) =>
      this.db
        .prepare(
          `SELECT * FROM predictions WHERE copies IS NOT NULL AND model = ? AND ts >= ? AND ts <= ?${q.version === undefined ? '' : ' AND version = ?'}
           AND instr(copy_list, ?) > 0 ORDER BY seq LIMIT 1000`,
        )
        .all(...[model, from, to, ...(q.version === undefined ? [] : [q.version]), needle]) as PredictionRow[],
    anchors: async (requestId) => this.db.prepare(`SELECT DISTINCT model, ts FROM predictions WHERE request_id = ? LIMIT 1000`).all(requestId) as { model: string; ts: number }[],
    countPlain: async (q) => {
      const { sql, args } = whereClause(q);
      const plain = mayHoldWaves(q) ? (sql ? `${sql} AND copies IS NULL` : 'WHERE copies IS NULL') : sql;
      return (this.db.prepare(`SELECT COUNT(*) AS n FROM predictions ${plain}`).get(...args) as { n: number }).n;
    },
    waveCounts: async (q) => {
      const { sql, args } = whereClause(waveCountFilter(q));
      return this.db
        .prepare(`SELECT copies, ts, ts_last, CASE WHEN ts < ? OR ts_last >= ? THEN copy_list END AS copy_list FROM predictions ${sql} AND copies IS NOT NULL`)
        .all(q.since ?? -Infinity, q.until ?? Infinity, ...args) as { copies: number; ts: number; ts_last: number; copy_list: string | null }[];
    },
  };

  async appendOutcomes(outcomes: readonly OutcomeInput[], now: number): Promise<OutcomeIngestResult> {
    const find = this.db.prepare(
      `SELECT k.model, k.version, k.ts, p.route FROM prediction_keys k JOIN predictions p ON p.seq = k.seq WHERE k.key = ?`,
    );
    const insert = this.db.prepare(
      `INSERT INTO outcomes (key, metric, value, ts, received_ts, model, version, route, pred_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let matched = 0;
    const unknownKeys: string[] = [];
    this.db.transaction(() => {
      for (const o of outcomes) {
        const hit = find.get(o.key) as { model: string; version: number; ts: number; route: PredictionRoute | null } | undefined;
        if (hit) matched++;
        else if (unknownKeys.length < 20) unknownKeys.push(o.key);
        insert.run(o.key, o.metric, o.value, o.ts, now, hit?.model ?? null, hit?.version ?? null, hit?.route ?? null, hit?.ts ?? null);
      }
    })();
    return { accepted: outcomes.length, matched, unmatched: outcomes.length - matched, unknownKeys };
  }

  async outcomeStats(q: { model: string; since: number; until?: number }): Promise<OutcomeStatsRow[]> {
    const rows = this.db
      .prepare(
        `SELECT version, route, metric, COUNT(*) AS n, SUM(value) AS sum, SUM(value * value) AS sum_sq FROM outcomes
         WHERE model = ? AND pred_ts >= ? AND pred_ts < ? GROUP BY version, route, metric`,
      )
      .all(q.model, q.since, q.until ?? Number.MAX_SAFE_INTEGER) as { version: number; route: PredictionRoute | null; metric: string; n: number; sum: number; sum_sq: number }[];
    return rows.map((r) => ({ version: r.version, route: r.route, metric: r.metric, n: r.n, sum: r.sum, sumSq: r.sum_sq }));
  }

  async countKeys(q: { model: string; version: number; since: number; until?: number }): Promise<number> {
    return (
      this.db.prepare('SELECT COUNT(*) AS n FROM prediction_keys WHERE model = ? AND version = ? AND ts >= ? AND ts < ?').get(q.model, q.version, q.since, q.until ?? Number.MAX_SAFE_INTEGER) as { n: number }
    ).n;
  }

  async unmatchedOutcomes(since: number): Promise<number> {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM outcomes WHERE model IS NULL AND received_ts >= ?').get(since) as { n: number }).n;
  }

  async countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number> {
    return countWithWaves(q, this.waveReads);
  }

  async addSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    this.writeSli(records, 'good = good + excluded.good, total = total + excluded.total');
  }

  async setSliCounts(records: readonly SliCountRecord[]): Promise<void> {
    this.writeSli(records, 'good = excluded.good, total = excluded.total');
  }

  private writeSli(records: readonly SliCountRecord[], onConflict: string): void {
    if (records.length === 0) return;
    const upsert = this.db.prepare(
      `INSERT INTO slo_series (slo, ts, source, good, total) VALUES (?, ?, ?, ?, ?) ON CONFLICT (slo, ts, source) DO UPDATE SET ${onConflict}`,
    );
    this.db.transaction(() => {
      for (const r of records) upsert.run(r.slo, r.ts, r.source, r.good, r.total);
    })();
  }

  async querySli(q: SliQuery): Promise<SliBucket[]> {
    const parts = ['slo = ?'];
    const args: unknown[] = [q.slo];
    if (q.since !== undefined) {
      parts.push('ts >= ?');
      args.push(q.since);
    }
    if (q.until !== undefined) {
      parts.push('ts < ?');
      args.push(q.until);
    }
    return this.db
      .prepare(`SELECT ts, SUM(good) AS good, SUM(total) AS total FROM slo_series WHERE ${parts.join(' AND ')} GROUP BY ts ORDER BY ts`)
      .all(...args) as SliBucket[];
  }

  async sumSli(q: { slo: string; ranges: readonly { since: number; until: number }[] }): Promise<{ good: number; total: number }[]> {
    // One indexed range scan per range (the primary key leads with slo, ts): plain sums, cheaper in SQLite than
    // one pass with a conditional sum per range on every row.
    const sum = this.db.prepare('SELECT COALESCE(SUM(good), 0) AS good, COALESCE(SUM(total), 0) AS total FROM slo_series WHERE slo = ? AND ts >= ? AND ts < ?');
    return q.ranges.map((r) => sum.get(q.slo, r.since, r.until) as { good: number; total: number });
  }

  async deleteSli(q: { slo?: string; before?: number }): Promise<number> {
    const parts: string[] = [];
    const args: unknown[] = [];
    if (q.slo !== undefined) {
      parts.push('slo = ?');
      args.push(q.slo);
    }
    if (q.before !== undefined) {
      parts.push('ts < ?');
      args.push(q.before);
    }
    // Neither bound would delete every series: refuse rather than guess.
    if (parts.length === 0) return 0;
    return this.db.prepare(`DELETE FROM slo_series WHERE ${parts.join(' AND ')}`).run(...args).changes;
  }

  async addTraffic(records: readonly TrafficBucketRecord[]): Promise<void> {
    if (records.length === 0) return;
    const get = this.db.prepare(`SELECT * FROM traffic WHERE model = ? AND step = ? AND ts = ? AND version = ?`);
    const put = this.db.prepare(
      `INSERT OR REPLACE INTO traffic (model, step, ts, version, requests, ok, client_errors, server_errors, shadow, rows, latency_sum_ms, min_ms, max_ms, cpu_ms, histogram, errors)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // Read, merge, write under the write lock (IMMEDIATE): another replica's add to the same bucket waits for it.
    this.db
      .transaction(() => {
        for (const r of records) {
          const step = STEP_MS[r.step];
          const old = get.get(r.model, step, r.ts, r.version) as TrafficRow | undefined;
          const m = old ? mergeTraffic(rowToTraffic(old), r, 'key-order') : r;
          put.run(
            m.model, step, m.ts, m.version, m.requests, m.ok, m.clientErrors, m.serverErrors, m.shadow, m.rows,
            m.latencySumMs, m.minMs, m.maxMs, m.cpuMs, JSON.stringify(trimZeros(m.histogram)), JSON.stringify(m.errors),
          );
        }
      })
      .immediate();
  }

  async queryTraffic(q: TrafficQuery): Promise<TrafficBucketRecord[]> {
    const args: unknown[] = [q.model, STEP_MS[q.step], q.since, q.until];
    let sql = `SELECT * FROM traffic WHERE model = ? AND step = ? AND ts >= ? AND ts < ?`;
    if (q.version !== undefined) {
      sql += ' AND version = ?';
      args.push(q.version);
    }
    return (this.db.prepare(`${sql} ORDER BY ts, version`).all(...args) as TrafficRow[]).map(rowToTraffic);
  }

  async trafficUsage(q: { step: TrafficStep; since: number; until: number }): Promise<TrafficUsageRecord[]> {
    const rows = this.db
      .prepare(`SELECT model, version, ts, requests, ok, shadow, cpu_ms FROM traffic WHERE step = ? AND ts >= ? AND ts < ? ORDER BY ts, model, version`)
      .all(STEP_MS[q.step], q.since, q.until) as Pick<TrafficRow, 'model' | 'version' | 'ts' | 'requests' | 'ok' | 'shadow' | 'cpu_ms'>[];
    return rows.map(rowToUsage);
  }

  async pruneTraffic(q: { step: TrafficStep; before: number }): Promise<number> {
    return this.db.prepare(`DELETE FROM traffic WHERE step = ? AND ts < ?`).run(STEP_MS[q.step], q.before).changes;
  }

  async prunePredictions(before: number, byModel: Readonly<Record<string, number>> = {}): Promise<number> {
    const DAY = 86_400_000;
    const dayStart = (t: number) => (Number.isFinite(t) ? Math.floor(t / DAY) * DAY : t > 0 ? Number.MAX_SAFE_INTEGER : Number.MIN_SAFE_INTEGER);
    // The models present, by skip-scan on (model, ts): one index probe per model, not a scan of the log.
    const models = this.db
      .prepare(
        `WITH RECURSIVE m(model) AS (SELECT MIN(model) FROM predictions
           UNION ALL SELECT (SELECT MIN(model) FROM predictions WHERE model > m.model) FROM m WHERE m.model IS NOT NULL)
         SELECT model FROM m WHERE model IS NOT NULL`,
      )
      .pluck()
      .all() as string[];
    const pick = this.db.prepare(`SELECT seq FROM predictions WHERE model = ? AND ts < ? LIMIT 5000`).pluck();
    const labelled = this.db.prepare(
      `SELECT l.id, l.row, p.inputs, p.outputs FROM labels l JOIN predictions p ON p.seq = l.pred_seq
       WHERE l.pred_seq IN (SELECT value FROM json_each(?)) AND l.kept IS NULL`,
    );
    const keep = this.db.prepare(`UPDATE labels SET kept = ? WHERE id = ?`);
    const del = this.db.prepare(`DELETE FROM predictions WHERE seq IN (SELECT value FROM json_each(?)) RETURNING ts`).pluck();
    const delKeys = this.db.prepare(`DELETE FROM prediction_keys WHERE seq IN (SELECT value FROM json_each(?))`);
    // Batches, each its own transaction: appends interleave with a long retention run instead of waiting on it.
    const batch = this.db.transaction((model: string, cutoff: number) => {
      const seqs = JSON.stringify(pick.all(model, cutoff));
      for (const l of labelled.all(seqs) as { id: number; row: number; inputs: string; outputs: string }[]) keep.run(keptRow(l, l.row), l.id);
      const gone = del.all(seqs) as number[];
      if (gone.length) delKeys.run(seqs);
      return gone;
    });
    const days = new Set<number>();
    for (const model of models) {
      const cutoff = dayStart(byModel[model] ?? before);
      for (;;) {
        const gone = batch(model, cutoff);
        for (const ts of gone) days.add(Math.floor(ts / DAY));
        if (gone.length < 5000) break;
      }
    }
    return days.size;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
