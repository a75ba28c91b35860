import { WardenError, isWardenError } from '../errors.ts';
import type {
  AliasRecord,
  ArtifactStore,
  DeploymentEventKind,
  NewDeploymentEvent,
  FeatureSpec,
  MetadataStore,
  ModelRecord,
  ModelVersionRecord,
  VersionMetadata,
} from '../storage/index.ts';
import { auditRequestId, currentAudit, noteAudit } from '../security/index.ts';
import { inspectOnnx } from './onnx-file.ts';
import { validateFeatures, validateMetadata } from './validation.ts';

const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** The alias that names a deployment's stable version: what callers get when they name no version. */
export const STABLE_ALIAS = 'champion';

/** Who or what changes an alias, and why; recorded in the deployment history when the alias is `champion`. */
export interface AliasChangeContext {
  actor?: string;
  reason?: string;
  kind?: DeploymentEventKind;
  data?: Record<string, unknown>;
}
const ALIAS = /^[a-z][a-z0-9_-]{0,63}$/;

/** Names must be safe in URLs, metric labels and file names. */
export function checkModelName(name: string): void {
  if (!NAME.test(name)) {
    throw new WardenError(
      'WARDEN_BAD_REQUEST',
      `invalid model name ${JSON.stringify(name)}: use 1-128 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

export function checkAliasName(alias: string): void {
  if (!ALIAS.test(alias) || alias === 'latest') {
    throw new WardenError(
      'WARDEN_BAD_REQUEST',
      `invalid alias ${JSON.stringify(alias)}: use 1-64 lowercase letters, digits, '_' or '-', starting with a letter ('latest' is reserved)`,
    );
  }
}

export interface PushInput {
  model: string;
  bytes: Uint8Array;
  metadata?: unknown;
  /** Named features (column order of the first input); overrides any the file carries. */
  features?: unknown;
  /** Aliases to point at the new version once it is stored. */
  aliases?: string[];
  description?: string;
  /** Who pushes: recorded when the push moves the `champion` alias. */
  actor?: string;
}

export interface PushResult {
  version: ModelVersionRecord;
  /** False when identical bytes were already registered for this model: the existing version is returned. */
  created: boolean;
  /**
   * With `created: false`: what this push added to the existing version (`features`, `metadata.params` …), which had
   * none. Empty when it added nothing. What the version already has is never changed: a difference is refused.
   */
  amended: string[];
  aliases: AliasRecord[];
}

export type RegistryChange =
  | { kind: 'version-created' | 'version-deleted' | 'version-amended'; model: string; version: number }
  | { kind: 'alias-set' | 'alias-deleted'; model: string; alias: string; version?: number }
  | { kind: 'model-deleted'; model: string };

export interface RegistryDeps {
  metadata: MetadataStore;
  artifacts: ArtifactStore;
  now?: () => number;
}

/** Models, immutable content-addressed versions, and aliases that move atomically. */
export class Registry {
  private readonly metadata: MetadataStore;
  private readonly artifacts: ArtifactStore;
  private readonly now: () => number;
  private readonly listeners = new Set<(c: RegistryChange) => void>();

  constructor(deps: RegistryDeps) {
    this.metadata = deps.metadata;
    this.artifacts = deps.artifacts;
    this.now = deps.now ?? Date.now;
  }

  /** Subscribe to changes (serving reloads its table on them). Returns an unsubscribe function. */
  onChange(listener: (c: RegistryChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(c: RegistryChange): void {
    for (const l of this.listeners) l(c);
  }

  async listModels(): Promise<ModelRecord[]> {
    return this.metadata.listModels();
  }

  async getModel(name: string): Promise<ModelRecord> {
    const m = await this.metadata.getModel(name);
    if (!m) throw new WardenError('WARDEN_MODEL_NOT_FOUND', `model ${JSON.stringify(name)} is not registered`);
    return m;
  }

  async createModel(name: string, description = ''): Promise<ModelRecord> {
    checkModelName(name);
    const existing = await this.metadata.getModel(name);
    if (existing) throw new WardenError('WARDEN_CONFLICT', `model ${JSON.stringify(name)} already exists`);
    const m = { name, description, createdAt: this.now() };
    await this.metadata.createModel(m);
    return m;
  }

  /** Deletes a model and all its versions. Refused while an alias still points at one of them. */
  async deleteModel(name: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.getModel(name);
    const aliases = await this.metadata.listAliases(name);
    if (aliases.length && !opts.force) {
      throw new WardenError(
        'WARDEN_CONFLICT',
        `model ${name} is in use by aliases ${aliases.map((a) => `${a.alias}→v${a.version}`).join(', ')}; delete them first or pass force`,
      );
    }
    const versions = await this.metadata.listVersions(name);
    await this.metadata.deleteModel(name);
    noteAudit({ object: `model:${name}`, change: 'model.delete', before: { versions: versions.map((v) => ({ version: v.version, sha256: v.sha256 })), aliases: aliases.map((a) => `${a.alias}→v${a.version}`) }, after: null });
    for (const v of versions) await this.collectArtifact(v.sha256);
    this.emit({ kind: 'model-deleted', model: name });
  }

  /** Stores a new version from ONNX bytes. Identical bytes for the same model return the existing version. */
  async push(input: PushInput): Promise<PushResult> {
    checkModelName(input.model);
    for (const a of input.aliases ?? []) checkAliasName(a);
    if (input.aliases?.includes(STABLE_ALIAS)) await this.refuseDuringRollout(input.model);
    const metadata: VersionMetadata = validateMetadata(input.metadata ?? {});
    const givenMetadata: VersionMetadata = { ...metadata };
    const inspection = await inspectOnnx(input.bytes);
    const signature = inspection.signature;
    const explicitFeatures: FeatureSpec[] | undefined =
      input.features === undefined ? undefined : validateFeatures(input.features);
    if (explicitFeatures) signature.features = explicitFeatures;
    if (signature.features) checkFeaturesFitSignature(signature.features, signature);
    mergeTrainerProps(metadata, inspection.metadataProps);

    if (!(await this.metadata.getModel(input.model))) {
      await this.metadata.createModel({ name: input.model, description: input.description ?? '', createdAt: this.now() });
    }
    const { sha256, sizeBytes } = await this.artifacts.put(input.bytes);
    const existing = await this.metadata.findVersionBySha(input.model, sha256);
    let version: ModelVersionRecord;
    let created = false;
    let amended: string[] = [];
    if (existing) {
      const patch = amendment(existing, explicitFeatures, givenMetadata);
      amended = patch.fields;
      version = existing;
      if (patch.fields.length) {
        version = await this.metadata.amendVersion(input.model, existing.version, { signature: patch.signature, metadata: patch.metadata });
        this.emit({ kind: 'version-amended', model: input.model, version: existing.version });
      }
    } else {
      version = await this.metadata.createVersion({
        model: input.model,
        sha256,
        sizeBytes,
        format: 'onnx',
        signature,
        metadata,
        createdAt: this.now(),
      });
      created = true;
      noteAudit({ object: `model:${input.model}`, change: 'version.register', after: { version: version.version, sha256, sizeBytes, lineage: lineageOf(metadata) } });
      this.emit({ kind: 'version-created', model: input.model, version: version.version });
    }
    const aliases: AliasRecord[] = [];
    for (const a of input.aliases ?? []) {
      aliases.push(await this.setAlias(input.model, a, version.version, { actor: input.actor ?? 'unknown', reason: `push with --alias ${a}` }));
    }
    return { version, created, amended, aliases };
  }

  async listVersions(model: string): Promise<ModelVersionRecord[]> {
    await this.getModel(model);
    return this.metadata.listVersions(model);
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord> {
    await this.getModel(model);
    const v = await this.metadata.getVersion(model, version);
    if (!v) throw new WardenError('WARDEN_VERSION_NOT_FOUND', `model ${model} has no version ${version}`);
    return v;
  }

  /** Resolves a version number, an alias, or `latest` to a version record. */
  async resolve(model: string, ref: string): Promise<ModelVersionRecord> {
    await this.getModel(model);
    if (/^[0-9]+$/.test(ref)) return this.getVersion(model, Number(ref));
    if (ref === 'latest') {
      const all = await this.metadata.listVersions(model);
      const last = all[all.length - 1];
      if (!last) throw new WardenError('WARDEN_VERSION_NOT_FOUND', `model ${model} has no versions yet; push one`);
      return last;
    }
    const alias = await this.metadata.getAlias(model, ref);
    if (!alias) throw new WardenError('WARDEN_VERSION_NOT_FOUND', `model ${model} has no version or alias ${JSON.stringify(ref)}`);
    return this.getVersion(model, alias.version);
  }

  /** Deletes a version. Refused while an alias points at it ("in use"). */
  async deleteVersion(model: string, version: number): Promise<void> {
    const v = await this.getVersion(model, version);
    const users = (await this.metadata.listAliases(model)).filter((a) => a.version === version);
    if (users.length) {
      throw new WardenError(
        'WARDEN_CONFLICT',
        `version ${version} of ${model} is in use by alias ${users.map((a) => a.alias).join(', ')}; move or delete the alias first`,
      );
    }
    await this.metadata.deleteVersion(model, version);
    noteAudit({ object: `model:${model}`, change: 'version.delete', before: { version, sha256: v.sha256 }, after: null });
    await this.collectArtifact(v.sha256);
    this.emit({ kind: 'version-deleted', model, version });
  }

  async listAliases(model: string): Promise<AliasRecord[]> {
    await this.getModel(model);
    return this.metadata.listAliases(model);
  }

  /** Points an alias at a version in one atomic write; readers see the old or the new target, never neither. */
  /**
   * While a rollout runs, its controller owns the stable alias (promotion moves it; abort keeps it): a hand-made move
   * would change what the analysis compares against under it.
   */
  private async refuseDuringRollout(model: string): Promise<void> {
    const active = await this.metadata.activeRollout(model);
    if (active) {
      throw new WardenError(
        'WARDEN_CONFLICT',
        `${model} has a ${active.state} ${active.strategy} rollout of v${active.candidateVersion} (#${active.id}), which owns ${STABLE_ALIAS}: promote or abort it (warden rollout promote|abort ${model}) instead of moving the alias`,
      );
    }
  }

  async setAlias(model: string, alias: string, version: number, ctx: AliasChangeContext = {}): Promise<AliasRecord> {
    checkAliasName(alias);
    if (alias === STABLE_ALIAS) await this.refuseDuringRollout(model);
    await this.getVersion(model, version);
    const before = currentAudit() ? (await this.metadata.listAliases(model)).find((a) => a.alias === alias)?.version : undefined;
    const record = await this.metadata.setAlias(model, alias, version, this.now(), stableEvent(alias, ctx));
    noteAudit({ object: `model:${model}`, change: 'alias.set', before: { alias, version: before ?? null }, after: { alias, version } });
    this.emit({ kind: 'alias-set', model, alias, version });
    return record;
  }

  /** Tells listeners (the serving table) of an alias another domain moved in its own store transaction (a promotion). */
  announceAlias(model: string, alias: string, version: number): void {
    this.emit({ kind: 'alias-set', model, alias, version });
  }

  async deleteAlias(model: string, alias: string, ctx: AliasChangeContext = {}): Promise<void> {
    await this.getModel(model);
    if (alias === STABLE_ALIAS) await this.refuseDuringRollout(model);
    if (!(await this.metadata.deleteAlias(model, alias, this.now(), stableEvent(alias, { reason: `${STABLE_ALIAS} alias deleted`, ...ctx })))) {
      throw new WardenError('WARDEN_VERSION_NOT_FOUND', `model ${model} has no alias ${JSON.stringify(alias)}`);
    }
    noteAudit({ object: `model:${model}`, change: 'alias.delete', before: { alias }, after: null });
    this.emit({ kind: 'alias-deleted', model, alias });
  }

  /** Reads a version's bytes, verifying them against the content address. */
  async readArtifact(v: ModelVersionRecord): Promise<Uint8Array> {
    try {
      return await this.artifacts.get(v.sha256);
    } catch (e) {
      // Name the version as well as the digest: the caller asked for a model, not a file.
      if (isWardenError(e) && e.code === 'WARDEN_ARTIFACT_TAMPERED') {
        throw new WardenError(e.code, `model ${v.model} version ${v.version}: ${e.message}`, { sha256: v.sha256 });
      }
      throw e;
    }
  }

  private async collectArtifact(sha256: string): Promise<void> {
    if ((await this.metadata.countVersionsWithSha(sha256)) === 0) await this.artifacts.delete(sha256);
  }
}

/** A change of the stable alias goes into the deployment history, whoever makes it; other aliases do not. */
function stableEvent(alias: string, ctx: AliasChangeContext): NewDeploymentEvent | undefined {
  if (alias !== STABLE_ALIAS) return undefined;
  // The request (or loop action) id links the event to its audit entry: who, with which key (docs/audit.md).
  const requestId = auditRequestId();
  return { kind: ctx.kind ?? 'alias', strategy: 'direct', actor: ctx.actor ?? 'unknown', reason: ctx.reason ?? `${STABLE_ALIAS} alias set`, data: { ...(ctx.data ?? {}), ...(requestId ? { requestId } : {}) } };
}

/**
 * What a push of bytes already registered adds to their version: features or metadata fields it lacks. A value it
 * already has is kept as is; a different one is refused naming it. Before, such a push answered "already registered"
 * and dropped the features and metadata sent — the very fix the `:predict` error suggests.
 */
function amendment(
  v: ModelVersionRecord,
  features: FeatureSpec[] | undefined,
  metadata: VersionMetadata,
): { fields: string[]; signature: ModelVersionRecord['signature']; metadata: VersionMetadata } {
  const fields: string[] = [];
  const conflict = (what: string, had: unknown, sent: unknown) =>
    new WardenError(
      'WARDEN_CONFLICT',
      `${v.model} v${v.version} has these bytes already, with a different ${what}: it has ${clip(had)}, this push sends ${clip(sent)}. ` +
        `A version's ${what} cannot change once set: push under another model name, or delete v${v.version} and push again`,
    );
  let signature = v.signature;
  if (features) {
    if (!v.signature.features) {
      signature = { ...v.signature, features };
      fields.push('features');
    } else if (!sameJson(v.signature.features, features)) {
      throw conflict('feature list', v.signature.features, features);
    }
  }
  const next: VersionMetadata = { ...v.metadata };
  for (const [key, value] of Object.entries(metadata) as [keyof VersionMetadata, unknown][]) {
    if (value === undefined) continue;
    const had = v.metadata[key];
    if (had === undefined) {
      (next as Record<string, unknown>)[key] = value;
      fields.push(`metadata.${key}`);
    } else if (!sameJson(had, value)) {
      throw conflict(`metadata.${key}`, had, value);
    }
  }
  return { fields, signature, metadata: next };
}

/** Equal as JSON values, whatever order an object's keys came in (a re-push need not repeat the first's order). */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
}

function clip(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

function checkFeaturesFitSignature(features: FeatureSpec[], signature: { inputs: { name: string; shape: number[] }[] }): void {
  const first = signature.inputs[0];
  const width = first?.shape[first.shape.length - 1];
  if (signature.inputs.length !== 1 || !first || first.shape.length !== 2 || width === undefined || width !== features.length) {
    throw new WardenError(
      'WARDEN_INVALID_MODEL',
      `named features need a model with one 2-D input whose width equals the feature count (${features.length}); this model's inputs are ${signature.inputs
        .map((i) => `${i.name}${JSON.stringify(i.shape)}`)
        .join(', ')}`,
    );
  }
}

/** Fills metadata the caller left out from the `warden.*` props the built-in trainer writes. */
function mergeTrainerProps(metadata: VersionMetadata, props: Record<string, string>): void {
  const json = <T>(key: string): T | undefined => {
    try {
      return props[key] ? (JSON.parse(props[key]!) as T) : undefined;
    } catch {
      return undefined;
    }
  };
  if (!metadata.metrics) {
    const m = json<Record<string, number>>('warden.metrics');
    if (m) metadata.metrics = m;
  }
  if (!metadata.params) {
    const p = json<Record<string, string | number | boolean>>('warden.params');
    if (p) metadata.params = p;
    // A logistic model's class boundary on its target (busy = cnt > threshold) is needed to label traffic.
    const threshold = Number(props['warden.threshold']);
    if (p && props['warden.threshold'] !== undefined && Number.isFinite(threshold)) metadata.params = { ...p, threshold };
  }
  if (!metadata.trainingDataSha256 && props['warden.training_data_sha256']) {
    metadata.trainingDataSha256 = props['warden.training_data_sha256'];
  }
}

/** A version's lineage for its audit entry: training data, commit, and the tags a retraining job wrote (job, parent, trigger). */
function lineageOf(metadata: VersionMetadata): Record<string, unknown> {
  const tags = Object.entries(metadata.tags ?? {}).filter(([k]) => /lineage|parent|job|trigger|dataset/i.test(k)).slice(0, 20);
  return {
    ...(metadata.trainingDataSha256 ? { trainingDataSha256: metadata.trainingDataSha256 } : {}),
    ...(metadata.sourceCommit ? { sourceCommit: metadata.sourceCommit } : {}),
    ...Object.fromEntries(tags),
  };
}
