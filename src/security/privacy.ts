/**
 * Sensitive inputs (docs/security.md#sensitive-inputs): per deployment, features (or input tensors) that are
 * redacted or replaced by a keyed hash before a prediction event leaves the request — so the prediction log, its
 * exports, monitoring's samples and the review queue never hold them — and values left out of the validation
 * messages of such a deployment, which reach logs and traces. A deployment without rules costs one Map lookup.
 */
import { createHmac } from 'node:crypto';
import type { ModelSignature, PredictionEvent } from '../storage/index.ts';

export interface PrivacyRuleConfig {
  redact: readonly string[];
  hash: readonly string[];
}

export interface PrivacyConfig {
  hashKey?: string | undefined;
  deployments: Readonly<Record<string, PrivacyRuleConfig>>;
}

/** What a redacted cell becomes in a refused request's JSON (a number column logs NaN: missing). */
export const REDACTED = '[redacted]';
/** Hashes are cut to integers below 2^24: exact in float32, so a hashed column stays a valid tensor column. */
const HASH_SPACE = 1 << 24;

type Mode = 'redact' | 'hash';

interface Rule {
  modes: Map<string, Mode>;
  /** Per signature (its features array), the column modes of the first input; cached as signatures are immutable. */
  columns: WeakMap<object, (Mode | undefined)[] | null>;
}

interface TensorLike {
  name: string;
  datatype?: string;
  dims?: number[];
  shape?: number[];
  data: unknown;
}

/** Keeps the sensitive inputs named in config out of prediction events and validation messages. */
export class Privacy {
  private readonly rules = new Map<string, Rule>();

  constructor(private readonly config: PrivacyConfig) {
    for (const [deployment, r] of Object.entries(config.deployments)) {
      const modes = new Map<string, Mode>();
      for (const f of r.redact) modes.set(f, 'redact');
      for (const f of r.hash) modes.set(f, 'hash');
      if (modes.size) this.rules.set(deployment, { modes, columns: new WeakMap() });
    }
    if ([...this.rules.values()].some((r) => [...r.modes.values()].includes('hash')) && !config.hashKey) {
      throw new Error('privacy: hash rules need privacy.hashKey');
    }
  }

  /** Whether a hash key is configured (never the key itself). */
  hasKey(): boolean {
    return this.config.hashKey !== undefined;
  }

  /** Whether the deployment has rules (the request path's only cost when it has none). */
  applies(model: string): boolean {
    return this.rules.has(model);
  }

  /** HMAC-SHA256 of the value's text, as an integer below 2^24. Numbers hash by their float32 value, as the model sees them. */
  hash(value: unknown): number {
    const text = typeof value === 'number' ? String(Math.fround(value)) : typeof value === 'string' ? value : JSON.stringify(value) ?? 'null';
    const d = createHmac('sha256', this.config.hashKey!).update(text).digest();
    return ((d[0]! << 16) | (d[1]! << 8) | d[2]!) % HASH_SPACE;
  }

  /** The rules of each deployment, with the names the current signature does not have (a typo protects nothing). */
  describe(signatureOf: (model: string) => ModelSignature | undefined): { deployment: string; redact: string[]; hash: string[]; unknown: string[] }[] {
    return [...this.rules.entries()].map(([deployment, r]) => {
      const sig = signatureOf(deployment);
      const known = new Set([...(sig?.features ?? []).map((f) => f.name), ...(sig?.inputs ?? []).map((i) => i.name)]);
      const names = [...r.modes.keys()];
      return {
        deployment,
        redact: names.filter((n) => r.modes.get(n) === 'redact'),
        hash: names.filter((n) => r.modes.get(n) === 'hash'),
        unknown: sig ? names.filter((n) => !known.has(n)) : [],
      };
    });
  }

  /**
   * The event with the deployment's sensitive inputs redacted or hashed; the same event when it has no rules. The
   * inputs are copied, never changed in place: the caller's tensors still feed the model and the shadow copy.
   */
  event(event: PredictionEvent, signature: ModelSignature | undefined): PredictionEvent {
    const rule = this.rules.get(event.model);
    if (!rule) return event;
    const out: PredictionEvent = { ...event, inputs: this.inputs(rule, event.inputs, signature) };
    if (event.error !== undefined) out.error = scrubValues(event.error);
    return out;
  }

  /** Leaves the offending values out of a refused request's message (it goes to logs, traces and the event). */
  scrubError(model: string, e: unknown): void {
    if (!this.rules.has(model) || !(e instanceof Error)) return;
    e.message = scrubValues(e.message);
  }

  private columnModes(rule: Rule, signature: ModelSignature | undefined): (Mode | undefined)[] | null {
    const features = signature?.features;
    if (!features) return null;
    let cols = rule.columns.get(features);
    if (cols === undefined) {
      const modes = features.map((f) => rule.modes.get(f.name));
      cols = modes.some((m) => m !== undefined) ? modes : null;
      rule.columns.set(features, cols);
    }
    return cols;
  }

  private inputs(rule: Rule, inputs: unknown, signature: ModelSignature | undefined): unknown {
    if (inputs === null || inputs === undefined) return inputs;
    // A refused body kept as text (too large or too deep to keep as JSON): nothing cheap to cut from, so nothing kept.
    if (typeof inputs === 'string') return '[not kept: the deployment has privacy rules and the refused body was kept as text]';
    if (!Array.isArray(inputs)) return '[not kept: the deployment has privacy rules and the inputs have no known shape]';
    const cols = this.columnModes(rule, signature);
    const first = signature?.inputs[0]?.name;
    if (inputs.every(isTensorLike)) {
      return (inputs as TensorLike[]).map((t) => {
        const whole = rule.modes.get(t.name);
        if (whole) return this.tensor(t, () => whole);
        if (cols && t.name === first) return this.tensor(t, (i) => cols[i % cols.length]);
        return t;
      });
    }
    // `:predict` instances as the caller sent them (a refused request): objects of feature values.
    return inputs.map((row) => {
      if (row === null || typeof row !== 'object' || Array.isArray(row)) return row;
      let copy: Record<string, unknown> | undefined;
      for (const [name, mode] of rule.modes) {
        if (!(name in row)) continue;
        copy ??= { ...(row as Record<string, unknown>) };
        copy[name] = mode === 'redact' ? REDACTED : this.hash(copy[name]);
      }
      return copy ?? row;
    });
  }

  /** A copy of the tensor with each element whose mode is set redacted (NaN, or "[redacted]" in JSON) or hashed. */
  private tensor(t: TensorLike, modeAt: (i: number) => Mode | undefined): TensorLike {
    const data = t.data;
    if (ArrayBuffer.isView(data) && !(data instanceof DataView)) {
      const arr = data as unknown as { length: number; slice(): typeof arr; [i: number]: number | bigint };
      const copy = arr.slice();
      const float = data instanceof Float32Array || data instanceof Float64Array;
      for (let i = 0; i < copy.length; i++) {
        const m = modeAt(i);
        if (!m) continue;
        const v = m === 'hash' ? this.hash(Number(copy[i])) : float ? Number.NaN : 0;
        copy[i] = typeof copy[i] === 'bigint' ? BigInt(v) : v;
      }
      return { ...t, data: copy };
    }
    if (Array.isArray(data)) {
      const flat = data.flat(Infinity) as unknown[];
      return { ...t, data: flat.map((v, i) => { const m = modeAt(i); return m === undefined ? v : m === 'redact' ? REDACTED : this.hash(v); }) };
    }
    return { ...t, data: REDACTED };
  }
}

function isTensorLike(v: unknown): v is TensorLike {
  return v !== null && typeof v === 'object' && typeof (v as TensorLike).name === 'string' && 'data' in (v as object);
}

/**
 * Removes the values a validation message quotes: `… = 5085 is above …` → `… = [redacted] is above …`, `is string
 * "x@y"` / `is number 7` → `is [redacted]`, `entity user="ana"` → `entity user=[redacted]`. The message still says
 * where and why.
 */
export function scrubValues(message: string): string {
  return message
    .replace(/(entity [^=\s]+)="(?:[^"\\]|\\.)*"/g, `$1=${REDACTED}`)
    .replace(/ = (?:"(?:[^"\\]|\\.)*"|[^\s;,)]+)/g, ` = ${REDACTED}`)
    .replace(/ is (?:string "(?:[^"\\]|\\.)*"…?|number [^\s;,)]+|boolean \w+)/g, ` is ${REDACTED}`);
}
