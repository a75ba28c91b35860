import { WardenError } from '../errors.ts';
import type { FeatureSpec, ModelSignature } from '../storage/index.ts';
import type { ColumnLayout } from './columns.ts';
import type { Table } from './profile/index.ts';

/** Tensor datatypes whose elements are numbers: a reference cell feeding one must be a number or missing. */
const NUMERIC_TYPES = new Set(['FP16', 'BF16', 'FP32', 'FP64', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Each monitored column that a tensor of the signature carries, with that tensor's name, role and datatype. */
function tensorColumns(layout: ColumnLayout, signature: ModelSignature): { column: string; tensor: string; role: 'input' | 'output'; datatype: string }[] {
  const out: { column: string; tensor: string; role: 'input' | 'output'; datatype: string }[] = [];
  layout.inputs.forEach((t, i) => {
    const datatype = signature.inputs[i]?.datatype;
    if (datatype) for (const column of t.columns) out.push({ column, tensor: t.name, role: 'input', datatype });
  });
  layout.outputs.forEach((t, i) => {
    const datatype = signature.outputs[i]?.datatype;
    if (datatype) for (const column of t.columns) out.push({ column, tensor: t.name, role: 'output', datatype });
  });
  return out;
}

function describeCell(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

/**
 * Refuses reference cells that cannot be what the model's numeric tensors hold. Inferred kinds would otherwise
 * turn one stray string in an FP32 column into a categorical column: its drift would then be measured on
 * category counts, its range never checked, and every live value would be a "new category". Missing cells
 * (empty, null) and NaN/±inf are fine: data-quality checks count them. Rows are numbered from 1 after the header.
 */
export function checkNumericCells(table: Table, layout: ColumnLayout, signature: ModelSignature): void {
  const checked = tensorColumns(layout, signature)
    .filter((c) => NUMERIC_TYPES.has(c.datatype))
    .map((c) => ({ ...c, index: table.names.indexOf(c.column) }))
    .filter((c) => c.index >= 0);
  if (checked.length === 0) return;
  let first: { row: number; column: (typeof checked)[number]; value: unknown } | undefined;
  let bad = 0;
  table.rows.forEach((row, r) => {
    for (const c of checked) {
      const v = row[c.index];
      if (v === null || v === undefined || typeof v === 'number') continue;
      bad++;
      first ??= { row: r + 1, column: c, value: v };
    }
  });
  if (!first) return;
  const { row, column, value } = first;
  const more = bad > 1 ? ` (${bad - 1} more such cell${bad > 2 ? 's' : ''} in the file)` : '';
  throw new WardenError(
    'WARDEN_BAD_REQUEST',
    `reference data row ${row}, column "${column.column}": ${describeCell(value)} is not a number, but the column ${column.role === 'input' ? 'feeds' : 'holds'} the model's ${column.datatype} ${column.role} "${column.tensor}"${more}; send numbers, or leave a cell empty for a missing value`,
  );
}

/**
 * Rounds a reference file's numeric cells to the precision of the tensors they feed. Served traffic is
 * profiled from the logged FP32 tensors, so a CSV's 0.02 arrives as 0.0199999996: profiled at float64,
 * the reference's minimum and bin edges would sit just above the same value sent by clients, and every
 * such value would count as out of range and land in the bin below.
 */
export function atTensorPrecision(table: Table, layout: ColumnLayout, signature: ModelSignature): Table {
  const fp32 = [
    ...layout.inputs.filter((_, i) => signature.inputs[i]?.datatype === 'FP32'),
    ...layout.outputs.filter((_, i) => signature.outputs[i]?.datatype === 'FP32'),
  ].flatMap((t) => t.columns);
  const idx = fp32.map((c) => table.names.indexOf(c)).filter((j) => j >= 0);
  if (idx.length === 0) return table;
  return {
    names: table.names,
    rows: table.rows.map((r) => {
      const out = [...r];
      for (const j of idx) if (typeof out[j] === 'number') out[j] = Math.fround(out[j] as number);
      return out;
    }),
  };
}

/**
 * The signature's allowed ranges as monitoring compares them. For an FP32 input the bounds are rounded to
 * float32 like the logged values: the door accepts v when fround(v) lies in [fround(min), fround(max)], and
 * a served 0.02 is logged as 0.0199999996, which a float64 minimum of 0.02 would count as out of range.
 */
export function signatureRanges(signature: ModelSignature): Record<string, { min?: number; max?: number }> {
  const fp32 = signature.inputs[0]?.datatype === 'FP32';
  const round = (v: number | undefined) => (v === undefined ? undefined : fp32 ? Math.fround(v) : v);
  const ranged = (signature.features ?? []).filter((f: FeatureSpec) => f.min !== undefined || f.max !== undefined);
  return Object.fromEntries(ranged.map((f) => [f.name, { min: round(f.min), max: round(f.max) }]));
}
