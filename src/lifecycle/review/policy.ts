import { WardenError } from '../../errors.ts';
import type { ModelSignature, ModelVersionRecord, ReviewPolicyRecord } from '../../storage/index.ts';
import type { OutputTensor } from '../../serving/index.ts';

/** Queue bound when a policy names none. */
export const DEFAULT_MAX_QUEUE = 10_000;
/** Largest queue bound a policy may ask for: the queue is a worklist for people, not an archive. */
export const MAX_MAX_QUEUE = 1_000_000;

/** A policy as the API takes it: every field optional; `maxQueue` defaults to DEFAULT_MAX_QUEUE. */
export interface ReviewPolicyInput {
  confidenceThreshold?: number;
  output?: string;
  sampleRate?: number;
  maxQueue?: number;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Validates a policy body. A threshold below 0.5 would never match (confidence max(p, 1 − p) is at least
 * 0.5), so it is refused rather than silently doing nothing; so is a policy that can put nothing in the queue.
 */
export function parseReviewPolicy(body: unknown): ReviewPolicyInput {
  if (!isObject(body)) throw bad('review policy must be a JSON object: {"confidenceThreshold", "output", "sampleRate", "maxQueue"}');
  const known = new Set(['confidenceThreshold', 'output', 'sampleRate', 'maxQueue']);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length) throw bad(`unknown review policy field ${JSON.stringify(unknown[0]!.slice(0, 64))}; allowed: ${[...known].join(', ')}`);
  const out: ReviewPolicyInput = {};
  const { confidenceThreshold: t, output, sampleRate: s, maxQueue: q } = body;
  if (t !== undefined && t !== null) {
    if (typeof t !== 'number' || !(t > 0.5 && t <= 1)) throw bad('confidenceThreshold must be a number in (0.5, 1]: confidence max(p, 1 − p) is never below 0.5');
    out.confidenceThreshold = t;
  }
  if (output !== undefined && output !== null) {
    if (typeof output !== 'string' || output.length === 0 || output.length > 256) throw bad('output must be the name of a model output');
    out.output = output;
  }
  if (s !== undefined && s !== null) {
    if (typeof s !== 'number' || !(s >= 0 && s <= 1)) throw bad('sampleRate must be a number in [0, 1]');
    out.sampleRate = s;
  }
  if (q !== undefined && q !== null) {
    if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > MAX_MAX_QUEUE) throw bad(`maxQueue must be an integer in [1, ${MAX_MAX_QUEUE}]`);
    out.maxQueue = q;
  }
  if (out.confidenceThreshold === undefined && !out.sampleRate) {
    throw bad('a review policy needs confidenceThreshold, a sampleRate above 0, or both; without either nothing would enter the queue');
  }
  return out;
}

const FLOAT_TYPES = new Set(['FP16', 'FP32', 'FP64', 'BF16']);

/**
 * Checks that a signature has the probability output a policy needs: the named output, or (none named) a
 * single-column floating-point output. Returns a reason when it does not.
 */
export function probabilityOutputProblem(signature: ModelSignature, output: string | undefined): string | undefined {
  const single = (shape: number[]) => shape.length === 1 || (shape.length === 2 && shape[1] === 1);
  if (output !== undefined) {
    const spec = signature.outputs.find((o) => o.name === output);
    if (!spec) return `the model has no output ${JSON.stringify(output)}; it has ${signature.outputs.map((o) => o.name).join(', ')}`;
    if (!single(spec.shape)) return `output ${output} has shape ${JSON.stringify(spec.shape)}; a review policy needs one column holding P(y=1)`;
    return undefined;
  }
  if (!signature.outputs.some((o) => FLOAT_TYPES.has(o.datatype) && single(o.shape))) {
    return 'the model has no single-column floating-point output to read P(y=1) from; name one with "output"';
  }
  return undefined;
}

/**
 * Says why a version is a regression model, or undefined when nothing says so. Confidence is max(p, 1 − p) of a
 * probability; a regression output (say 254 rentals) is never in [0, 1], so a policy on it would accept the
 * request and then never flag or sample a row. Two signs are reliable enough to refuse on: the built-in
 * trainer records `params.kind`, and `variable` is the output name both it and skl2onnx give regressors
 * (their classifiers output `label` and `probabilities`). A model with neither sign is given the benefit of
 * the doubt.
 */
export function regressionProblem(version: Pick<ModelVersionRecord, 'signature' | 'metadata'>, output: string | undefined): string | undefined {
  const kind = version.metadata.params?.kind;
  if (kind === 'linear') return 'it is a linear regression (warden train, params.kind = linear)';
  const single = (shape: number[]) => shape.length === 1 || (shape.length === 2 && shape[1] === 1);
  const chosen = output ?? version.signature.outputs.find((o) => FLOAT_TYPES.has(o.datatype) && single(o.shape))?.name;
  if (chosen === 'variable') return 'its output "variable" is a regression output (the name warden train and skl2onnx give regressors)';
  return undefined;
}

/** The label values a review item of a binary classifier takes; anything else would never count in live performance. */
export const BINARY_LABELS: readonly (number | boolean)[] = [0, 1, false, true];

/**
 * The tensor holding P(y = 1) in a response: the policy's named output, else the first floating-point output
 * with one value per row. Undefined when the response has none (e.g. the caller selected other outputs).
 * A plain loop: this runs on the request path.
 */
export function probabilityTensor(outputs: readonly OutputTensor[], output: string | undefined, rows: number): OutputTensor | undefined {
  for (let i = 0; i < outputs.length; i++) {
    const o = outputs[i]!;
    if (o.data.length !== rows) continue;
    if (output !== undefined ? o.name === output : FLOAT_TYPES.has(o.datatype)) return o;
  }
  return undefined;
}

/** max(p, 1 − p) for a probability, NaN for anything that is not a number in [0, 1]. */
export function confidenceOf(p: unknown): number {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) return NaN;
  return p >= 0.5 ? p : 1 - p;
}

/** The stored record of a validated policy. */
export function policyRecord(model: string, input: ReviewPolicyInput, now: number): ReviewPolicyRecord {
  return {
    model,
    ...(input.confidenceThreshold !== undefined ? { confidenceThreshold: input.confidenceThreshold } : {}),
    ...(input.output !== undefined ? { output: input.output } : {}),
    ...(input.sampleRate !== undefined ? { sampleRate: input.sampleRate } : {}),
    maxQueue: input.maxQueue ?? DEFAULT_MAX_QUEUE,
    updatedAt: now,
  };
}
