import { WardenError } from '../errors.ts';
import type { FeatureSpec, TensorSpec } from '../storage/index.ts';

/** Typed array per OIP datatype; what onnxruntime takes for that element type. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | string[]
  | boolean[];

export interface DecodedTensor {
  name: string;
  datatype: string;
  dims: number[];
  data: TensorData;
}

interface IntRange {
  min: number;
  max: number;
  make: (n: number) => TensorData;
}

const INT_TYPES: Record<string, IntRange> = {
  INT8: { min: -128, max: 127, make: (n) => new Int8Array(n) },
  INT16: { min: -32768, max: 32767, make: (n) => new Int16Array(n) },
  INT32: { min: -2147483648, max: 2147483647, make: (n) => new Int32Array(n) },
  INT64: { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, make: (n) => new BigInt64Array(n) },
  UINT8: { min: 0, max: 255, make: (n) => new Uint8Array(n) },
  UINT16: { min: 0, max: 65535, make: (n) => new Uint16Array(n) },
  UINT32: { min: 0, max: 4294967295, make: (n) => new Uint32Array(n) },
  UINT64: { min: 0, max: Number.MAX_SAFE_INTEGER, make: (n) => new BigUint64Array(n) },
};

const invalid = (msg: string) => new WardenError('WARDEN_INVALID_INPUT', msg);

/**
 * Copies `data` into `out` through `put`, which checks each element. OIP allows two layouts
 * (inference_rest.md, "Tensor Data"): one flat row-major array, or nested arrays in the tensor's
 * natural shape. Nested data must match `dims` exactly: accepting any nesting with the right
 * element count would let a transposed batch (`[features][rows]` for shape `[rows, features]`)
 * through as silently wrong predictions.
 * Returns the number of elements written; throws when there are more than `expected`.
 */
function fill(
  data: unknown[],
  name: string,
  dims: readonly number[],
  expected: number,
  put: (value: unknown, index: number) => void,
): number {
  let n = 0;
  if (!data.some(Array.isArray)) {
    for (const v of data) {
      if (n >= expected) throw invalid(`input ${name}: data has more than the ${expected} elements its shape implies`);
      put(v, n);
      n++;
    }
    return n;
  }
  const rank = dims.length;
  // Recursion depth is bounded by the rank: arrays below the last dimension are refused.
  const tooDeep = (at: string) =>
    invalid(`input ${name}: data${at} is nested deeper than shape ${shapeText(dims)} (rank ${rank}); send a flat array or nested arrays that match the shape`);
  const walk = (arr: unknown[], depth: number, at: string): void => {
    if (depth >= rank) throw tooDeep(at);
    if (arr.length !== dims[depth]) {
      throw invalid(
        `input ${name}: data${at} has ${arr.length} entries but shape ${shapeText(dims)} has ${dims[depth]} along dimension ${depth}; send a flat array or nested arrays that match the shape`,
      );
    }
    const inner = depth < rank - 1;
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (inner) {
        if (!Array.isArray(v)) throw invalid(`input ${name}: data${at}[${i}] is ${describeValue(v)}; nested data needs an array for dimension ${depth + 1} of shape ${shapeText(dims)}`);
        walk(v, depth + 1, `${at}[${i}]`);
        continue;
      }
      if (Array.isArray(v)) throw tooDeep(`${at}[${i}]`);
      put(v, n);
      n++;
    }
  };
  walk(data, 0, '');
  return n;
}

/** A shape for an error message, cut short so a huge shape cannot make a huge message. */
function shapeText(dims: readonly number[]): string {
  const s = JSON.stringify(dims);
  return s.length > 80 ? `${s.slice(0, 80)}…]` : s;
}

/** A caller's value for an error message; never stringifies arrays or objects (they may be nested too deep to print). */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** A feature list's allowed bounds per column, ±Infinity where none is declared. */
interface Bounds {
  lo: Float64Array;
  hi: Float64Array;
}

/** Bounds per feature list (a version's signature keeps the same array), so a request allocates nothing for them. */
const boundsCache = new WeakMap<readonly FeatureSpec[], Bounds | null>();

/**
 * The allowed range of each feature column as the model receives it, or null when no feature declares one.
 * The model gets float32: the door accepts v when fround(v) lies in [fround(min), fround(max)], so a value the
 * model cannot tell from the bound (0.0199999996 for a minimum of 0.02) is inside, and monitoring, which sees the
 * logged float32 values, rounds the bounds the same way.
 */
function featureBounds(features: readonly FeatureSpec[]): Bounds | null {
  let b = boundsCache.get(features);
  if (b !== undefined) return b;
  b = null;
  if (features.some((f) => f.min !== undefined || f.max !== undefined)) {
    b = {
      lo: Float64Array.from(features, (f) => (f.min === undefined ? -Infinity : Math.fround(f.min))),
      hi: Float64Array.from(features, (f) => (f.max === undefined ? Infinity : Math.fround(f.max))),
    };
  }
  boundsCache.set(features, b);
  return b;
}

/** `of` names the feature when `where` does not (a tensor element is a row and a column). */
function outOfRange(where: string, sent: number, f: FeatureSpec, below: boolean, of = ''): WardenError {
  return below
    ? invalid(`${where} = ${sent} is below the allowed minimum ${f.min}${of}`)
    : invalid(`${where} = ${sent} is above the allowed maximum ${f.max}${of}`);
}

/**
 * Refuses the first element of a decoded [rows, features] tensor outside its feature's allowed range. FP32
 * elements are already float32, compared with float32 bounds; other types with the bounds as declared.
 */
function checkTensorRanges(name: string, data: TensorData, dims: readonly number[], features: readonly FeatureSpec[]): void {
  const k = features.length;
  if (dims.length !== 2 || dims[1] !== k || typeof data[0] === 'string' || typeof data[0] === 'boolean') return;
  const b = featureBounds(features);
  if (!b) return;
  const fp32 = data instanceof Float32Array;
  const rows = dims[0]!;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < k; c++) {
      const v = Number(data[r * k + c]);
      const f = features[c]!;
      const lo = fp32 ? b.lo[c]! : (f.min ?? -Infinity);
      const hi = fp32 ? b.hi[c]! : (f.max ?? Infinity);
      if (v < lo || v > hi) throw outOfRange(`input ${name}: row ${r}, column ${c}`, v, f, v < lo, ` of feature ${f.name}`);
    }
  }
}

/**
 * Turns one OIP request input into a typed tensor, checking it against the model's signature:
 * datatype, rank, fixed dimensions, element count, element types and ranges, finiteness. `features`
 * (the signature's named features, for its first input) adds their allowed min/max per column, so the
 * tensor form refuses what the named form refuses.
 */
export function decodeTensor(raw: unknown, spec: TensorSpec, maxBatchRows: number, features?: readonly FeatureSpec[]): DecodedTensor {
  const input = raw as { name: string; datatype?: unknown; shape?: unknown; data?: unknown };
  const name = spec.name;
  if (input.datatype !== spec.datatype) {
    throw invalid(
      `input ${name}: datatype ${typeof input.datatype === 'string' ? JSON.stringify(input.datatype.slice(0, 40)) : describeValue(input.datatype)} does not match the model's ${spec.datatype}`,
    );
  }
  const shape = input.shape;
  if (!Array.isArray(shape)) throw invalid(`input ${name}: shape must be an array of non-negative integers, got ${describeValue(shape)}`);
  const bad = shape.findIndex((d) => !Number.isSafeInteger(d) || (d as number) < 0);
  if (bad >= 0) {
    throw invalid(`input ${name}: shape must be an array of non-negative integers; shape[${bad}] is ${describeValue(shape[bad])}`);
  }
  const dims = shape as number[];
  if (dims.length !== spec.shape.length) {
    throw invalid(`input ${name}: shape ${shapeText(dims)} has rank ${dims.length}; the model expects rank ${spec.shape.length} ${JSON.stringify(spec.shape)}`);
  }
  for (let i = 0; i < dims.length; i++) {
    const want = spec.shape[i]!;
    if (want >= 0 && dims[i] !== want) {
      throw invalid(`input ${name}: dimension ${i} is ${dims[i]}; the model expects ${want} (shape ${JSON.stringify(spec.shape)}, -1 = any)`);
    }
  }
  if (dims.length > 0 && dims[0]! > maxBatchRows) {
    throw invalid(`input ${name}: ${dims[0]} rows exceed the limit of ${maxBatchRows} per request (serving.maxBatchRows)`);
  }
  if (dims.length > 0 && dims[0] === 0) throw invalid(`input ${name}: shape ${shapeText(dims)} has no rows`);
  let expected = 1;
  for (const d of dims) expected *= d;
  if (!Number.isSafeInteger(expected) || expected > maxBatchRows * 100_000) {
    throw invalid(`input ${name}: shape ${shapeText(dims)} is too large`);
  }
  if (!Array.isArray(input.data)) throw invalid(`input ${name}: data must be an array`);

  let data: TensorData;
  const dt = spec.datatype;
  if (dt === 'FP32' || dt === 'FP64') {
    const out = dt === 'FP32' ? new Float32Array(expected) : new Float64Array(expected);
    const n = fill(input.data, name, dims, expected, (v, i) => {
      if (typeof v !== 'number') throw invalid(`input ${name}: element ${i} is ${describeValue(v)}; ${dt} needs numbers`);
      if (!Number.isFinite(v)) throw invalid(`input ${name}: element ${i} is not finite`);
      out[i] = v;
    });
    checkCount(name, n, expected, dims);
    if (dt === 'FP32') {
      // Values beyond float32 range would silently become ±Infinity.
      for (let i = 0; i < out.length; i++) {
        if (!Number.isFinite(out[i]!)) throw invalid(`input ${name}: element ${i} overflows FP32`);
      }
    }
    data = out;
  } else if (INT_TYPES[dt]) {
    const range = INT_TYPES[dt]!;
    const out = range.make(expected);
    const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
    const n = fill(input.data, name, dims, expected, (v, i) => {
      if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`input ${name}: element ${i} is ${describeValue(v)}; ${dt} needs integers`);
      if (v < range.min || v > range.max) throw invalid(`input ${name}: element ${i} = ${v} is outside ${dt} range [${range.min}, ${range.max}]`);
      (out as unknown as (number | bigint)[])[i] = big ? BigInt(v) : v;
    });
    checkCount(name, n, expected, dims);
    data = out;
  } else if (dt === 'BOOL') {
    const out: boolean[] = new Array(expected);
    const n = fill(input.data, name, dims, expected, (v, i) => {
      if (typeof v !== 'boolean') throw invalid(`input ${name}: element ${i} is ${describeValue(v)}; BOOL needs true or false`);
      out[i] = v;
    });
    checkCount(name, n, expected, dims);
    data = out;
  } else if (dt === 'BYTES') {
    const out: string[] = new Array(expected);
    const n = fill(input.data, name, dims, expected, (v, i) => {
      if (typeof v !== 'string') throw invalid(`input ${name}: element ${i} is ${describeValue(v)}; BYTES needs strings`);
      out[i] = v;
    });
    checkCount(name, n, expected, dims);
    data = out;
  } else {
    throw invalid(`input ${name}: datatype ${dt} is not supported for inference`);
  }
  if (features?.length) checkTensorRanges(name, data, dims, features);
  return { name, datatype: dt, dims, data };
}

function checkCount(name: string, n: number, expected: number, dims: number[]): void {
  if (n !== expected) {
    throw invalid(`input ${name}: data has ${n} elements but shape ${shapeText(dims)} needs ${expected}`);
  }
}

/**
 * Builds the [rows, features] FP32 matrix for the named-feature form (`:predict` with instances),
 * in the signature's column order. Missing, unknown, non-numeric and out-of-range values are 400s; the
 * range is checked on the float32 value the model receives (see featureBounds).
 */
/**
 * Values of named features that instances leave out, found elsewhere (the online feature store, features/enrich):
 * cell (r, c) of the rows × features matrix, row-major, is `values[r * k + c]` where `filled[r * k + c]` is 1. They are
 * checked as sent values are (finite, within float32 and the feature's range). `ignore` names instance fields that
 * are not features but are not refused either (entity keys).
 */
export interface InstancePrefill {
  values: Float64Array;
  filled: Uint8Array;
  ignore?: ReadonlySet<string>;
}

export function decodeInstances(instances: unknown, features: readonly FeatureSpec[], maxBatchRows: number, prefill?: InstancePrefill): Float32Array {
  if (!Array.isArray(instances) || instances.length === 0) throw invalid('instances must be a non-empty array of objects');
  if (instances.length > maxBatchRows) {
    throw invalid(`${instances.length} instances exceed the limit of ${maxBatchRows} per request (serving.maxBatchRows)`);
  }
  const k = features.length;
  const bounds = featureBounds(features);
  const out = new Float32Array(instances.length * k);
  for (let r = 0; r < instances.length; r++) {
    const inst = instances[r];
    if (inst === null || typeof inst !== 'object' || Array.isArray(inst)) throw invalid(`instances[${r}] must be an object of feature values`);
    const row = inst as Record<string, unknown>;
    let seen = 0;
    for (let c = 0; c < k; c++) {
      const f = features[c]!;
      let v = row[f.name];
      if (v === undefined) {
        if (prefill === undefined || prefill.filled[r * k + c] !== 1) throw invalid(`instances[${r}]: missing feature ${f.name}`);
        v = prefill.values[r * k + c];
        // Not a field of the instance: the count of its fields below leaves it out.
        seen--;
      }
      if (typeof v !== 'number') throw invalid(`instances[${r}].${f.name} is ${describeValue(v)}; it needs a number`);
      if (!Number.isFinite(v)) throw invalid(`instances[${r}].${f.name} is not finite`);
      out[r * k + c] = v;
      const x = out[r * k + c]!;
      // Beyond float32's range the model would get ±Infinity.
      if (!Number.isFinite(x)) throw invalid(`instances[${r}].${f.name} = ${v} overflows FP32`);
      if (bounds) {
        if (x < bounds.lo[c]! || x > bounds.hi[c]!) throw outOfRange(`instances[${r}].${f.name}`, v, f, x < bounds.lo[c]!);
      }
      seen++;
    }
    let ignored = 0;
    if (prefill?.ignore) for (const key of prefill.ignore) if (row[key] !== undefined) ignored++;
    if (Object.keys(row).length !== seen + ignored) {
      const known = new Set(features.map((f) => f.name));
      const extra = Object.keys(row).filter((key) => !known.has(key) && !prefill?.ignore?.has(key));
      throw invalid(`instances[${r}]: unknown feature ${extra.slice(0, 5).join(', ')}; the model takes ${features.map((f) => f.name).join(', ')}`);
    }
  }
  return out;
}
