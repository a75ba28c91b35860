/**
 * Delayed labels as both adapters keep them: the label row, the prediction it joins, and the rules that fold two
 * labels of one row and join a label to its prediction. SQLite applies them one row at a time in its transaction,
 * PostgreSQL to the rows one transaction loaded; the rules are one, so the adapters count and return the same.
 */
import type { LabelledRow, LabelSource, LabelStats, LabelValue } from '../ports.ts';
import type { CheckedLabel } from '../label-input.ts';
import type { BoolColumn } from './event-rows.ts';

/** A labels row, `B` being how its database holds a boolean (see BoolColumn). */
export interface LabelRow<B> {
  id: number;
  request_id: string | null;
  row: number | null;
  key: string | null;
  value: string;
  label_ts: number;
  received_ts: number;
  source: LabelSource;
  matched: B;
  late: B;
  late_after_ms: number;
  duplicates: number;
  model: string | null;
  version: number | null;
  pred_seq: number | null;
  pred_ts: number | null;
  /** The labelled row's inputs and outputs (JSON of {inputs, outputs}), kept when retention removed its prediction. */
  kept: string | null;
}

/** The logged prediction row a label joins to. */
export interface LabelTarget {
  requestId: string;
  row: number;
  seq: number;
  ts: number;
  model: string;
  version: number;
  /** Rows of the request, when its logged inputs say (unknown for hand-written events). */
  rows: number | null;
}

export const isLate = (labelTs: number, predTs: number, lateAfterMs: number) => labelTs - predTs > lateAfterMs;

/** Why a label by request id cannot join its target, when the row it names is past the request's rows. */
export function rowOutOfRange(l: CheckedLabel, t: LabelTarget | undefined): string | undefined {
  if (!t || l.requestId === undefined || t.rows === null || l.row < t.rows) return undefined;
  return `row ${l.row} is out of range: request ${l.requestId} has ${t.rows} row${t.rows === 1 ? '' : 's'}`;
}

/** A label as it arrives, not joined yet: a target found at ingest is applied by `joined`. */
export function arrivingLabel<B>(l: CheckedLabel, t: LabelTarget | undefined, receivedTs: number, lateAfterMs: number, bool: BoolColumn<B>): Omit<LabelRow<B>, 'id'> {
  return {
    request_id: t?.requestId ?? l.requestId ?? null,
    row: t?.row ?? (l.requestId !== undefined ? l.row : null),
    key: l.key ?? null,
    value: l.value,
    label_ts: l.ts,
    received_ts: receivedTs,
    source: l.source,
    matched: bool.of(false),
    late: bool.of(false),
    late_after_ms: lateAfterMs,
    duplicates: 0,
    model: null,
    version: null,
    pred_seq: null,
    pred_ts: null,
    kept: null,
  };
}

/** The row's columns once joined to `t`, lateness computed for the row's (winning) label time. */
export function joined<B>(r: LabelRow<B>, t: LabelTarget, bool: BoolColumn<B>): LabelRow<B> {
  return {
    ...r,
    request_id: t.requestId,
    row: t.row,
    matched: bool.of(true),
    late: bool.of(isLate(r.label_ts, t.ts, r.late_after_ms)),
    model: t.model,
    version: t.version,
    pred_seq: t.seq,
    pred_ts: t.ts,
  };
}

/**
 * Folds `incoming` into `kept` (two labels of one row): the later label time wins, ties go to the one
 * received later; duplicates add up.
 */
export function fold<B>(kept: LabelRow<B>, incoming: Omit<LabelRow<B>, 'id'>): LabelRow<B> {
  const newer = incoming.label_ts > kept.label_ts || (incoming.label_ts === kept.label_ts && incoming.received_ts >= kept.received_ts);
  const winner = newer ? incoming : kept;
  return {
    ...kept,
    key: kept.key ?? incoming.key,
    value: winner.value,
    label_ts: winner.label_ts,
    received_ts: winner.received_ts,
    source: winner.source,
    late_after_ms: winner.late_after_ms,
    duplicates: kept.duplicates + incoming.duplicates + 1,
  };
}

/** The values of one row from a logged list of tensors (`dims` or `shape` first dimension = rows). */
export function tensorRow(tensors: unknown, row: number): Record<string, unknown[]> | null {
  if (!Array.isArray(tensors)) return null;
  const out: Record<string, unknown[]> = {};
  for (const t of tensors as Partial<{ name: string; dims: number[]; shape: number[]; data: unknown }>[]) {
    if (t === null || typeof t !== 'object' || typeof t.name !== 'string' || !Array.isArray(t.data)) continue;
    const rows = (t.dims ?? t.shape)?.[0];
    if (typeof rows !== 'number' || rows <= 0 || row >= rows) continue;
    const width = t.data.length / rows;
    out[t.name] = t.data.slice(row * width, (row + 1) * width);
  }
  return out;
}

/**
 * A joined label with its prediction's row of inputs and outputs; `event` is the logged prediction, undefined once
 * retention removed it.
 */
export function toLabelledRow<B>(r: LabelRow<B>, event: { inputs: unknown; outputs: unknown } | undefined, bool: BoolColumn<B>): LabelledRow {
  // Retention removed the prediction: what it kept of the labelled row stands in for it.
  const kept = !event && r.kept ? (JSON.parse(r.kept) as { inputs: Record<string, unknown[]> | null; outputs: Record<string, unknown[]> | null }) : undefined;
  return {
    id: r.id,
    requestId: r.request_id!,
    row: r.row!,
    ...(r.key === null ? {} : { key: r.key }),
    ts: r.pred_ts!,
    outputs: event ? tensorRow(event.outputs, r.row!) : (kept?.outputs ?? null),
    inputs: event ? tensorRow(event.inputs, r.row!) : (kept?.inputs ?? null),
    label: JSON.parse(r.value) as LabelValue,
    labelTs: r.label_ts,
    source: r.source,
    late: bool.is(r.late),
  };
}

/** One group of `SELECT source, matched, late, COUNT(*) AS n, SUM(duplicates) AS d FROM labels … GROUP BY source, matched, late`. */
export interface LabelGroup<B> {
  source: LabelSource;
  matched: B;
  late: B;
  n: number;
  d: number;
}

/** The label counts of the groups; the key collisions come from elsewhere, so the caller sets duplicateKeys. */
export function labelStatsOf<B>(groups: readonly LabelGroup<B>[], bool: BoolColumn<B>): LabelStats {
  const stats: LabelStats = { total: 0, matched: 0, unmatched: 0, duplicates: 0, late: 0, bySource: { human: 0, system: 0, model: 0 }, duplicateKeys: 0 };
  for (const g of groups) {
    stats.total += g.n;
    if (bool.is(g.matched)) stats.matched += g.n;
    else stats.unmatched += g.n;
    if (bool.is(g.late)) stats.late += g.n;
    stats.duplicates += g.d;
    stats.bySource[g.source] = (stats.bySource[g.source] ?? 0) + g.n;
  }
  return stats;
}

/**
 * What retention keeps of a labelled prediction row before the prediction goes: that row's inputs and outputs, as
 * queryLabelled returns them, so the labelled row still exports and evaluates.
 */
export function keptRow(event: { inputs: string; outputs: string }, row: number): string {
  return JSON.stringify({ inputs: tensorRow(JSON.parse(event.inputs), row), outputs: tensorRow(JSON.parse(event.outputs), row) });
}
