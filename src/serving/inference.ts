import { setTimeout as sleep } from 'node:timers/promises';
import { WardenError, isWardenError } from '../errors.ts';
import { ExplainService, MAX_EXPLAINED_ROWS, type ExplainOptions, type ExplainResult } from '../explain/index.ts';
import { decodeInstances, decodeTensor, type DecodedTensor, type InstancePrefill } from '../quality/index.ts';
import type { FeatureSpec, ModelSignature, PredictionEvent, PredictionRoute } from '../storage/index.ts';
import type { PredictionLog, RequestTrace, TrafficAggregator, WardenMetrics, Outcome } from '../telemetry/index.ts';
import type { Privacy } from '../security/index.ts';
import { FaultInjector } from './faults.ts';
import type { ModelTable, LoadedVersion } from './model-table.ts';
import type { RouteChoice, Router } from './router.ts';
import type { ShadowRunner } from './shadow.ts';
import type { OutputTensor } from './runtimes/onnx.ts';

/** OIP v2 inference response body. */
export interface OipInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: OutputTensor[];
  /**
   * Response-level OIP parameters; `review` lists rows routed to human review, `explanation` holds the Shapley values
   * of the rows when the request asked for them (`parameters.explain`).
   */
  parameters?: Record<string, unknown>;
}

/** An explanation in an inference response: the explain API's answer without model and version (the response's own). */
export type InferenceExplanation = Omit<ExplainResult, 'model' | 'version'>;

/** Response of the named-feature form (`POST /v1/models/{name}:predict`). */
export interface PredictResponse {
  model_name: string;
  model_version: string;
  id: string;
  /** One entry per instance: a number for single-column outputs, else an object of output name → values. */
  predictions: unknown[];
  /** Rows routed to human review, when the model has a review policy and some row qualifies. */
  review?: ReviewFlag;
  /** Shapley values of the rows, when the request asked for them (`parameters.explain`). */
  explanation?: InferenceExplanation;
}

/** Rows of one response routed to human review, and why. */
export interface ReviewFlag {
  rows: number[];
  reason: string;
}

/**
 * Serving-time enrichment (features/enrich): fills a request's named features from the replica's in-memory copy of
 * the online feature store, before validation; no I/O. A fill that could not complete (an expired or missing value)
 * returns the refusal's message, thrown as WARDEN_INVALID_INPUT by validation.
 */
export interface FeatureEnricher {
  /** Whether the deployment reads feature views (one Map lookup). */
  reads(model: string): boolean;
  /** `:predict`: the values of the named features the instances leave out, for validation to use. */
  fillInstances(
    model: string,
    features: readonly FeatureSpec[],
    instances: unknown,
    parameters: Record<string, unknown> | undefined,
    trace?: RequestTrace,
  ): { prefill: InstancePrefill; problem?: string } | undefined;
  /** OIP: with `parameters.entities`, builds (or fills the nulls of) the named-feature input. */
  fillTensors(model: string, signature: ModelSignature, inputs: unknown, parameters: Record<string, unknown> | undefined, trace?: RequestTrace): { inputs: unknown; problem?: string };
}

/** Decides on the request path which rows go to human review (lifecycle/review); in memory, no I/O. */
export interface ReviewFlagger {
  flag(model: string, outputs: readonly OutputTensor[], rows: number): ReviewFlag | undefined;
}

export interface RequestContext {
  requestId: string;
  /** performance.now() when the request arrived (a double: no BigInt allocated per request). */
  started: number;
  /** Epoch ms when the request arrived. */
  ts: number;
  /** The request's spans; absent when tracing is off, and then nothing here touches a tracer. */
  trace?: RequestTrace;
  /** The body as received (JSON text), when the HTTP layer has it: a refused request's log excerpt is cut from it. */
  bodyText?: string;
}

export interface InferenceServiceOptions {
  table: ModelTable;
  /** Per-deployment redaction and keyed hashing of sensitive inputs before events are logged (security/privacy). */
  privacy?: Pick<Privacy, 'applies' | 'event' | 'scrubError'>;
  metrics: WardenMetrics;
  log?: PredictionLog;
  maxBatchRows: number;
  review?: ReviewFlagger;
  /** Game-day fault injection (lifecycle/gameday arms it); costs one boolean check while nothing is armed. */
  faults?: FaultInjector;
  /** Rollout routing (canary weights, A/B arms, shadow mirroring); rollouts/ keeps it in step with the store. */
  router?: Router;
  shadow?: ShadowRunner;
  /** The per-deployment traffic series (GET /api/v1/deployments/{name}/traffic). */
  traffic?: TrafficAggregator;
  /** Explanations asked for with `parameters.explain`; without it such requests are refused. */
  explain?: ExplainService;
  /** Named features filled from the online feature store for deployments that read feature views. */
  features?: FeatureEnricher;
  /** Cost caps (cost/): a deployment past its budget with a `route` cap serves its cheaper version. */
  cost?: { capOf(deployment: string): { action: 'throttle' | 'route'; version?: number } | undefined };
}

interface OkMetrics {
  model: string;
  version: string;
  protocol: 'oip' | 'predict';
  requests: { inc(n: number): void };
  duration: { observe(v: number): void };
  rows: { inc(n: number): void };
  pendingRequests: number;
  pendingRows: number;
}

const invalid = (msg: string) => new WardenError('WARDEN_INVALID_INPUT', msg);
const badRequest = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The request path: resolve the version in memory, check inputs against its signature, run the
 * model, answer — then record metrics and queue the prediction event, which costs the caller
 * only an array push.
 */
export class InferenceService {
  /**
   * Metrics of successful requests per label set. Request and row counts are plain additions folded into
   * prom-client when it collects (`metrics.beforeCollect`); the latency histogram is observed at once.
   */
  private readonly okMetrics = new Map<string, OkMetrics>();
  /** Label sets of the most recent request, whose metrics need no key string or Map lookup. */
  private lastOk: OkMetrics | undefined;

  private readonly faults: FaultInjector;

  constructor(private readonly opts: InferenceServiceOptions) {
    this.faults = opts.faults ?? new FaultInjector();
    opts.metrics.beforeCollect(() => this.foldCounts());
  }

  private foldCounts(): void {
    for (const c of this.okMetrics.values()) {
      if (c.pendingRequests > 0) c.requests.inc(c.pendingRequests);
      if (c.pendingRows > 0) c.rows.inc(c.pendingRows);
      c.pendingRequests = 0;
      c.pendingRows = 0;
    }
  }

  private okChildren(model: string, version: string, protocol: 'oip' | 'predict'): OkMetrics {
    const last = this.lastOk;
    if (last && last.model === model && last.version === version && last.protocol === protocol) return last;
    const k = `${model}\u0000${version}\u0000${protocol}`;
    let c = this.okMetrics.get(k);
    if (!c) {
      const { metrics } = this.opts;
      c = {
        model,
        version,
        protocol,
        requests: metrics.inferenceRequests.labels({ model, version, outcome: 'ok', protocol }),
        duration: metrics.inferenceDuration.labels({ model, version, outcome: 'ok' }),
        rows: metrics.inferenceRows.labels({ model, version }),
        pendingRequests: 0,
        pendingRows: 0,
      };
      // Bounded by models × versions × 2 in practice; the cap guards against surprises (counts folded first).
      if (this.okMetrics.size > 10_000) {
        this.foldCounts();
        this.okMetrics.clear();
      }
      this.okMetrics.set(k, c);
    }
    this.lastOk = c;
    return c;
  }

  /** The warm version a request names, without a promise when it is loaded (the common case). */
  private target(model: string, ref: string | undefined, routed: RouteChoice | undefined): LoadedVersion | Promise<LoadedVersion> {
    const { table } = this.opts;
    const version = routed ? routed.version : table.resolveNumber(model, ref);
    return table.peek(model, version) ?? table.load(model, version);
  }

  /**
   * The rollout's choice for a request that names no version; undefined when none routes the deployment or the
   * request names a version. An A/B experiment assigns by the caller's key and refuses a request without one
   * (unless its spec sends unkeyed requests to the stable version, unrouted).
   */
  private routeOf(model: string, ref: string | undefined, parameters: unknown): RouteChoice | undefined {
    const router = this.opts.router;
    if (ref !== undefined && ref !== '') return undefined;
    // A cost cap outranks a rollout: past its budget the deployment serves the cheaper version only (the guard has
    // refused requests that name another).
    const cap = this.opts.cost?.capOf(model);
    if (cap?.action === 'route' && cap.version !== undefined) return { version: cap.version, route: undefined };
    if (router === undefined) return undefined;
    const policy = router.get(model);
    if (policy === undefined) return undefined;
    if (policy.strategy !== 'ab') return router.pick(model);
    const key = assignmentKey(parameters);
    if (key === undefined) {
      if (policy.unkeyed === 'stable') return undefined;
      throw badRequest(
        `${model} runs an A/B experiment, which assigns callers by key: send parameters.keys (one per row; the first assigns the request) or parameters.assignment_key, or name a version`,
      );
    }
    return router.pick(model, key);
  }

  private mirror(model: string, routed: RouteChoice | undefined, requestId: string, ts: number, inputs: DecodedTensor[], outputNames: string[] | undefined, keys: string[] | undefined): void {
    const { router, shadow } = this.opts;
    if (routed === undefined || routed.route !== 'stable' || !shadow || !router!.mirror(model)) return;
    shadow.offer(model, router!.get(model)!.candidate, requestId, ts, inputs, outputNames, keys);
  }

  /** OIP v2 `infer`: validates against the spec's request shape and the model signature. */
  async infer(model: string, ref: string | undefined, body: unknown, ctx: RequestContext): Promise<OipInferResponse> {
    let lv: LoadedVersion | undefined;
    let routed: RouteChoice | undefined;
    let inputsForLog: unknown = null;
    // Set while the explanation runs: a failure then is the explanation's (the model has answered).
    let explaining = false;
    const trace = ctx.trace;
    try {
      trace?.setRequest(model, ref, 'oip');
      routed = this.routeOf(model, ref, isObject(body) ? body.parameters : undefined);
      const found = this.target(model, ref, routed);
      lv = found instanceof Promise ? await found : found;
      trace?.setVersion(lv.record.version);
      trace?.startFeatureLookup();
      let { inputs } = isObject(body) ? body : { inputs: undefined };
      let problem: string | undefined;
      const enricher = this.opts.features;
      if (enricher && isObject(body) && isObject(body.parameters) && (enricher.reads(model) || body.parameters.entities !== undefined)) {
        ({ inputs, problem } = enricher.fillTensors(model, lv.record.signature, inputs, body.parameters, trace));
      }
      trace?.startStep('validate');
      if (!isObject(body)) throw badRequest('request body must be a JSON object with an "inputs" array');
      const { outputs, id, parameters } = body;
      inputsForLog = inputs ?? null;
      if (id !== undefined && typeof id !== 'string') throw badRequest('"id" must be a string');
      if (parameters !== undefined && !isObject(parameters)) throw badRequest('"parameters" must be an object');
      ctx = withEventTime(ctx, parameters);
      const explain = explainParameter(parameters);
      if (problem !== undefined) throw invalid(problem);
      const decoded = this.decodeInputs(lv, inputs);
      const rows = decoded[0]?.dims[0] ?? 1;
      if (explain) explainable(rows);
      const keys = parameters?.keys === undefined ? undefined : callerKeys(parameters.keys, rows);
      const outputNames = this.outputNames(lv, outputs);
      trace?.endStep();
      trace?.setRows(rows);
      const fault = this.faults.armed ? this.faults.hit(model, decoded, lv.record.signature) : undefined;
      trace?.startStep('model.run');
      const result = await (lv.batcher ?? lv.runtime).run(decoded, outputNames);
      trace?.endStep();
      if (fault?.delayMs) await sleep(fault.delayMs);
      const response: OipInferResponse = {
        model_name: model,
        model_version: lv.label,
        id: typeof id === 'string' ? id : ctx.requestId,
        outputs: result,
      };
      const review = this.opts.review?.flag(model, result, rows);
      if (review) response.parameters = { review };
      if (explain) {
        trace?.startStep('explain');
        explaining = true;
        response.parameters = { ...response.parameters, explanation: await this.explainRows(lv, decoded[0]!, explain, 'oip') };
        explaining = false;
        trace?.endStep();
      }
      // The log keeps the decoded tensors: flat typed arrays cost the event writer a memcpy to receive.
      this.record(ctx, model, lv, 'oip', rows, fault?.logged ?? decoded, result, keys, fault?.marker, routed?.route, explain !== undefined);
      this.mirror(model, routed, ctx.requestId, ctx.ts, decoded, outputNames, keys);
      return response;
    } catch (e) {
      this.opts.privacy?.scrubError(model, e);
      trace?.failStep(e);
      this.recordError(ctx, model, lv, e, 'oip', inputsForLog, routed?.route, explaining);
      throw e;
    }
  }

  /** Named-feature form: `{"instances": [{feature: value, …}]}` mapped through the signature's features. */
  async predict(model: string, ref: string | undefined, body: unknown, ctx: RequestContext): Promise<PredictResponse> {
    let lv: LoadedVersion | undefined;
    let routed: RouteChoice | undefined;
    let inputsForLog: unknown = null;
    let explaining = false;
    const trace = ctx.trace;
    try {
      trace?.setRequest(model, ref, 'predict');
      routed = this.routeOf(model, ref, isObject(body) ? body.parameters : undefined);
      const found = this.target(model, ref, routed);
      lv = found instanceof Promise ? await found : found;
      trace?.setVersion(lv.record.version);
      trace?.startFeatureLookup();
      const features = lv.record.signature.features;
      let filled: { prefill: InstancePrefill; problem?: string } | undefined;
      const enricher = this.opts.features;
      if (enricher && features?.length && isObject(body) && (body.parameters === undefined || isObject(body.parameters))) {
        if (enricher.reads(model) || body.parameters?.entities !== undefined) filled = enricher.fillInstances(model, features, body.instances, body.parameters, trace);
      }
      trace?.startStep('validate');
      if (!features?.length) {
        throw invalid(
          `model ${model} v${lv.label} has no named features; use POST /v2/models/${model}/infer or push the version with a feature list`,
        );
      }
      if (!isObject(body)) throw badRequest('request body must be a JSON object with an "instances" array');
      inputsForLog = body.instances ?? null;
      if (body.parameters !== undefined && !isObject(body.parameters)) throw badRequest('"parameters" must be an object');
      ctx = withEventTime(ctx, body.parameters);
      const explain = explainParameter(body.parameters);
      if (filled?.problem !== undefined) throw invalid(filled.problem);
      const matrix = decodeInstances(body.instances, features, this.opts.maxBatchRows, filled?.prefill);
      const rows = (body.instances as unknown[]).length;
      if (explain) explainable(rows);
      const keys = body.parameters?.keys === undefined ? undefined : callerKeys(body.parameters.keys, rows);
      const input = lv.record.signature.inputs[0]!;
      const tensor: DecodedTensor = { name: input.name, datatype: 'FP32', dims: [rows, features.length], data: matrix };
      trace?.endStep();
      trace?.setRows(rows);
      const fault = this.faults.armed ? this.faults.hit(model, [tensor], lv.record.signature) : undefined;
      trace?.startStep('model.run');
      const result = await (lv.batcher ?? lv.runtime).run([tensor]);
      trace?.endStep();
      if (fault?.delayMs) await sleep(fault.delayMs);
      const predictions = toPredictions(result, rows);
      let explanation: InferenceExplanation | undefined;
      if (explain) {
        trace?.startStep('explain');
        explaining = true;
        explanation = await this.explainRows(lv, tensor, explain, 'predict');
        explaining = false;
        trace?.endStep();
      }
      this.record(ctx, model, lv, 'predict', rows, fault?.logged ?? [tensor], result, keys, fault?.marker, routed?.route, explain !== undefined);
      this.mirror(model, routed, ctx.requestId, ctx.ts, [tensor], undefined, keys);
      const response: PredictResponse = { model_name: model, model_version: lv.label, id: ctx.requestId, predictions };
      const review = this.opts.review?.flag(model, result, rows);
      if (review) response.review = review;
      if (explanation) response.explanation = explanation;
      return response;
    } catch (e) {
      this.opts.privacy?.scrubError(model, e);
      trace?.failStep(e);
      this.recordError(ctx, model, lv, e, 'predict', inputsForLog, routed?.route, explaining);
      throw e;
    }
  }

  /**
   * Shapley values of the rows a version just answered, by that version (the one a rollout routed the request to),
   * with its loaded session; a version that cannot be explained fails the request (it asked for an explanation).
   */
  private async explainRows(lv: LoadedVersion, input: DecodedTensor, opts: ExplainOptions, protocol: 'oip' | 'predict'): Promise<InferenceExplanation> {
    const explainer = this.opts.explain;
    if (!explainer) throw badRequest('parameters.explain: this server does not explain predictions');
    if (!(input.data instanceof Float32Array)) throw badRequest(`parameters.explain: explanations take a 2-D FP32 input; ${input.name} is ${input.datatype}`);
    const width = input.dims.length === 2 ? input.dims[1]! : 1;
    const rows: Float32Array[] = [];
    for (let i = 0; i < input.data.length; i += width) rows.push(input.data.subarray(i, i + width));
    const { model: _model, version: _version, ...explanation } = await explainer.explain(lv.record, rows, { ...opts, runner: lv.runtime, protocol });
    return explanation;
  }

  private decodeInputs(lv: LoadedVersion, inputs: unknown): DecodedTensor[] {
    const specs = lv.record.signature.inputs;
    if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest('"inputs" must be a non-empty array of tensors');
    if (inputs.length > specs.length) {
      throw invalid(`${inputs.length} inputs sent; the model takes ${specs.length} (${specs.map((s) => s.name).join(', ')})`);
    }
    const decoded: DecodedTensor[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < inputs.length; i++) {
      const raw = inputs[i];
      if (!isObject(raw)) throw badRequest(`inputs[${i}] must be an object with name, shape, datatype and data`);
      if (typeof raw.name !== 'string') throw badRequest(`inputs[${i}].name must be a string`);
      const spec = specs.find((s) => s.name === raw.name);
      if (!spec) {
        throw invalid(`unknown input ${JSON.stringify(raw.name.slice(0, 64))}; the model takes ${specs.map((s) => s.name).join(', ')}`);
      }
      if (seen.has(spec.name)) throw invalid(`input ${spec.name} is given twice`);
      seen.add(spec.name);
      // Named features describe the first input's columns; their allowed ranges hold in the tensor form too.
      decoded.push(decodeTensor(raw, spec, this.opts.maxBatchRows, spec === specs[0] ? lv.record.signature.features : undefined));
    }
    const missing = specs.filter((s) => !seen.has(s.name));
    if (missing.length) throw invalid(`missing input ${missing.map((s) => s.name).join(', ')}`);
    const rows = decoded[0]!.dims[0];
    if (decoded.some((t) => t.dims[0] !== rows)) throw invalid('all inputs must have the same number of rows (first dimension)');
    return decoded;
  }

  private outputNames(lv: LoadedVersion, outputs: unknown): string[] | undefined {
    if (outputs === undefined) return undefined;
    if (!Array.isArray(outputs)) throw badRequest('"outputs" must be an array of {"name": …}');
    const names: string[] = [];
    for (const [i, o] of outputs.entries()) {
      if (!isObject(o) || typeof o.name !== 'string') throw badRequest(`outputs[${i}] must be an object with a string name`);
      if (!lv.record.signature.outputs.some((s) => s.name === o.name)) {
        throw invalid(
          `unknown output ${JSON.stringify(o.name.slice(0, 64))}; the model produces ${lv.record.signature.outputs.map((s) => s.name).join(', ')}`,
        );
      }
      if (!names.includes(o.name)) names.push(o.name);
    }
    return names;
  }

  private record(
    ctx: RequestContext,
    model: string,
    lv: LoadedVersion,
    protocol: 'oip' | 'predict',
    rows: number,
    inputs: unknown,
    outputs: OutputTensor[],
    keys: string[] | undefined,
    faultMarker: string | undefined,
    route: PredictionRoute | undefined,
    explained: boolean,
  ): void {
    const seconds = (performance.now() - ctx.started) / 1000;
    const children = this.okChildren(model, lv.label, protocol);
    children.pendingRequests++;
    children.pendingRows += rows;
    children.duration.observe(seconds);
    this.opts.traffic?.request(model, lv.record.version, 'ok', rows, seconds * 1000);
    const event: PredictionEvent = {
      requestId: ctx.requestId,
      ts: ctx.ts,
      model,
      version: lv.record.version,
      status: 'ok',
      latencyMs: seconds * 1000,
      inputs,
      outputs,
    };
    if (keys !== undefined) event.keys = keys;
    if (route !== undefined) event.route = route;
    if (explained) event.explained = true;
    if (ctx.trace) event.traceId = ctx.trace.traceId;
    // A served request a game day touched keeps status ok; the marker in `error` tells it apart later.
    if (faultMarker !== undefined) event.error = faultMarker;
    const privacy = this.opts.privacy;
    this.opts.log?.enqueue(privacy?.applies(model) ? privacy.event(event, lv.record.signature) : event);
  }

  private recordError(
    ctx: RequestContext,
    model: string,
    lv: LoadedVersion | undefined,
    e: unknown,
    protocol: 'oip' | 'predict',
    inputs: unknown,
    route: PredictionRoute | undefined,
    /** The model answered and the explanation the request asked for failed (the explanation_coverage SLI's bad event). */
    explanationFailed: boolean,
  ): void {
    const seconds = (performance.now() - ctx.started) / 1000;
    const code = isWardenError(e) ? e.code : 'WARDEN_INTERNAL';
    const status = isWardenError(e) ? e.status : 500;
    const outcome: Outcome = status < 500 ? 'client_error' : 'server_error';
    // Unknown names would let any caller mint new label values; fold them into one.
    const known = this.opts.table.has(model);
    const modelLabel = known ? model : '_unknown';
    const version = lv ? lv.label : '_unresolved';
    const { metrics, log } = this.opts;
    metrics.inferenceRequests.inc({ model: modelLabel, version, outcome, protocol });
    metrics.inferenceDuration.observe({ model: modelLabel, version, outcome }, seconds);
    metrics.inferenceErrors.inc({ model: modelLabel, version, code });
    // Unknown names are not deployments: counting them would let any caller grow the series.
    if (known) this.opts.traffic?.request(model, lv?.record.version ?? 0, outcome, 0, seconds * 1000, code);
    const event: PredictionEvent = {
      requestId: ctx.requestId,
      ts: ctx.ts,
      model: known ? model : model.slice(0, 128),
      version: lv?.record.version ?? 0,
      status: 'error',
      latencyMs: seconds * 1000,
      inputs: loggable(inputs, ctx.bodyText),
      outputs: null,
      error: `${code}: ${(e as Error).message}`.slice(0, 2000),
      ...(ctx.trace ? { traceId: ctx.trace.traceId } : {}),
      ...(route !== undefined && lv ? { route } : {}),
      ...(explanationFailed ? { explained: false } : {}),
    };
    const privacy = this.opts.privacy;
    log?.enqueue(privacy?.applies(event.model) ? privacy.event(event, lv?.record.signature) : event);
  }
}

/** The caller key that assigns a request to an A/B arm: `parameters.assignment_key`, else the first of `parameters.keys`. */
function assignmentKey(parameters: unknown): string | undefined {
  if (!isObject(parameters)) return undefined;
  const a = parameters.assignment_key;
  if (a !== undefined) {
    if (typeof a !== 'string' || a.length === 0 || a.length > MAX_KEY_LENGTH) throw badRequest(`parameters.assignment_key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
    return a;
  }
  const keys = parameters.keys;
  if (Array.isArray(keys) && typeof keys[0] === 'string' && keys[0].length > 0 && keys[0].length <= MAX_KEY_LENGTH) return keys[0];
  return undefined;
}

/**
 * Deepest nesting of request values the prediction log keeps. The event store serializes each batch
 * (JSON.stringify, structured clone), which overflows the stack on values nested thousands deep; one such
 * request would then fail every write of its batch and the valid events in it would be dropped.
 */
const LOG_MAX_DEPTH = 64;

/**
 * Most of a refused request's inputs the log keeps whole, in characters of JSON (about 64 KiB): enough for every
 * refused request monitoring profiles (a few rows), bounded for a caller who sends 8 MB of garbage at a time —
 * 40 refused 7.7 MB bodies used to add 322 MB to events.db.
 */
export const REFUSED_INPUTS_MAX_CHARS = 65_536;
/** How much of a larger refused body the log keeps, as the start of its JSON text. */
export const REFUSED_EXCERPT_CHARS = 4_096;

/**
 * What the log keeps of a refused request's inputs: the value as sent when it is small and shallow enough, else an
 * excerpt, the start of the body's text, as a string with how much was left out (a string is not profiled by
 * monitoring). With the body's text at hand nothing is walked: a body of 700,000 keys cost 0.5 s to measure.
 */
function loggable(inputs: unknown, bodyText?: string): unknown {
  const small = bodyText === undefined || bodyText.length <= REFUSED_INPUTS_MAX_CHARS;
  if (small && jsonSizeWithin(inputs, LOG_MAX_DEPTH, REFUSED_INPUTS_MAX_CHARS) !== undefined) return inputs;
  const what = `refused request over ${REFUSED_INPUTS_MAX_CHARS} characters of JSON or nested deeper than ${LOG_MAX_DEPTH} levels`;
  // Without the text (a caller in-process, not over HTTP) there is nothing cheap to cut from: say so instead.
  if (bodyText === undefined) return `[not kept: ${what}]`;
  const excerpt = bodyText.slice(0, REFUSED_EXCERPT_CHARS);
  return `[excerpt: ${what}; the first ${excerpt.length} of its body's ${bodyText.length} characters follow] ${excerpt}`;
}

/**
 * The approximate JSON length of `value` (exact for strings and structure, numbers counted by their text), or
 * undefined once it passes `maxChars` or nests deeper than `maxDepth`. Iterative and bounded by `maxChars`, so it
 * neither overflows the stack on the values it exists to catch nor walks all of a huge one.
 */
function jsonSizeWithin(value: unknown, maxDepth: number, maxChars: number): number | undefined {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  let size = 0;
  for (let top = stack.pop(); top; top = stack.pop()) {
    const { v, depth } = top;
    if (typeof v === 'string') {
      // Escapes count too: only a string short enough to fit is serialized, so the cost stays within the budget.
      if (size + v.length + 2 > maxChars) return undefined;
      size += JSON.stringify(v).length;
    } else if (typeof v === 'number') size += String(v).length;
    else if (v === null || typeof v !== 'object') size += 5;
    else {
      if (depth >= maxDepth) return undefined;
      size += 2;
      if (Array.isArray(v)) {
        // Each element costs at least a character and a comma: a longer array cannot fit, and is not walked.
        if (size + 2 * v.length > maxChars) return undefined;
        for (const c of v) stack.push({ v: c, depth: depth + 1 });
      } else {
        for (const k in v) {
          size += k.length + 4;
          if (size > maxChars) return undefined;
          stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1 });
        }
      }
    }
    if (size > maxChars) return undefined;
  }
  return size;
}

/** Latest event time accepted: a little ahead of the clock for skew, never far in the future. */
const MAX_FUTURE_MS = 24 * 3600 * 1000;

/**
 * `parameters.event_time` (epoch ms or ISO-8601) sets the time the prediction is logged and monitored
 * under — for replaying historical traffic or clients that batch up requests. Default: arrival time.
 */
function withEventTime(ctx: RequestContext, parameters: Record<string, unknown> | undefined): RequestContext {
  const raw = parameters?.event_time;
  if (raw === undefined) return ctx;
  const ts = typeof raw === 'number' ? raw : typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ts) || ts < 0 || ts > Date.now() + MAX_FUTURE_MS) {
    throw badRequest('parameters.event_time must be epoch milliseconds or an ISO-8601 time, not in the future');
  }
  return { ...ctx, ts: Math.floor(ts) };
}

/**
 * `parameters.explain`: `true` (or `{}`) asks for the Shapley values of every row of the request, `{"background": n,
 * "budget": m}` sets the background rows and KernelSHAP's coalitions; `false` or absent asks for none. Checked before
 * the model runs.
 */
function explainParameter(parameters: Record<string, unknown> | undefined): ExplainOptions | undefined {
  const raw = parameters?.explain;
  if (raw === undefined || raw === false) return undefined;
  if (raw === true) return {};
  const form = 'parameters.explain must be true, false or {"background": rows, "budget": coalitions}';
  if (!isObject(raw)) throw badRequest(form);
  const opts: ExplainOptions = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'background' && k !== 'budget') throw badRequest(`unknown field parameters.explain.${k.slice(0, 64)}; ${form}`);
    if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest(`parameters.explain.${k} must be an integer`);
    opts[k] = v;
  }
  try {
    ExplainService.checkOptions(opts);
  } catch (e) {
    throw badRequest(`parameters.explain: ${(e as Error).message}`);
  }
  return opts;
}

/** Explanations cost a background's worth of work per row: a request asking for them is bounded to MAX_EXPLAINED_ROWS. */
function explainable(rows: number): void {
  if (rows > MAX_EXPLAINED_ROWS) {
    throw badRequest(`parameters.explain: the request has ${rows} rows and at most ${MAX_EXPLAINED_ROWS} are explained per request; send fewer rows, or explain a sample of them with POST /api/v1/models/{name}/explain`);
  }
}

/** Longest caller key: keys are ids from the caller's systems, not payloads. */
const MAX_KEY_LENGTH = 256;

/**
 * `parameters.keys`: one caller key per row (an order id, a session id …), so delayed labels can name a
 * row without Warden's request id. Checked only when sent; keys must be distinct within the request.
 */
function callerKeys(raw: unknown, rows: number): string[] {
  if (!Array.isArray(raw)) throw badRequest('parameters.keys must be an array of strings, one per row');
  if (raw.length !== rows) throw badRequest(`parameters.keys has ${raw.length} key${raw.length === 1 ? '' : 's'} for ${rows} row${rows === 1 ? '' : 's'}; send one key per row`);
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const k: unknown = raw[i];
    if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEY_LENGTH) {
      throw badRequest(`parameters.keys[${i}] must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
    }
    if (seen.has(k)) throw badRequest(`parameters.keys[${i}] repeats ${JSON.stringify(k.slice(0, 64))}; keys must be distinct`);
    seen.add(k);
  }
  return raw as string[];
}

function toPredictions(outputs: OutputTensor[], rows: number): unknown[] {
  const perRow = outputs.map((o) => ({ o, width: rows > 0 ? o.data.length / rows : 0 }));
  const single = perRow.length === 1 && perRow[0]!.width === 1;
  const out: unknown[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    if (single) {
      out[r] = perRow[0]!.o.data[r];
      continue;
    }
    const row: Record<string, unknown> = {};
    for (const { o, width } of perRow) row[o.name] = width === 1 ? o.data[r] : o.data.slice(r * width, (r + 1) * width);
    out[r] = row;
  }
  return out;
}
