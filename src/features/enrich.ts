/**
 * Serving-time enrichment (docs/features.md#online-store-and-enrichment): a deployment names the feature views its
 * model reads (`PUT /api/v1/deployments/{name}/features`); a request then carries entity keys instead of the values,
 * and Warden fills the model's named features from the replica's online cache, in memory, before validation.
 *
 * - `:predict`: each instance may leave out any named feature a bound view provides; the entity key of row r comes
 *   from `parameters.entities[r]` (an object of join key → value), else from the instance's own join-key fields (or
 *   the binding's `entityKey` column), which validation lets through unless the model takes them as features.
 * - OIP (`/v2/models/{name}/infer`): tensors are positional, so the named-feature input (the signature's first input,
 *   whose columns are the signature's features) is built from `parameters.entities` when the request leaves it out,
 *   or its `null` elements are filled when it is sent with flat data.
 *
 * A value the caller sent wins over the store's (it is the caller's statement of the input, e.g. a request-time
 * feature or an override). A value the store holds as `expired` (older than the view's TTL) or `missing` is left out,
 * so the request is refused (400) naming the row, entity, feature, view and status; it is never served as present.
 */
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { WardenError } from '../errors.ts';
import type { FeatureSpec, MetadataStore, ModelSignature } from '../storage/index.ts';
import type { CachedRow, OnlineCache, ViewIndex } from './online-cache.ts';
import type { SkewMonitor } from './skew.ts';
import { KEY_SEPARATOR, type FeatureRepo, type FeatureViewDef, type ValueStatus } from './types.ts';
import { keyText, type FeatureValue } from './values.ts';
import { viewJoinKeys } from './definitions.ts';

/** What a deployment reads: the views in order (the first that has a feature provides it) and how rows name entities. */
export interface DeploymentFeatures {
  views: string[];
  /**
   * The column of the instances (or of `parameters.entities`) holding the entity key, when it is not named as the
   * views' join key; every view then has one join key. Unset: the join keys by name.
   */
  entityKey?: string;
}

export interface DeploymentFeaturesView extends DeploymentFeatures {
  deployment: string;
  /** Which view provides each feature the views have (the first listed that has it). */
  features: { name: string; view: string }[];
  updatedAt: number;
  updatedBy: string;
}

/** What enrichment writes on the request's `feature_lookup` span (RequestTrace). */
export interface LookupTrace {
  readonly recording: boolean;
  setStepAttributes(attributes: Record<string, string | number | boolean | string[]>): void;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);
const STATUSES: readonly ValueStatus[] = ['present', 'expired', 'missing'];
/** Problems one refusal names at most. */
const MAX_NAMED = 5;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates a binding against the definitions; throws WARDEN_BAD_REQUEST naming what is wrong. */
export function parseDeploymentFeatures(body: unknown, repo: FeatureRepo): DeploymentFeatures {
  const form = 'the body is {"views": ["view", …], "entityKey"?: "column"}';
  if (!isObject(body)) throw bad(`${form}`);
  for (const k of Object.keys(body)) if (k !== 'views' && k !== 'entityKey') throw bad(`unknown field ${k.slice(0, 64)}; ${form}`);
  const { views, entityKey } = body;
  if (!Array.isArray(views) || views.length === 0 || views.length > 100 || views.some((v) => typeof v !== 'string')) {
    throw bad(`views must be a list of 1 to 100 feature view names; ${form}`);
  }
  const names = views as string[];
  const dup = names.find((v, i) => names.indexOf(v) !== i);
  if (dup !== undefined) throw bad(`views lists ${dup} twice`);
  const defined = new Map(repo.featureViews.map((v) => [v.name, v]));
  for (const v of names) {
    if (!defined.has(v)) {
      const known = [...defined.keys()];
      throw bad(`no feature view ${JSON.stringify(v.slice(0, 64))}; defined: ${known.length ? known.slice(0, 20).join(', ') : 'none (define views with PUT /api/v1/features or features.yaml)'}`);
    }
  }
  const out: DeploymentFeatures = { views: names };
  if (entityKey !== undefined) {
    if (typeof entityKey !== 'string' || entityKey.length === 0 || entityKey.length > 256) throw bad('entityKey must be a column name (a non-empty string)');
    for (const v of names) {
      const keys = viewJoinKeys(repo, defined.get(v)!);
      if (keys.length !== 1) throw bad(`entityKey names one column, but view ${v} has ${keys.length} join keys (${keys.join(', ')}); leave entityKey out and send each join key by name`);
    }
    out.entityKey = entityKey;
  }
  return out;
}

/** One view a plan reads. */
interface PlanView {
  name: string;
  /** Where each join key's value is read from in a row's entity object. */
  keyFields: string[];
  /** Counts of values read by status, folded into warden_feature_values_total at collection. */
  counts: [number, number, number];
}

/** Where each named feature of one signature comes from. */
interface Plan {
  views: PlanView[];
  /** Per feature column: index into `views`, or -1 when no bound view has it (the caller sends it). */
  viewOf: Int32Array;
  /** Per feature column: position in the view's schema. */
  posOf: Int32Array;
  /** Instance fields that carry entity keys and are not model features: let through validation. */
  strip: ReadonlySet<string>;
  /** Feature name → column: which columns an instance sends itself, from its own (few) fields. */
  colOf: ReadonlyMap<string, number>;
  viewNames: string[];
}

interface Binding extends DeploymentFeatures {
  deployment: string;
  updatedAt: number;
  updatedBy: string;
  /** Compiled per signature's feature list (a version's signature object lives as long as its record). */
  plans: WeakMap<readonly FeatureSpec[], Plan>;
  duration: { observe(v: number): void };
}

export interface EnrichmentOptions {
  cache: OnlineCache;
  metadata: MetadataStore;
  /** The current definitions. */
  repo: () => FeatureRepo;
  logger: Logger;
  promRegistry: Registry;
  now?: () => number;
  /**
   * Offered each served row and view (skew.ts SkewMonitor): `want` counts it and says whether the bounded sample
   * keeps it; only then is the row's entity key and the values of the view's features handed to `observe`.
   */
  skew?: Pick<SkewMonitor, 'want' | 'observe'>;
}

/** A row's problem: what could not be filled. */
interface Problem {
  row: number;
  feature: string;
  view: string;
  entity: string;
  status: ValueStatus | 'string';
  eventTs: number | null;
  ttlMs: number;
  /** The view's copy lacks entities (features.maxOnlineRows reached). */
  incomplete: boolean;
}

/** The first problems of a request, and how many there were. */
interface Problems {
  list: Problem[];
  n: number;
}

/**
 * Deployment bindings (stored in the metadata store) and the request-path fill. `reads(model)` is one Map lookup, so
 * deployments that read no views pay nothing; a lookup touches only the deployment's own views.
 */
export class Enrichment {
  private bindings = new Map<string, Binding>();
  private readonly now: () => number;
  private readonly histogram: Histogram<'deployment'>;
  /** Pending counts per view name (shared by every plan that reads the view), folded in when the counter is read. */
  private readonly counts = new Map<string, [number, number, number]>();
  private scratchValues = new Float64Array(0);
  private scratchFilled = new Uint8Array(0);

  constructor(private readonly opts: EnrichmentOptions) {
    this.now = opts.now ?? Date.now;
    const registers = [opts.promRegistry];
    this.histogram = new Histogram({
      name: 'warden_feature_lookup_duration_seconds',
      help: 'Time to fill a request\'s features from the online cache (serving-time enrichment), by deployment.',
      labelNames: ['deployment'],
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    const counts = this.counts;
    new Counter({
      name: 'warden_feature_values_total',
      help: 'Feature values looked up for requests, by view and status (present, expired: older than the TTL, missing).',
      labelNames: ['view', 'status'],
      registers,
      collect() {
        for (const [view, c] of counts) {
          for (let s = 0; s < 3; s++) {
            this.inc({ view, status: STATUSES[s]! }, c[s]!);
            c[s] = 0;
          }
        }
      },
    });
  }

  /** Loads the stored bindings and holds their views in the cache. */
  async start(): Promise<void> {
    await this.reload();
  }

  /** Reads the bindings again (another replica changed them, or the definitions changed) and tracks their views. */
  async reload(): Promise<void> {
    const records = await this.opts.metadata.listDeploymentFeatures();
    const next = new Map<string, Binding>();
    for (const r of records) {
      const b = r.binding as DeploymentFeatures;
      const held = this.bindings.get(r.deployment);
      // The same binding keeps its compiled plans (and their pending counts).
      if (held && held.updatedAt === r.updatedAt && JSON.stringify([held.views, held.entityKey]) === JSON.stringify([b.views, b.entityKey])) {
        next.set(r.deployment, held);
        continue;
      }
      next.set(r.deployment, {
        deployment: r.deployment,
        views: b.views,
        ...(b.entityKey !== undefined ? { entityKey: b.entityKey } : {}),
        updatedAt: r.updatedAt,
        updatedBy: r.updatedBy,
        plans: new WeakMap(),
        duration: this.histogram.labels({ deployment: r.deployment }),
      });
    }
    this.bindings = next;
    await this.track();
  }

  /** The definitions changed: plans are compiled again and the cache holds the views now bound. */
  async definitionsChanged(): Promise<void> {
    for (const b of this.bindings.values()) b.plans = new WeakMap();
    await this.track();
  }

  private async track(): Promise<void> {
    const repo = this.opts.repo();
    const names = new Set<string>();
    for (const b of this.bindings.values()) for (const v of b.views) names.add(v);
    const defs: FeatureViewDef[] = [];
    for (const n of names) {
      const def = repo.featureViews.find((v) => v.name === n);
      if (def) defs.push(def);
      else this.opts.logger.warn({ view: n }, `features: a deployment reads view ${n}, which is no longer defined; its features are left to the caller`);
    }
    await this.opts.cache.track(defs);
  }

  /** The stored binding of a deployment, with which view provides each feature. */
  get(deployment: string): DeploymentFeaturesView | undefined {
    const b = this.bindings.get(deployment);
    return b && this.view(b);
  }

  list(): DeploymentFeaturesView[] {
    return [...this.bindings.values()].sort((a, b) => (a.deployment < b.deployment ? -1 : 1)).map((b) => this.view(b));
  }

  private view(b: Binding): DeploymentFeaturesView {
    const repo = this.opts.repo();
    const features: { name: string; view: string }[] = [];
    const seen = new Set<string>();
    for (const v of b.views) {
      for (const f of repo.featureViews.find((x) => x.name === v)?.schema ?? []) {
        if (seen.has(f.name)) continue;
        seen.add(f.name);
        features.push({ name: f.name, view: v });
      }
    }
    return {
      deployment: b.deployment,
      views: b.views,
      ...(b.entityKey !== undefined ? { entityKey: b.entityKey } : {}),
      features,
      updatedAt: b.updatedAt,
      updatedBy: b.updatedBy,
    };
  }

  /** Validates and stores a binding; this replica holds its views before it answers. */
  async set(deployment: string, body: unknown, actor: string): Promise<DeploymentFeaturesView> {
    const binding = parseDeploymentFeatures(body, this.opts.repo());
    await this.opts.metadata.saveDeploymentFeatures({ deployment, binding, updatedAt: this.now(), updatedBy: actor });
    await this.reload();
    return this.get(deployment)!;
  }

  async delete(deployment: string): Promise<boolean> {
    const had = await this.opts.metadata.deleteDeploymentFeatures(deployment);
    await this.reload();
    return had;
  }

  // ---- the request path: in memory only ----

  /** Whether the deployment reads feature views (one Map lookup). */
  reads(model: string): boolean {
    return this.bindings.has(model);
  }

  private plan(b: Binding, features: readonly FeatureSpec[]): Plan {
    let plan = b.plans.get(features);
    if (plan) return plan;
    const repo = this.opts.repo();
    const views: PlanView[] = [];
    const viewOf = new Int32Array(features.length).fill(-1);
    const posOf = new Int32Array(features.length);
    const featureNames = new Set(features.map((f) => f.name));
    const strip = new Set<string>();
    for (const name of b.views) {
      const def = repo.featureViews.find((v) => v.name === name);
      if (!def) continue;
      const joinKeys = viewJoinKeys(repo, def);
      const keyFields = b.entityKey !== undefined ? [b.entityKey] : joinKeys;
      let used = false;
      const slot = views.length;
      def.schema.forEach((f, pos) => {
        features.forEach((mf, c) => {
          if (mf.name === f.name && viewOf[c] === -1) {
            viewOf[c] = slot;
            posOf[c] = pos;
            used = true;
          }
        });
      });
      if (!used) continue;
      for (const k of keyFields) if (!featureNames.has(k)) strip.add(k);
      let counts = this.counts.get(name);
      if (!counts) this.counts.set(name, (counts = [0, 0, 0]));
      views.push({ name, keyFields, counts });
    }
    plan = { views, viewOf, posOf, strip, colOf: new Map(features.map((f, c) => [f.name, c])), viewNames: views.map((v) => v.name) };
    b.plans.set(features, plan);
    return plan;
  }

  /**
   * `parameters.entities` when sent: one object per row. Absent → undefined; malformed → WARDEN_BAD_REQUEST.
   */
  private entitiesParam(model: string, parameters: Record<string, unknown> | undefined, rows: number | undefined): Record<string, unknown>[] | undefined {
    const raw = parameters?.entities;
    if (raw === undefined) return undefined;
    if (!this.bindings.has(model)) {
      throw bad(`parameters.entities: deployment ${model} reads no feature views; name them with PUT /api/v1/deployments/${model}/features`);
    }
    if (!Array.isArray(raw) || raw.length === 0 || raw.some((e) => !isObject(e))) {
      throw bad('parameters.entities must be a non-empty array of objects, one per row, of join key → value (e.g. [{"dteday": "2012-06-01"}])');
    }
    if (rows !== undefined && raw.length !== rows) {
      throw bad(`parameters.entities has ${raw.length} entr${raw.length === 1 ? 'y' : 'ies'} for ${rows} row${rows === 1 ? '' : 's'}; send one per row`);
    }
    return raw as Record<string, unknown>[];
  }

  /**
   * `:predict`: the values of the named features each instance leaves out, from the deployment's views, as a
   * prefill for validation (quality's decodeInstances), which also lets the entity-key fields through; the
   * instances are not changed. `problem` is the refusal's message when some value could not be filled (expired,
   * missing, not a number), for validation to throw. Undefined when the deployment reads no views.
   */
  fillInstances(
    model: string,
    features: readonly FeatureSpec[],
    instances: unknown,
    parameters: Record<string, unknown> | undefined,
    trace?: LookupTrace,
  ): { prefill: { values: Float64Array; filled: Uint8Array; ignore: ReadonlySet<string> }; problem?: string } | undefined {
    const b = this.bindings.get(model);
    if (!b) {
      this.entitiesParam(model, parameters, undefined);
      return undefined;
    }
    // Malformed instances are left for validation to name.
    if (!Array.isArray(instances) || instances.length === 0) return undefined;
    const started = performance.now();
    const entities = this.entitiesParam(model, parameters, instances.length);
    const plan = this.plan(b, features);
    const now = this.now();
    const problems: Problems = { list: [], n: 0 };
    const indexes = plan.views.map((v) => this.opts.cache.index(v.name));
    const keys: (string | undefined)[] = new Array<string | undefined>(plan.views.length);
    const before = this.countsSnapshot(plan, trace);
    const k = features.length;
    const { values, filled } = this.scratch(instances.length * k);
    const held: (CachedRow | undefined)[] = new Array<CachedRow | undefined>(plan.views.length);
    const sent = new Uint8Array(k);
    for (let r = 0; r < instances.length; r++) {
      const inst: unknown = instances[r];
      if (!isObject(inst)) continue;
      const source = entities ? entities[r]! : inst;
      this.rowsOf(plan, indexes, source, now, keys, held);
      // The columns this instance sends itself (a value the caller sends wins), from its own fields: usually few.
      sent.fill(0);
      for (const field in inst) {
        const c = plan.colOf.get(field);
        if (c !== undefined && inst[field] !== undefined) sent[c] = 1;
      }
      for (let c = 0; c < k; c++) {
        const v = plan.viewOf[c]!;
        if (v < 0 || sent[c] === 1) continue;
        const name = features[c]!.name;
        // The common case: the entity's row is held and fresh, the value a number.
        const row = held[v];
        if (row !== undefined) {
          const y = row.values[plan.posOf[c]!];
          if (typeof y === 'number') {
            values[r * k + c] = y;
            filled[r * k + c] = 1;
            plan.views[v]!.counts[0]++;
            continue;
          }
        }
        const x = this.value(plan, indexes[v], v, keys[v], plan.posOf[c]!, now, r, name, source, problems);
        if (x !== undefined) {
          values[r * k + c] = x;
          filled[r * k + c] = 1;
        }
      }
      if (this.opts.skew) this.offerSkew(model, plan, features, keys, now, (c) => inst[features[c]!.name] ?? (filled[r * k + c] === 1 ? values[r * k + c] : undefined));
    }
    this.finish(b, plan, started, instances.length, problems.n, before, trace);
    const prefill = { values, filled, ignore: plan.strip };
    return problems.n ? { prefill, problem: describe(problems, 'instances') } : { prefill };
  }

  /**
   * OIP: when `parameters.entities` is sent, builds the named-feature input (the signature's first input) from the
   * views if the request leaves it out, or fills its `null` elements (flat data) if it is sent. Returns the inputs to
   * decode and the refusal's message when some value could not be filled.
   */
  fillTensors(model: string, signature: ModelSignature, inputs: unknown, parameters: Record<string, unknown> | undefined, trace?: LookupTrace): { inputs: unknown; problem?: string } {
    const entities = this.entitiesParam(model, parameters, undefined);
    const b = this.bindings.get(model);
    if (!b || !entities) return { inputs };
    const features = signature.features;
    const spec = signature.inputs[0]!;
    if (!features?.length) {
      throw bad(`parameters.entities: model ${model} has no named features, so its input columns cannot be filled by name; push the version with a feature list`);
    }
    if (spec.shape.length !== 2) throw bad(`parameters.entities: input ${spec.name} has rank ${spec.shape.length}; only a 2-D [rows, features] input is filled from feature views`);
    if (inputs !== undefined && !Array.isArray(inputs)) return { inputs };
    const list = (inputs as unknown[] | undefined) ?? [];
    const at = list.findIndex((t) => isObject(t) && t.name === spec.name);
    const rows = entities.length;
    const k = features.length;
    let data: unknown[];
    if (at < 0) {
      data = new Array<unknown>(rows * k).fill(null);
    } else {
      const sent = list[at] as Record<string, unknown>;
      // A nested or malformed tensor is left to validation.
      if (!Array.isArray(sent.data) || sent.data.length !== rows * k || sent.data.some((x) => Array.isArray(x))) return { inputs };
      data = sent.data as unknown[];
    }
    const started = performance.now();
    const plan = this.plan(b, features);
    const now = this.now();
    const problems: Problems = { list: [], n: 0 };
    const indexes = plan.views.map((v) => this.opts.cache.index(v.name));
    const keys: (string | undefined)[] = new Array<string | undefined>(plan.views.length);
    const before = this.countsSnapshot(plan, trace);
    const notInViews = new Set<string>();
    const held: (CachedRow | undefined)[] = new Array<CachedRow | undefined>(plan.views.length);
    for (let r = 0; r < rows; r++) {
      const source = entities[r]!;
      this.rowsOf(plan, indexes, source, now, keys, held);
      for (let c = 0; c < k; c++) {
        if (data[r * k + c] !== null) continue;
        const v = plan.viewOf[c]!;
        const name = features[c]!.name;
        if (v < 0) {
          notInViews.add(name);
          continue;
        }
        const row = held[v];
        if (row !== undefined) {
          const y = row.values[plan.posOf[c]!];
          if (typeof y === 'number') {
            data[r * k + c] = y;
            plan.views[v]!.counts[0]++;
            continue;
          }
        }
        const filled = this.value(plan, indexes[v], v, keys[v], plan.posOf[c]!, now, r, name, source, problems);
        if (filled !== undefined) data[r * k + c] = filled;
      }
      if (this.opts.skew) this.offerSkew(model, plan, features, keys, now, (c) => data[r * k + c]);
    }
    this.finish(b, plan, started, rows, problems.n, before, trace);
    let problem = problems.n ? describe(problems, 'parameters.entities') : undefined;
    if (notInViews.size > 0) {
      const names = [...notInViews];
      const more = `${names.slice(0, MAX_NAMED).join(', ')}${names.length > MAX_NAMED ? ` and ${names.length - MAX_NAMED} more` : ''}`;
      const msg = `input ${spec.name}: feature${names.length === 1 ? '' : 's'} ${more} ${names.length === 1 ? 'is' : 'are'} in none of the views deployment ${model} reads (${b.views.join(', ')}); send ${spec.name} with the values, null where a view's value is to be filled`;
      problem = problem ? `${problem}; ${msg}` : msg;
    }
    const tensor = { name: spec.name, datatype: spec.datatype, shape: [rows, k], data };
    const out = at < 0 ? [tensor, ...list] : list.map((t, i) => (i === at ? { ...(t as object), data } : t));
    return problem ? { inputs: out, problem } : { inputs: out };
  }

  /** Offers one served row to the skew sample, once per view with an entity key: the values of the view's features. */
  private offerSkew(model: string, plan: Plan, features: readonly FeatureSpec[], keys: readonly (string | undefined)[], now: number, cell: (c: number) => unknown): void {
    const skew = this.opts.skew!;
    for (let v = 0; v < plan.views.length; v++) {
      const key = keys[v];
      const view = plan.views[v]!.name;
      if (key === undefined || !skew.want(view)) continue;
      const served: Record<string, FeatureValue> = {};
      for (let c = 0; c < features.length; c++) {
        if (plan.viewOf[c] !== v) continue;
        const x = cell(c);
        if (x === null || typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') served[features[c]!.name] = x;
      }
      skew.observe({ view, deployment: model, ts: now, entityKey: key, served });
    }
  }

  /**
   * The prefill's buffers, reused from request to request: validation reads them in the same synchronous step that
   * asked for them (no await in between), so they are free again by the next request. Grown as needed, never shrunk
   * below 64 rows of 256 features; only the first `n` cells are cleared and used.
   */
  private scratch(n: number): { values: Float64Array; filled: Uint8Array } {
    if (this.scratchValues.length < n) {
      this.scratchValues = new Float64Array(Math.max(n, 64 * 256));
      this.scratchFilled = new Uint8Array(this.scratchValues.length);
    }
    const filled = this.scratchFilled.subarray(0, n);
    filled.fill(0);
    return { values: this.scratchValues.subarray(0, n), filled };
  }

  /**
   * Per view, the row's entity key and its held row when fresh (present and within the TTL); undefined otherwise,
   * for the slow path to say why.
   */
  private rowsOf(plan: Plan, indexes: (ViewIndex | undefined)[], source: Record<string, unknown>, now: number, keys: (string | undefined)[], held: (CachedRow | undefined)[]): void {
    for (let v = 0; v < plan.views.length; v++) {
      const key = entityKeyOf(source, plan.views[v]!.keyFields);
      keys[v] = key;
      const idx = indexes[v];
      const row = key === undefined || idx === undefined ? undefined : idx.rows.get(key);
      held[v] = row !== undefined && (idx!.ttlMs === 0 || row.eventTs > now - idx!.ttlMs) ? row : undefined;
    }
  }

  /** The value of one feature of one row, counted; undefined (and a problem recorded) when it cannot be filled. */
  private value(
    plan: Plan,
    idx: ViewIndex | undefined,
    v: number,
    key: string | undefined,
    pos: number,
    now: number,
    r: number,
    feature: string,
    source: Record<string, unknown>,
    problems: Problems,
  ): number | undefined {
    const pv = plan.views[v]!;
    if (key === undefined) {
      const field = pv.keyFields.find((f) => keyText(source[f]) === undefined)!;
      throw bad(
        `row ${r}: no entity key for view ${pv.name}: ${field} is ${source[field] === undefined ? 'not sent' : 'not a string or number'}; send it in parameters.entities[${r}] (or as the instance's ${field} field)`,
      );
    }
    const row = idx?.rows.get(key);
    const status = idx ? idx.status(row, pos, now) : 'missing';
    pv.counts[status === 'present' ? 0 : status === 'expired' ? 1 : 2]++;
    if (status === 'present') {
      const x = row!.values[pos];
      if (typeof x === 'number') return x;
      if (typeof x === 'boolean') return x ? 1 : 0;
    }
    if (problems.n++ < MAX_NAMED) {
      problems.list.push({
        row: r,
        feature,
        view: pv.name,
        entity: entityText(pv, source),
        status: status === 'present' ? 'string' : status,
        eventTs: row ? row.eventTs : null,
        ttlMs: idx?.ttlMs ?? 0,
        incomplete: !row && idx !== undefined && idx.incomplete,
      });
    }
    return undefined;
  }

  /** The counts before this request, when the span needs this request's statuses. */
  private countsSnapshot(plan: Plan, trace: LookupTrace | undefined): number[] | undefined {
    if (!trace?.recording) return undefined;
    const out = [0, 0, 0];
    for (const v of plan.views) for (let s = 0; s < 3; s++) out[s]! += v.counts[s]!;
    return out;
  }

  private finish(b: Binding, plan: Plan, started: number, rows: number, problems: number, before: number[] | undefined, trace: LookupTrace | undefined): void {
    b.duration.observe((performance.now() - started) / 1000);
    if (!trace?.recording || !before) return;
    const after = [0, 0, 0];
    for (const v of plan.views) for (let s = 0; s < 3; s++) after[s]! += v.counts[s]!;
    trace.setStepAttributes({
      'warden.features.source': 'online',
      'warden.features.views': plan.viewNames,
      'warden.features.rows': rows,
      'warden.features.present': after[0]! - before[0]!,
      'warden.features.expired': after[1]! - before[1]!,
      'warden.features.missing': after[2]! - before[2]!,
      'warden.features.refused': problems,
    });
  }
}

/** The entity key of a row for a view: its key fields' values as text, joined by KEY_SEPARATOR; undefined if one is absent. */
export function entityKeyOf(source: Record<string, unknown>, fields: readonly string[]): string | undefined {
  if (fields.length === 1) return keyText(source[fields[0]!]);
  let out = '';
  for (let i = 0; i < fields.length; i++) {
    const t = keyText(source[fields[i]!]);
    if (t === undefined) return undefined;
    out = i === 0 ? t : `${out}${KEY_SEPARATOR}${t}`;
  }
  return out;
}

function entityText(pv: PlanView, source: Record<string, unknown>): string {
  return pv.keyFields.map((f) => `${f}=${JSON.stringify(source[f])}`).join(', ');
}

function describe(problems: Problems, where: string): string {
  const named = problems.list.map((p) => {
    const why =
      p.status === 'expired'
        ? `expired (its value is from ${new Date(p.eventTs!).toISOString()}, older than the view's TTL of ${durationText(p.ttlMs)})`
        : p.status === 'string'
          ? 'a string in the online store; the model takes numbers'
          : p.eventTs !== null
            ? "missing (the entity's row has no value for it)"
            : p.incomplete
              ? `missing (not in this replica's copy of the view, which is incomplete: features.maxOnlineRows was reached)`
              : 'missing (no row for the entity in the online store)';
    return `${where}[${p.row}]: feature ${p.feature} of view ${p.view} for entity ${p.entity} is ${why}`;
  });
  const extra = problems.n - problems.list.length;
  const more = extra > 0 ? `; and ${extra} more value${extra === 1 ? '' : 's'}` : '';
  return `${named.join('; ')}${more}; send the value${problems.n === 1 ? '' : 's'} in the request, or materialize the view (warden features materialize)`;
}

/** A TTL as people write it: 2d, 36h, 90m, 45s, or ms. */
export function durationText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
