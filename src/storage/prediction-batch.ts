import type { PredictionEvent, PredictionRoute, ShadowCopies } from './ports.ts';

/**
 * What a batch carries to another thread. The typed arrays live on SharedArrayBuffers, so `postMessage`
 * shares them instead of copying; only the short lists of strings and raw values are cloned.
 */
export interface PredictionBatchMessage {
  count: number;
  /** Request ids, UTF-8, one after another (offsets in `num`). */
  ids: Uint8Array;
  /**
   * Per event, `STRIDE` numbers: ts, version, latencyMs, status and route (status index + 3 × route index), model index, inputs ref,
   * outputs ref, request id offset and byte length.
   */
  num: Float64Array;
  /** Model names and tensor names/datatypes, each stored once. */
  strings: string[];
  /** Tensor lists: count, then per tensor name index, datatype index, rank, dims…, data offset, data length. */
  meta: Int32Array;
  /** Every packed tensor's values, as float64 (exact for every datatype packed). */
  data: Float64Array;
  /** Inputs/outputs that are not lists of numeric tensors (error events' raw bodies, string or bool outputs). */
  raw: unknown[];
  /** The optional fields, only for events that have any. */
  extras: EventExtras[];
  /** Shadow waves' copies: per copy COPY_STRIDE numbers (ts, rows, request id offset and byte length in `ids`). */
  copies: Float64Array;
}

interface EventExtras {
  i: number;
  error?: string;
  keys?: string[];
  traceId?: string;
  /** A shadow wave's copies: where they start in `copies` (in copies) and how many; their keys when any had some. */
  copiesAt?: number;
  copiesN?: number;
  copyKeys?: (string[] | undefined)[];
}

/** An OIP tensor as the store reads it back: `shape` whatever the in-memory tensor called its dims. */
export interface StoredTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

const STRIDE = 9;
/** Per shadow copy: ts, rows, request id offset, request id byte length. */
const COPY_STRIDE = 4;
const STATUSES: readonly PredictionEvent['status'][] = ['ok', 'error', 'shadow'];
/** Index 0 is no route (a request that named its version, or no rollout running). */
const ROUTES: readonly (PredictionRoute | undefined)[] = [undefined, 'stable', 'candidate'];
const TS = 0;
const VERSION = 1;
const LATENCY = 2;
const STATUS = 3;
const MODEL = 4;
const INPUTS = 5;
const OUTPUTS = 6;
const ID_OFFSET = 7;
const ID_LENGTH = 8;

/** Most tensors in one list that are packed; more (never seen from a real signature) go the raw way. */
const MAX_TENSORS = 64;
const MAX_RANK = 8;

interface TensorLike {
  name?: unknown;
  datatype?: unknown;
  dims?: unknown;
  shape?: unknown;
  data?: unknown;
}

/** Typed arrays whose every element a float64 holds exactly (BigInt arrays are left to the raw path). */
function exactTypedArray(d: unknown): d is Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array {
  return (
    d instanceof Float32Array ||
    d instanceof Float64Array ||
    d instanceof Int32Array ||
    d instanceof Uint8Array ||
    d instanceof Int8Array ||
    d instanceof Int16Array ||
    d instanceof Uint16Array ||
    d instanceof Uint32Array
  );
}

function numberArray(d: unknown): d is number[] {
  if (!Array.isArray(d)) return false;
  for (let i = 0; i < d.length; i++) if (typeof d[i] !== 'number') return false;
  return true;
}

function validDims(dims: unknown): dims is number[] {
  if (!Array.isArray(dims) || dims.length > MAX_RANK) return false;
  for (let i = 0; i < dims.length; i++) {
    const d: unknown = dims[i];
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > 0x7fffffff) return false;
  }
  return true;
}

/**
 * Prediction events packed column by column, as the prediction log collects them. Pushing an event copies
 * its numbers into typed arrays and keeps its strings, so the event object itself dies young instead of
 * living in a queue until the next flush; handing the batch to the writer thread copies a few buffers.
 * `event(i)` reads one back in the shape the store returns (tensor `shape`, numbers as plain arrays).
 */
export class PredictionBatch {
  private count = 0;
  private ids: Buffer;
  private idsLen = 0;
  private num: Float64Array;
  private strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private meta: Int32Array;
  private metaLen = 0;
  private data: Float64Array;
  private dataLen = 0;
  private raw: unknown[] = [];
  private extras: EventExtras[] = [];
  private copyNum: Float64Array;
  /** Copies packed so far (COPY_STRIDE numbers each). */
  private copyLen = 0;
  /** Index into `extras` by event, built on first read. */
  private extrasByEvent: Map<number, EventExtras> | undefined;

  constructor(expectedEvents = 64) {
    const n = Math.max(1, expectedEvents);
    this.num = shared(Float64Array, n * STRIDE);
    this.meta = shared(Int32Array, n * 8);
    this.data = shared(Float64Array, n * 16);
    this.ids = sharedBytes(n * 40);
    this.copyNum = shared(Float64Array, COPY_STRIDE);
  }

  static of(events: readonly PredictionEvent[]): PredictionBatch {
    const b = new PredictionBatch(events.length);
    for (const e of events) b.push(e);
    return b;
  }

  /** The batch a `toMessage()` made, on the receiving side. */
  static fromMessage(m: PredictionBatchMessage): PredictionBatch {
    const b = new PredictionBatch(1);
    b.count = m.count;
    b.ids = Buffer.from(m.ids.buffer, m.ids.byteOffset, m.ids.byteLength);
    b.idsLen = m.ids.byteLength;
    b.num = m.num;
    b.strings = m.strings;
    b.meta = m.meta;
    b.metaLen = m.meta.length;
    b.data = m.data;
    b.dataLen = m.data.length;
    b.raw = m.raw;
    b.extras = m.extras;
    b.copyNum = m.copies;
    b.copyLen = m.copies.length / COPY_STRIDE;
    return b;
  }

  get length(): number {
    return this.count;
  }

  /** Tensor values packed so far (8 bytes each): the log seals a batch early when they add up. */
  get values(): number {
    return this.dataLen;
  }

  /** Bytes its buffers take, used or not. */
  get capacityBytes(): number {
    return this.num.byteLength + this.meta.byteLength + this.data.byteLength + this.ids.byteLength + this.copyNum.byteLength;
  }

  /** Empties the batch for reuse, keeping its buffers. Only once no other thread reads them any more. */
  reset(): void {
    this.count = 0;
    this.idsLen = 0;
    this.metaLen = 0;
    this.dataLen = 0;
    this.strings = [];
    this.stringIndex.clear();
    this.raw = [];
    this.extras = [];
    this.copyLen = 0;
    this.extrasByEvent = undefined;
  }

  push(e: PredictionEvent): void {
    const i = this.count;
    if ((i + 1) * STRIDE > this.num.length) this.num = grow(this.num, (i + 1) * STRIDE);
    const o = i * STRIDE;
    const num = this.num;
    num[o + TS] = e.ts;
    num[o + VERSION] = e.version;
    num[o + LATENCY] = e.latencyMs;
    num[o + STATUS] = STATUSES.indexOf(e.status) + 3 * (e.route === undefined ? 0 : ROUTES.indexOf(e.route));
    num[o + MODEL] = this.intern(e.model);
    num[o + INPUTS] = this.pack(e.inputs);
    num[o + OUTPUTS] = this.pack(e.outputs);
    num[o + ID_OFFSET] = this.idsLen;
    num[o + ID_LENGTH] = this.writeId(e.requestId);
    if (e.error !== undefined || e.keys !== undefined || e.traceId !== undefined || e.copies !== undefined) {
      const x: EventExtras = { i };
      if (e.error !== undefined) x.error = e.error;
      if (e.keys !== undefined) x.keys = e.keys;
      if (e.traceId !== undefined) x.traceId = e.traceId;
      if (e.copies !== undefined) this.packCopies(e.copies, x);
      this.extras.push(x);
      this.extrasByEvent = undefined;
    }
    this.count = i + 1;
  }

  /** Appends a request id to `ids` as UTF-8 and returns its byte length. */
  private writeId(id: string): number {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.idsLen + id.length * 3 > this.ids.length) this.ids = growBytes(this.ids, this.idsLen + id.length * 3);
    const written = this.ids.write(id, this.idsLen, 'utf8');
    this.idsLen += written;
    return written;
  }

  /**
   * A wave's copies into the shared buffers, like the events themselves: its lists of ids, times and rows would
   * otherwise live until the flush and be copied by every young collection in between (the shadow's scavenges
   * grew from 0.85 to 1.07 ms each when they did).
   */
  private packCopies(c: ShadowCopies, x: EventExtras): void {
    const n = c.requestIds.length;
    if ((this.copyLen + n) * COPY_STRIDE > this.copyNum.length) this.copyNum = grow(this.copyNum, (this.copyLen + n) * COPY_STRIDE);
    const cn = this.copyNum;
    for (let k = 0; k < n; k++) {
      const o = (this.copyLen + k) * COPY_STRIDE;
      cn[o] = c.ts[k]!;
      cn[o + 1] = c.rows[k]!;
      cn[o + 2] = this.idsLen;
      cn[o + 3] = this.writeId(c.requestIds[k]!);
    }
    x.copiesAt = this.copyLen;
    x.copiesN = n;
    if (c.keys?.some((k) => k !== undefined)) x.copyKeys = c.keys;
    this.copyLen += n;
  }

  /** The batch as plain data for `postMessage`, trimmed to what is used. */
  toMessage(): PredictionBatchMessage {
    return {
      count: this.count,
      ids: new Uint8Array(this.ids.buffer, this.ids.byteOffset, this.idsLen),
      num: this.num.subarray(0, this.count * STRIDE),
      strings: this.strings,
      meta: this.meta.subarray(0, this.metaLen),
      data: this.data.subarray(0, this.dataLen),
      raw: this.raw,
      extras: this.extras,
      copies: this.copyNum.subarray(0, this.copyLen * COPY_STRIDE),
    };
  }

  requestId(i: number): string {
    const at = this.num[i * STRIDE + ID_OFFSET]!;
    return this.ids.toString('utf8', at, at + this.num[i * STRIDE + ID_LENGTH]!);
  }
  ts(i: number): number {
    return this.num[i * STRIDE + TS]!;
  }
  model(i: number): string {
    return this.strings[this.num[i * STRIDE + MODEL]!]!;
  }
  version(i: number): number {
    return this.num[i * STRIDE + VERSION]!;
  }
  latencyMs(i: number): number {
    return this.num[i * STRIDE + LATENCY]!;
  }
  status(i: number): PredictionEvent['status'] {
    return STATUSES[this.num[i * STRIDE + STATUS]! % 3]!;
  }
  route(i: number): PredictionRoute | undefined {
    return ROUTES[Math.floor(this.num[i * STRIDE + STATUS]! / 3)];
  }
  error(i: number): string | undefined {
    return this.extrasOf(i)?.error;
  }
  keys(i: number): string[] | undefined {
    return this.extrasOf(i)?.keys;
  }
  traceId(i: number): string | undefined {
    return this.extrasOf(i)?.traceId;
  }
  /** The copies of a shadow wave (see PredictionEvent.copies). */
  copies(i: number): ShadowCopies | undefined {
    const x = this.extrasOf(i);
    if (x?.copiesAt === undefined || x.copiesN === undefined) return undefined;
    const c: ShadowCopies = { requestIds: [], ts: [], rows: [] };
    for (let k = 0; k < x.copiesN; k++) {
      const o = (x.copiesAt + k) * COPY_STRIDE;
      const cn = this.copyNum;
      c.ts.push(cn[o]!);
      c.rows.push(cn[o + 1]!);
      c.requestIds.push(this.ids.toString('utf8', cn[o + 2]!, cn[o + 2]! + cn[o + 3]!));
    }
    if (x.copyKeys !== undefined) c.keys = x.copyKeys;
    return c;
  }

  /** The event's inputs: packed tensors as `StoredTensor`s, anything else as it was pushed. */
  inputs(i: number): unknown {
    return this.unpack(this.num[i * STRIDE + INPUTS]!);
  }
  outputs(i: number): unknown {
    return this.unpack(this.num[i * STRIDE + OUTPUTS]!);
  }

  /**
   * The inputs (or outputs) as OIP tensor JSON — `[{"name","datatype","shape","data"}]`, non-finite values as
   * null like JSON.stringify writes them — or undefined when they were not packed.
   */
  tensorsJson(i: number, which: 'inputs' | 'outputs'): string | undefined {
    const ref = this.num[i * STRIDE + (which === 'inputs' ? INPUTS : OUTPUTS)]!;
    if (ref < 0) return undefined;
    const parts: string[] = [];
    this.walk(ref, (name, datatype, shape, from, to) => {
      const values = this.data.subarray(from, to);
      let joined = values.join(',');
      // join prints NaN and Infinity, which are not JSON.
      if (joined.includes('N') || joined.includes('I')) joined = Array.from(values, (v) => (Number.isFinite(v) ? v : 'null')).join(',');
      parts.push(`{"name":${JSON.stringify(name)},"datatype":${JSON.stringify(datatype)},"shape":[${shape.join(',')}],"data":[${joined}]}`);
    });
    return `[${parts.join(',')}]`;
  }

  event(i: number): PredictionEvent {
    const e: PredictionEvent = {
      requestId: this.requestId(i),
      ts: this.ts(i),
      model: this.model(i),
      version: this.version(i),
      status: this.status(i),
      latencyMs: this.latencyMs(i),
      inputs: this.inputs(i),
      outputs: this.outputs(i),
    };
    const route = this.route(i);
    if (route !== undefined) e.route = route;
    const x = this.extrasOf(i);
    if (x?.error !== undefined) e.error = x.error;
    if (x?.keys !== undefined) e.keys = x.keys;
    if (x?.traceId !== undefined) e.traceId = x.traceId;
    const copies = this.copies(i);
    if (copies !== undefined) e.copies = copies;
    return e;
  }

  toEvents(): PredictionEvent[] {
    return Array.from({ length: this.count }, (_, i) => this.event(i));
  }

  private extrasOf(i: number): EventExtras | undefined {
    if (this.extras.length === 0) return undefined;
    this.extrasByEvent ??= new Map(this.extras.map((x) => [x.i, x]));
    return this.extrasByEvent.get(i);
  }

  private intern(s: string): number {
    let k = this.stringIndex.get(s);
    if (k === undefined) {
      k = this.strings.length;
      this.strings.push(s);
      this.stringIndex.set(s, k);
    }
    return k;
  }

  /** Packs a tensor list and returns its offset in `meta`; anything else goes to `raw` as −(index + 1). */
  private pack(v: unknown): number {
    // One pass checks the list and sizes it: every tensor named and typed, integer dims, numeric data.
    let need = 1;
    let values = 0;
    let ok = Array.isArray(v) && v.length > 0 && v.length <= MAX_TENSORS;
    if (ok) {
      for (const t of v as unknown[]) {
        if (t === null || typeof t !== 'object') {
          ok = false;
          break;
        }
        const { name, datatype, data } = t as TensorLike;
        const dims = (t as TensorLike).dims ?? (t as TensorLike).shape;
        if (typeof name !== 'string' || typeof datatype !== 'string' || !validDims(dims) || !(Array.isArray(data) ? numberArray(data) : exactTypedArray(data))) {
          ok = false;
          break;
        }
        need += 5 + dims.length;
        values += (data as ArrayLike<number>).length;
      }
    }
    if (!ok) {
      this.raw.push(v);
      return -this.raw.length;
    }
    if (this.metaLen + need > this.meta.length) this.meta = grow(this.meta, this.metaLen + need);
    if (this.dataLen + values > this.data.length) this.data = grow(this.data, this.dataLen + values);
    const ref = this.metaLen;
    const meta = this.meta;
    const out = this.data;
    let m = ref;
    meta[m++] = (v as unknown[]).length;
    for (const t of v as TensorLike[]) {
      const dims = (t.dims ?? t.shape) as number[];
      const d = t.data as ArrayLike<number>;
      meta[m++] = this.intern(t.name as string);
      meta[m++] = this.intern(t.datatype as string);
      meta[m++] = dims.length;
      for (let j = 0; j < dims.length; j++) meta[m++] = dims[j]!;
      meta[m++] = this.dataLen;
      meta[m++] = d.length;
      if (Array.isArray(d)) for (let j = 0; j < d.length; j++) out[this.dataLen + j] = d[j]!;
      else out.set(d as Float64Array, this.dataLen);
      this.dataLen += d.length;
    }
    this.metaLen = m;
    return ref;
  }

  private walk(ref: number, visit: (name: string, datatype: string, shape: number[], from: number, to: number) => void): void {
    const meta = this.meta;
    let m = ref;
    const n = meta[m++]!;
    for (let t = 0; t < n; t++) {
      const name = this.strings[meta[m++]!]!;
      const datatype = this.strings[meta[m++]!]!;
      const rank = meta[m++]!;
      const shape = Array.from(meta.subarray(m, m + rank));
      m += rank;
      const from = meta[m++]!;
      const len = meta[m++]!;
      visit(name, datatype, shape, from, from + len);
    }
  }

  private unpack(ref: number): unknown {
    if (ref < 0) return this.raw[-ref - 1];
    const out: StoredTensor[] = [];
    this.walk(ref, (name, datatype, shape, from, to) => out.push({ name, datatype, shape, data: Array.from(this.data.subarray(from, to)) }));
    return out;
  }
}

/**
 * Typed arrays on SharedArrayBuffers: posted to the writer thread without a copy, and reused by the next
 * batch (a fresh buffer per batch cost page faults on both threads and a copy into the message).
 */
function shared<T extends Float64Array | Int32Array>(Ctor: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number }, n: number): T {
  return new Ctor(new SharedArrayBuffer(n * Ctor.BYTES_PER_ELEMENT));
}

function sharedBytes(n: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(n));
}

function grow<T extends Float64Array | Int32Array>(a: T, atLeast: number): T {
  const Ctor = a.constructor as { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number };
  const next = shared(Ctor, Math.max(atLeast, a.length * 2));
  next.set(a);
  return next;
}

function growBytes(a: Buffer, atLeast: number): Buffer {
  const next = sharedBytes(Math.max(atLeast, a.length * 2));
  a.copy(next);
  return next;
}
