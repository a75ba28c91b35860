import { WardenError } from '../errors.ts';
import { columnLayout } from '../monitoring/index.ts';
import type { Registry } from '../registry/index.ts';
import type { MetadataStore, ModelVersionRecord } from '../storage/index.ts';
import { readTreeEnsemble, type TreeEnsemble } from './tree-ensemble.ts';
import { treeShap } from './tree-shap.ts';

/** Background rows drawn from the reference sample by default, and at most. */
export const DEFAULT_BACKGROUND_ROWS = 100;
export const MAX_BACKGROUND_ROWS = 1000;
/** Rows one call explains at most: each costs about a background's worth of tree walks. */
export const MAX_EXPLAINED_ROWS = 100;
/** Parsed ensembles kept, least recently used first out. */
const CACHE_SIZE = 16;

export interface RowExplanation {
  /** φ per feature, by name, in the model's column order. */
  shap: Record<string, number>;
  /** The model's output for the row (double precision; onnxruntime's float32 answer may differ in the last digits). */
  value: number;
}

export interface ExplainResult {
  model: string;
  version: number;
  method: 'tree-shap-interventional';
  output: string;
  features: string[];
  /** Mean output over the background rows: Σφ + expected = value for every row. */
  expected: number;
  background: { rows: number; source: string };
  explanations: RowExplanation[];
}

interface Prepared {
  ensemble: TreeEnsemble;
  features: string[];
  output: string;
}

/**
 * Explanations on demand (docs/explainability.md): exact interventional TreeSHAP for a version whose ONNX graph is a
 * tree ensemble, against a background drawn from the version's registered reference sample.
 */
export class ExplainService {
  private readonly cache = new Map<string, Prepared>();

  constructor(private readonly deps: { registry: Registry; metadata: MetadataStore }) {}

  /** Explains `rows` of `version` (as the registry resolved it). */
  async explain(version: ModelVersionRecord, rows: readonly Float32Array[], opts: { background?: number } = {}): Promise<ExplainResult> {
    const { model } = version;
    if (rows.length === 0) throw new WardenError('WARDEN_BAD_REQUEST', 'no rows to explain');
    if (rows.length > MAX_EXPLAINED_ROWS) throw new WardenError('WARDEN_BAD_REQUEST', `${rows.length} rows; explain at most ${MAX_EXPLAINED_ROWS} per call`);
    const wanted = opts.background ?? DEFAULT_BACKGROUND_ROWS;
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > MAX_BACKGROUND_ROWS) {
      throw new WardenError('WARDEN_BAD_REQUEST', `background must be an integer number of rows in [1, ${MAX_BACKGROUND_ROWS}]`);
    }
    const prepared = await this.prepare(version);
    const bg = await this.background(version, prepared.features, wanted);
    const explanations: RowExplanation[] = [];
    let expected = 0;
    for (const x of rows) {
      if (x.length !== prepared.features.length) throw new WardenError('WARDEN_INVALID_INPUT', `a row has ${x.length} values; ${model} v${version.version} takes ${prepared.features.length}`);
      // A row at a time, yielding between rows: a call of 100 rows must not hold the event loop (and inference) for its whole length.
      if (explanations.length) await new Promise((r) => setImmediate(r));
      const e = treeShap(prepared.ensemble, x, bg);
      explanations.push({ shap: Object.fromEntries(prepared.features.map((f, j) => [f, e.shap[j]!])), value: e.value });
      expected = e.expected;
    }
    return {
      model,
      version: version.version,
      method: 'tree-shap-interventional',
      output: prepared.output,
      features: prepared.features,
      expected,
      background: { rows: bg.length, source: `reference sample of v${version.version}` },
      explanations,
    };
  }

  private async prepare(v: ModelVersionRecord): Promise<Prepared> {
    const k = v.sha256;
    const hit = this.cache.get(k);
    if (hit) {
      this.cache.delete(k);
      this.cache.set(k, hit);
      return hit;
    }
    const layout = columnLayout(v.signature);
    if (v.signature.inputs.length !== 1 || v.signature.outputs.length !== 1 || layout.predictions.length !== 1) {
      throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} has ${v.signature.inputs.length} inputs and ${layout.predictions.length} output columns; explanations need one input tensor and one output column`);
    }
    const ensemble = readTreeEnsemble(await this.deps.registry.readArtifact(v));
    const prepared = { ensemble, features: layout.inputs[0]!.columns, output: layout.predictions[0]! };
    this.cache.set(k, prepared);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return prepared;
  }

  /** The first `n` complete rows of the reference sample (a uniform sample, in hash order), as the model sees them. */
  private async background(v: ModelVersionRecord, features: string[], n: number): Promise<Float32Array[]> {
    const ref = await this.deps.metadata.getReference(v.model, v.version);
    if (!ref) {
      throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} has no reference: register one (warden reference set) so explanations have a background to compare with`);
    }
    const schema = ref.schema as { columns?: { name: string }[] };
    const profile = ref.profile as { sample?: (number | string | null)[][] };
    const index = features.map((f) => (schema.columns ?? []).findIndex((c) => c.name === f));
    const missing = features.filter((_, j) => index[j]! < 0);
    if (missing.length) throw new WardenError('WARDEN_BAD_REQUEST', `the reference of ${v.model} v${v.version} lacks features ${missing.join(', ')}; register a reference with every input column`);
    const out: Float32Array[] = [];
    for (const cells of profile.sample ?? []) {
      if (out.length >= n) break;
      const row = new Float32Array(features.length);
      let complete = true;
      for (let j = 0; j < features.length && complete; j++) {
        // Columns profiled as categorical keep their values as category keys (the number's text).
        const c = cells[index[j]!];
        const x = typeof c === 'number' ? c : typeof c === 'string' && c.trim() !== '' ? Number(c) : NaN;
        if (Number.isFinite(x)) row[j] = x;
        else complete = false;
      }
      if (complete) out.push(row);
    }
    if (out.length === 0) throw new WardenError('WARDEN_BAD_REQUEST', `the reference sample of ${v.model} v${v.version} has no complete numeric row to use as a background`);
    return out;
  }
}
