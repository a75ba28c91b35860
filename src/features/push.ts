/**
 * Rows pushed to a view (`POST /api/v1/features/{view}/push`, `warden features push`): checked against the view's
 * definition and turned into stored rows. A row is an object of the view's join keys, its event-time field, its
 * created-time field (optional) and its features (missing ones are null); values may be JSON values or the text a CSV
 * holds. Errors name the row and the field.
 *
 * Created time: the row's created-time field when the view has one and the row sets it, else the time the server took
 * the push. So a row pushed today is not visible to a point-in-time join at an earlier time, even when its event
 * time is earlier (a late backfill does not leak); to push history as it was known at the time, send created times.
 */
import { WardenError } from '../errors.ts';
import type { FeatureRowRecord } from '../storage/index.ts';
import { viewJoinKeys } from './definitions.ts';
import { KEY_SEPARATOR, type FeatureRepo, type FeatureViewDef } from './types.ts';
import { keyText, parseTime, parseValue, type FeatureValue } from './values.ts';

/** Rows one push takes at most (the feature store writes at most this many per call). */
export const MAX_PUSH_ROWS = 5000;

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

export function pushView(repo: FeatureRepo, name: string): FeatureViewDef {
  const view = repo.featureViews.find((v) => v.name === name);
  if (!view) throw new WardenError('WARDEN_NOT_FOUND', `no feature view ${JSON.stringify(name.slice(0, 128))}; views: ${repo.featureViews.map((v) => v.name).join(', ') || '(none defined: PUT /api/v1/features)'}`);
  if (view.source.kind !== 'push') throw new WardenError('WARDEN_CONFLICT', `view ${view.name} reads the file ${view.source.path}; rows are pushed only to views with source {kind: push}`);
  return view;
}

/** Checks pushed rows against the view; `now` is the created time of rows that do not carry one. */
export function parsePushRows(repo: FeatureRepo, view: FeatureViewDef, rows: unknown, now: number): FeatureRowRecord[] {
  if (!Array.isArray(rows)) throw bad('rows: must be a list of row objects');
  if (rows.length === 0) throw bad('rows: is empty; send at least one row');
  if (rows.length > MAX_PUSH_ROWS) throw bad(`rows: ${rows.length} rows in one push, at most ${MAX_PUSH_ROWS.toLocaleString('en-US')}; split them into several pushes`);
  const joinKeys = viewJoinKeys(repo, view);
  const known = new Set([...joinKeys, view.timestampField, ...(view.createdTimestampField ? [view.createdTimestampField] : []), ...view.schema.map((f) => f.name)]);
  const out: FeatureRowRecord[] = [];
  const cell: { value: FeatureValue } = { value: null };
  for (const [i, row] of rows.entries()) {
    const at = `rows[${i}]`;
    if (row === null || typeof row !== 'object' || Array.isArray(row)) throw bad(`${at}: must be an object of ${[...known].slice(0, 8).join(', ')}, …`);
    const r = row as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!known.has(k)) throw bad(`${at}.${k.slice(0, 128)}: view ${view.name} has no such field (its fields: ${[...known].join(', ')})`);
    const keys: string[] = [];
    for (const k of joinKeys) {
      const t = keyText(r[k]);
      if (t === undefined) throw bad(`${at}.${k}: the join key is ${r[k] === undefined ? 'missing' : `${JSON.stringify(r[k])}`}; every row needs a value`);
      if (t.length > 1024) throw bad(`${at}.${k}: the join key is longer than 1024 characters`);
      keys.push(t);
    }
    const eventTs = parseTime(r[view.timestampField]);
    if (eventTs === undefined) throw bad(`${at}.${view.timestampField}: the event time is ${r[view.timestampField] === undefined ? 'missing' : `${JSON.stringify(r[view.timestampField])?.slice(0, 80)}, not a time`} (epoch ms or ISO-8601)`);
    let createdTs = now;
    const cf = view.createdTimestampField;
    if (cf && r[cf] !== undefined && r[cf] !== null && r[cf] !== '') {
      const t = parseTime(r[cf]);
      if (t === undefined) throw bad(`${at}.${cf}: ${JSON.stringify(r[cf])?.slice(0, 80)} is not a time (epoch ms or ISO-8601)`);
      createdTs = t;
    }
    const values: Record<string, FeatureValue> = {};
    for (const f of view.schema) {
      const why = parseValue(f.dtype, r[f.name], cell);
      if (why) throw bad(`${at}.${f.name}: ${JSON.stringify(r[f.name])?.slice(0, 80)} is ${why}, so not a ${f.dtype}`);
      values[f.name] = cell.value;
    }
    out.push({ view: view.name, entityKey: keys.join(KEY_SEPARATOR), eventTs, createdTs, values });
  }
  return out;
}
