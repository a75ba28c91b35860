import { WardenError } from '../errors.ts';
import type { DecodedTensor } from '../quality/index.ts';
import type { ModelSignature } from '../storage/index.ts';

/** The faults a game day can inject into a deployment's live traffic (docs/gameday.md). */
export const FAULT_KINDS = ['latency', 'errors', 'drift', 'nulls', 'schema'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A fault armed on one deployment (a model name, as requests address it). */
export interface ArmedFault {
  /** The game day that armed it; every request it touches is marked with this id. */
  id: string;
  deployment: string;
  kind: FaultKind;
  /** 1 is the default strength; see `faultEffect` for what it scales. */
  intensity: number;
  /** Column that `nulls` and `schema` act on (default the first) and `drift` alone shifts (default all); a feature name, or `input[j]` without names. */
  feature?: string;
  /** Epoch ms after which the fault no longer applies, whether or not anyone disarms it. */
  endsAt: number;
}

/** Requests and rows a fault has touched. */
export interface FaultCounts {
  requests: number;
  rows: number;
}

/** What a fault does to one request: the marker for its prediction event, a delay, and what to log instead. */
export interface FaultHit {
  marker: string;
  delayMs: number;
  /** Replaces the inputs written to the prediction log (and so to monitoring); the model saw the real ones. */
  logged?: unknown;
}

/** Added delay per unit of intensity for `latency`. */
export const LATENCY_STEP_MS = 200;
/** Shift per unit of intensity for `drift`, in training standard deviations of each feature. */
export const DRIFT_STD_STEP = 2;
/** Unknown feature name the `schema` fault adds to what is logged. */
export const SCHEMA_EXTRA_FEATURE = 'gameday_unknown_feature';

/** Share of requests `errors`, `nulls` and `schema` touch: half at intensity 1, all from 2. */
export const faultShare = (intensity: number): number => Math.min(1, 0.5 * intensity);

/** One line saying what a fault of this kind and intensity does, for API answers and reports. */
export function faultEffect(kind: FaultKind, intensity: number, feature?: string): string {
  const share = `${Math.round(faultShare(intensity) * 100)}% of requests`;
  const col = feature ?? 'the first feature';
  switch (kind) {
    case 'latency':
      return `adds ${LATENCY_STEP_MS * intensity} ms before each response`;
    case 'errors':
      return `fails ${share} with 503 WARDEN_FAULT_INJECTED before the model runs`;
    case 'drift':
      return `shifts ${feature ?? 'every floating-point input'} by +${DRIFT_STD_STEP * intensity} training std (×${1 + 0.5 * intensity} without stats), in what the model sees and what is logged`;
    case 'nulls':
      return `logs ${col} as null in ${share} (the model still gets the real value)`;
    case 'schema':
      return `logs ${share} without ${col} and with an extra feature ${SCHEMA_EXTRA_FEATURE} (the model still gets the real inputs)`;
  }
}

interface FaultState extends ArmedFault {
  counts: FaultCounts;
  /** Accumulates `faultShare` per request; a request is touched each time it reaches 1 (an exact share, no randomness). */
  due: number;
}

/** Monitoring's column names (monitoring/columns.ts) of one input tensor: named features, else `name[j]` (or `name` for one column). */
function columnsOf(t: DecodedTensor, signature: ModelSignature, index: number): string[] {
  const width = t.dims.length === 1 ? 1 : (t.dims[1] ?? 0);
  const features = index === 0 ? signature.features : undefined;
  if (features?.length === width) return features.map((f) => f.name);
  return width === 1 ? [t.name] : Array.from({ length: width }, (_, j) => `${t.name}[${j}]`);
}

/** The columns `nulls` and `schema` can target in a signature, named as monitoring names them. */
export function faultColumns(signature: ModelSignature): string[] {
  return signature.inputs.flatMap((input, i) => {
    const width = input.shape.length === 1 ? 1 : (input.shape[1] ?? 0);
    if (i === 0 && signature.features?.length) return signature.features.map((f) => f.name);
    if (width < 1) return [];
    return width === 1 ? [input.name] : Array.from({ length: width }, (_, j) => `${input.name}[${j}]`);
  });
}

/**
 * The request path's side of game days. `armed` is the single check a request pays while no game day
 * runs; only when it is true does the request look its deployment up. Faults are armed and disarmed by
 * the game-day service (lifecycle/gameday), and stop applying at `endsAt` even if nobody disarms them.
 */
export class FaultInjector {
  /** True while at least one fault is armed. */
  armed = false;
  private readonly faults = new Map<string, FaultState>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Arms a fault on its deployment, replacing none: the caller checks that none is armed there. */
  arm(f: ArmedFault): void {
    this.faults.set(f.deployment, { ...f, counts: { requests: 0, rows: 0 }, due: 0 });
    this.armed = true;
  }

  /** Disarms the deployment's fault if it is game day `id`'s; returns what it touched. */
  disarm(deployment: string, id: string): FaultCounts | undefined {
    const f = this.faults.get(deployment);
    if (!f || f.id !== id) return undefined;
    this.faults.delete(deployment);
    this.armed = this.faults.size > 0;
    return f.counts;
  }

  /** Requests and rows touched so far by game day `id` on `deployment`. */
  counts(deployment: string, id: string): FaultCounts | undefined {
    const f = this.faults.get(deployment);
    return f && f.id === id ? { ...f.counts } : undefined;
  }

  /**
   * Applies the deployment's fault to one request whose inputs are decoded, before the model runs:
   * throws 503 `WARDEN_FAULT_INJECTED` for `errors`, shifts `tensors` in place for `drift`, and returns
   * what is left to do (delay, marker, logged inputs), or undefined when the request is not touched.
   */
  hit(deployment: string, tensors: DecodedTensor[], signature: ModelSignature): FaultHit | undefined {
    const f = this.faults.get(deployment);
    if (!f) return undefined;
    // Past its end the fault no longer applies; the game-day service disarms it (and keeps its counts).
    if (this.now() >= f.endsAt) return undefined;
    if (f.kind === 'errors' || f.kind === 'nulls' || f.kind === 'schema') {
      f.due += faultShare(f.intensity);
      if (f.due < 1) return undefined;
      f.due -= 1;
    }
    const rows = tensors[0]?.dims[0] ?? 1;
    f.counts.requests++;
    f.counts.rows += rows;
    const tag = `game day ${f.id}`;
    switch (f.kind) {
      case 'errors':
        throw new WardenError('WARDEN_FAULT_INJECTED', `${tag} injected this failure (fault errors on ${f.deployment}); it ends at ${new Date(f.endsAt).toISOString()}`);
      case 'latency': {
        const ms = LATENCY_STEP_MS * f.intensity;
        return { marker: `${tag}: latency +${ms} ms injected`, delayMs: ms };
      }
      case 'drift':
        shift(tensors, signature, f.intensity, f.feature);
        return { marker: `${tag}: drift injected (${f.feature ?? 'inputs'} shifted by +${DRIFT_STD_STEP * f.intensity} std)`, delayMs: 0 };
      case 'nulls': {
        const { logged, column } = asInstances(tensors, signature, f.feature, 'nulls');
        return { marker: `${tag}: nulls injected in the logged ${column}`, delayMs: 0, logged };
      }
      case 'schema': {
        const { logged, column } = asInstances(tensors, signature, f.feature, 'schema');
        return { marker: `${tag}: schema injected (logged without ${column}, with ${SCHEMA_EXTRA_FEATURE})`, delayMs: 0, logged };
      }
    }
  }
}

/**
 * `drift`: x + 2·intensity·std for features with training stats, else x·(1 + 0.5·intensity), on every column
 * of the floating-point inputs, or on `feature` alone when one is named.
 */
function shift(tensors: DecodedTensor[], signature: ModelSignature, intensity: number, feature: string | undefined): void {
  const only = feature === undefined ? undefined : pickColumn(tensors, signature, feature);
  tensors.forEach((t, i) => {
    if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) return;
    if (only && only.t !== t) return;
    const width = t.dims.length === 1 ? 1 : (t.dims[1] ?? 1);
    const features = i === 0 && signature.features?.length === width ? signature.features : undefined;
    const data = t.data;
    for (let k = only ? only.j : 0; k < data.length; k += only ? width : 1) {
      const std = features?.[k % width]?.std;
      data[k] = std !== undefined && std > 0 ? data[k]! + DRIFT_STD_STEP * intensity * std : data[k]! * (1 + 0.5 * intensity);
    }
  });
}

/** The input holding `feature` (default: the first column of the first input) and the column's index in it. */
function pickColumn(tensors: DecodedTensor[], signature: ModelSignature, feature: string | undefined): { t: DecodedTensor; j: number; columns: string[] } {
  for (const [index, t] of tensors.entries()) {
    const columns = columnsOf(t, signature, index);
    const j = feature === undefined ? 0 : columns.indexOf(feature);
    if (j >= 0) return { t, j, columns };
  }
  // The feature is not in this version (a request for another version): fall back to the first column.
  const t = tensors[0]!;
  return { t, j: 0, columns: columnsOf(t, signature, 0) };
}

/**
 * `nulls` and `schema`: the rows of the input holding the chosen column, logged as named instances (the form
 * refused `:predict` requests are logged in, which monitoring profiles by name). `nulls` sets the column to
 * null; `schema` leaves it out and adds an unknown feature. Other inputs of a multi-input model are not logged.
 */
function asInstances(tensors: DecodedTensor[], signature: ModelSignature, feature: string | undefined, mode: 'nulls' | 'schema'): { logged: unknown; column: string } {
  const { t, j, columns } = pickColumn(tensors, signature, feature);
  const width = columns.length;
  const rows = t.dims[0] ?? 1;
  const data = t.data as ArrayLike<unknown>;
  const logged: Record<string, unknown>[] = [];
  for (let r = 0; r < rows; r++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < width; c++) if (c !== j) row[columns[c]!] = data[r * width + c];
    if (mode === 'nulls') row[columns[j]!] = null;
    else row[SCHEMA_EXTRA_FEATURE] = 1;
    logged.push(row);
  }
  return { logged, column: columns[j]! };
}
