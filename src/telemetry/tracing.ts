import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { WardenConfig } from '../config.ts';

/** Warden's span attributes, where OpenTelemetry's semantic conventions have none. */
export const WardenAttr = {
  requestId: 'warden.request_id',
  deployment: 'warden.deployment',
  modelName: 'warden.model.name',
  modelVersion: 'warden.model.version',
  /** What the caller asked for: a version number, an alias, `latest`, or `champion` (the default). */
  modelRef: 'warden.model.ref',
  protocol: 'warden.protocol',
  rows: 'warden.inference.rows',
  featureSource: 'warden.features.source',
} as const;

export interface TracingOptions {
  config: WardenConfig['tracing'];
  serviceVersion: string;
  /** `service.instance.id`: which replica made the spans. */
  instanceId: string;
  logger: Logger;
  /** Export counters go here (never prom-client's global registry). */
  promRegistry: Registry;
  /** Replaces the OTLP/HTTP exporter (tests). */
  exporter?: SpanExporter;
}

const SERVER_SPAN = Object.freeze({ kind: SpanKind.SERVER });
const NO_OPTIONS = Object.freeze({});
const FEATURES_FROM_REQUEST: Attributes = Object.freeze({ [WardenAttr.featureSource]: 'request' });

/** Failed exports are logged at most this often; the counters count every one. */
const EXPORT_ERROR_LOG_INTERVAL_MS = 60_000;

/**
 * One Warden instance's tracer: a TracerProvider of its own (never registered globally, so tests can run
 * many servers in one process), a parent-based ratio sampler, and a bounded BatchSpanProcessor feeding an
 * OTLP/HTTP exporter. Contexts are passed explicitly, so no context manager (AsyncLocalStorage) is installed.
 */
export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();
  private closed: Promise<void> | undefined;

  constructor(private readonly opts: TracingOptions) {
    const { config, logger } = opts;
    const spansEnded = new Counter({
      name: 'warden_tracing_spans_ended_total',
      help: 'Sampled spans handed to the export queue; minus warden_tracing_spans_exported_total, what the bounded queue dropped (or holds).',
      registers: [opts.promRegistry],
    });
    const spansExported = new Counter({
      name: 'warden_tracing_spans_exported_total',
      help: 'Spans sent to the OTLP endpoint, by result (ok, error).',
      labelNames: ['result'],
      registers: [opts.promRegistry],
    });
    const exporter = new CountingExporter(
      opts.exporter ??
        new OTLPTraceExporter({ url: config.otlpEndpoint, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs }),
      spansExported,
      logger,
      config.otlpEndpoint,
    );
    const batch = new BatchSpanProcessor(exporter, {
      maxQueueSize: config.maxQueueSize,
      maxExportBatchSize: Math.min(512, config.maxQueueSize),
      scheduledDelayMillis: config.scheduledDelayMs,
      exportTimeoutMillis: config.exportTimeoutMs,
    });
    this.provider = new BasicTracerProvider({
      resource: defaultResource().merge(
        resourceFromAttributes({
          [ATTR_SERVICE_NAME]: config.serviceName,
          [ATTR_SERVICE_VERSION]: opts.serviceVersion,
          [ATTR_SERVICE_INSTANCE_ID]: opts.instanceId,
        }),
      ),
      // A caller's sampled flag wins (one trace is kept or dropped as a whole); new traces keep sampleRatio.
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [new CountingProcessor(batch, spansEnded)],
    });
    this.tracer = this.provider.getTracer('warden', opts.serviceVersion);
    logger.info({ endpoint: config.otlpEndpoint, sampleRatio: config.sampleRatio }, 'tracing on: exporting spans over OTLP/HTTP');
  }

  /**
   * Starts the SERVER span of one request. A W3C `traceparent` (and `tracestate`) in the headers makes it a
   * child in the caller's trace; without one it starts a new trace. Attributes are added after the sampling
   * decision (`RequestTrace.recording`), so an unsampled request does not build them.
   */
  startRequest(name: string, headers: IncomingHttpHeaders): RequestTrace {
    const parent = this.propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const span = this.tracer.startSpan(name, SERVER_SPAN, parent);
    return new RequestTrace(span, trace.setSpan(parent, span), this.tracer);
  }

  /** Exports every ended span now (tests, and before shutdown). */
  async forceFlush(): Promise<void> {
    await this.provider.forceFlush();
  }

  /** Flushes and stops exporting; an unreachable endpoint costs at most the export timeout. */
  shutdown(): Promise<void> {
    this.closed ??= this.provider.shutdown().catch((err: unknown) => {
      this.opts.logger.warn({ err }, 'tracing: final export failed');
    });
    return this.closed;
  }
}

/**
 * The spans of one request: the SERVER span and, under it, one step at a time (`feature_lookup`, `validate`,
 * `model.run`). Steps run in sequence on the request path, so starting one ends the previous. When the
 * request is not sampled only its ids are kept: no child spans are started and no attributes are built.
 */
export class RequestTrace {
  /** W3C trace id (32 hex digits), also written to the prediction event and the request's log lines. */
  readonly traceId: string;
  readonly spanId: string;
  /** True when the request is sampled: its spans are recorded and exported. */
  readonly recording: boolean;
  private step: Span | undefined;
  private ended = false;

  constructor(
    private readonly span: Span,
    private readonly context: Context,
    private readonly tracer: Tracer,
  ) {
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.recording = span.isRecording();
  }

  /** Adds attributes to the SERVER span (build them only when `recording`). */
  setAttributes(attributes: Attributes): void {
    this.span.setAttributes(attributes);
  }

  /** What the caller asked for; set before resolution, so a failed lookup carries it too. */
  setRequest(model: string, ref: string | undefined, protocol: 'oip' | 'predict'): void {
    if (!this.recording) return;
    const name = model.slice(0, 256);
    this.span.setAttributes({ [WardenAttr.deployment]: name, [WardenAttr.modelName]: name, [WardenAttr.protocol]: protocol });
    if (ref !== undefined) this.span.setAttribute(WardenAttr.modelRef, ref.slice(0, 256));
  }

  /** The version the request resolved to. */
  setVersion(version: number): void {
    if (this.recording) this.span.setAttribute(WardenAttr.modelVersion, version);
  }

  /** Rows in the request's batch. */
  setRows(rows: number): void {
    if (this.recording) this.span.setAttribute(WardenAttr.rows, rows);
  }

  /**
   * Opens the `feature_lookup` step: `warden.features.source=request` when the request carries every feature, which
   * serving-time enrichment (features/enrich) replaces with `online` and the views, rows and statuses it read.
   */
  startFeatureLookup(): void {
    this.startStep('feature_lookup', FEATURES_FROM_REQUEST);
  }

  /** Adds attributes to the open step (build them only when `recording`). */
  setStepAttributes(attributes: Attributes): void {
    this.step?.setAttributes(attributes);
  }

  /** Ends the open step, if any, and opens child span `name`. */
  startStep(name: string, attributes?: Attributes): void {
    if (!this.recording) return;
    this.step?.end();
    this.step = this.tracer.startSpan(name, attributes ? { attributes } : NO_OPTIONS, this.context);
  }

  /** Ends the open step as a success. */
  endStep(): void {
    this.step?.end();
    this.step = undefined;
  }

  /** Ends the open step as failed: ERROR status and an `exception` event. */
  failStep(e: unknown): void {
    if (!this.step) return;
    fail(this.step, e);
    this.step.end();
    this.step = undefined;
  }

  /** Records an error answer on the SERVER span: `error.type` (Warden's code) and an `exception` event. */
  recordError(e: unknown, errorType: string): void {
    if (!this.recording) return;
    this.span.setAttribute(ATTR_ERROR_TYPE, errorType);
    this.span.recordException(asException(e));
  }

  /**
   * Ends the SERVER span with the response status. Per the HTTP semantic conventions a server span is an
   * error for 5xx only: a 4xx is the caller's mistake (its cause is on the failed step and in `error.type`).
   */
  end(statusCode: number): void {
    if (this.ended) return;
    this.ended = true;
    this.endStep();
    this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
    if (statusCode >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }

  /** Ends the spans of a request whose client went away before the answer. */
  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.endStep();
    this.span.setAttribute(ATTR_ERROR_TYPE, 'client_aborted');
    this.span.end();
  }
}

function fail(span: Span, e: unknown): void {
  span.recordException(asException(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message.slice(0, 500) : String(e).slice(0, 500) });
}

/** OpenTelemetry's recordException takes an Error-like object or a string. */
function asException(e: unknown): Error | string {
  return e instanceof Error ? e : String(e);
}

/** Counts the sampled spans that reach the batch processor, so drops by its bounded queue are visible. */
class CountingProcessor implements SpanProcessor {
  constructor(
    private readonly next: SpanProcessor,
    private readonly ended: Counter,
  ) {}

  onStart(span: Parameters<SpanProcessor['onStart']>[0], parent: Context): void {
    this.next.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    this.ended.inc();
    this.next.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }
}

/** Counts exported spans by result and logs failures (rate-limited): an unreachable collector is not silent. */
class CountingExporter implements SpanExporter {
  private lastLogged = 0;
  private failedSinceLog = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly exported: Counter<'result'>,
    private readonly logger: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        this.exported.inc({ result: 'ok' }, spans.length);
      } else {
        this.exported.inc({ result: 'error' }, spans.length);
        this.failedSinceLog += spans.length;
        const now = Date.now();
        if (now - this.lastLogged >= EXPORT_ERROR_LOG_INTERVAL_MS) {
          this.logger.warn({ err: result.error, endpoint: this.endpoint, spans: this.failedSinceLog }, 'tracing: span export failed; spans lost');
          this.lastLogged = now;
          this.failedSinceLog = 0;
        }
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
