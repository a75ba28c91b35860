import type { Logger } from 'pino';
import { WardenError } from '../errors.ts';
import { STABLE_ALIAS, type Registry, type RegistryChange } from '../registry/index.ts';
import type { MetadataStore, ModelVersionRecord } from '../storage/index.ts';
import { Batcher } from './batcher.ts';
import { OnnxModel } from './runtimes/onnx.ts';

/** A model version ready to serve: its record and a warm session. */
export interface LoadedVersion {
  record: ModelVersionRecord;
  /** The version as a string, as OIP responses carry it. */
  label: string;
  runtime: OnnxModel;
  /** Present when the signature allows stacking requests along the batch dimension. */
  batcher?: Batcher;
}

interface ModelState {
  versions: Set<number>;
  aliases: Map<string, number>;
  latest: number;
}

export interface ModelTableOptions {
  registry: Registry;
  metadata: MetadataStore;
  intraOpThreads: number;
  /** Most sessions kept warm at once; the least recently used non-default one is released past this. */
  maxLoaded: number;
  /** Rows one dynamic batch may stack; 0 turns dynamic batching off. */
  maxBatchRows: number;
  logger: Logger;
  onLoad?: (model: string, version: number, seconds: number) => void;
}


/**
 * The in-memory serving table: which versions and aliases each model has, and the warm sessions.
 * Requests resolve against memory only (no store reads on the request path); registry changes
 * refresh the table in the background.
 */
export class ModelTable {
  private readonly models = new Map<string, ModelState>();
  private readonly loaded = new Map<string, LoadedVersion>();
  /** The most recently used version: the last entry of `loaded`, so a hit on it needs no reordering. */
  private mru: LoadedVersion | undefined;
  private readonly loading = new Map<string, Promise<LoadedVersion>>();
  private readonly unsubscribe: () => void;
  private refreshing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ModelTableOptions) {
    this.unsubscribe = opts.registry.onChange((c) => {
      this.refreshing = this.refreshing.then(() => this.apply(c)).catch((e) => {
        opts.logger.error({ err: e, change: c }, 'serving table refresh failed');
      });
    });
  }

  /** Reads every model's versions and aliases and warms each model's default version. */
  async start(): Promise<void> {
    for (const m of await this.opts.metadata.listModels()) await this.refreshModel(m.name);
    for (const name of this.models.keys()) {
      const v = this.defaultVersion(name);
      if (v !== undefined) {
        try {
          await this.load(name, v);
        } catch (e) {
          this.opts.logger.error({ err: e, model: name, version: v }, 'could not load model at start; it will answer 503');
        }
      }
    }
  }

  /**
   * Re-reads a model's versions and aliases from the store and warms its default version: for changes another
   * replica made (a promotion there), which this replica's registry never announced.
   */
  refresh(model: string): Promise<void> {
    this.refreshing = this.refreshing.then(() => this.apply({ kind: 'alias-set', model, alias: STABLE_ALIAS, version: 0 })).catch((e) => {
      this.opts.logger.error({ err: e, model }, 'serving table refresh failed');
    });
    return this.refreshing;
  }

  /** Waits for pending registry changes to be applied (tests and the admin API use it). */
  async settled(): Promise<void> {
    await this.refreshing;
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  has(model: string): boolean {
    return this.models.has(model);
  }

  versionsOf(model: string): number[] {
    return [...(this.models.get(model)?.versions ?? [])].sort((a, b) => a - b);
  }

  /** True when every model's default version has a warm session. */
  allReady(): boolean {
    for (const name of this.models.keys()) {
      const v = this.defaultVersion(name);
      if (v !== undefined && !this.loaded.has(key(name, v))) return false;
    }
    return true;
  }

  /** Version number a reference means: a number, an alias, `latest`, or (none) the default. */
  resolveNumber(model: string, ref?: string): number {
    const state = this.models.get(model);
    if (!state) throw new WardenError('WARDEN_MODEL_NOT_FOUND', `model ${JSON.stringify(model)} is not registered`);
    let v: number | undefined;
    if (ref === undefined || ref === '') v = this.defaultVersion(model);
    else if (/^[0-9]{1,9}$/.test(ref)) v = state.versions.has(Number(ref)) ? Number(ref) : undefined;
    else if (ref === 'latest') v = state.latest || undefined;
    else v = state.aliases.get(ref);
    if (v === undefined) {
      throw new WardenError(
        'WARDEN_VERSION_NOT_FOUND',
        ref ? `model ${model} has no version or alias ${JSON.stringify(ref.slice(0, 64))}` : `model ${model} has no versions yet`,
      );
    }
    return v;
  }

  /** The warm session for a version if it is loaded; undefined otherwise (call `load`). */
  peek(model: string, version: number): LoadedVersion | undefined {
    // The common case — the same version as the last request — costs no key string and no Map churn.
    const mru = this.mru;
    if (mru && mru.record.version === version && mru.record.model === model) return mru;
    const k = key(model, version);
    const hit = this.loaded.get(k);
    if (hit) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.loaded.delete(k);
      this.loaded.set(k, hit);
      this.mru = hit;
    }
    return hit;
  }

  /** Loads (once) and returns the warm session for a version; verifies the artifact's sha256. */
  async load(model: string, version: number): Promise<LoadedVersion> {
    const k = key(model, version);
    const hit = this.peek(model, version);
    if (hit) return hit;
    let pending = this.loading.get(k);
    if (!pending) {
      pending = this.loadNow(model, version).finally(() => this.loading.delete(k));
      this.loading.set(k, pending);
    }
    return pending;
  }

  private async loadNow(model: string, version: number): Promise<LoadedVersion> {
    const started = process.hrtime.bigint();
    const record = await this.opts.registry.getVersion(model, version);
    const bytes = await this.opts.registry.readArtifact(record);
    const runtime = await OnnxModel.load(bytes, record.signature.outputs, { intraOpThreads: this.opts.intraOpThreads });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.opts.onLoad?.(model, version, seconds);
    this.opts.logger.info({ model, version, sha256: record.sha256, loadSeconds: seconds }, 'model version loaded');
    const lv: LoadedVersion = { record, label: String(version), runtime };
    if (this.opts.maxBatchRows > 0 && Batcher.supports(record.signature)) lv.batcher = new Batcher(runtime, this.opts.maxBatchRows);
    this.loaded.set(key(model, version), lv);
    this.mru = lv;
    this.evict();
    return lv;
  }

  private evict(): void {
    if (this.loaded.size <= this.opts.maxLoaded) return;
    for (const [k, lv] of this.loaded) {
      if (this.loaded.size <= this.opts.maxLoaded) break;
      if (this.defaultVersion(lv.record.model) === lv.record.version) continue;
      this.loaded.delete(k);
      if (this.mru === lv) this.mru = undefined;
      void lv.runtime.release().catch(() => undefined);
    }
  }

  private defaultVersion(model: string): number | undefined {
    const state = this.models.get(model);
    if (!state) return undefined;
    return state.aliases.get(STABLE_ALIAS) ?? (state.latest || undefined);
  }

  private async refreshModel(model: string): Promise<void> {
    const exists = await this.opts.metadata.getModel(model);
    if (!exists) {
      this.models.delete(model);
      this.dropLoaded(model, () => true);
      return;
    }
    const versions = (await this.opts.metadata.listVersions(model)).map((v) => v.version);
    const aliases = new Map((await this.opts.metadata.listAliases(model)).map((a) => [a.alias, a.version] as const));
    const state: ModelState = { versions: new Set(versions), aliases, latest: versions.length ? Math.max(...versions) : 0 };
    this.models.set(model, state);
    this.dropLoaded(model, (v) => !state.versions.has(v));
  }

  private dropLoaded(model: string, predicate: (version: number) => boolean): void {
    for (const [k, lv] of this.loaded) {
      if (lv.record.model === model && predicate(lv.record.version)) {
        this.loaded.delete(k);
        if (this.mru === lv) this.mru = undefined;
        void lv.runtime.release().catch(() => undefined);
      }
    }
  }

  private async apply(c: RegistryChange): Promise<void> {
    if (c.kind === 'version-amended') {
      // Same bytes, same session: only the record (features, metadata) changed, so swap it in place — after a load
      // in progress, which read the record before the amendment.
      await this.loading.get(key(c.model, c.version))?.catch(() => undefined);
      const lv = this.loaded.get(key(c.model, c.version));
      const record = lv && (await this.opts.metadata.getVersion(c.model, c.version));
      if (lv && record) lv.record = record;
    }
    await this.refreshModel(c.model);
    const v = this.defaultVersion(c.model);
    // Warm the new default before requests need it, so a promotion costs callers no load time.
    if (v !== undefined) await this.load(c.model, v).catch((e) => this.opts.logger.error({ err: e, model: c.model, version: v }, 'model load failed'));
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.refreshing;
    for (const lv of this.loaded.values()) await lv.runtime.release().catch(() => undefined);
    this.loaded.clear();
    this.mru = undefined;
  }
}

function key(model: string, version: number): string {
  return `${model}\u0000${version}`;
}
