import { createHash } from 'node:crypto';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import type {
  DatasetFilter,
  DatasetFormat,
  DatasetRecord,
  EventStore,
  LabelledRow,
  LabelSource,
  MetadataStore,
  ModelVersionRecord,
} from '../../storage/index.ts';
import type { HistoricalRun } from '../../features/index.ts';
import { DatasetLayout, type DatasetColumn } from './columns.ts';
import { planFeatureJoin, type EntityRowInput, type FeatureJoiner, type FeatureJoinPlan } from './feature-join.ts';
import { datasetEncoder, type DatasetEncoder } from './formats.ts';

export interface DatasetExportDeps {
  events: EventStore;
  metadata: MetadataStore;
  registry: Registry;
  /** The feature store, for exports that join features (`features`); without it they are refused. */
  features?: FeatureJoiner;
  now?: () => number;
}

/** What to export: a deployment's labelled predictions; every version it has when `versions` is absent. */
export interface DatasetRequest {
  model: string;
  versions?: number[];
  since?: number;
  until?: number;
  sources?: LabelSource[];
  format: DatasetFormat;
  /** Feature columns whose values make the `segment` column; default: the first version's performance segments. */
  segments?: string[];
  /**
   * Feature-store features (`view:feature` or `view`) joined to each row at its prediction time by its entity keys,
   * point-in-time correct (docs/features.md); their columns follow the model's features.
   */
  features?: string[];
  /** Join key → where its value comes from: a model input (default: the input of the join key's name), `key` (the caller key) or `key:<RE2 pattern>` (its first group). */
  featureKeys?: Record<string, string>;
  /** Joined columns named `view__feature`. */
  fullNames?: boolean;
  actor: string;
}

export interface DatasetProgress {
  rows: number;
  skipped: number;
  bytes: number;
}

/** Labelled rows read from the store per page, and rows per encoded batch (a Parquet row group). */
const PAGE = 1000;
const BATCH = 5000;
const MAX_VERSIONS = 1000;

/**
 * One export of a training set. `open` checks the request, fixes the columns and reads until the first row that
 * matches (so an empty selection is refused before anything is written or recorded), then records the dataset as
 * `writing`; `chunks()` yields the file's bytes and ends the record: `complete` with the sha256 of exactly those bytes,
 * or `failed` with why (an error, or the consumer stopping early). Memory holds one page and one batch.
 */
export class DatasetExport {
  private finished = false;

  private constructor(
    private readonly deps: DatasetExportDeps,
    readonly record: DatasetRecord,
    private readonly layout: DatasetLayout,
    private readonly encoder: DatasetEncoder,
    private readonly source: AsyncGenerator<{ row: LabelledRow; version: number }>,
    private readonly first: { row: LabelledRow; version: number },
    private readonly counts: { skipped: number },
    /** With joined features: the join's output (rows and their features, in label order), read instead of `source`. */
    private readonly joined?: { run: HistoricalRun; plan: FeatureJoinPlan },
  ) {}

  get contentType(): string {
    return this.encoder.contentType;
  }

  static async open(deps: DatasetExportDeps, req: DatasetRequest): Promise<DatasetExport> {
    const { filter, records } = await resolveFilter(deps.registry, req);
    const signatures = records.map((r) => ({ v: r.version, sig: r.signature }));
    const segments = req.segments ?? (await defaultSegments(deps.metadata, filter.model, filter.versions[0]!));
    const layout = new DatasetLayout(signatures[0]!.sig, segments);
    for (const { v, sig } of signatures.slice(1)) {
      const why = layout.mismatch(sig);
      if (why) {
        throw new WardenError('WARDEN_BAD_REQUEST', `v${v} of ${filter.model} has other inputs or outputs than v${filter.versions[0]} (${why}); export them separately`);
      }
    }
    let plan: FeatureJoinPlan | undefined;
    if (req.features?.length) {
      if (!deps.features) throw new WardenError('WARDEN_CONFLICT', 'this server has no feature store to join features from');
      plan = planFeatureJoin(deps.features.repo(), layout, { features: req.features, ...(req.featureKeys ? { featureKeys: req.featureKeys } : {}), ...(req.fullNames ? { fullNames: true } : {}) });
      filter.features = [...req.features];
      if (req.featureKeys && Object.keys(req.featureKeys).length) filter.featureKeys = { ...req.featureKeys };
    }
    const counts = { skipped: 0 };
    const source = labelledRows(deps.events, filter, counts);
    const first = await source.next();
    if (first.done) {
      throw new WardenError(
        'WARDEN_DATASET_EMPTY',
        `no labelled prediction of ${filter.model} v${filter.versions.join(', v')} matches${describe(filter)}${counts.skipped ? ` (${counts.skipped} labelled rows matched, but retention removed their predictions)` : ''}; send labels (POST /api/v1/labels) or widen the filter`,
      );
    }
    const columns: DatasetColumn[] = plan ? [...layout.columns.slice(0, layout.featureCount), ...plan.columns, ...layout.columns.slice(layout.featureCount)] : layout.columns;
    // The join reads every row first (the rows are sorted by entity and time on the join's thread), then the export
    // reads the joined rows back in label order.
    const joined = plan ? { run: await deps.features!.historicalRows(entityRows(first.value, source, layout, plan), plan), plan } : undefined;
    try {
      const encoder = datasetEncoder(req.format, columns);
      const now = deps.now ?? Date.now;
      const record = await deps.metadata.createDataset({ filter, format: req.format, columns: columns.map((c) => c.name), actor: req.actor, createdAt: now() });
      return new DatasetExport(deps, record, layout, encoder, source, first.value, counts, joined);
    } catch (e) {
      joined?.run.cancel();
      throw e;
    }
  }

  /** Rows the export will write, when known before it starts (with joined features: every labelled row). */
  get rows(): number | undefined {
    return this.joined?.run.rows;
  }

  /** Every row's cells in file order: from the feature join when features were asked for, else from the log. */
  private async *cellRows(): AsyncGenerator<unknown[]> {
    if (this.joined) {
      const nf = this.layout.featureCount;
      for await (const text of this.joined.run.chunks()) {
        for (const [cells, values] of JSON.parse(text) as [unknown[], unknown[]][]) yield [...cells.slice(0, nf), ...values, ...cells.slice(nf)];
      }
      return;
    }
    yield this.layout.cells(this.first.row, this.first.version);
    for await (const { row, version } of this.source) yield this.layout.cells(row, version);
  }

  /**
   * The file's bytes in order. Ends the record when the last chunk has been taken, or as `failed` when the generator
   * is stopped early (`return()`, as a closed HTTP response does) or a read fails.
   */
  async *chunks(onProgress?: (p: DatasetProgress) => void): AsyncGenerator<Uint8Array> {
    if (this.finished) throw new Error('a dataset export can be read once');
    this.finished = true;
    const hash = createHash('sha256');
    const progress: DatasetProgress = { rows: 0, skipped: 0, bytes: 0 };
    let complete = false;
    let error: string | undefined;
    const emit = (b: Uint8Array): Uint8Array => {
      hash.update(b);
      progress.bytes += b.byteLength;
      return b;
    };
    try {
      const head = this.encoder.start();
      if (head.byteLength) yield emit(head);
      let batch: unknown[][] = [];
      for await (const cells of this.cellRows()) {
        batch.push(cells);
        if (batch.length < BATCH) continue;
        progress.rows += batch.length;
        yield emit(this.encoder.rows(batch));
        batch = [];
        progress.skipped = this.counts.skipped;
        onProgress?.({ ...progress });
      }
      progress.rows += batch.length;
      if (batch.length) yield emit(this.encoder.rows(batch));
      const tail = this.encoder.finish();
      if (tail.byteLength) yield emit(tail);
      progress.skipped = this.counts.skipped;
      onProgress?.({ ...progress });
      complete = true;
    } catch (e) {
      error = (e as Error).message;
      throw e;
    } finally {
      const at = (this.deps.now ?? Date.now)();
      const sizes = { rows: progress.rows, bytes: progress.bytes, skipped: this.counts.skipped, at };
      this.joined?.run.cancel();
      await this.source.return(undefined);
      await this.deps.metadata.finishDataset(
        this.record.id,
        complete
          ? { state: 'complete', sha256: hash.digest('hex'), ...sizes }
          : { state: 'failed', error: error ?? `the reader stopped after ${progress.bytes} bytes (${progress.rows} rows encoded)`, ...sizes },
      );
    }
  }
}

/** The filter as recorded, and the records of its versions (each checked to exist). */
async function resolveFilter(registry: Registry, req: DatasetRequest): Promise<{ filter: DatasetFilter; records: ModelVersionRecord[] }> {
  await registry.getModel(req.model);
  const records = req.versions ? [] : await registry.listVersions(req.model);
  if (req.versions) for (const v of [...new Set(req.versions)].sort((a, b) => a - b)) records.push(await registry.getVersion(req.model, v));
  if (records.length === 0) throw new WardenError('WARDEN_VERSION_NOT_FOUND', `${req.model} has no versions, so no predictions to export`);
  if (records.length > MAX_VERSIONS) throw new WardenError('WARDEN_BAD_REQUEST', `at most ${MAX_VERSIONS} versions per export; name them with versions`);
  const versions = records.map((r) => r.version);
  if (req.since !== undefined && req.until !== undefined && req.since >= req.until) {
    throw new WardenError('WARDEN_BAD_REQUEST', `since (${new Date(req.since).toISOString()}) must be before until (${new Date(req.until).toISOString()})`);
  }
  const filter: DatasetFilter = { model: req.model, versions };
  if (req.since !== undefined) filter.since = req.since;
  if (req.until !== undefined) filter.until = req.until;
  if (req.sources?.length) filter.sources = [...new Set(req.sources)].sort();
  return { filter, records };
}

async function defaultSegments(metadata: MetadataStore, model: string, version: number): Promise<string[]> {
  const ref = await metadata.getReference(model, version);
  const cfg = ref?.config as { performance?: { segments?: unknown } } | undefined;
  const segs = cfg?.performance?.segments;
  return Array.isArray(segs) ? segs.filter((s): s is string => typeof s === 'string') : [];
}

function describe(f: DatasetFilter): string {
  const parts: string[] = [];
  if (f.since !== undefined) parts.push(`since ${new Date(f.since).toISOString()}`);
  if (f.until !== undefined) parts.push(`until ${new Date(f.until).toISOString()}`);
  if (f.sources) parts.push(`labelled by ${f.sources.join(' or ')}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The labelled rows as the join's entity rows: prediction time, join keys, and the row's cells passed through. */
async function* entityRows(
  first: { row: LabelledRow; version: number },
  rest: AsyncGenerator<{ row: LabelledRow; version: number }>,
  layout: DatasetLayout,
  plan: FeatureJoinPlan,
): AsyncGenerator<EntityRowInput> {
  const one = ({ row, version }: { row: LabelledRow; version: number }): EntityRowInput => {
    const keys: Record<string, unknown> = {};
    for (const k of plan.keys) keys[k.joinKey] = k.read(row);
    return { time: row.ts, keys, payload: layout.cells(row, version) };
  };
  yield one(first);
  for await (const r of rest) yield one(r);
}

/** Every labelled row of the filter, version by version in label order; rows whose prediction is gone are counted. */
async function* labelledRows(events: EventStore, f: DatasetFilter, counts: { skipped: number }): AsyncGenerator<{ row: LabelledRow; version: number }> {
  const sources = f.sources && new Set(f.sources);
  for (const version of f.versions) {
    let afterId = 0;
    for (;;) {
      const page = await events.queryLabelled({
        model: f.model,
        version,
        afterId,
        limit: PAGE,
        ...(f.since !== undefined ? { since: f.since } : {}),
        ...(f.until !== undefined ? { until: f.until } : {}),
      });
      for (const row of page) {
        if (sources && !sources.has(row.source)) continue;
        if (row.inputs === null) {
          counts.skipped++;
          continue;
        }
        yield { row, version };
      }
      if (page.length < PAGE) break;
      afterId = page.at(-1)!.id;
    }
  }
}
