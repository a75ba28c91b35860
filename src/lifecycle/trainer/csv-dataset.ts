import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { TrainerError } from './errors.ts';

/** A CSV file as strings, with the sha256 of its exact bytes so a model can name the data it came from. */
export interface CsvTable {
  path: string;
  header: string[];
  rows: string[][];
  sha256: string;
}

/** The numeric matrix a trainer fits: `x` is row-major [rows, featureNames.length]. */
export interface Dataset {
  featureNames: string[];
  x: Float64Array;
  y: Float64Array;
  rows: number;
  /** Columns left out of the default feature set because some cell is not a number. */
  skippedNonNumeric: string[];
}

/** Which columns and rows of a table to use. */
export interface DatasetSpec {
  target: string;
  features?: string[];
  /** Narrows the default feature set only; explicitly listed features are used as given. */
  exclude?: string[];
  where?: Record<string, number>;
}

/** Reads and parses a CSV file with a header row. */
export async function loadCsv(path: string): Promise<CsvTable> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new TrainerError('WARDEN_TRAIN_CSV_UNREADABLE', `cannot read CSV ${path}: ${why}`);
  }
  let records: string[][];
  try {
    records = parse(bytes, { bom: true, trim: true, skip_empty_lines: true }) as string[][];
  } catch (err) {
    throw new TrainerError('WARDEN_TRAIN_CSV_UNREADABLE', `${path} is not valid CSV: ${(err as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header) throw new TrainerError('WARDEN_TRAIN_EMPTY_DATASET', `${path} is empty`);
  const duplicate = header.find((name, i) => header.indexOf(name) !== i);
  if (duplicate !== undefined) {
    throw new TrainerError('WARDEN_TRAIN_CSV_UNREADABLE', `${path} has two columns named "${duplicate}"`);
  }
  return { path, header, rows, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Filters rows, picks the feature and target columns, and parses them as numbers. */
export function selectDataset(table: CsvTable, spec: DatasetSpec): Dataset {
  const column = columnIndex(table);
  const where = Object.entries(spec.where ?? {});
  const exclude = new Set(spec.exclude ?? []);
  column(spec.target, 'target');
  for (const name of spec.features ?? []) column(name, 'feature');
  for (const name of exclude) column(name, 'exclude');
  for (const [name] of where) column(name, 'where');
  if (spec.features?.includes(spec.target)) {
    throw new TrainerError('WARDEN_TRAIN_BAD_OPTION', `the target "${spec.target}" cannot also be a feature`);
  }
  const repeated = spec.features?.find((name, i) => spec.features?.indexOf(name) !== i);
  if (repeated !== undefined) throw new TrainerError('WARDEN_TRAIN_BAD_OPTION', `feature "${repeated}" is listed twice`);

  const kept: number[] = [];
  table.rows.forEach((row, r) => {
    if (where.every(([name, value]) => parseCell(table, row, r, column(name, 'where')) === value)) kept.push(r);
  });
  if (kept.length === 0) {
    const filter = where.map(([k, v]) => `${k}=${v}`).join(',');
    const reason = table.rows.length === 0 ? 'has no data rows' : `has no rows where ${filter}`;
    throw new TrainerError('WARDEN_TRAIN_EMPTY_DATASET', `${table.path} ${reason}`);
  }

  const numeric = (name: string): Float64Array | string => numericColumn(table, kept, column(name, 'feature'));
  const required = (name: string, role: string): Float64Array => {
    const values = numeric(name);
    if (typeof values === 'string') {
      throw new TrainerError('WARDEN_TRAIN_NON_NUMERIC_COLUMN', `${role} column "${name}" is not numeric: ${values}`);
    }
    return values;
  };

  const y = required(spec.target, 'target');
  const skippedNonNumeric: string[] = [];
  const columns: [string, Float64Array][] = [];
  if (spec.features) {
    for (const name of spec.features) columns.push([name, required(name, 'feature')]);
  } else {
    for (const name of table.header) {
      if (name === spec.target || exclude.has(name)) continue;
      const values = numeric(name);
      if (typeof values === 'string') skippedNonNumeric.push(name);
      else columns.push([name, values]);
    }
  }
  if (columns.length === 0) throw new TrainerError('WARDEN_TRAIN_BAD_OPTION', 'no numeric feature columns are left');

  const k = columns.length;
  const x = new Float64Array(kept.length * k);
  columns.forEach(([, values], j) => values.forEach((v, i) => (x[i * k + j] = v)));
  return { featureNames: columns.map(([name]) => name), x, y, rows: kept.length, skippedNonNumeric };
}

function columnIndex(table: CsvTable): (name: string, role: string) => number {
  const index = new Map(table.header.map((name, i) => [name, i]));
  return (name, role) => {
    const i = index.get(name);
    if (i === undefined) {
      throw new TrainerError(
        'WARDEN_TRAIN_UNKNOWN_COLUMN',
        `unknown ${role} column "${name}"; ${table.path} has: ${table.header.join(', ')}`,
      );
    }
    return i;
  };
}

function toNumber(cell: string | undefined): number {
  return cell === undefined || cell === '' ? Number.NaN : Number(cell);
}

function parseCell(table: CsvTable, row: string[], r: number, j: number): number {
  const value = toNumber(row[j]);
  if (!Number.isFinite(value)) {
    throw new TrainerError(
      'WARDEN_TRAIN_NON_NUMERIC_COLUMN',
      `where column "${table.header[j]}" is not numeric: data row ${r + 1} has "${row[j] ?? ''}"`,
    );
  }
  return value;
}

/** The parsed column over the kept rows, or a description of its first bad cell. */
function numericColumn(table: CsvTable, kept: number[], j: number): Float64Array | string {
  const values = new Float64Array(kept.length);
  for (let i = 0; i < kept.length; i++) {
    const r = kept[i] ?? 0;
    const cell = table.rows[r]?.[j];
    const value = toNumber(cell);
    if (!Number.isFinite(value)) return `data row ${r + 1} has "${cell ?? ''}"`;
    values[i] = value;
  }
  return values;
}
