/**
 * Feature definitions (docs/features.md#the-definitions-file): entities with their join keys and feature views with
 * their source, time columns, TTL and schema, read from `features.yaml` (or JSON, or the API's body) and validated at
 * load. Every error names the field (`featureViews[1].schema[2].dtype`), and for a file source the column and file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { parse as parseYaml } from 'yaml';
import { formatDuration, parseDuration } from '../alerting/index.ts';
import { WardenError } from '../errors.ts';
import { CsvReader } from './files.ts';
import type { EntityDef, FeatureDtype, FeatureField, FeatureRepo, FeatureSource, FeatureViewDef } from './types.ts';
import { parseTime, parseValue, type FeatureValue } from './values.ts';

export const FEATURE_DTYPES: readonly FeatureDtype[] = ['float', 'int', 'string', 'bool'];
/** Names of entities, views, features and columns: they become CSV headers and `view:feature` references. */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const NAME_RULE = 'a letter or _ followed by letters, digits, _ . or - (at most 128)';
const MAX_ENTITIES = 1000;
const MAX_VIEWS = 1000;
const MAX_FEATURES = 2000;
/** Rows of a file source whose values are checked against the schema at load. */
export const CHECKED_ROWS = 100;

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export interface ParseRepoOptions {
  /** Where relative source paths resolve from (the definitions file's folder). Unset: relative paths are refused. */
  baseDir?: string;
  /** What the definitions came from, for messages (`features.yaml`, `the request body`). */
  source?: string;
}

/** A field reader that names where it is. */
class At {
  constructor(readonly where: string) {}
  sub(key: string | number): At {
    return new At(typeof key === 'number' ? `${this.where}[${key}]` : this.where ? `${this.where}.${key}` : key);
  }
  fail(msg: string): never {
    throw bad(`${this.where || 'definitions'}: ${msg}`);
  }
}

function keysOf(obj: Record<string, unknown>, at: At, known: readonly string[]): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) at.sub(k).fail(`unknown field; known: ${known.join(', ')}`);
}

function str(v: unknown, at: At, opts: { name?: boolean; max?: number } = {}): string {
  if (typeof v !== 'string' || v.length === 0) at.fail(`must be a non-empty string${v === undefined ? ' (missing)' : `, not ${JSON.stringify(v)?.slice(0, 80)}`}`);
  if (opts.name && !NAME.test(v)) at.fail(`${JSON.stringify(v.slice(0, 80))} is not a valid name: ${NAME_RULE}`);
  if (v.length > (opts.max ?? 4096)) at.fail(`is longer than ${opts.max ?? 4096} characters`);
  return v;
}

function optStr(v: unknown, at: At, max = 4096): string | undefined {
  return v === undefined || v === null ? undefined : str(v, at, { max });
}

function list(v: unknown, at: At, max: number, allowEmpty = true): unknown[] {
  if (!Array.isArray(v)) at.fail(`must be a list${v === undefined ? ' (missing)' : ''}`);
  if (!allowEmpty && v.length === 0) at.fail('must not be empty');
  if (v.length > max) at.fail(`has ${v.length} entries; at most ${max}`);
  return v;
}

function parseEntity(raw: unknown, at: At): EntityDef {
  if (!isObject(raw)) at.fail('must be an object {name, joinKeys, description}');
  keysOf(raw, at, ['name', 'joinKeys', 'description']);
  const name = str(raw.name, at.sub('name'), { name: true });
  const joinKeys = list(raw.joinKeys, at.sub('joinKeys'), 16, false).map((k, i) => str(k, at.sub('joinKeys').sub(i), { name: true }));
  const dup = joinKeys.find((k, i) => joinKeys.indexOf(k) !== i);
  if (dup) at.sub('joinKeys').fail(`join key ${JSON.stringify(dup)} is listed twice`);
  const description = optStr(raw.description, at.sub('description'));
  return { name, joinKeys, ...(description !== undefined ? { description } : {}) };
}

function formatOfPath(p: string): 'csv' | 'parquet' | undefined {
  if (/\.csv$/i.test(p)) return 'csv';
  if (/\.parquet$/i.test(p)) return 'parquet';
  return undefined;
}

function parseSource(raw: unknown, at: At, opts: ParseRepoOptions): FeatureSource {
  if (!isObject(raw)) at.fail('must be {kind: file, path, format} or {kind: push}');
  const kind = raw.kind;
  if (kind === 'push') {
    keysOf(raw, at, ['kind']);
    return { kind: 'push' };
  }
  if (kind !== 'file') at.sub('kind').fail(`must be file or push, not ${JSON.stringify(kind)}`);
  keysOf(raw, at, ['kind', 'path', 'format']);
  const p = str(raw.path, at.sub('path'));
  let resolved: string;
  if (path.isAbsolute(p)) resolved = path.normalize(p);
  else if (opts.baseDir) resolved = path.resolve(opts.baseDir, p);
  else return at.sub('path').fail(`${JSON.stringify(p)} is relative; the API takes absolute paths on the server (warden features apply resolves them against the definitions file)`);
  const format = raw.format ?? formatOfPath(p);
  if (format !== 'csv' && format !== 'parquet') {
    return at.sub('format').fail(raw.format === undefined ? `cannot tell the format of ${JSON.stringify(p)} from its name; set format: csv or parquet` : `must be csv or parquet, not ${JSON.stringify(raw.format)}`);
  }
  return { kind: 'file', path: resolved, format };
}

function parseTtl(raw: Record<string, unknown>, at: At): number {
  const fromMs = raw.ttlMs;
  let ms: number | undefined;
  if (raw.ttl !== undefined) {
    try {
      ms = parseDuration(raw.ttl, 'ttl');
    } catch {
      at.sub('ttl').fail(`${JSON.stringify(raw.ttl)} is not a duration; write e.g. "2d", "36h", "90m" or 0 (never expires)`);
    }
  }
  if (fromMs !== undefined) {
    if (typeof fromMs !== 'number' || !Number.isSafeInteger(fromMs) || fromMs < 0) return at.sub('ttlMs').fail('must be a whole number of milliseconds, 0 or more');
    if (ms !== undefined && ms !== fromMs) at.sub('ttlMs').fail(`is ${fromMs} but ttl ${JSON.stringify(raw.ttl)} is ${ms} ms; give one`);
    ms = fromMs;
  }
  if (ms === undefined) return at.sub('ttl').fail('is missing: how long a value stays valid after its event time, e.g. "2d"; 0 for never');
  if (!Number.isSafeInteger(Math.round(ms))) at.sub('ttl').fail('is too long');
  return Math.round(ms);
}

function parseField(raw: unknown, at: At): FeatureField {
  if (!isObject(raw)) at.fail('must be an object {name, dtype, description}');
  keysOf(raw, at, ['name', 'dtype', 'description']);
  const name = str(raw.name, at.sub('name'), { name: true });
  const dtype = raw.dtype;
  if (typeof dtype !== 'string' || !FEATURE_DTYPES.includes(dtype as FeatureDtype)) {
    at.sub('dtype').fail(`must be one of ${FEATURE_DTYPES.join(', ')}, not ${JSON.stringify(dtype)}${dtype === undefined ? ' (missing)' : ''}`);
  }
  const description = optStr(raw.description, at.sub('description'));
  return { name, dtype: dtype as FeatureDtype, ...(description !== undefined ? { description } : {}) };
}

function parseView(raw: unknown, at: At, entities: ReadonlyMap<string, EntityDef>, opts: ParseRepoOptions): FeatureViewDef {
  if (!isObject(raw)) at.fail('must be an object {name, entities, source, timestampField, ttl, schema, …}');
  keysOf(raw, at, ['name', 'entities', 'source', 'timestampField', 'createdTimestampField', 'ttl', 'ttlMs', 'schema', 'owner', 'tags', 'description']);
  const name = str(raw.name, at.sub('name'), { name: true });
  const entityNames = list(raw.entities, at.sub('entities'), 16).map((e, i) => {
    const n = str(e, at.sub('entities').sub(i));
    if (!entities.has(n)) at.sub('entities').sub(i).fail(`unknown entity ${JSON.stringify(n)}; entities: ${[...entities.keys()].join(', ') || '(none defined)'}`);
    return n;
  });
  const dupEntity = entityNames.find((e, i) => entityNames.indexOf(e) !== i);
  if (dupEntity) at.sub('entities').fail(`entity ${JSON.stringify(dupEntity)} is listed twice`);
  const source = parseSource(raw.source, at.sub('source'), opts);
  const timestampField = str(raw.timestampField, at.sub('timestampField'), { name: true });
  const createdTimestampField = raw.createdTimestampField === undefined || raw.createdTimestampField === null ? undefined : str(raw.createdTimestampField, at.sub('createdTimestampField'), { name: true });
  const ttlMs = parseTtl(raw, at);
  const schema = list(raw.schema, at.sub('schema'), MAX_FEATURES, false).map((f, i) => parseField(f, at.sub('schema').sub(i)));
  const owner = optStr(raw.owner, at.sub('owner'), 256);
  let tags: Record<string, string> = {};
  if (raw.tags !== undefined && raw.tags !== null) {
    if (!isObject(raw.tags)) at.sub('tags').fail('must map names to strings');
    if (Object.keys(raw.tags).length > 64) at.sub('tags').fail('has more than 64 tags');
    tags = {};
    for (const [k, v] of Object.entries(raw.tags)) {
      if (k.length === 0 || k.length > 128) at.sub('tags').fail(`tag name ${JSON.stringify(k.slice(0, 80))} must be 1-128 characters`);
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') at.sub('tags').sub(k).fail('must be a string');
      tags[k] = String(v).slice(0, 1024);
    }
  }
  const description = optStr(raw.description, at.sub('description'));

  // Every column of the view's rows is one thing: a join key, a time, or a feature.
  const columns = new Map<string, string>();
  for (const e of entityNames) for (const k of entities.get(e)!.joinKeys) {
    const prior = columns.get(k);
    if (prior) at.sub('entities').fail(`join key ${JSON.stringify(k)} of entity ${e} is also ${prior}; a view's entities must have distinct join keys`);
    columns.set(k, `join key ${k} of entity ${e}`);
  }
  const claim = (col: string, what: string, where: At) => {
    const prior = columns.get(col);
    if (prior) where.fail(`${what} ${JSON.stringify(col)} collides with ${prior}`);
    columns.set(col, `${what} ${col}`);
  };
  claim(timestampField, 'the event-time column', at.sub('timestampField'));
  if (createdTimestampField !== undefined) claim(createdTimestampField, 'the created-time column', at.sub('createdTimestampField'));
  schema.forEach((f, i) => claim(f.name, 'feature', at.sub('schema').sub(i).sub('name')));

  return {
    name,
    entities: entityNames,
    source,
    timestampField,
    ...(createdTimestampField !== undefined ? { createdTimestampField } : {}),
    ttlMs,
    schema,
    ...(owner !== undefined ? { owner } : {}),
    tags,
    ...(description !== undefined ? { description } : {}),
  };
}

/**
 * Validates definitions (the parsed YAML/JSON, the API's body or the stored form): shape, names, entity references,
 * duplicates and collisions. Sources are not opened here; see {@link checkFileSources}.
 */
export function parseFeatureRepo(raw: unknown, opts: ParseRepoOptions = {}): FeatureRepo {
  const root = new At('');
  if (!isObject(raw)) throw bad(`${opts.source ?? 'definitions'}: must be an object {entities: [...], featureViews: [...]}`);
  keysOf(raw, root, ['entities', 'featureViews', 'updatedAt', 'updatedBy']);
  const entities = new Map<string, EntityDef>();
  const entityAt = new Map<string, string>();
  list(raw.entities ?? [], root.sub('entities'), MAX_ENTITIES).forEach((e, i) => {
    const at = root.sub('entities').sub(i);
    const def = parseEntity(e, at);
    if (entities.has(def.name)) at.sub('name').fail(`duplicate entity ${JSON.stringify(def.name)} (also ${entityAt.get(def.name)})`);
    entities.set(def.name, def);
    entityAt.set(def.name, at.where);
  });
  const views: FeatureViewDef[] = [];
  const viewAt = new Map<string, string>();
  list(raw.featureViews ?? [], root.sub('featureViews'), MAX_VIEWS).forEach((v, i) => {
    const at = root.sub('featureViews').sub(i);
    const def = parseView(v, at, entities, opts);
    if (viewAt.has(def.name)) at.sub('name').fail(`duplicate feature view ${JSON.stringify(def.name)} (also ${viewAt.get(def.name)})`);
    viewAt.set(def.name, at.where);
    views.push(def);
  });
  return { entities: [...entities.values()], featureViews: views };
}

/** Definitions as text: YAML (JSON is YAML too). */
export function parseFeatureRepoText(text: string, opts: ParseRepoOptions = {}): FeatureRepo {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw bad(`${opts.source ?? 'definitions'} is not valid YAML or JSON: ${(e as Error).message}`);
  }
  try {
    return parseFeatureRepo(raw ?? {}, opts);
  } catch (e) {
    if (e instanceof WardenError && opts.source) throw bad(`${opts.source}: ${e.message}`);
    throw e;
  }
}

/** Reads, validates and checks a definitions file: relative source paths resolve against its folder. */
export async function loadFeatureRepoFile(file: string): Promise<FeatureRepo> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw bad(`cannot read the feature definitions ${abs}: ${(e as Error).message}`);
  }
  const repo = parseFeatureRepoText(text, { baseDir: path.dirname(abs), source: abs });
  try {
    await checkFileSources(repo);
  } catch (e) {
    if (e instanceof WardenError) throw bad(`${abs}: ${e.message}`);
    throw e;
  }
  return repo;
}

/** The join keys of a view, in order: each of its entities' join keys, entities in the view's order. */
export function viewJoinKeys(repo: FeatureRepo, view: FeatureViewDef): string[] {
  return view.entities.flatMap((e) => repo.entities.find((x) => x.name === e)?.joinKeys ?? []);
}

/** The columns a view's source must have: join keys, times, then the features. */
export function sourceColumns(repo: FeatureRepo, view: FeatureViewDef): { name: string; what: string; dtype?: FeatureDtype; where: string }[] {
  const i = repo.featureViews.indexOf(view);
  const at = `featureViews[${i}]`;
  return [
    ...viewJoinKeys(repo, view).map((k) => ({ name: k, what: 'join key', where: `${at}.entities` })),
    { name: view.timestampField, what: 'event-time column', where: `${at}.timestampField` },
    ...(view.createdTimestampField ? [{ name: view.createdTimestampField, what: 'created-time column', where: `${at}.createdTimestampField` }] : []),
    ...view.schema.map((f, j) => ({ name: f.name, what: `feature (${f.dtype})`, dtype: f.dtype, where: `${at}.schema[${j}]` })),
  ];
}

/**
 * Opens every file source: the file must be readable, have every column the view reads (join keys, times, features),
 * and its first {@link CHECKED_ROWS} rows must parse (times as times, features as their dtype). Errors name the
 * field, the column and the file.
 */
export async function checkFileSources(repo: FeatureRepo): Promise<void> {
  for (const [i, view] of repo.featureViews.entries()) {
    if (view.source.kind !== 'file') continue;
    const { path: file, format } = view.source;
    const sample = format === 'csv' ? readCsvSample(file, `featureViews[${i}].source.path`) : await readParquetSample(file, `featureViews[${i}].source.path`);
    const cols = sourceColumns(repo, view);
    for (const c of cols) {
      if (!sample.columns.includes(c.name)) {
        throw bad(`${c.where}: column ${JSON.stringify(c.name)} (${c.what} of view ${view.name}) is not in ${file}; its columns: ${sample.columns.slice(0, 50).join(', ')}`);
      }
    }
    const out: { value: FeatureValue } = { value: null };
    for (const c of cols) {
      const j = sample.columns.indexOf(c.name);
      for (const [r, row] of sample.rows.entries()) {
        const v = row[j];
        const at = `${c.where}: column ${JSON.stringify(c.name)} of ${file}, ${format === 'csv' ? `line ${sample.lines[r]}` : `row ${r + 1}`}`;
        if (c.dtype) {
          const why = parseValue(c.dtype, v, out);
          if (why) throw bad(`${at}: ${JSON.stringify(String(v)).slice(0, 80)} is ${why}, so not a ${c.dtype}`);
        } else if (c.what === 'join key') {
          if (v === null || v === undefined || v === '') throw bad(`${at}: the join key is empty`);
        } else if (parseTime(v) === undefined && !(c.what === 'created-time column' && (v === '' || v === null || v === undefined))) {
          throw bad(`${at}: ${JSON.stringify(String(v)).slice(0, 80)} is not a time (epoch ms or ISO-8601, e.g. 2011-01-01 or 2011-01-01T10:00:00Z)`);
        }
      }
    }
  }
}

interface Sample {
  columns: string[];
  rows: unknown[][];
  /** CSV: the line each row starts on. */
  lines: number[];
}

function readCsvSample(file: string, where: string): Sample {
  let reader: CsvReader;
  try {
    reader = new CsvReader(file);
  } catch (e) {
    throw bad(`${where}: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const header = reader.next();
    if (!header || header.length === 0 || (header.length === 1 && header[0] === '')) throw bad(`${where}: ${file} is empty; a CSV source needs a header row`);
    const rows: unknown[][] = [];
    const lines: number[] = [];
    for (let r = 0; r < CHECKED_ROWS; r++) {
      const row = reader.next();
      if (!row) break;
      if (row.length !== header.length) throw bad(`${where}: ${file} line ${reader.line} has ${row.length} fields; the header has ${header.length}`);
      rows.push(row);
      lines.push(reader.line);
    }
    return { columns: header.map((h) => h.trim()), rows, lines };
  } catch (e) {
    if (e instanceof WardenError) throw e;
    throw bad(`${where}: cannot read ${file}: ${(e as Error).message}`);
  } finally {
    reader.close();
  }
}

async function readParquetSample(file: string, where: string): Promise<Sample> {
  try {
    const buf = await asyncBufferFromFile(file);
    const metadata = await parquetMetadataAsync(buf);
    const columns = parquetSchema(metadata).children.map((c) => c.element.name);
    const n = Math.min(CHECKED_ROWS, Number(metadata.num_rows));
    const objects = n > 0 ? ((await parquetReadObjects({ file: buf, metadata, rowStart: 0, rowEnd: n })) as Record<string, unknown>[]) : [];
    return { columns, rows: objects.map((o) => columns.map((c) => o[c])), lines: [] };
  } catch (e) {
    throw bad(`${where}: cannot read ${file} as Parquet: ${(e as Error).message}`);
  }
}

/** A view as the API and `warden features list` show it: with `ttl` as a duration beside `ttlMs`. */
export interface FeatureViewJson extends FeatureViewDef {
  ttl: string;
}

/** The repository as the API returns it (and takes it back: `ttl` and `ttlMs` agree). */
export function featureRepoJson(repo: FeatureRepo): { entities: EntityDef[]; featureViews: FeatureViewJson[] } {
  return {
    entities: repo.entities,
    featureViews: repo.featureViews.map((v) => ({ ...v, ttl: v.ttlMs === 0 ? '0' : formatDuration(v.ttlMs) })),
  };
}

/** A feature of a view, as named in a request: `view:feature`, or a whole view as `view`. */
export interface FeatureSelection {
  view: FeatureViewDef;
  features: FeatureField[];
}

/**
 * Resolves `view:feature` and `view` references into views with their features, views in the order first named,
 * features in the order named; a feature named twice is kept once. Errors name the reference.
 */
export function resolveFeatureRefs(repo: FeatureRepo, refs: readonly string[]): FeatureSelection[] {
  if (refs.length === 0) throw bad('features: name at least one, as view:feature or view (every feature of the view)');
  const out = new Map<string, FeatureSelection>();
  for (const ref of refs) {
    const [viewName, feature, extra] = ref.split(':');
    if (extra !== undefined || !viewName) throw bad(`features: ${JSON.stringify(ref)} is not view:feature or view`);
    const view = repo.featureViews.find((v) => v.name === viewName);
    if (!view) throw bad(`features: ${JSON.stringify(ref)} names no feature view; views: ${repo.featureViews.map((v) => v.name).join(', ') || '(none defined: PUT /api/v1/features)'}`);
    let sel = out.get(view.name);
    if (!sel) out.set(view.name, (sel = { view, features: [] }));
    const add = feature === undefined || feature === '' || feature === '*' ? view.schema : view.schema.filter((f) => f.name === feature);
    if (add.length === 0) throw bad(`features: view ${view.name} has no feature ${JSON.stringify(feature)}; its features: ${view.schema.map((f) => f.name).join(', ')}`);
    for (const f of add) if (!sel.features.includes(f)) sel.features.push(f);
  }
  return [...out.values()];
}
