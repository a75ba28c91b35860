import { WardenError } from '../errors.ts';
import { columnLayout } from '../monitoring/index.ts';
import type { Registry } from '../registry/index.ts';
import type { MetadataStore, ModelVersionRecord, ReferenceRecord } from '../storage/index.ts';
import type { WardenMetrics } from '../telemetry/index.ts';
import { DEFAULT_KERNEL_BUDGET, MAX_KERNEL_BUDGET, kernelShap } from './kernel-shap.ts';
import { readTreeModel, type TreeModel } from './tree-ensemble.ts';
import { treeShap } from './tree-shap.ts';

/** Background rows drawn from the reference sample by default, and at most. */
export const DEFAULT_BACKGROUND_ROWS = 100;
export const MAX_BACKGROUND_ROWS = 1000;
/** Rows one call explains at most: each costs about a background's worth of tree walks (or coalitions × background model rows). */
export const MAX_EXPLAINED_ROWS = 100;
/** Fewest coalitions a KernelSHAP budget may name: fewer cannot fit a dozen features. */
export const MIN_KERNEL_BUDGET = 32;
/**
 * Widest input KernelSHAP explains: its least squares fit costs coalitions × features² on the serving thread (about
 * 30 million steps at 128 features and 2,048 coalitions), and a few thousand coalitions say little about more.
 */
export const MAX_KERNEL_FEATURES = 128;
/** Parsed models kept, least recently used first out. */
const CACHE_SIZE = 16;


export type ExplainMethod = 'tree-shap-interventional' | 'kernel-shap';

export interface RowExplanation {
  /** φ per feature, by name, in the model's column order. */
  shap: Record<string, number>;
  /**
   * What is explained for the row: the model's output (double precision for trees; onnxruntime's float32 answer may
   * differ in the last digits), or for `space: 'margin'` its log-odds, logit(served probability).
   */
  value: number;
  /** KernelSHAP: whether every coalition was evaluated (the exact Shapley values), and how many were. */
  exact?: boolean;
  coalitions?: number;
}

export interface ExplainResult {
  model: string;
  version: number;
  method: ExplainMethod;
  /** The output column explained (a classifier's positive-class probability column). */
  output: string;
  /** `output`: the served value itself is explained; `margin`: its log-odds (served = 1 / (1 + e^−value)). */
  space: 'output' | 'margin';
  link: 'identity' | 'logit';
  features: string[];
  /** Mean of the explained value over the background rows: Σφ + expected = value for every row. */
  expected: number;
  background: { rows: number; source: string };
  /** KernelSHAP: the budget per row, whether every row was exact, and what the model was asked for in all. */
  kernel?: { budget: number; exact: boolean; coalitions: number; modelRows: number; runs: number };
  explanations: RowExplanation[];
}

/** What runs a version's model for KernelSHAP: the version's loaded onnxruntime session (serving's OnnxModel). */
export interface ModelRunner {
  run(inputs: { name: string; datatype: string; dims: number[]; data: Float32Array }[], outputNames?: readonly string[]): Promise<{ name: string; data: ArrayLike<unknown> }[]>;
}

export interface ExplainOptions {
  /** Background rows from the reference sample (default {@link DEFAULT_BACKGROUND_ROWS}). */
  background?: number;
  /** KernelSHAP coalitions per row (default {@link DEFAULT_KERNEL_BUDGET}); trees ignore it. */
  budget?: number;
  /** The session of the version that served (KernelSHAP runs it); without one, `runnerOf` is asked. */
  runner?: ModelRunner;
  /** Which route asked, for warden_explanations_total: an inference protocol, the explain API, or monitoring's window importance. */
  protocol?: 'oip' | 'predict' | 'api' | 'monitoring';
}

type Prepared =
  | { method: 'tree-shap-interventional'; tree: TreeModel; features: string[]; output: string }
  | { method: 'kernel-shap'; features: string[]; output: string; input: string; tensor: string; batchRows: number };

export interface ExplainServiceDeps {
  registry: Registry;
  metadata: MetadataStore;
  /** The loaded session of a version (the serving table's), for KernelSHAP when the caller passes none. */
  runnerOf?: (v: ModelVersionRecord) => Promise<ModelRunner>;
  /** warden_explanations_total and warden_explained_rows_total are counted here when given. */
  metrics?: WardenMetrics;
  /**
   * The version's reference as monitoring holds it in memory (kept current across replicas by the change feed), so
   * an explained request reads no store; the store is read only when this has none.
   */
  reference?: (model: string, version: number) => ReferenceRecord | undefined;
}

/**
 * Explanations (docs/explainability.md) against a background drawn from the version's registered reference sample:
 * exact interventional TreeSHAP for a version whose ONNX graph is a tree ensemble (a regressor's output, a
 * classifier's margin), KernelSHAP of the same value function for any other model with one FP32 input and one
 * output column, run through the version's loaded session.
 */
export class ExplainService {
  private readonly cache = new Map<string, Prepared>();
  /** Background rows per reference record (a new record is a new reference) and row count. */
  private readonly backgrounds = new WeakMap<ReferenceRecord, Map<string, Float32Array[]>>();

  constructor(private readonly deps: ExplainServiceDeps) {}

  /** Checks the options before a model runs, so an inference request asking for an impossible explanation is refused first. */
  static checkOptions(opts: ExplainOptions): void {
    const wanted = opts.background ?? DEFAULT_BACKGROUND_ROWS;
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > MAX_BACKGROUND_ROWS) {
      throw new WardenError('WARDEN_BAD_REQUEST', `background must be an integer number of rows in [1, ${MAX_BACKGROUND_ROWS}]`);
    }
    const budget = opts.budget ?? DEFAULT_KERNEL_BUDGET;
    if (!Number.isInteger(budget) || budget < MIN_KERNEL_BUDGET || budget > MAX_KERNEL_BUDGET) {
      throw new WardenError('WARDEN_BAD_REQUEST', `budget must be an integer number of coalitions in [${MIN_KERNEL_BUDGET}, ${MAX_KERNEL_BUDGET}]`);
    }
  }

  /** Explains `rows` of `version` (as the registry resolved it, or the version that served them). */
  async explain(version: ModelVersionRecord, rows: readonly Float32Array[], opts: ExplainOptions = {}): Promise<ExplainResult> {
    const { model } = version;
    if (rows.length === 0) throw new WardenError('WARDEN_BAD_REQUEST', 'no rows to explain');
    if (rows.length > MAX_EXPLAINED_ROWS) throw new WardenError('WARDEN_BAD_REQUEST', `${rows.length} rows; explain at most ${MAX_EXPLAINED_ROWS} per call`);
    ExplainService.checkOptions(opts);
    const prepared = await this.prepare(version);
    const bg = await this.background(version, prepared.features, opts.background ?? DEFAULT_BACKGROUND_ROWS);
    for (const x of rows) {
      if (x.length !== prepared.features.length) throw new WardenError('WARDEN_INVALID_INPUT', `a row has ${x.length} values; ${model} v${version.version} takes ${prepared.features.length}`);
    }
    const named = (phi: number[]) => Object.fromEntries(prepared.features.map((f, j) => [f, phi[j]!]));
    const explanations: RowExplanation[] = [];
    let expected = 0;
    const common = { model, version: version.version, output: prepared.output, features: prepared.features };
    const source = `reference sample of v${version.version}`;
    let result: ExplainResult;
    if (prepared.method === 'tree-shap-interventional') {
      const { tree } = prepared;
      for (const x of rows) {
        // A row at a time, yielding between rows: a call of 100 rows must not hold the event loop (and inference) for its whole length.
        if (explanations.length) await new Promise((r) => setImmediate(r));
        const e = treeShap(tree.ensemble, x, bg);
        explanations.push({ shap: named(e.shap), value: e.value });
        expected = e.expected;
      }
      result = { ...common, method: prepared.method, space: tree.space, link: tree.link, expected, background: { rows: bg.length, source }, explanations };
    } else {
      const runner = opts.runner ?? (await this.runnerOf(version));
      const { input, tensor } = prepared;
      const width = prepared.features.length;
      const f = async (data: Float32Array, n: number) => {
        const [out] = await runner.run([{ name: input, datatype: 'FP32', dims: [n, width], data }], [tensor]);
        return out!.data as ArrayLike<number>;
      };
      const budget = opts.budget ?? DEFAULT_KERNEL_BUDGET;
      const kernel = { budget, exact: true, coalitions: 0, modelRows: 0, runs: 0 };
      let batchRows = prepared.batchRows;
      for (const x of rows) {
        if (explanations.length) await new Promise((r) => setImmediate(r));
        const e = await kernelShap(f, x, bg, { budget, batchRows }).catch((err: unknown) => {
          if (err instanceof WardenError) throw err;
          throw new WardenError('WARDEN_BAD_REQUEST', `KernelSHAP of ${model} v${version.version} failed: ${(err as Error).message} (budget ${budget} coalitions)`);
        });
        explanations.push({ shap: named(e.shap), value: e.value, exact: e.exact, coalitions: e.coalitions });
        // The next row (and the next call) starts at the batch size this one settled on.
        batchRows = prepared.batchRows = e.batchRows;
        expected = e.expected;
        kernel.exact &&= e.exact;
        kernel.coalitions += e.coalitions;
        kernel.modelRows += e.modelRows;
        kernel.runs += e.runs;
      }
      result = { ...common, method: prepared.method, space: 'output', link: 'identity', expected, background: { rows: bg.length, source }, kernel, explanations };
    }
    this.count(version, opts.protocol ?? 'api', rows.length);
    return result;
  }

  private count(v: ModelVersionRecord, protocol: NonNullable<ExplainOptions['protocol']>, rows: number): void {
    const m = this.deps.metrics;
    if (!m) return;
    const labels = { model: v.model, version: String(v.version), protocol };
    m.explanations.inc(labels);
    m.explainedRows.inc(labels, rows);
  }

  private async runnerOf(v: ModelVersionRecord): Promise<ModelRunner> {
    if (!this.deps.runnerOf) throw new WardenError('WARDEN_INTERNAL', 'KernelSHAP needs the version\'s loaded session and none was given');
    return this.deps.runnerOf(v);
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
    const spec = v.signature.inputs[0];
    if (!spec || v.signature.inputs.length !== 1) {
      throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} has ${v.signature.inputs.length} inputs; explanations need one input tensor`);
    }
    const features = layout.inputs[0]!.columns;
    let prepared: Prepared;
    try {
      const tree = readTreeModel(await this.deps.registry.readArtifact(v));
      const columns = layout.outputs.find((o) => o.name === tree.output.tensor)?.columns;
      const output = columns?.[tree.output.column];
      if (output === undefined) throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version}: the ensemble's output ${tree.output.tensor} is not in the signature`);
      prepared = { method: 'tree-shap-interventional', tree, features, output };
    } catch (e) {
      if (!(e instanceof WardenError) || e.code !== 'WARDEN_BAD_REQUEST') throw e;
      // Not a tree ensemble Warden reads: KernelSHAP, for a model with one 2-D FP32 input and one output column.
      const problems: string[] = [];
      if (spec.datatype !== 'FP32' || spec.shape.length !== 2) problems.push(`its input ${spec.name} is ${spec.datatype} ${JSON.stringify(spec.shape)}, not a 2-D FP32 tensor`);
      else if (spec.shape[0] !== -1) problems.push(`its input's first dimension is fixed at ${spec.shape[0]}, so rows cannot be batched`);
      if (layout.predictions.length !== 1) problems.push(`it has ${layout.predictions.length} output columns (${layout.predictions.slice(0, 5).join(', ')}), not one`);
      if (features.length === 0) problems.push('its input has no columns');
      if (features.length > MAX_KERNEL_FEATURES) problems.push(`its input has ${features.length} columns, more than the ${MAX_KERNEL_FEATURES} KernelSHAP explains`);
      if (problems.length) throw new WardenError('WARDEN_BAD_REQUEST', `${e.message}; KernelSHAP needs one 2-D FP32 input and one output column: ${problems.join('; ')}`);
      prepared = { method: 'kernel-shap', features, output: layout.predictions[0]!, input: spec.name, tensor: layout.outputs.find((o) => o.columns.length === 1)!.name, batchRows: 1024 };
    }
    this.cache.set(k, prepared);
    if (this.cache.size > CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    return prepared;
  }

  /** The first `n` complete rows of the reference sample (a uniform sample, in hash order), as the model sees them. */
  private async background(v: ModelVersionRecord, features: string[], n: number): Promise<Float32Array[]> {
    const ref = this.deps.reference?.(v.model, v.version) ?? (await this.deps.metadata.getReference(v.model, v.version));
    if (!ref) {
      throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} has no reference: register one (warden reference set) so explanations have a background to compare with`);
    }
    const schema = ref.schema as { columns?: { name: string }[] };
    const profile = ref.profile as { sample?: (number | string | null)[][] };
    const index = features.map((f) => (schema.columns ?? []).findIndex((c) => c.name === f));
    const missing = features.filter((_, j) => index[j]! < 0);
    if (missing.length) throw new WardenError('WARDEN_BAD_REQUEST', `the reference of ${v.model} v${v.version} lacks features ${missing.join(', ')}; register a reference with every input column`);
    const key = `${n}\u0000${features.join('\u0000')}`;
    const cached = this.backgrounds.get(ref)?.get(key);
    if (cached) return cached;
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
    const byKey = this.backgrounds.get(ref) ?? new Map<string, Float32Array[]>();
    // A handful of (rows, features) choices per reference at most: callers pick the row count from a bounded range.
    if (byKey.size >= 8) byKey.clear();
    byKey.set(key, out);
    this.backgrounds.set(ref, byKey);
    return out;
  }
}
