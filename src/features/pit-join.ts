/**
 * Point-in-time-correct historical retrieval (docs/features.md#point-in-time-joins), as a sort-merge join that
 * streams: memory holds sort buffers and one bucket of results, never the entity rows or the sources whole.
 *
 * The rule. For an entity row with key k at time t and a view with TTL ttl, the value joined is that of the source
 * row of key k with the greatest (event_ts, created_ts) among those with
 *   event_ts ≤ t,  created_ts ≤ t  (a row written after t was not known at t: a late backfill does not leak),
 *   and, unless ttl is 0, event_ts > t − ttl;
 * rows equal in both times: the one read last (file order, push order). None: the features are empty (null).
 *
 * How. A source row becomes visible at v = max(event_ts, created_ts) and stays visible. So per view the source rows
 * are sorted by (key, v), the entity rows by (key, t), and one pass over both keeps, per key, the best visible row so
 * far by (event_ts, created_ts): at each entity time it is the row the rule picks (if it fails the TTL, every other
 * visible row is older and fails too). Views whose entities have the same join keys share one sort of the entity
 * rows. Results are spread into buckets of consecutive row numbers, and the output is written bucket by bucket in the
 * entity rows' own order, each row with its columns passed through as they came.
 *
 * Runs on a worker thread (historical-worker.ts): every read and write here is synchronous but never on the server's
 * event loop.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { WardenError, type ErrorCode } from '../errors.ts';
import { CsvReader, fromLineSafe, LineReader, lineSafe, TextWriter } from './files.ts';
import { DEFAULT_SORT_LIMITS, ExternalSorter, type RecordSource, type SortLimits } from './sort.ts';
import { KEY_SEPARATOR, type FeatureField } from './types.ts';
import { csvField, keyText, parseTime, parseValue, type FeatureValue } from './values.ts';

/** One view of a join: what to read and which features to return. Plain data, posted to the worker. */
export interface JoinView {
  name: string;
  joinKeys: string[];
  ttlMs: number;
  timestampField: string;
  createdTimestampField?: string;
  /** The features returned, in output order. */
  features: FeatureField[];
  /** A file on this machine, or the view's pushed rows dumped by the server (lines `[entityKey, eventTs, createdTs, values]`). */
  source: { kind: 'csv' | 'parquet' | 'dump'; path: string };
}

export type EntityInput =
  /** A CSV with a header: the join keys by name, the time in `timestampColumn`; every column is passed through. */
  | { kind: 'csv'; path: string; timestampColumn: string }
  /** Lines `[time, {joinKey: value}, payload]`; the payload (any JSON) is passed through. */
  | { kind: 'jsonl'; path: string };

export interface JoinJob {
  /** A folder of its own for sort runs, buckets and the spool; removed at the end. */
  tmpDir: string;
  /** In output order (see {@link orderViews}). */
  views: JoinView[];
  /** The output's feature column names, one per feature of `views` in order. */
  featureColumns: string[];
  entities: EntityInput;
  /** `csv`: CSV text with a header; `rows`: JSON arrays `[payload, [values…]]`. */
  output: 'csv' | 'rows';
  sort?: SortLimits;
  /** Rows per output bucket; default from the feature count, so a bucket's results stay a few tens of MB. */
  bucketRows?: number;
}

export interface JoinStats {
  rows: number;
  sourceRows: Record<string, number>;
  /** Entity rows without a value for the view (no key, or nothing visible within TTL). */
  missing: Record<string, number>;
  runs: number;
  buckets: number;
  ms: { entities: number; sources: number; merge: number; output: number };
}

export interface JoinHooks {
  /** Everything is read and checked; output follows. `columns` are the output's (passed-through columns first). */
  ready(info: { rows: number; columns: string[] }): void;
  /** Output text, in order. May block (back-pressure). */
  emit(text: string): void;
}

/** A failure the caller's data caused (entity rows, a source's contents), with the row and column. */
export class JoinDataError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode = 'WARDEN_BAD_REQUEST',
  ) {
    super(message);
  }
}

const fail = (msg: string): never => {
  throw new JoinDataError(msg);
};

/** The group of a view: views with the same join keys share a sort of the entity rows. */
const groupKey = (v: { joinKeys: readonly string[] }) => JSON.stringify(v.joinKeys);

/**
 * Output order of views: by group (in the order each group is first named), then as named. Columns then come view by
 * view, views of the same join keys together.
 */
export function orderViews<T extends { joinKeys: readonly string[] }>(views: readonly T[]): T[] {
  const groups = new Map<string, T[]>();
  for (const v of views) {
    const k = groupKey(v);
    const g = groups.get(k);
    if (g) g.push(v);
    else groups.set(k, [v]);
  }
  return [...groups.values()].flat();
}

interface Group {
  joinKeys: string[];
  views: JoinView[];
  /** Offsets of the views' features among the output's feature columns. */
  sorter: ExternalSorter;
  keyColumns: number[];
  empty: string;
}

const emptyText = (features: number, output: 'csv' | 'rows') => (output === 'csv' ? ','.repeat(Math.max(0, features - 1)) : Array(features).fill('null').join(','));

function cellText(v: FeatureValue, output: 'csv' | 'rows'): string {
  if (v === null) return output === 'csv' ? '' : 'null';
  if (output === 'rows') return typeof v === 'string' ? JSON.stringify(v) : String(v);
  return typeof v === 'string' ? csvField(v) : String(v);
}

/** Runs the join; throws {@link JoinDataError} for bad entity rows or source contents (before `ready`). */
export async function runJoin(job: JoinJob, hooks: JoinHooks): Promise<JoinStats> {
  mkdirSync(job.tmpDir, { recursive: true });
  try {
    return await join(job, hooks);
  } finally {
    rmSync(job.tmpDir, { recursive: true, force: true });
  }
}

async function join(job: JoinJob, hooks: JoinHooks): Promise<JoinStats> {
  const limits = job.sort ?? DEFAULT_SORT_LIMITS;
  const totalFeatures = job.views.reduce((n, v) => n + v.features.length, 0);
  if (job.featureColumns.length !== totalFeatures) throw new Error('featureColumns must name every feature of the views');
  const stats: JoinStats = { rows: 0, sourceRows: {}, missing: {}, runs: 0, buckets: 0, ms: { entities: 0, sources: 0, merge: 0, output: 0 } };
  const groups = new Map<string, Group>();
  for (const v of job.views) {
    const k = groupKey(v);
    let g = groups.get(k);
    if (!g) {
      g = { joinKeys: v.joinKeys, views: [], sorter: new ExternalSorter(job.tmpDir, `entities-${groups.size}`, limits), keyColumns: [], empty: '' };
      groups.set(k, g);
    }
    g.views.push(v);
    stats.missing[v.name] = 0;
  }
  for (const g of groups.values()) g.empty = emptyText(g.views.reduce((n, v) => n + v.features.length, 0), job.output);
  const order = [...groups.values()].flatMap((g) => g.views.map((v) => v.name));
  if (order.join('\u0000') !== job.views.map((v) => v.name).join('\u0000')) throw new Error('views must be in orderViews order');

  // 1. Entity rows: spooled as they came (their columns pass through), and one (key, time, row) record per group.
  let t0 = performance.now();
  const spool = new TextWriter(path.join(job.tmpDir, 'spool'), 1 << 20);
  const passThrough = readEntities(job, [...groups.values()], spool);
  spool.close();
  for (const g of groups.values()) g.sorter.seal();
  const rows = passThrough.rows;
  stats.rows = rows;
  const columns = [...passThrough.columns, ...job.featureColumns];
  stats.ms.entities = performance.now() - t0;

  // 2. Each view's source rows, sorted by (key, visible-from time).
  t0 = performance.now();
  const sorted = new Map<string, ExternalSorter>();
  for (const v of job.views) {
    const sorter = new ExternalSorter(job.tmpDir, `source-${sorted.size}`, limits);
    stats.sourceRows[v.name] = await readSource(v, job.output, sorter);
    sorter.seal();
    sorted.set(v.name, sorter);
  }
  stats.ms.sources = performance.now() - t0;
  hooks.ready({ rows, columns });

  // 3. Per group, the merge: each entity record gets the best visible row of each view; results go to buckets.
  t0 = performance.now();
  const bucketRows = job.bucketRows ?? Math.max(1000, Math.min(100_000, Math.floor(2_000_000 / (totalFeatures + 4))));
  const nBuckets = Math.max(1, Math.ceil(rows / bucketRows));
  stats.buckets = nBuckets;
  const bucketFile = (g: number, b: number) => path.join(job.tmpDir, `g${g}.b${b}`);
  for (const [gi, g] of [...groups.values()].entries()) {
    stats.runs += g.sorter.spilled;
    const entities = g.sorter.finish();
    const sources = g.views.map((v) => {
      const s = sorted.get(v.name)!;
      stats.runs += s.spilled;
      return new ViewCursor(v, s.finish(), emptyText(v.features.length, job.output));
    });
    const writers = Array.from({ length: nBuckets }, (_, b) => new TextWriter(bucketFile(gi, b)));
    const texts: string[] = new Array<string>(sources.length);
    try {
      for (let e = entities.next(); e; e = entities.next()) {
        let any = false;
        for (let s = 0; s < sources.length; s++) {
          const found = sources[s]!.at(e.key, e.time);
          if (found === undefined) {
            texts[s] = sources[s]!.empty;
            stats.missing[g.views[s]!.name]!++;
          } else {
            texts[s] = found;
            any = true;
          }
        }
        if (!any) continue;
        const row = Number(e.rest);
        writers[Math.floor(row / bucketRows)]!.write(`${row}\t${lineSafe(texts.join(','))}\n`);
      }
    } finally {
      for (const w of writers) w.close();
      entities.close();
      for (const s of sources) s.close();
    }
  }
  // Rows without a key for a group were never merged: they are missing in each of its views.
  for (const g of groups.values()) {
    const skipped = rows - g.sorter.count;
    for (const v of g.views) stats.missing[v.name]! += skipped;
  }
  stats.ms.merge = performance.now() - t0;

  // 4. Output in the entity rows' order, a bucket at a time.
  t0 = performance.now();
  const out = new Output(hooks, job.output);
  if (job.output === 'csv') out.add(`${columns.map(csvField).join(',')}\n`);
  const payloads = new LineReader(path.join(job.tmpDir, 'spool'));
  const groupList = [...groups.values()];
  for (let b = 0; b < nBuckets; b++) {
    const first = b * bucketRows;
    const n = Math.min(bucketRows, rows - first);
    const results = groupList.map((g, gi) => {
      const texts = new Array<string | undefined>(n);
      const r = new LineReader(bucketFile(gi, b));
      for (let line = r.next(); line !== undefined; line = r.next()) {
        if (line === '') continue;
        const tab = line.indexOf('\t');
        texts[Number(line.slice(0, tab)) - first] = fromLineSafe(line.slice(tab + 1));
      }
      r.close();
      rmSync(bucketFile(gi, b), { force: true });
      return { texts, empty: g.empty };
    });
    for (let i = 0; i < n; i++) {
      const payload = fromLineSafe(payloads.next()!);
      let features = '';
      for (let gi = 0; gi < results.length; gi++) {
        const r = results[gi]!;
        features += (gi ? ',' : '') + (r.texts[i] ?? r.empty);
      }
      if (job.output === 'csv') out.add(`${payload}${totalFeatures ? ',' : ''}${features}\n`);
      else out.row(`[${payload},[${features}]]`);
    }
  }
  payloads.close();
  out.flush();
  stats.ms.output = performance.now() - t0;
  return stats;
}

/** Output text gathered into chunks of about 256 kB. */
class Output {
  private parts: string[] = [];
  private size = 0;
  private rowsInChunk = 0;
  constructor(
    private readonly hooks: JoinHooks,
    private readonly output: 'csv' | 'rows',
  ) {}

  add(text: string): void {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= 1 << 18) this.flush();
  }

  row(json: string): void {
    this.rowsInChunk++;
    this.add(json);
  }

  flush(): void {
    if (this.parts.length === 0) return;
    this.hooks.emit(this.output === 'csv' ? this.parts.join('') : `[${this.parts.join(',')}]`);
    this.parts = [];
    this.size = 0;
    this.rowsInChunk = 0;
  }
}

/** A view's sorted source rows, walked alongside the sorted entity records of its group. */
class ViewCursor {
  private key: string | undefined;
  private head: { key: string; time: number; rest: string } | undefined;
  private best: { e: number; c: number; text: string } | undefined;

  constructor(
    private readonly view: JoinView,
    private readonly source: RecordSource,
    readonly empty: string,
  ) {
    this.head = source.next();
  }

  /** The features' text for key at time t (entity records arrive in (key, t) order), or undefined when none. */
  at(key: string, t: number): string | undefined {
    if (key !== this.key) {
      this.key = key;
      this.best = undefined;
      while (this.head && this.head.key < key) this.head = this.source.next();
    }
    while (this.head && this.head.key === key && this.head.time <= t) {
      const rest = this.head.rest;
      const a = rest.indexOf('\t');
      const b = rest.indexOf('\t', a + 1);
      const e = Number(rest.slice(0, a));
      const c = Number(rest.slice(a + 1, b));
      // Equal in both times: the later row (the sort is stable) wins.
      if (!this.best || e > this.best.e || (e === this.best.e && c >= this.best.c)) this.best = { e, c, text: rest.slice(b + 1) };
      this.head = this.source.next();
    }
    const best = this.best;
    if (!best) return undefined;
    if (this.view.ttlMs > 0 && best.e <= t - this.view.ttlMs) return undefined;
    return fromLineSafe(best.text);
  }

  close(): void {
    this.source.close();
  }
}

/** Reads the entity rows: spools each row's pass-through, adds a record per group. Returns the row count and columns. */
function readEntities(job: JoinJob, groups: Group[], spool: TextWriter): { rows: number; columns: string[] } {
  const input = job.entities;
  if (input.kind === 'jsonl') {
    const r = new LineReader(input.path);
    let rows = 0;
    try {
      for (let line = r.next(); line !== undefined; line = r.next()) {
        if (line === '') continue;
        const [time, keys, payload] = JSON.parse(line) as [number, Record<string, unknown>, unknown];
        spool.write(`${lineSafe(JSON.stringify(payload ?? null))}\n`);
        for (const g of groups) {
          const key = entityKey(g.joinKeys.map((k) => keyText(keys[k])));
          if (key !== undefined) g.sorter.add(JSON.stringify(key), time, String(rows));
        }
        rows++;
      }
    } finally {
      r.close();
    }
    return { rows, columns: [] };
  }
  let csv: CsvReader;
  try {
    csv = new CsvReader(input.path);
  } catch (e) {
    return fail(`cannot read the entity rows: ${(e as Error).message}`);
  }
  try {
    const header = csv.next();
    if (!header || (header.length === 1 && header[0] === '')) return fail('the entity rows are empty: send a CSV with a header row, e.g. station_id,event_timestamp');
    const names = header.map((h) => h.trim());
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) fail(`the entity rows have the column ${JSON.stringify(dup)} twice`);
    const tsCol = names.indexOf(input.timestampColumn);
    if (tsCol < 0) fail(`timestampColumn: the entity rows have no column ${JSON.stringify(input.timestampColumn)} (their columns: ${names.join(', ')}); name the time column`);
    for (const g of groups) {
      g.keyColumns = g.joinKeys.map((k) => {
        const i = names.indexOf(k);
        if (i < 0) fail(`the entity rows have no column ${JSON.stringify(k)}, the join key of view ${g.views.map((v) => v.name).join(', ')} (their columns: ${names.join(', ')})`);
        return i;
      });
    }
    for (const c of job.featureColumns) {
      if (names.includes(c)) fail(`feature column ${JSON.stringify(c)} has the name of a column of the entity rows; rename that column, or ask for full names (view__feature)`);
    }
    let rows = 0;
    const vals: (string | undefined)[] = [];
    for (let row = csv.next(); row; row = csv.next()) {
      if (row.length !== names.length) fail(`entity row ${rows + 1} (line ${csv.line}) has ${row.length} fields; the header has ${names.length}`);
      const time = parseTime(row[tsCol]);
      if (time === undefined) fail(`entity row ${rows + 1} (line ${csv.line}): ${input.timestampColumn} ${JSON.stringify(row[tsCol]!.slice(0, 80))} is not a time (epoch ms or ISO-8601)`);
      let payload = '';
      for (let i = 0; i < row.length; i++) payload += (i ? ',' : '') + csvField(row[i]);
      spool.write(`${lineSafe(payload)}\n`);
      for (const g of groups) {
        vals.length = 0;
        for (const c of g.keyColumns) vals.push(keyText(row[c]));
        const key = entityKey(vals);
        if (key !== undefined) g.sorter.add(JSON.stringify(key), time!, String(rows));
      }
      rows++;
    }
    return { rows, columns: names };
  } finally {
    csv.close();
  }
}

/** The entity key of join-key values (KEY_SEPARATOR between them); undefined when one is missing. */
function entityKey(values: readonly (string | undefined)[]): string | undefined {
  if (values.length === 1) return values[0];
  for (const v of values) if (v === undefined) return undefined;
  return values.join(KEY_SEPARATOR);
}

/** A finite number in JSON's syntax (the exponent bounded so it stays finite). */
const NUMBER_TEXT = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d{1,2})?$/;
/** A safe integer in JSON's syntax. */
const INT_TEXT = /^-?(?:0|[1-9]\d{0,14})$/;

/** Adds a view's source rows to its sorter; returns how many. */
async function readSource(v: JoinView, output: 'csv' | 'rows', sorter: ExternalSorter): Promise<number> {
  const out: { value: FeatureValue } = { value: null };
  const add = (key: string, e: number, c: number, cells: readonly unknown[], where: () => string) => {
    let text = '';
    for (let j = 0; j < v.features.length; j++) {
      const f = v.features[j]!;
      const raw = cells[j];
      // A number already written as JSON would write it (valid in CSV too) is kept as it came: no parse and re-format.
      if (typeof raw === 'string' && (f.dtype === 'float' ? NUMBER_TEXT.test(raw) : f.dtype === 'int' && INT_TEXT.test(raw))) {
        text += (j ? ',' : '') + raw;
        continue;
      }
      const why = parseValue(f.dtype, raw, out);
      if (why) fail(`view ${v.name}: ${where()}: feature ${f.name} ${JSON.stringify(String(cells[j])).slice(0, 80)} is ${why}, so not a ${f.dtype}`);
      text += (j ? ',' : '') + cellText(out.value, output);
    }
    sorter.add(JSON.stringify(key), Math.max(e, c), `${e}\t${c}\t${lineSafe(text)}`);
  };
  const src = v.source;
  let n = 0;
  if (src.kind === 'dump') {
    const r = new LineReader(src.path);
    try {
      for (let line = r.next(); line !== undefined; line = r.next()) {
        if (line === '') continue;
        const [key, e, c, values] = JSON.parse(line) as [string, number, number, Record<string, unknown>];
        n++;
        add(key, e, c, v.features.map((f) => values[f.name] ?? null), () => `pushed row ${n}`);
      }
    } finally {
      r.close();
    }
    return n;
  }
  const needed = [...v.joinKeys, v.timestampField, ...(v.createdTimestampField ? [v.createdTimestampField] : []), ...v.features.map((f) => f.name)];
  const keyCount = v.joinKeys.length;
  const eventAt = keyCount;
  const createdAt = v.createdTimestampField ? keyCount + 1 : -1;
  const featureAt = keyCount + (v.createdTimestampField ? 2 : 1);
  const addRow = (cells: readonly unknown[], where: () => string) => {
    const keys: (string | undefined)[] = [];
    for (let k = 0; k < keyCount; k++) keys.push(keyText(cells[k]));
    const key = entityKey(keys);
    // A row without its key can never be joined.
    if (key === undefined && keyCount > 0) return;
    const e = parseTime(cells[eventAt]);
    if (e === undefined) fail(`view ${v.name}: ${where()}: ${v.timestampField} ${JSON.stringify(String(cells[eventAt])).slice(0, 80)} is not a time`);
    let c = e!;
    if (createdAt >= 0) {
      const raw = cells[createdAt];
      if (raw !== '' && raw !== null && raw !== undefined) {
        const t = parseTime(raw);
        if (t === undefined) fail(`view ${v.name}: ${where()}: ${v.createdTimestampField} ${JSON.stringify(String(raw)).slice(0, 80)} is not a time`);
        c = t!;
      }
    }
    n++;
    add(key ?? '', e!, c, cells.slice(featureAt), where);
  };
  if (src.kind === 'csv') {
    let csv: CsvReader;
    try {
      csv = new CsvReader(src.path);
    } catch (e) {
      return fail(`view ${v.name}: cannot read ${src.path}: ${(e as Error).message}`);
    }
    try {
      const header = (csv.next() ?? []).map((h) => h.trim());
      const idx = needed.map((c) => {
        const i = header.indexOf(c);
        if (i < 0) fail(`view ${v.name}: column ${JSON.stringify(c)} is not in ${src.path} (its columns: ${header.slice(0, 50).join(', ')})`);
        return i;
      });
      const cells: string[] = new Array<string>(idx.length);
      for (let row = csv.next(); row; row = csv.next()) {
        if (row.length !== header.length) fail(`view ${v.name}: ${src.path} line ${csv.line} has ${row.length} fields; the header has ${header.length}`);
        for (let j = 0; j < idx.length; j++) cells[j] = row[idx[j]!]!;
        addRow(cells, () => `${src.path} line ${csv.line}`);
      }
    } finally {
      csv.close();
    }
    return n;
  }
  // Parquet: a slice of rows at a time (a row group may be large).
  let file: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    file = await asyncBufferFromFile(src.path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    return fail(`view ${v.name}: cannot read ${src.path} as Parquet: ${(e as Error).message}`);
  }
  const total = Number(metadata.num_rows);
  const SLICE = 50_000;
  for (let start = 0; start < total; start += SLICE) {
    const objects = (await parquetReadObjects({ file, metadata, rowStart: start, rowEnd: Math.min(total, start + SLICE), columns: needed })) as Record<string, unknown>[];
    for (const [j, o] of objects.entries()) {
      if (start === 0 && j === 0) for (const c of needed) if (!(c in o)) fail(`view ${v.name}: column ${JSON.stringify(c)} is not in ${src.path}`);
      addRow(
        needed.map((c) => o[c]),
        () => `${src.path} row ${start + j + 1}`,
      );
    }
  }
  return n;
}

/** A worker's error as the main thread rebuilds it. */
export function joinErrorOf(e: unknown): { code: ErrorCode; message: string } {
  if (e instanceof JoinDataError) return { code: e.code, message: e.message };
  if (e instanceof WardenError) return { code: e.code, message: e.message };
  return { code: 'WARDEN_INTERNAL', message: `historical retrieval failed: ${(e as Error).message ?? String(e)}` };
}
