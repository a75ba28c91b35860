import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { WardenError } from '../errors.ts';
import type { AlertingService } from '../alerting/index.ts';
import type { GameDayService, RetrainService, ReviewService } from '../lifecycle/index.ts';
import type { MonitoringService } from '../monitoring/index.ts';
import type { Registry } from '../registry/index.ts';
import type { DeploymentService, RolloutService } from '../rollouts/index.ts';
import type { SloService } from '../slo/index.ts';
import type { KeyRing, QuotaCounter, RateLimiter } from '../security/index.ts';
import type { CostMeter } from '../cost/index.ts';
import { requestIdFrom, type InferenceService, type ModelTable } from '../serving/index.ts';
import type { StoreHealth, Stores } from '../storage/index.ts';
import type { PredictionLog, Tracing, TrafficAggregator, WardenMetrics } from '../telemetry/index.ts';
import type { WardenConfig } from '../config.ts';
import { makeGuard, modelOfRequest, type Guard } from './auth.ts';
import { bodyPending, installBodyHandling } from './body.ts';
import { errorHandler } from './errors.ts';
import { registerOipRoutes } from './oip.ts';
import { registerModelRoutes } from './admin/models.ts';
import { registerModelCardRoutes } from './admin/model-cards.ts';
import { registerPredictionRoutes } from './admin/predictions.ts';
import { registerKeyRoutes } from './admin/keys.ts';
import { registerCostRoutes } from './admin/cost.ts';
import { registerMonitoringRoutes } from './admin/monitoring.ts';
import { registerLabelRoutes } from './admin/labels.ts';
import { registerDatasetRoutes } from './admin/datasets.ts';
import { registerExplainRoutes } from './admin/explain.ts';
import { registerFeatureRoutes } from './admin/features.ts';
import { registerOnlineFeatureRoutes } from './admin/online-features.ts';
import { registerFeatureSkewRoutes } from './admin/feature-skew.ts';
import { registerAuditRoutes } from './admin/audit.ts';
import { registerAuditHooks } from './audit-hooks.ts';
import type { AccessMonitor, AuditLog, Privacy } from '../security/index.ts';
import { registerPrivacyRoutes } from './admin/privacy.ts';
import { registerRetrainingRoutes } from './admin/retraining.ts';
import type { ExplainService } from '../explain/index.ts';
import type { FeatureService, OnlineFeatures } from '../features/index.ts';
import { registerReviewRoutes } from './admin/review.ts';
import { registerGameDayRoutes } from './admin/gamedays.ts';
import { registerAlertRoutes } from './admin/alerts.ts';
import { registerSloRoutes } from './admin/slos.ts';
import { registerDeploymentRoutes } from './admin/deployments.ts';
import { registerTrafficRoutes } from './admin/traffic.ts';
import { registerSessionRoutes } from './admin/session.ts';
import { registerDashboard } from './dashboard.ts';

export interface HttpDeps {
  config: WardenConfig;
  logger: Logger;
  stores: Stores;
  registry: Registry;
  table: ModelTable;
  inference: InferenceService;
  /** Explanations: the explain API, and parameters.explain on inference (the same service). */
  explain: ExplainService;
  metrics: WardenMetrics;
  keys: KeyRing;
  /** Rate limits per key and deployment; absent: none. */
  rateLimits?: RateLimiter;
  /** Request quotas per key and deployment. */
  quotas?: QuotaCounter;
  /** Cost, budgets and caps (docs/cost.md); absent without a price. */
  cost?: CostMeter;
  /** Feature definitions, pushes and historical retrieval. */
  features: FeatureService;
  /** The online store: deployments' feature bindings, materialization, online reads. */
  online: OnlineFeatures;
  log?: PredictionLog;
  /** The traffic series' counts (flushed before the traffic route reads); absent when config.traffic.enabled is false. */
  traffic?: TrafficAggregator;
  monitoring?: MonitoringService;
  review?: ReviewService;
  gamedays?: GameDayService;
  /** Absent when alerting is off; its routes then answer 409. */
  alerting?: AlertingService;
  deployments: DeploymentService;
  rollouts: RolloutService;
  retraining?: RetrainService;
  /** Absent when SLOs are off; their routes then answer 409. */
  slo?: SloService;
  serverVersion: string;
  /** What this replica knows of its stores' health: failed writes mark a store degraded. */
  health: StoreHealth;
  /** Present when tracing is on (config.tracing.enabled). */
  tracing?: Tracing;
  /** The audit log: state-changing API calls are recorded through the hooks in audit-hooks.ts. */
  audit: AuditLog;
  /** Sensitive-input rules (config privacy), shown by GET /api/v1/privacy. */
  privacy: Privacy;
  /** Unusual-access detection (security/access-monitor); its alerts are an alert source. */
  access?: AccessMonitor;
}

function notFound(method: string, url: string): WardenError {
  return new WardenError('WARDEN_NOT_FOUND', `no route ${method} ${url.slice(0, 200)}; see docs/api.md`);
}

/** Query parameters a route may take more than once (`?alias=a&alias=b` on push). */
const REPEATABLE_QUERY = new Set(['alias']);

declare module 'fastify' {
  interface FastifyRequest {
    /** The JSON body's text as received, for a refused request's log excerpt. */
    bodyText: string | undefined;
  }
  interface FastifyInstance {
    /** Every route this server answers (method and URL pattern), as registered: what the fuzz test walks. */
    routeTable: { method: string; url: string }[];
    /**
     * Begins the drain before close (SIGTERM, docs/packaging.md): from now on `/v2/health/ready` answers 503 so load
     * balancers stop sending, while every request that still arrives is served, with `connection: close`.
     */
    startDraining(): void;
  }
}

/** Builds the Fastify app: parsers, request ids, one error shape, and every route. */
export function buildHttpServer(deps: HttpDeps): FastifyInstance {
  const { config } = deps;
  const bodyLimit = config.server.bodyLimitBytes;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps the instance type the default one routes expect.
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines cost more than a prediction; errors are logged by our handler instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    bodyLimit,
    requestTimeout: config.server.requestTimeoutMs,
    // Node checks request and header timeouts on a timer (30 s by default), so a slow client used to be cut
    // 30-60 s late; checking every second keeps the cut within about a second of requestTimeoutMs.
    http: {
      connectionsCheckingInterval: Math.min(1000, config.server.requestTimeoutMs),
      headersTimeout: config.server.requestTimeoutMs,
      requestTimeout: config.server.requestTimeoutMs,
    },
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    // Route params are bounded so a huge path cannot make huge error messages or labels.
    routerOptions: { maxParamLength: 256 },
    // Refused in our own onRequest hook instead, so the answer has Warden's shape and a Retry-After.
    return503OnClosing: false,
    // Errors Fastify raises before routing (bad percent-encoding, over-long params) get our shape too.
    frameworkErrors: (err, req, reply) => errorHandler(bodyLimit)(err, req, reply),
  });

  const routeTable: { method: string; url: string }[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) if (method !== 'HEAD') routeTable.push({ method, url: r.url });
  });

  let draining = false;
  app.decorate('startDraining', () => {
    draining = true;
  });
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.server.maxConnections = config.server.maxConnections;

  // Callback style, not async: an async hook costs a promise and a microtask per request.
  app.addHook('onRequest', (req, reply, done) => {
    req.startedAt = performance.now();
    req.startedAtMs = Date.now();
    void reply.header('x-request-id', req.id);
    // An unknown route is answered now: Fastify would otherwise run a content-type parser and read its body first.
    if (req.is404) {
      if (bodyPending(req)) void reply.header('connection', 'close');
      done(notFound(req.method, req.url));
      return;
    }
    // A parameter given twice arrives as an array, which no route but push's `alias` expects.
    const query = req.query as Record<string, unknown>;
    for (const name in query) {
      if (Array.isArray(query[name]) && !REPEATABLE_QUERY.has(name)) {
        done(new WardenError('WARDEN_BAD_REQUEST', `query parameter ${JSON.stringify(name.slice(0, 64))} is given ${(query[name] as unknown[]).length} times; give it once`));
        return;
      }
    }
    // Draining: still served, but a keep-alive client reconnects, and so reaches a replica that stays.
    if (draining) void reply.header('connection', 'close');
    if (closing) {
      void reply.header('connection', 'close');
      done(new WardenError('WARDEN_SHUTTING_DOWN', 'this server is shutting down; retry, and a load balancer will send you to another replica'));
      return;
    }
    done();
  });

  // Plain JSON.parse: Fastify's default parser also scans every body for `__proto__`/`constructor` keys,
  // which guards code that merges request objects into others. Warden only reads fields of request bodies
  // (never Object.assign/spread them into shared objects), so the scan buys nothing on the hot path.
  // `curl -d` sends form encoding by default; such bodies are treated as the JSON they almost always are.
  const parseJson = (req: FastifyRequest, body: string | Buffer, done: (err: Error | null, value?: unknown) => void) => {
    // Kept by reference (no copy) for a refused request's log excerpt; it lives as long as the request.
    if (typeof body === 'string') req.bodyText = body;
    if (body === '' || body.length === 0) {
      done(new WardenError('WARDEN_BAD_REQUEST', 'request body is empty; send a JSON object'));
      return;
    }
    try {
      done(null, JSON.parse(body as string));
    } catch (e) {
      done(new WardenError('WARDEN_BAD_REQUEST', `request body is not valid JSON: ${(e as Error).message}`), undefined);
    }
  };
  app.removeContentTypeParser('application/json');
  // No route takes plain text: without the parser such bodies get the same 415 on every route (they used to reach
  // the non-inference routes as a string and fail there as a 400 about missing fields).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parseJson);
  const uploads = installBodyHandling(app, {
    uploadDir: path.join(path.resolve(config.storage.dataDir), 'tmp', 'uploads'),
    maxUploads: config.server.maxUploads,
    health: deps.health,
  });

  // Declared up front so every request keeps one object shape.
  app.decorateRequest('bodyText', undefined);
  // Declared up front so traced requests keep one object shape; untraced servers skip even this.
  if (deps.tracing) app.decorateRequest('trace', undefined);
  const access = deps.access;
  app.setErrorHandler(
    errorHandler(bodyLimit, access ? (req) => access.observe(req.apiKey ? `key:${req.apiKey.id}` : `address:${req.ip}`, req.ip, true) : undefined),
  );
  app.setNotFoundHandler((req, reply) => {
    if (bodyPending(req)) void reply.header('connection', 'close');
    const e = notFound(req.method, req.url);
    void reply.status(404).send({ error: e.message, code: e.code });
  });

  // Before any route is made: the hooks attach to each audited route as it is defined.
  registerAuditHooks(app, deps.audit);
  const guard = makeGuard(deps.keys, config.auth.required, uploads, deps.rateLimits, deps.cost, deps.quotas);
  // For route groups whose `:name` is always a model (deployment): scoped keys reach the ones they name. Other groups
  // keep the plain guard, which refuses scoped keys.
  const modelGuard: Guard = (role, opts = {}) => guard(role, { scope: modelOfRequest, ...opts });
  registerOipRoutes(app, {
    table: deps.table,
    inference: deps.inference,
    guard: modelGuard,
    serverVersion: deps.serverVersion,
    health: deps.health,
    draining: () => draining,
    maxInflight: config.server.maxInflight,
    ...(deps.tracing ? { tracing: deps.tracing } : {}),
    ...(access ? { access } : {}),
  });
  registerModelRoutes(app, { registry: deps.registry, table: deps.table, guard: modelGuard, uploadLimitBytes: config.server.uploadLimitBytes, deployments: deps.deployments });
  registerModelCardRoutes(app, {
    guard: modelGuard,
    sources: {
      registry: deps.registry,
      metadata: deps.stores.metadata,
      ...(deps.monitoring ? { events: deps.stores.events } : {}),
      ...(deps.alerting ? { alerts: () => deps.alerting!.alerts() } : {}),
    },
  });
  registerPredictionRoutes(app, { events: deps.stores.events, guard, ...(deps.log ? { log: deps.log } : {}) });
  registerKeyRoutes(app, { metadata: deps.stores.metadata, keys: deps.keys, guard, ...(deps.rateLimits ? { rateLimits: deps.rateLimits } : {}), ...(deps.quotas ? { quotas: deps.quotas } : {}) });
  registerMonitoringRoutes(app, { guard: modelGuard, referenceLimitBytes: config.server.referenceLimitBytes, ...(deps.monitoring ? { monitoring: deps.monitoring } : {}), ...(deps.log ? { log: deps.log } : {}) });
  registerLabelRoutes(app, { events: deps.stores.events, registry: deps.registry, guard });
  registerDatasetRoutes(app, { events: deps.stores.events, metadata: deps.stores.metadata, registry: deps.registry, features: deps.features, guard });
  registerExplainRoutes(app, { explain: deps.explain, registry: deps.registry, guard: modelGuard });
  registerFeatureRoutes(app, { features: deps.features, guard, uploadLimitBytes: config.server.uploadLimitBytes });
  registerOnlineFeatureRoutes(app, { online: deps.online, guard: modelGuard });
  registerFeatureSkewRoutes(app, { skew: deps.online.skew, guard });
  registerAuditRoutes(app, { audit: deps.audit, guard });
  registerPrivacyRoutes(app, { privacy: deps.privacy, registry: deps.registry, guard });
  if (deps.retraining) registerRetrainingRoutes(app, { retraining: deps.retraining, guard: modelGuard });
  if (deps.review) registerReviewRoutes(app, { review: deps.review, guard });
  if (deps.gamedays) registerGameDayRoutes(app, { gamedays: deps.gamedays, guard });
  registerAlertRoutes(app, { guard, ...(deps.alerting ? { alerting: deps.alerting } : {}) });
  registerSloRoutes(app, { guard, ...(deps.slo ? { slo: deps.slo } : {}) });
  registerDeploymentRoutes(app, { deployments: deps.deployments, rollouts: deps.rollouts, events: deps.stores.events, guard: modelGuard, audit: deps.audit });
  registerTrafficRoutes(app, {
    events: deps.stores.events,
    registry: deps.registry,
    guard: modelGuard,
    costPerCpuHour: config.slo.costPerCpuHour,
    ...(deps.traffic ? { traffic: deps.traffic } : {}),
  });

  registerCostRoutes(app, { metadata: deps.stores.metadata, registry: deps.registry, guard, modelGuard, ...(deps.cost ? { cost: deps.cost } : {}) });

  registerSessionRoutes(app, { guard, authRequired: config.auth.required });
  registerDashboard(app);

  app.get('/metrics', async (_req, reply) => {
    deps.metrics.predictionLogQueueDepth.set(deps.log?.depth() ?? 0);
    const text = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(text);
  });
  return app;
}
