import type { ModelSignature, PredictionEvent } from '../storage/index.ts';

/** Maximum monitored columns per version: bounds profile size and metric cardinality. */
export const MAX_MONITORED_COLUMNS = 256;

/**
 * How the monitored columns of a model version map onto its tensors. Feature columns are the
 * signature's named features (columns of the first input) or, without names, `input[j]` for each
 * column j of each 2-D input; prediction columns are each output's columns (`name` when it has one
 * column, else `name[j]`).
 */
export interface ColumnLayout {
  features: string[];
  predictions: string[];
  /** Per input tensor in signature order: the feature names of its columns. */
  inputs: { name: string; columns: string[] }[];
  outputs: { name: string; columns: string[] }[];
}

function tensorColumns(name: string, shape: number[]): string[] {
  if (shape.length === 1) return [name];
  const width = shape[1]!;
  if (shape.length !== 2 || width < 1) return [];
  return width === 1 ? [name] : Array.from({ length: width }, (_, j) => `${name}[${j}]`);
}

/** The column layout of a version's signature. */
export function columnLayout(signature: ModelSignature): ColumnLayout {
  const inputs = signature.inputs.map((t, i) =>
    i === 0 && signature.features?.length ? { name: t.name, columns: signature.features.map((f) => f.name) } : { name: t.name, columns: tensorColumns(t.name, t.shape) },
  );
  const outputs = signature.outputs.map((t) => ({ name: t.name, columns: tensorColumns(t.name, t.shape) }));
  return {
    features: inputs.flatMap((t) => t.columns),
    predictions: outputs.flatMap((t) => t.columns),
    inputs,
    outputs,
  };
}

interface LoggedTensor {
  name: string;
  dims?: number[];
  shape?: number[];
  data: ArrayLike<unknown>;
}

function isTensorList(v: unknown): v is LoggedTensor[] {
  return Array.isArray(v) && v.length > 0 && v.every((t) => t && typeof t === 'object' && 'data' in t && 'name' in t && (t.data as unknown) !== null && typeof (t.data as { length?: unknown }).length === 'number');
}

/**
 * Turns one logged event into rows of raw values in `columns` order (features then predictions).
 * Served events carry decoded tensors; refused `:predict` events carry the instances as sent, so
 * their missing, null and mistyped values reach data-quality counts (numbers rounded to float32, as
 * served). Returns the unknown feature names seen (extra features) too. Refused tensor requests are not
 * profiled: their layout is unknown.
 */
export function eventRows(
  layout: ColumnLayout,
  columns: readonly string[],
  event: PredictionEvent,
): { rows: unknown[][]; extra: string[] } {
  const index = new Map(columns.map((c, i) => [c, i] as const));
  const extra: string[] = [];
  let rows: unknown[][] = [];
  if (isTensorList(event.inputs)) {
    for (const spec of layout.inputs) {
      const t = event.inputs.find((x) => x.name === spec.name);
      if (!t) continue;
      const dims = t.dims ?? t.shape ?? [];
      const n = dims[0] ?? 0;
      const width = dims.length === 1 ? 1 : (dims[1] ?? 0);
      if (width !== spec.columns.length || t.data.length !== n * width) continue;
      if (rows.length === 0) rows = Array.from({ length: n }, () => new Array(columns.length));
      for (let j = 0; j < width; j++) {
        const ci = index.get(spec.columns[j]!);
        if (ci === undefined) continue;
        for (let r = 0; r < n && r < rows.length; r++) rows[r]![ci] = t.data[r * width + j];
      }
    }
  } else if (Array.isArray(event.inputs)) {
    rows = event.inputs.map((inst) => {
      const row = new Array(columns.length);
      if (inst && typeof inst === 'object' && !Array.isArray(inst)) {
        for (const [k, v] of Object.entries(inst as Record<string, unknown>)) {
          const ci = index.get(k);
          if (ci === undefined) {
            if (!layout.features.includes(k)) extra.push(k);
            // `:predict` feeds instances to the model as float32, and served ones are profiled from that tensor:
            // a refused 0.96 must compare with the bounds as the served 0.96 (0.9599999785) does.
          } else row[ci] = typeof v === 'number' ? Math.fround(v) : v;
        }
      }
      return row;
    });
  }
  if (isTensorList(event.outputs) && rows.length > 0) {
    for (const spec of layout.outputs) {
      const t = event.outputs.find((x) => x.name === spec.name);
      if (!t) continue;
      const width = spec.columns.length;
      if (t.data.length !== rows.length * width) continue;
      for (let j = 0; j < width; j++) {
        const ci = index.get(spec.columns[j]!);
        if (ci === undefined) continue;
        for (let r = 0; r < rows.length; r++) rows[r]![ci] = t.data[r * width + j];
      }
    }
  }
  return { rows, extra };
}
