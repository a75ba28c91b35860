import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { WardenError } from '../../errors.ts';
import type { DatasetFormat } from '../../storage/index.ts';
import type { DatasetColumn } from './columns.ts';

/** Turns batches of rows (cells in column order) into the bytes of one file, a batch at a time. */
export interface DatasetEncoder {
  readonly contentType: string;
  /** Bytes of the file's start (a CSV header; Parquet's magic number). */
  start(): Uint8Array;
  /** Bytes for these rows (Parquet: one row group). */
  rows(batch: readonly unknown[][]): Uint8Array;
  /** The file's last bytes (Parquet's footer). */
  finish(): Uint8Array;
}

export function datasetEncoder(format: DatasetFormat, columns: readonly DatasetColumn[]): DatasetEncoder {
  return format === 'csv' ? new CsvEncoder(columns) : new ParquetEncoder(columns);
}

const utf8 = new TextEncoder();

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled; so is one with edge spaces. */
function csvField(v: unknown, time: boolean): string {
  if (v === null || v === undefined) return '';
  if (time && typeof v === 'number') return new Date(v).toISOString();
  const s = typeof v === 'string' ? v : String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

class CsvEncoder implements DatasetEncoder {
  readonly contentType = 'text/csv; charset=utf-8';
  private readonly time: boolean[];
  constructor(private readonly columns: readonly DatasetColumn[]) {
    this.time = columns.map((c) => c.kind === 'time');
  }
  start(): Uint8Array {
    return utf8.encode(`${this.columns.map((c) => csvField(c.name, false)).join(',')}\n`);
  }
  rows(batch: readonly unknown[][]): Uint8Array {
    let out = '';
    for (const r of batch) {
      for (let i = 0; i < r.length; i++) out += (i ? ',' : '') + csvField(r[i], this.time[i]!);
      out += '\n';
    }
    return utf8.encode(out);
  }
  finish(): Uint8Array {
    return new Uint8Array(0);
  }
}

type LabelType = 'DOUBLE' | 'STRING' | 'BOOLEAN';
/** hyparquet-writer's own schema type (it bundles its own hyparquet). */
type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

/**
 * Parquet through hyparquet-writer's incremental writer: each batch is one row group, taken out of the byte buffer as
 * soon as it is encoded, so memory holds one batch, not the file. Features and outputs are DOUBLE (a float32 tensor's
 * values are exact in it), times TIMESTAMP_MILLIS, the label takes the type of the first label seen.
 */
class ParquetEncoder implements DatasetEncoder {
  readonly contentType = 'application/vnd.apache.parquet';
  private readonly bytes = new ByteWriter(1 << 16);
  private writer: ParquetWriter | undefined;
  private labelType: LabelType | undefined;
  private readonly labelIndex: number;
  private rowsSeen = 0;

  constructor(private readonly columns: readonly DatasetColumn[]) {
    this.labelIndex = columns.findIndex((c) => c.kind === 'label');
  }

  start(): Uint8Array {
    // The schema waits for the first batch (the label's type); the magic number comes with it.
    return new Uint8Array(0);
  }

  private schema(): SchemaElement[] {
    const leaf = (c: DatasetColumn): SchemaElement => {
      const kind = c.kind === 'label' ? this.labelType : c.kind;
      const base = { name: c.name, repetition_type: 'OPTIONAL' as const };
      if (kind === 'number' || kind === 'DOUBLE') return { ...base, type: 'DOUBLE' };
      if (kind === 'boolean' || kind === 'BOOLEAN') return { ...base, type: 'BOOLEAN' };
      if (kind === 'time') return { ...base, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' };
      return { ...base, type: 'BYTE_ARRAY', converted_type: 'UTF8' };
    };
    return [{ name: 'root', num_children: this.columns.length }, ...this.columns.map(leaf)];
  }

  private take(): Uint8Array {
    const out = this.bytes.getBytes().slice();
    this.bytes.index = 0;
    return out;
  }

  private cell(v: unknown, c: DatasetColumn, row: number): unknown {
    if (v === null || v === undefined) return null;
    const kind = c.kind === 'label' ? this.labelType : c.kind;
    if (kind === 'time') return BigInt(v as number);
    if (kind === 'number' || kind === 'DOUBLE') {
      const n = Number(v);
      if (!Number.isFinite(n) && typeof v !== 'number') {
        throw new WardenError('WARDEN_BAD_REQUEST', `row ${row + 1}: ${c.name} is ${JSON.stringify(v)} in a numeric Parquet column (the first label was a number); export as CSV, or filter the labels`);
      }
      return n;
    }
    if (kind === 'boolean' || kind === 'BOOLEAN') {
      if (typeof v !== 'boolean') throw new WardenError('WARDEN_BAD_REQUEST', `row ${row + 1}: ${c.name} is ${JSON.stringify(v)} in a boolean Parquet column; export as CSV, or filter the labels`);
      return v;
    }
    return typeof v === 'string' ? v : String(v);
  }

  rows(batch: readonly unknown[][]): Uint8Array {
    if (batch.length === 0) return new Uint8Array(0);
    if (!this.writer) {
      const first = batch.find((r) => r[this.labelIndex] !== null && r[this.labelIndex] !== undefined)?.[this.labelIndex];
      this.labelType = typeof first === 'boolean' ? 'BOOLEAN' : typeof first === 'string' ? 'STRING' : 'DOUBLE';
      this.writer = new ParquetWriter({ writer: this.bytes, schema: this.schema(), createdBy: 'warden dataset export' });
    }
    const columnData = this.columns.map((c, i) => ({
      name: c.name,
      data: batch.map((r, j) => this.cell(r[i], c, this.rowsSeen + j)),
    }));
    this.rowsSeen += batch.length;
    // One row group per batch: rowGroupSize at least the batch.
    void this.writer.write({ columnData, rowGroupSize: batch.length });
    return this.take();
  }

  finish(): Uint8Array {
    if (!this.writer) this.writer = new ParquetWriter({ writer: this.bytes, schema: this.schema(), createdBy: 'warden dataset export' });
    void this.writer.finish();
    return this.take();
  }
}
