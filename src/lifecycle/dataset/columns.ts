import { WardenError } from '../../errors.ts';
import { columnLayout, type ColumnLayout } from '../../monitoring/index.ts';
import type { LabelledRow, ModelSignature } from '../../storage/index.ts';

/** How one column of a training set is typed in Parquet (CSV writes every kind as text). */
export type CellKind = 'number' | 'string' | 'boolean' | 'time' | 'label';

export interface DatasetColumn {
  name: string;
  kind: CellKind;
}

/** The columns after the features: who labelled what, when, and what the model said. */
const TRAILING: readonly DatasetColumn[] = [
  { name: 'request_id', kind: 'string' },
  { name: 'row', kind: 'number' },
  { name: 'key', kind: 'string' },
  { name: 'version', kind: 'number' },
  { name: 'prediction_time', kind: 'time' },
  { name: 'label_time', kind: 'time' },
  { name: 'label_source', kind: 'string' },
  { name: 'late', kind: 'boolean' },
  { name: 'segment', kind: 'string' },
];

const kindOf = (datatype: string): CellKind => (datatype === 'BYTES' ? 'string' : datatype === 'BOOL' ? 'boolean' : 'number');

/**
 * The file layout of a training set: the features in the model's column order (so the file trains as is), `label`,
 * each model output as `output.<column>`, then the row's provenance. One layout serves every exported version, so the
 * versions must agree on their inputs and outputs.
 */
export class DatasetLayout {
  readonly columns: DatasetColumn[];
  private readonly layout: ColumnLayout;
  private readonly segmentIndex: { name: string; tensor: string; column: number }[];

  constructor(signature: ModelSignature, segments: readonly string[]) {
    this.layout = columnLayout(signature);
    const inputKinds = signature.inputs.flatMap((t, i) => this.layout.inputs[i]!.columns.map(() => kindOf(t.datatype)));
    const outputKinds = signature.outputs.flatMap((t, i) => this.layout.outputs[i]!.columns.map(() => kindOf(t.datatype)));
    const features = this.layout.features.map((name, i) => ({ name, kind: inputKinds[i]! }));
    const outputs = this.layout.predictions.map((name, i) => ({ name: `output.${name}`, kind: outputKinds[i]! }));
    this.columns = [...features, { name: 'label', kind: 'label' }, ...outputs, ...TRAILING];
    const names = new Set<string>();
    for (const c of this.columns) {
      if (names.has(c.name)) {
        throw new WardenError('WARDEN_BAD_REQUEST', `the model's feature ${JSON.stringify(c.name)} has the name of a column the export adds; rename the feature to export it`);
      }
      names.add(c.name);
    }
    this.segmentIndex = segments.map((name) => {
      const tensor = this.layout.inputs.find((t) => t.columns.includes(name));
      if (!tensor) throw new WardenError('WARDEN_BAD_REQUEST', `segment ${JSON.stringify(name)} is not a feature of the model (features: ${this.layout.features.join(', ')})`);
      return { name, tensor: tensor.name, column: tensor.columns.indexOf(name) };
    });
  }

  /** How many of the columns are the model's features (they come first). */
  get featureCount(): number {
    return this.layout.features.length;
  }

  /** Reads the logged value of one of the model's feature columns from a row; undefined when the model has no such column. */
  inputOf(name: string): ((r: LabelledRow) => unknown) | undefined {
    const tensor = this.layout.inputs.find((t) => t.columns.includes(name));
    if (!tensor) return undefined;
    const column = tensor.columns.indexOf(name);
    return (r) => r.inputs?.[tensor.name]?.[column] ?? null;
  }

  /** Why `other` cannot share this layout (a version with different inputs or outputs), or undefined when it can. */
  mismatch(other: ModelSignature): string | undefined {
    const o = columnLayout(other);
    const a = JSON.stringify([this.layout.inputs, this.layout.outputs]);
    if (a === JSON.stringify([o.inputs, o.outputs])) return undefined;
    return `features ${this.layout.features.join(',')} → ${this.layout.predictions.join(',')} against ${o.features.join(',')} → ${o.predictions.join(',')}`;
  }

  /** One labelled row's cells in column order; null where the row has no value. */
  cells(r: LabelledRow, version: number): unknown[] {
    const out: unknown[] = [];
    for (const t of this.layout.inputs) {
      const values = r.inputs?.[t.name];
      for (let j = 0; j < t.columns.length; j++) out.push(values?.[j] ?? null);
    }
    out.push(r.label);
    for (const t of this.layout.outputs) {
      const values = r.outputs?.[t.name];
      for (let j = 0; j < t.columns.length; j++) out.push(values?.[j] ?? null);
    }
    const segment = this.segmentIndex.map((s) => `${s.name}=${String(r.inputs?.[s.tensor]?.[s.column] ?? '')}`).join(';');
    out.push(r.requestId, r.row, r.key ?? null, version, r.ts, r.labelTs, r.source, r.late, segment);
    return out;
  }
}
