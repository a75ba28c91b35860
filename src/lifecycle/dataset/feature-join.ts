/**
 * Feature-store features in a training set (docs/features.md#training-sets-with-labels): each labelled row gets the
 * point-in-time-correct values of the features asked for, at its prediction time, by its entity keys, read from a
 * model input of the same name (or the one `featureKeys` names), or from the row's caller key (`key`, or the first
 * group of `key:<RE2 pattern>` matched in it).
 */
import { RE2JS, RE2JSException } from 're2js';
import { WardenError } from '../../errors.ts';
import { planHistorical, type FeatureDtype, type FeatureRepo, type HistoricalRun } from '../../features/index.ts';
import type { LabelledRow } from '../../storage/index.ts';
import type { CellKind, DatasetColumn, DatasetLayout } from './columns.ts';

/** One entity row of a join: its time, its join keys' values, and what passes through. */
export interface EntityRowInput {
  time: number;
  keys: Record<string, unknown>;
  payload: unknown;
}

/** What the export needs of the feature store (FeatureService). */
export interface FeatureJoiner {
  repo(): FeatureRepo;
  historicalRows(rows: AsyncIterable<EntityRowInput>, q: { features: readonly string[]; fullNames?: boolean }): Promise<HistoricalRun>;
}

export interface FeatureJoinPlan {
  features: string[];
  fullNames: boolean;
  /** The joined feature columns, in the join's order. */
  columns: DatasetColumn[];
  /** Per join key: where its value comes from, as given, and how it is read from a row. */
  keys: { joinKey: string; from: string; read: (r: LabelledRow) => unknown }[];
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);
const kindOf = (dtype: FeatureDtype): CellKind => (dtype === 'string' ? 'string' : dtype === 'bool' ? 'boolean' : 'number');

function keyReader(joinKey: string, from: string, layout: DatasetLayout): (r: LabelledRow) => unknown {
  if (from === 'key') return (r) => r.key ?? null;
  if (from.startsWith('key:')) {
    const pattern = from.slice(4);
    if (pattern.length === 0 || pattern.length > 256) throw bad(`featureKeys.${joinKey}: key:<pattern> takes an RE2 pattern of 1 to 256 characters`);
    let re: RE2JS;
    try {
      re = RE2JS.compile(pattern);
    } catch (e) {
      throw bad(`featureKeys.${joinKey}: ${JSON.stringify(pattern)} is not an RE2 pattern: ${e instanceof RE2JSException ? e.message : String(e)}`);
    }
    const group = re.groupCount() >= 1 ? 1 : 0;
    return (r) => {
      if (!r.key) return null;
      const m = re.matcher(r.key);
      return m.find() ? m.group(group) : null;
    };
  }
  const input = layout.inputOf(from);
  if (!input) {
    throw bad(
      `featureKeys.${joinKey}: ${JSON.stringify(from)} is not an input of the model (its inputs: ${layout.columns
        .slice(0, layout.featureCount)
        .map((c) => c.name)
        .join(', ')}); name an input, key (the caller key) or key:<RE2 pattern> (its first group)`,
    );
  }
  return input;
}

/** Checks the features and keys against the definitions and the model's columns. */
export function planFeatureJoin(
  repo: FeatureRepo,
  layout: DatasetLayout,
  req: { features: readonly string[]; featureKeys?: Readonly<Record<string, string>>; fullNames?: boolean },
): FeatureJoinPlan {
  const { views, featureColumns } = planHistorical(repo, req.features, req.fullNames);
  const joinKeys = [...new Set(views.flatMap((v) => v.joinKeys))];
  for (const k of Object.keys(req.featureKeys ?? {})) {
    if (!joinKeys.includes(k)) throw bad(`featureKeys.${k}: not a join key of the views asked for (their join keys: ${joinKeys.join(', ') || 'none'})`);
  }
  const keys = joinKeys.map((joinKey) => {
    const from = req.featureKeys?.[joinKey] ?? joinKey;
    if (req.featureKeys?.[joinKey] === undefined && !layout.inputOf(joinKey)) {
      const needing = views.filter((v) => v.joinKeys.includes(joinKey)).map((v) => v.name);
      throw bad(
        `features: view ${needing.join(', ')} needs the join key ${joinKey}, which is not an input of the model; map it with featureKeys: {"${joinKey}": "<input>" | "key" | "key:<RE2 pattern>"}`,
      );
    }
    return { joinKey, from, read: keyReader(joinKey, from, layout) };
  });
  const dtypes = views.flatMap((v) => v.features.map((f) => f.dtype));
  const columns = featureColumns.map((name, i) => ({ name, kind: kindOf(dtypes[i]!) }));
  const taken = new Set(layout.columns.map((c) => c.name));
  for (const c of columns) {
    if (taken.has(c.name)) throw bad(`features: the joined feature ${JSON.stringify(c.name)} has the name of a column of the export (a model input or one the export adds); ask for full names (view__feature)`);
  }
  return { features: [...req.features], fullNames: req.fullNames === true, columns, keys };
}
