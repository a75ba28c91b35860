import { WAVE_SPAN_MS, type PredictionQuery, type StoredPredictionEvent } from '../ports.ts';
import type { PredictionBatch, StoredTensor } from '../prediction-batch.ts';
import { toStoredPrediction, type PredictionRow } from './event-rows.ts';

/**
 * Shadow waves in the predictions table. A wave (PredictionEvent.copies) is one row: `copies` its number of copies,
 * `ts` and `ts_last` its first and last copy's arrival, `copy_list` the copies' request ids, times, row counts and
 * keys as JSON, `outputs` the candidate's outputs for all of them stacked. Other rows have `copies` NULL. Both
 * adapters read through here, so a reader sees one event per copy whichever store holds them.
 */

/** The wave columns of one batch event: all null for an event that is not a wave. */
export interface WaveColumns {
  copies: number | null;
  tsLast: number | null;
  copyList: string | null;
}

const NOT_A_WAVE: WaveColumns = { copies: null, tsLast: null, copyList: null };

/** JSON of a wave's copies as `copy_list` holds it. */
interface CopyList {
  ids: string[];
  ts: number[];
  rows: number[];
  keys?: (string[] | null)[];
}

export function waveColumns(b: PredictionBatch, i: number): WaveColumns {
  const c = b.copies(i);
  if (c === undefined) return NOT_A_WAVE;
  let last = -Infinity;
  for (const t of c.ts) if (t > last) last = t;
  const list: CopyList = { ids: c.requestIds, ts: c.ts, rows: c.rows };
  if (c.keys?.some((k) => k !== undefined)) list.keys = c.keys.map((k) => k ?? null);
  return { copies: c.requestIds.length, tsLast: Math.floor(last), copyList: JSON.stringify(list) };
}

/** The wave row's copies as events, in stacking order (newest first when asked), that pass `q`'s per-copy filters. */
export function expandWave(r: PredictionRow, q: Pick<PredictionQuery, 'requestId' | 'since' | 'until' | 'newestFirst'> = {}): StoredPredictionEvent[] {
  const list = JSON.parse(r.copy_list!) as CopyList;
  const base = toStoredPrediction(r);
  const stacked = base.outputs;
  const total = list.rows.reduce((a, b) => a + b, 0);
  const tensors = Array.isArray(stacked) && stacked.every((t: StoredTensor) => t && Array.isArray(t.data) && Array.isArray(t.shape) && t.shape[0] === total) ? (stacked as StoredTensor[]) : undefined;
  const out: StoredPredictionEvent[] = [];
  let offset = 0;
  for (let c = 0; c < list.ids.length; c++) {
    const rows = list.rows[c]!;
    const from = offset;
    offset += rows;
    const id = list.ids[c]!;
    const ts = list.ts[c]!;
    if (q.requestId !== undefined && id !== q.requestId) continue;
    if (q.since !== undefined && ts < q.since) continue;
    if (q.until !== undefined && ts >= q.until) continue;
    const e: StoredPredictionEvent = { ...base, requestId: id, ts };
    delete e.keys;
    const keys = list.keys?.[c];
    if (keys) e.keys = keys;
    e.outputs = tensors
      ? tensors.map((t) => {
          const width = total > 0 ? t.data.length / total : 0;
          return { name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data: t.data.slice(from * width, (from + rows) * width) };
        })
      : stacked;
    out.push(e);
  }
  return q.newestFirst ? out.reverse() : out;
}

/** Whether rows matching `q` may include waves (shadow status or any, no route: a wave is never routed). */
export function mayHoldWaves(q: Pick<PredictionQuery, 'status' | 'route'>): boolean {
  return (q.status === undefined || q.status === 'shadow') && q.route === undefined;
}

export interface WaveReads {
  /** Rows matching `q` exactly as the SQL filters read (no per-copy filtering), ordered by seq, at most q.limit. */
  rows(q: PredictionQuery): Promise<PredictionRow[]>;
  /**
   * Wave rows of `model` whose first copy arrived in [from, to] and whose `copy_list` holds the JSON string
   * `needle`, of `q.version` when set (any status filter is shadow: only shadow rows are waves), in seq order.
   */
  wavesHolding(needle: string, model: string, from: number, to: number, q: Pick<PredictionQuery, 'version'>): Promise<PredictionRow[]>;
  /** Each (model, ts) of rows whose request_id is `requestId`: where its waves can be. */
  anchors(requestId: string): Promise<{ model: string; ts: number }[]>;
  /** COUNT(*) of the rows matching `q` that are not waves. */
  countPlain(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number>;
  /**
   * Per wave row of `q`'s model and version whose first copy arrived in [since − WAVE_SPAN_MS, until): its copies,
   * first and last copy's time, and its `copy_list` only when it straddles `since` or `until` (else null).
   */
  waveCounts(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<{ copies: number; ts: number; ts_last: number; copy_list: string | null }[]>;
}

/** queryPredictions with waves read back per copy; the store supplies the SQL. */
export async function queryWithWaves(q: PredictionQuery, db: WaveReads): Promise<StoredPredictionEvent[]> {
  if (!mayHoldWaves(q)) return (await db.rows(q)).map(toStoredPrediction);
  if (q.requestId !== undefined) return byRequestId(q, q.requestId, db);
  // A wave is filed under its first copy's time: look WAVE_SPAN_MS earlier for waves reaching past `since`.
  const wide: PredictionQuery = { ...q };
  if (q.since !== undefined) wide.since = q.since - WAVE_SPAN_MS;
  const out: StoredPredictionEvent[] = [];
  for (;;) {
    const rows = await db.rows(wide);
    for (const r of rows) {
      if (out.length >= q.limit) return out;
      if (r.copies !== null && r.copies !== undefined) out.push(...expandWave(r, q));
      else if (q.since === undefined || r.ts >= q.since) out.push(toStoredPrediction(r));
    }
    if (rows.length < wide.limit || out.length >= q.limit) return out;
    const last = rows[rows.length - 1]!.seq;
    if (q.newestFirst) wide.beforeSeq = last;
    else wide.afterSeq = last;
  }
}

async function byRequestId(q: PredictionQuery, requestId: string, db: WaveReads): Promise<StoredPredictionEvent[]> {
  const needle = JSON.stringify(requestId);
  const found = new Map<number, PredictionRow>();
  const wide: PredictionQuery = { ...q };
  if (q.since !== undefined) wide.since = q.since - WAVE_SPAN_MS;
  // The rows named by the id, a wave among them when the id is its first copy's.
  for (const r of await db.rows(wide)) found.set(r.seq, r);
  // Copies after a wave's first are found from the request's other rows (the stable answer): their waves started at
  // most WAVE_SPAN_MS before them, in the same model.
  const seen = new Set<string>();
  for (const a of await db.anchors(requestId)) {
    if (q.model !== undefined && a.model !== q.model) continue;
    const k = `${a.model}\u0000${a.ts}`;
    if (seen.has(k)) continue;
    seen.add(k);
    for (const r of await db.wavesHolding(needle, a.model, a.ts - WAVE_SPAN_MS, a.ts, q)) found.set(r.seq, r);
  }
  const rows = [...found.values()].filter((r) => (q.afterSeq === undefined || r.seq > q.afterSeq) && (q.beforeSeq === undefined || r.seq < q.beforeSeq));
  rows.sort((a, b) => (q.newestFirst ? b.seq - a.seq : a.seq - b.seq));
  const out: StoredPredictionEvent[] = [];
  for (const r of rows) {
    if (out.length >= q.limit) break;
    if (r.copies !== null && r.copies !== undefined) out.push(...expandWave(r, q));
    else if ((q.since === undefined || r.ts >= q.since) && (q.until === undefined || r.ts < q.until)) out.push(toStoredPrediction(r));
  }
  return out;
}

/** countPredictions counting each wave's copies that match, exactly; whole waves inside the range are not parsed. */
export async function countWithWaves(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>, db: WaveReads): Promise<number> {
  if (!mayHoldWaves(q)) return db.countPlain(q);
  if (q.requestId !== undefined) {
    let n = 0;
    let afterSeq: number | undefined;
    for (;;) {
      const page = await byRequestId({ ...q, limit: 1000, ...(afterSeq === undefined ? {} : { afterSeq }) }, q.requestId, db);
      n += page.length;
      if (page.length < 1000) return n;
      afterSeq = page[page.length - 1]!.seq;
    }
  }
  const plain = await db.countPlain(q);
  let copies = 0;
  for (const w of await db.waveCounts(q)) {
    const inside = (q.since === undefined || w.ts >= q.since) && (q.until === undefined || w.ts_last < q.until);
    if (inside) copies += w.copies;
    else if (w.copy_list !== null) {
      const list = JSON.parse(w.copy_list) as CopyList;
      for (const t of list.ts) if ((q.since === undefined || t >= q.since) && (q.until === undefined || t < q.until)) copies++;
    }
  }
  return plain + copies;
}

/**
 * The rows waveCounts reads for `q`: its model, version and status (the rest apply per copy), first copy from
 * WAVE_SPAN_MS before `since` and before `until`. The store adds `copies IS NOT NULL`.
 */
export function waveCountFilter(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Omit<PredictionQuery, 'limit'> {
  const f: Omit<PredictionQuery, 'limit'> = { since: (q.since ?? -Infinity) - WAVE_SPAN_MS };
  if (q.until !== undefined) f.until = q.until;
  if (q.model !== undefined) f.model = q.model;
  if (q.version !== undefined) f.version = q.version;
  if (q.status !== undefined) f.status = q.status;
  return f;
}
