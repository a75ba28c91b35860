/**
 * The composition root: opens the stores, builds registry, serving table, telemetry and the HTTP
 * server from one validated config, and owns the order of start-up and graceful shutdown.
 */
import { AccessMonitor, AuditLog, Privacy } from './security/index.ts';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { AlertingService } from './alerting/index.ts';
import type { WardenConfig } from './config.ts';
import { WardenError } from './errors.ts';
import { ExplainService } from './explain/index.ts';
import { FeatureService, OnlineFeatures } from './features/index.ts';
import { buildHttpServer } from './http/index.ts';
import { GameDayService, RetrainService, ReviewService } from './lifecycle/index.ts';
import { MonitoringService } from './monitoring/index.ts';
import { Registry } from './registry/index.ts';
import { DeploymentService, RolloutService } from './rollouts/index.ts';
import { KeyRing, QuotaCounter, RateLimiter } from './security/index.ts';
import { CostMeter, costModelOf } from './cost/index.ts';
import { SloService, StoreSloSource, SloFile } from './slo/index.ts';
import { LeaderLease, ReplicaSync } from './cluster/index.ts';
import { FaultInjector, InferenceService, ModelTable, Router, ShadowRunner, ShadowThread } from './serving/index.ts';
import { StoreHealth, openStores, watchWrites, type ChangeFeed, type ReferenceRecord, type SloDefinitionStore, type Stores } from './storage/index.ts';
import { PredictionLog, Tracing, TrafficAggregator, createMetrics, registerStoreHealthGauge, type WardenMetrics, PredictionRetention } from './telemetry/index.ts';

export interface Warden {
  config: WardenConfig;
  logger: Logger;
  stores: Stores;
  registry: Registry;
  table: ModelTable;
  metrics: WardenMetrics;
  log: PredictionLog | undefined;
  /** Per-deployment traffic series (minute and hour buckets); undefined when config.traffic.enabled is false. */
  traffic: TrafficAggregator | undefined;
  monitoring: MonitoringService | undefined;
  review: ReviewService;
  /** Alert rules, state, silences, suppressions and notifiers; undefined when config.alerting.enabled is false. */
  alerting: AlertingService | undefined;
  /** SLO definitions, recorded SLIs, error budgets and burn-rate alerts; undefined when config.slo.enabled is false. */
  slo: SloService | undefined;
  /** Game days: bounded fault injection into live traffic (docs/gameday.md). */
  gamedays: GameDayService;
  keys: KeyRing;
  /** The hash-chained audit log of state changes (docs/audit.md). */
  audit: AuditLog;
  rateLimits: RateLimiter;
  /** Request quotas per key and deployment (totals per UTC day or month over the fleet). */
  quotas: QuotaCounter;
  /** Cost per deployment, budgets and caps (docs/cost.md); undefined without a price (cost.pricePerCpuHour…). */
  cost: CostMeter | undefined;
  /** Deployments: stable versions, deploys, rollbacks and their history. */
  deployments: DeploymentService;
  /** Rollouts: shadow, canary and A/B beside the stable version, their analysis and the controller lease. */
  rollouts: RolloutService;
  /** Retraining policies, triggers and jobs; undefined when config.retraining.enabled is false. */
  retraining: RetrainService | undefined;
  router: Router;
  shadow: ShadowRunner;
  /** Replica sync of in-memory state from the shared store's change feed; undefined on the embedded store. */
  sync: ReplicaSync | undefined;
  /** This process among replicas: in stored profiles, lease holders and logs. */
  replicaId: string;
  /** What this replica knows of its stores' health (failed writes; warden_store_degraded). */
  health: StoreHealth;
  /** OpenTelemetry traces; undefined when config.tracing.enabled is false. */
  tracing: Tracing | undefined;
  /** Feature definitions (from the metadata store, seeded by features.file), pushes and historical retrieval. */
  features: FeatureService;
  /** The online store on this replica: its in-memory copy, the deployments' feature bindings, materialization. */
  online: OnlineFeatures;
  http: FastifyInstance;
  /** Loads models and starts background loops; does not listen. */
  start(): Promise<void>;
  /** Starts and listens; returns the base URL. */
  listen(): Promise<string>;
  /** Stops taking requests, drains the prediction log, closes stores. */
  close(): Promise<void>;
}

export const WARDEN_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
})();

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/** True for hosts only this machine can reach. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

export interface CreateWardenOptions {
  logger?: Logger;
  /**
   * A store set opened by the caller (tests, and `warden serve` with `openConfiguredStores`); default opens the
   * embedded stores under config.storage.dataDir. The caller closes what it passes unless `ownStores` is set.
   */
  stores?: Stores;
  /** close() also closes `stores`. */
  ownStores?: boolean;
}

/** A store shared by replicas (PostgreSQL) also carries the change feed and the SLO definitions. */
function sharedMetadata(stores: Stores): (ChangeFeed & SloDefinitionStore) | undefined {
  const m = stores.metadata as Partial<ChangeFeed & SloDefinitionStore>;
  return stores.kind === 'postgres' && m.listChanges && m.listSloDefinitions ? (m as ChangeFeed & SloDefinitionStore) : undefined;
}

/** Wires a Warden instance from config. Refuses open auth on a non-loopback host. */
export function createWarden(config: WardenConfig, opts: CreateWardenOptions = {}): Warden {
  if (!config.auth.required && !isLoopback(config.server.host)) {
    throw new WardenError(
      'WARDEN_CONFIG_INVALID',
      `auth.required is false but server.host is ${config.server.host}: open mode is only allowed on loopback; create a key with 'warden keys create' and set auth.required: true`,
    );
  }
  const logger = opts.logger ?? pino({ level: config.logLevel, base: { service: 'warden' } });
  if (!opts.stores && config.storage.url) {
    throw new WardenError('WARDEN_CONFIG_INVALID', 'storage.url is set: open the stores with openConfiguredStores(config.storage) and pass them to createWarden');
  }
  const opened = opts.stores ?? openStores(path.resolve(config.storage.dataDir), { writerNice: config.predictionLog.writerNice });
  const shared = sharedMetadata(opened);
  // This process among the replicas: in stored profiles, lease holders and logs.
  const replicaId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const health = new StoreHealth();
  // Every write any part of Warden makes tells the health of its store (warden_store_degraded, /v2/health/ready).
  const stores: Stores = {
    ...opened,
    metadata: watchWrites(opened.metadata, 'metadata', health),
    events: watchWrites(opened.events, 'events', health),
    artifacts: watchWrites(opened.artifacts, 'artifacts', health),
  };
  const metrics = createMetrics();
  registerStoreHealthGauge(metrics.registry, health);
  // Control loops that must act once among replicas take a lease; one process needs none.
  const leaseFor = (name: string) =>
    shared ? new LeaderLease({ metadata: stores.metadata, name, holder: replicaId, ttlMs: config.cluster.leaseMs, logger }) : undefined;
  const alertingLease = leaseFor('alerting');
  const labelLease = leaseFor('monitoring-labels');
  const tracing = config.tracing.enabled
    ? new Tracing({
        config: config.tracing,
        serviceVersion: WARDEN_VERSION,
        instanceId: `${hostname()}:${process.pid}`,
        logger,
        promRegistry: metrics.registry,
      })
    : undefined;
  const registry = new Registry({ metadata: stores.metadata, artifacts: stores.artifacts });
  const table = new ModelTable({
    registry,
    metadata: stores.metadata,
    intraOpThreads: config.serving.intraOpThreads,
    maxLoaded: 64,
    maxBatchRows: config.serving.dynamicBatching ? config.serving.maxBatchRows : 0,
    logger,
    onLoad: (model, version, seconds) => {
      metrics.modelLoadDuration.observe({ model, version: String(version) }, seconds);
      // Before it serves: Prometheus' rate() skips a series' first sample, so exported SLO rules need the 0.
      metrics.zeroVersionSeries(model, String(version));
    },
  });
  const log = config.predictionLog.enabled
    ? new PredictionLog({
        store: stores.events,
        metrics,
        logger,
        capacity: config.predictionLog.queueCapacity,
        flushIntervalMs: config.predictionLog.flushIntervalMs,
        batchSize: config.predictionLog.batchSize,
        health,
      })
    : undefined;
  const review = new ReviewService({
    metadata: stores.metadata,
    events: stores.events,
    registry,
    promRegistry: metrics.registry,
    logger,
    signatureOf: (model, version) => table.peek(model, version)?.record.signature,
  });
  if (log) log.onBatch((batch) => review.onEvents(batch));
  const traffic = config.traffic.enabled
    ? new TrafficAggregator({
        events: stores.events,
        logger,
        flushIntervalMs: config.traffic.flushIntervalMs,
        minuteRetentionDays: config.traffic.minuteRetentionDays,
        hourRetentionDays: config.traffic.hourRetentionDays,
      })
    : undefined;
  // Cost is priced from the traffic table; the SLO cost SLI's price serves when cost.pricePerCpuHour is not set.
  const costSettings = { ...config.cost, pricePerCpuHour: config.cost.pricePerCpuHour ?? config.slo.costPerCpuHour };
  const costWanted = config.cost.pricePerCpuHour !== undefined || config.cost.pricePerReplicaHour !== undefined || Object.keys(config.cost.deployments).length > 0;
  if (costWanted && !costModelOf(costSettings)) {
    throw new WardenError('WARDEN_BAD_REQUEST', `cost budgets need a price: set cost.${config.cost.model === 'replica' ? 'pricePerReplicaHour' : 'pricePerCpuHour'} (docs/cost.md)`);
  }
  if (costWanted && !traffic) throw new WardenError('WARDEN_BAD_REQUEST', 'cost is priced from the traffic counts: cost.* needs traffic.enabled (docs/cost.md)');
  const cost =
    traffic && costModelOf(costSettings)
      ? new CostMeter({
          events: stores.events,
          metadata: stores.metadata,
          settings: costSettings,
          flushTraffic: () => traffic.flush(),
          versionExists: (name, v) => table.versionsOf(name).includes(v),
          promRegistry: metrics.registry,
          logger,
        })
      : undefined;
  const faults = new FaultInjector();
  const router = new Router();
  const shadowThread = config.serving.shadowThread
    ? new ShadowThread({ readArtifact: (record) => registry.readArtifact(record), logger })
    : undefined;
  const shadow = new ShadowRunner({
    table,
    ...(shadowThread ? { executor: shadowThread } : {}),
    promRegistry: metrics.registry,
    capacity: config.serving.shadowQueueCapacity,
    concurrency: config.serving.shadowConcurrency,
    maxBatchRows: config.serving.maxBatchRows,
    ...(log ? { log } : {}),
    ...(traffic ? { traffic } : {}),
  });
  // KernelSHAP runs the version's loaded session; on inference, the session of the version that answered.
  const explain = new ExplainService({
    registry,
    metadata: stores.metadata,
    metrics,
    runnerOf: async (v) => (table.peek(v.model, v.version) ?? (await table.load(v.model, v.version))).runtime,
    // Called at request time, once monitoring (declared below) exists.
    reference: (model: string, version: number): ReferenceRecord | undefined => monitoring?.reference(model, version)?.record,
  });
  const features = new FeatureService({
    metadata: stores.metadata,
    store: stores.features,
    logger,
    tmpDir: path.join(path.resolve(config.storage.dataDir), 'tmp', 'features'),
    ...(config.features.file ? { file: config.features.file } : {}),
    ...(config.features.sourceDirs ? { sourceDirs: config.features.sourceDirs.map((d) => path.resolve(d)) } : {}),
  });
  // The online store's copy, the deployments' bindings (which fill requests before validation) and materialization.
  const online = new OnlineFeatures({
    store: stores.features,
    metadata: stores.metadata,
    repo: () => features.repo(),
    logger,
    promRegistry: metrics.registry,
    holder: replicaId,
    config: config.features,
    // Alone on the embedded store, this replica's materialization is the only writer of the online store.
    replicas: shared !== undefined,
  });
  // Deleting a model deletes its binding in the store (another replica hears it from the change feed).
  registry.onChange((c) => {
    if (c.kind === 'model-deleted' && online.enrichment.reads(c.model)) {
      online.enrichment.reload().catch((err: unknown) => logger.warn({ err }, 'features: reading the bindings after a model was deleted failed'));
    }
  });
  features.onChange(() => {
    online.definitionsChanged().catch((err: unknown) => logger.warn({ err }, 'features: following the new definitions failed; retrying at the next change'));
  });
  // Sensitive inputs named in config are redacted or hashed before events leave the request (docs/security.md).
  const privacy = new Privacy(config.privacy);
  const inference = new InferenceService({
    ...(Object.keys(config.privacy.deployments).length ? { privacy } : {}),
    table,
    metrics,
    explain,
    features: online.enrichment,
    maxBatchRows: config.serving.maxBatchRows,
    review,
    faults,
    router,
    shadow,
    ...(cost ? { cost } : {}),
    ...(log ? { log } : {}),
    ...(traffic ? { traffic } : {}),
  });
  const gamedays = new GameDayService({
    faults,
    logger,
    signatureOf: async (model) => {
      const version = table.resolveNumber(model, undefined);
      return (table.peek(model, version) ?? (await table.load(model, version))).record.signature;
    },
  });
  const keys = new KeyRing(stores.metadata, { refreshMs: config.auth.keyRefreshMs, lastUsedFlushMs: config.auth.lastUsedFlushMs });
  const rateLimits = new RateLimiter({ store: stores.metadata, config: config.rateLimits, promRegistry: metrics.registry, refreshMs: config.auth.keyRefreshMs });
  const quotas = new QuotaCounter({ store: stores.metadata, config: config.quotas, promRegistry: metrics.registry, logger });
  const monitoring: MonitoringService | undefined = config.monitoring.enabled
    ? new MonitoringService({
        metadata: stores.metadata,
        events: stores.events,
        registry,
        table,
        promRegistry: metrics.registry,
        logger,
        replica: replicaId,
        ...(labelLease ? { leader: () => labelLease.leading() } : {}),
        defaults: { windowMs: config.monitoring.windowMs, tickMs: config.monitoring.tickMs, idleCloseMs: config.monitoring.idleCloseMs },
        // Global importance per window through the explain service (monitoring does not import src/explain: a cycle).
        ...(config.monitoring.importanceRows > 0
          ? {
              importance: {
                explain: (v, rows, o) => explain.explain(v, rows, { protocol: 'monitoring', ...o }),
                rows: config.monitoring.importanceRows,
                budget: config.monitoring.importanceBudget,
              },
            }
          : {}),
      })
    : undefined;
  if (monitoring && log) log.onBatch((batch) => monitoring.onEvents(batch));
  // Set once listening, so notifications link back to this server when alerting.externalUrl is not set.
  let listenUrl: string | undefined;
  const alerting = config.alerting.enabled
    ? new AlertingService({
        metadata: stores.metadata,
        promRegistry: metrics.registry,
        logger,
        config: config.alerting,
        externalUrl: () => listenUrl,
        ...(alertingLease ? { leader: () => alertingLease.leading() } : {}),
      })
    : undefined;
  const sloFile = path.resolve(config.slo.file ?? path.join(config.storage.dataDir, 'slo.yaml'));
  // On a shared store the definitions live in it, so every replica serves and records the same SLOs.
  const sloSource = shared ? new StoreSloSource(shared) : undefined;
  const slo = config.slo.enabled
    ? new SloService({
        events: stores.events,
        logger,
        file: sloFile,
        ...(sloSource ? { source: sloSource } : {}),
        timeScale: config.slo.timeScale,
        retentionDays: config.slo.retentionDays,
        tickMs: config.slo.tickMs,
        modelNames: async () => (await registry.listModels()).map((m) => m.name),
        // feature_freshness SLIs: the staleness of a view this replica holds (Infinity with no rows), else nothing.
        featureStaleness: (view: string) => (online.cache.index(view) ? (online.cache.stalenessMs(view) ?? Infinity) : undefined),
        ...(config.slo.costPerCpuHour !== undefined ? { costPerCpuHour: config.slo.costPerCpuHour } : {}),
        ...(monitoring
          ? {
              // Window SLIs read every version's evaluated windows of the deployment.
              windows: async (deployment: string, q: { since: number; until: number }) => {
                const versions = await registry.listVersions(deployment).catch((e: unknown) => {
                  if (e instanceof WardenError && e.code === 'WARDEN_MODEL_NOT_FOUND') return [];
                  throw e;
                });
                const out = [];
                for (const v of versions) out.push(...(await monitoring.results(deployment, v.version, q)));
                return out;
              },
            }
          : {}),
      })
    : undefined;
  if (slo && log) log.onBatch((batch) => slo.onEvents(batch));
  if (slo && alerting) alerting.addSource(slo.alertSource());
  const deployments = new DeploymentService({ registry, table, metadata: stores.metadata, logger, ...(monitoring ? { monitoring } : {}) });
  // The audit log (docs/audit.md): state-changing calls through the HTTP hooks, control-loop actions through loop().
  const audit = new AuditLog({ metadata: stores.metadata, logger, promRegistry: metrics.registry });
  const rollouts = new RolloutService({
    audit,
    metadata: stores.metadata,
    events: stores.events,
    registry,
    table,
    router,
    shadow,
    logger,
    promRegistry: metrics.registry,
    holder: replicaId,
    syncMs: config.rollouts.syncMs,
    leaseMs: config.rollouts.leaseMs,
    ...(alerting ? { alerting } : {}),
    ...(monitoring ? { windows: (model: string, version: number, since: number, until: number) => monitoring.results(model, version, { since, until, limit: 1000 }) } : {}),
  });
  deployments.useRollouts(rollouts);
  const retraining = config.retraining.enabled
    ? new RetrainService({
        audit,
        metadata: stores.metadata,
        events: stores.events,
        registry,
        deploy: (name, req) => deployments.deploy(name, req),
        logger,
        promRegistry: metrics.registry,
        holder: replicaId,
        intervalMs: config.retraining.intervalMs,
        leaseMs: config.retraining.leaseMs,
        ...(config.retraining.jobsDir ? { jobsDir: path.resolve(config.retraining.jobsDir) } : {}),
      })
    : undefined;
  if (retraining && alerting) alerting.addSource(retraining.alertSource());
  // What this replica holds in memory follows the shared store's change feed.
  const sync = shared
    ? new ReplicaSync({
        feed: shared,
        logger,
        promRegistry: metrics.registry,
        intervalMs: config.cluster.syncIntervalMs,
        resyncMs: config.cluster.resyncMs,
        handlers: {
          model: async (names) => {
            const all = names ?? new Set([...table.modelNames(), ...(await stores.metadata.listModels()).map((m) => m.name)]);
            for (const name of all) await table.refresh(name);
          },
          keys: () => keys.reload(),
          'rate-limits': () => rateLimits.reload(),
          quotas: () => quotas.reload(),
          ...(cost ? { 'cost-budgets': async () => void (await cost.refresh()) } : {}),
          'review-policy': () => review.reload(),
          ...(monitoring ? { reference: async () => void (await monitoring.reloadReferences()) } : {}),
          rollout: () => rollouts.sync(),
          features: () => features.reload(),
          'deployment-features': () => online.enrichment.reload(),
          ...(slo ? { slo: () => slo.reload() } : {}),
          // Rules, silences and suppressions: without this a replica picks them up at its next evaluation.
          ...(alerting ? { alerting: () => alerting.reload() } : {}),
        },
      })
    : undefined;
  if (alerting) alerting.addSource(rollouts.alertSource());
  const { enabled: accessEnabled, ...accessConfig } = config.accessAlerts;
  const access = accessEnabled ? new AccessMonitor(accessConfig) : undefined;
  if (access && alerting) alerting.addSource(access.alertSource());
  if (cost && alerting) alerting.addSource(cost.alertSource());
  const { retentionDays, retentionDaysByModel } = config.predictionLog;
  const retention =
    retentionDays !== undefined || Object.keys(retentionDaysByModel ?? {}).length > 0
      ? new PredictionRetention({
          events: stores.events,
          ...(retentionDays !== undefined ? { retentionDays } : {}),
          ...(retentionDaysByModel ? { retentionDaysByModel } : {}),
          logger,
          promRegistry: metrics.registry,
        })
      : undefined;
  const http = buildHttpServer({
    deployments,
    rollouts,
    ...(retraining ? { retraining } : {}),
    config,
    logger,
    stores,
    registry,
    table,
    inference,
    explain,
    metrics,
    keys,
    rateLimits,
    quotas,
    ...(cost ? { cost } : {}),
    features,
    online,
    serverVersion: WARDEN_VERSION,
    health,
    audit,
    privacy,
    ...(access ? { access } : {}),
    ...(log ? { log } : {}),
    ...(traffic ? { traffic } : {}),
    ...(monitoring ? { monitoring } : {}),
    review,
    gamedays,
    ...(tracing ? { tracing } : {}),
    ...(alerting ? { alerting } : {}),
    ...(slo ? { slo } : {}),
  });

  let started = false;
  let closed = false;
  const warden: Warden = {
    audit,
    config,
    logger,
    stores,
    registry,
    table,
    metrics,
    log,
    traffic,
    monitoring,
    review,
    alerting,
    slo,
    gamedays,
    keys,
    rateLimits,
    quotas,
    cost,
    health,
    deployments,
    rollouts,
    retraining,
    router,
    shadow,
    tracing,
    features,
    online,
    http,
    sync,
    replicaId,
    async start() {
      if (started) return;
      started = true;
      if (sloSource && slo) await sloSource.importFile(new SloFile(sloFile), logger);
      await keys.start();
      await audit.start();
      await rateLimits.start();
      await quotas.start();
      await features.start();
      await online.start();
      await table.start();
      await monitoring?.start();
      await review.start();
      await slo?.start();
      await alerting?.start();
      await rollouts.start();
      retraining?.start();
      log?.start();
      traffic?.start();
      await cost?.start();
      await sync?.start();
      retention?.start();
    },
    async listen() {
      await warden.start();
      await http.listen({ host: config.server.host, port: config.server.port });
      const addr = http.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
      const host = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
      listenUrl = `http://${host}:${port}`;
      return listenUrl;
    },
    async close() {
      if (closed) return;
      closed = true;
      gamedays.close();
      await http.close();
      features.close();
      // Runs stop after their current batch, their cursor saved: the next run continues there.
      await online.stop();
      await sync?.stop();
      await retention?.stop();
      await retraining?.stop();
      await rollouts.stop();
      await shadow.drained();
      await shadowThread?.close();
      // Every request and shadow copy has been counted: write the last counts before the store closes.
      await traffic?.close();
      // Every request has ended its spans once http is closed: export what is queued.
      await tracing?.shutdown();
      await log?.drain();
      // After the drain: the last batches' counts are written.
      await slo?.stop();
      await alerting?.stop();
      await review.stop();
      await monitoring?.stop();
      // After the loops that ask for them have stopped: released earlier, a last tick would take them again.
      await alertingLease?.release();
      await labelLease?.release();
      // After the HTTP server has closed: the last requests' uses are in the batch.
      await keys.stop();
      rateLimits.stop();
      // After the HTTP server has closed: every admitted request is in the last counts.
      await quotas.stop();
      cost?.stop();
      // Last of the writers: every request and loop action has ended, so their entries are in (or queued here).
      await audit.stop();
      await table.close();
      if (!opts.stores || opts.ownStores) await opened.close();
    },
  };
  return warden;
}
