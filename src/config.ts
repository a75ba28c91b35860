/**
 * One typed configuration, read once at start from `warden.yaml` (optional) and `WARDEN_*`
 * environment variables, validated, frozen and passed down. A bad key fails fast naming its path:
 * a server that silently falls back to defaults hides mistakes until production.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { WardenError } from './errors.ts';

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    /** Largest body of any route that names no limit of its own (JSON, labels, rules…). */
    bodyLimitBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Largest model file `POST /api/v1/models/{name}/versions` takes; streamed to disk, never held whole while it arrives. */
    uploadLimitBytes: z.number().int().min(1024).max(16 * 1024 * 1024 * 1024).default(1024 * 1024 * 1024),
    /** Largest reference upload (CSV, Parquet, JSON rows): parsed in memory, so bounded lower than model files. */
    referenceLimitBytes: z.number().int().min(1024).max(4 * 1024 * 1024 * 1024).default(256 * 1024 * 1024),
    /** Model and reference uploads in flight at once; more → 429 before any byte of the body is read. */
    maxUploads: z.number().int().min(1).max(1024).default(4),
    /** Open TCP connections; beyond it new connections are closed at once (Node's server.maxConnections). */
    maxConnections: z.number().int().min(1).max(1_000_000).default(4096),
    maxInflight: z.number().int().min(1).default(1024),
    /** Time a client has to send a whole request, headers and body; a slower one is cut (408) within about a second of it. */
    requestTimeoutMs: z.number().int().min(100).default(30_000),
    /**
     * After SIGTERM, how long the server keeps serving while `/v2/health/ready` answers 503, so load balancers stop
     * sending before it closes (docs/packaging.md). 0 closes at once.
     */
    drainDelayMs: z.number().int().min(0).max(600_000).default(5000),
  })
  .strict()
  .default({});

const storageSchema = z
  .object({
    dataDir: z.string().min(1).default('./.warden'),
    /**
     * A PostgreSQL URL (postgres://user:password@host:5432/db?schema=warden) for the metadata, event and artifact
     * stores, shared by several replicas. Unset: the embedded SQLite store under dataDir.
     */
    url: z.string().min(1).optional(),
    /** Connections each PostgreSQL store opens at most, per replica (three stores: metadata, events, artifacts). */
    maxConnections: z.number().int().min(1).max(1000).default(10),
  })
  .strict()
  .default({});

const predictionLogSchema = z
  .object({
    enabled: z.boolean().default(true),
    queueCapacity: z.number().int().min(1).max(10_000_000).default(100_000),
    flushIntervalMs: z.number().int().min(10).max(60_000).default(200),
    batchSize: z.number().int().min(1).max(100_000).default(2_000),
    /**
     * Linux nice value of the thread that writes the log (0 = same as serving, 19 = lowest): background
     * writing waits for a free core instead of taking one from the serving thread. Ignored off Linux.
     */
    writerNice: z.number().int().min(0).max(19).default(10),
    /** Whole UTC days of predictions kept; older days are removed every hour. Unset: kept until deleted by hand. */
    retentionDays: z.number().int().min(1).max(36_500).optional(),
    /** Per deployment (model name): whole UTC days kept, overriding retentionDays; 0 keeps that model's predictions. */
    retentionDaysByModel: z.record(z.string().min(1).max(256), z.number().int().min(0).max(36_500)).optional(),
  })
  .strict()
  .default({});

const authSchema = z
  .object({
    /** When false, every route is open. Only allowed on a loopback host (the demo runs so). */
    required: z.boolean().default(true),
    /**
     * How often each replica re-reads the keys: the bound on how long another replica accepts a key revoked (or
     * rotated with no overlap) elsewhere when no change feed tells it sooner (docs/security.md#revocation).
     */
    keyRefreshMs: z.number().int().min(100).max(600_000).default(10_000),
    /** Last-use times are kept in memory and written in one batch this often (never a store write per request). */
    lastUsedFlushMs: z.number().int().min(100).max(3_600_000).default(30_000),
  })
  .strict()
  .default({});

const limitSchema = z
  .object({
    /** Requests per second refilled. */
    rate: z.number().positive().max(1_000_000),
    /** Requests allowed at once after an idle spell; default: the rate (at least 1). */
    burst: z.number().min(1).max(1_000_000).optional(),
  })
  .strict();

/** Token-bucket rate limits, per key and per deployment, enforced in each replica's memory (docs/security.md#rate-limits). */
const rateLimitsSchema = z
  .object({
    /** Replicas behind one load balancer: each limit is divided by it on every replica, so the fleet allows about the limit set. */
    perReplica: z.number().int().min(1).max(1000).default(1),
    /** Buckets a replica holds per scope (keys, deployments) at most; idle ones are dropped first. */
    maxBuckets: z.number().int().min(16).max(10_000_000).default(100_000),
    /** The limit of every key without one of its own. Unset: keys are not limited. */
    key: limitSchema.optional(),
    /** The limit of every deployment's inference without one of its own. Unset: deployments are not limited. */
    deployment: limitSchema.optional(),
    /** Per key id; a limit set by the API (PUT /api/v1/rate-limits/key/{id}) wins over these. */
    keys: z.record(z.string().min(1).max(64), limitSchema).default({}),
    /** Per deployment (model name); a limit set by the API wins over these. */
    deployments: z.record(z.string().min(1).max(256), limitSchema).default({}),
  })
  .strict()
  .default({});

const quotaSchema = z
  .object({
    /** Inference requests allowed per UTC day. */
    perDay: z.number().int().min(1).max(1e12).optional(),
    /** Inference requests allowed per UTC calendar month. */
    perMonth: z.number().int().min(1).max(1e12).optional(),
  })
  .strict()
  .refine((q) => q.perDay !== undefined || q.perMonth !== undefined, { message: 'a quota needs perDay, perMonth or both' });

/** Request quotas: totals per UTC day or month over every replica (docs/security.md#quotas). */
const quotasSchema = z
  .object({
    /** How often each replica adds its counts to the store and reads the fleet's totals: the bound on overshoot. */
    flushMs: z.number().int().min(100).max(600_000).default(5000),
    /** Keys and deployments tracked per replica at most; past it a new name is admitted uncounted. */
    maxSubjects: z.number().int().min(16).max(10_000_000).default(100_000),
    /** The quota of every key without one of its own. Unset: keys have none. */
    key: quotaSchema.optional(),
    /** The quota of every deployment without one of its own. Unset: deployments have none. */
    deployment: quotaSchema.optional(),
    /** Per key id; a quota set by the API (PUT /api/v1/quotas/key/{id}) wins over these. */
    keys: z.record(z.string().min(1).max(64), quotaSchema).default({}),
    /** Per deployment (model name); a quota set by the API wins over these. */
    deployments: z.record(z.string().min(1).max(256), quotaSchema).default({}),
  })
  .strict()
  .default({});

const servingSchema = z
  .object({
    maxBatchRows: z.number().int().min(1).max(1_000_000).default(10_000),
    intraOpThreads: z.number().int().min(0).max(256).default(1),
    /** Stack concurrent requests for one version into one model run (no added delay). */
    dynamicBatching: z.boolean().default(true),
    /** Mirrored requests that may wait for a shadow candidate; more are dropped and counted, never slowing callers. */
    shadowQueueCapacity: z.number().int().min(1).max(1_000_000).default(1000),
    /** Shadow candidate runs in flight at once. */
    shadowConcurrency: z.number().int().min(1).max(64).default(1),
    /** Run shadow candidates on a worker thread of their own (at a lower priority), off the serving thread. */
    shadowThread: z.boolean().default(true),
  })
  .strict()
  .default({});

const rolloutsSchema = z
  .object({
    /** How often every replica re-reads rollout state (and the lease holder runs the analyses that are due). */
    syncMs: z.number().int().min(50).max(60_000).default(1000),
    /** Lifetime of the controller lease; another replica takes over this long after the holder stops renewing. */
    leaseMs: z.number().int().min(500).max(600_000).default(10_000),
  })
  .strict()
  .default({});

/** Retraining (docs/lifecycle.md#retraining): how often the lease holder evaluates the deployments' triggers. */
const retrainingSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** How often the lease holder evaluates every policy's triggers and starts the next queued job. */
    intervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
    /** Lifetime of the retraining controller lease. */
    leaseMs: z.number().int().min(500).max(3_600_000).default(30_000),
    /** Scratch folder for runs (datasets, the trained file); default a folder in the OS's temporary directory. */
    jobsDir: z.string().min(1).optional(),
  })
  .strict()
  .default({});

/** Several replicas on one PostgreSQL (storage.url): how each keeps up with the others. Unused on SQLite. */
const clusterSchema = z
  .object({
    /** How often a replica reads the store's change feed: the bound on how long a change made on another replica takes to apply here. */
    syncIntervalMs: z.number().int().min(50).max(60_000).default(1000),
    /** Every cached thing is also re-read this often, whatever the feed says. */
    resyncMs: z.number().int().min(1000).max(86_400_000).default(300_000),
    /** Lifetime of the alerting and label re-evaluation leases; another replica takes over this long after the holder stops renewing. */
    leaseMs: z.number().int().min(500).max(600_000).default(15_000),
  })
  .strict()
  .default({});

const monitoringSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Default tumbling window of event time; a reference may set its own. */
    windowMs: z.number().int().min(1000).max(31 * 24 * 3600 * 1000).default(3_600_000),
    tickMs: z.number().int().min(50).max(600_000).default(1000),
    idleCloseMs: z.number().int().min(0).max(3_600_000).default(5000),
    /** Sample rows of each window explained for its global feature importance (mean |SHAP| per feature); 0 turns it off. */
    importanceRows: z.number().int().min(0).max(100).default(50),
    /** KernelSHAP coalitions per row for a window's importance (models without a tree ensemble): bounds what a window costs. */
    importanceBudget: z.number().int().min(32).max(2048).default(256),
  })
  .strict()
  .default({});

/** An HTTP header name (RFC 9110 token), for `tracing.headers`. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const tracingSchema = z
  .object({
    /** Off by default: when off the request path makes no spans and calls no tracer. */
    enabled: z.boolean().default(false),
    /** OTLP/HTTP (JSON) traces endpoint, e.g. an OpenTelemetry Collector's `/v1/traces`. */
    otlpEndpoint: z
      .string()
      .url()
      .regex(/^https?:\/\//i, 'must be an http:// or https:// URL')
      .default('http://127.0.0.1:4318/v1/traces'),
    serviceName: z.string().min(1).max(256).default('warden'),
    /** Share of new traces recorded; a request that carries a traceparent follows its caller's decision. */
    sampleRatio: z.number().min(0).max(1).default(1),
    /** Sent with every export (e.g. an authorization header for a hosted backend). */
    headers: z.record(z.string().regex(HEADER_NAME, 'must be an HTTP header name'), z.string()).default({}),
    /** Spans held in memory awaiting export; beyond it spans are dropped (OpenTelemetry's BatchSpanProcessor). */
    maxQueueSize: z.number().int().min(1).max(1_000_000).default(2048),
    /** Longest wait before queued spans are exported. */
    scheduledDelayMs: z.number().int().min(1).max(60_000).default(5000),
    /** Longest one export may take before it is abandoned. */
    exportTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  })
  .strict()
  .default({});

const alertReceiverSchema = z
  .object({
    name: z.string().min(1).max(128),
    /** webhook: Alertmanager's webhook JSON (version 4); alertmanager: POST {url}/api/v2/alerts; slack: incoming webhook. */
    type: z.enum(['webhook', 'alertmanager', 'slack']),
    url: z.string().url().regex(/^https?:\/\//i, 'must be an http:// or https:// URL'),
    /** Only alerts of these severities; default both. */
    severities: z.array(z.enum(['page', 'ticket'])).min(1).optional(),
    sendResolved: z.boolean().default(true),
    timeoutMs: z.number().int().min(10).max(120_000).default(5000),
    retries: z.number().int().min(0).max(10).default(2),
    backoffMs: z.number().int().min(0).max(60_000).default(500),
    /** Alerts per message; 0 = all. */
    maxAlerts: z.number().int().min(0).max(10_000).default(0),
    headers: z.record(z.string()).optional(),
  })
  .strict();

const alertingSchema = z
  .object({
    enabled: z.boolean().default(true),
    evaluationIntervalMs: z.number().int().min(10).max(3_600_000).default(15_000),
    /** Labels alerts are grouped by for notification (Alertmanager group_by). */
    groupBy: z.array(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a label name')).default(['deployment']),
    groupWaitMs: z.number().int().min(0).max(3_600_000).default(10_000),
    groupIntervalMs: z.number().int().min(1).max(86_400_000).default(300_000),
    repeatIntervalMs: z.number().int().min(1).max(30 * 86_400_000).default(4 * 3_600_000),
    /** Warden's built-in rules on its own metrics (drift, quality, performance, review queue, log drops). */
    builtinRules: z.boolean().default(true),
    /** Rules in the file format of docs/alerting.md, validated at start. */
    rules: z.array(z.unknown()).default([]),
    /** A YAML or JSON file of rules (`rules: [...]` or a list), read at start. */
    rulesFile: z.string().min(1).optional(),
    receivers: z
      .array(alertReceiverSchema)
      .default([])
      .superRefine((rs, ctx) => {
        const seen = new Set<string>();
        rs.forEach((r, i) => {
          if (seen.has(r.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'name'], message: `receiver name ${r.name} is used twice` });
          seen.add(r.name);
        });
      }),
    /** Prefix for relative runbook paths (e.g. https://git.example.com/warden/blob/main/). */
    runbookBaseUrl: z.string().url().optional(),
    /** Warden's URL as receivers should link to it (externalURL, generatorURL); default the listen address. */
    externalUrl: z.string().url().optional(),
    historyRetentionMs: z.number().int().min(60_000).default(30 * 86_400_000),
  })
  .strict()
  .default({});

const sloSchema = z
  .object({
    /** Record SLIs, serve /api/v1/slos and raise SLO burn-rate alerts (docs/slo.md). */
    enabled: z.boolean().default(true),
    /** The SLO definitions file; default `slo.yaml` in storage.dataDir. The API writes it too. */
    file: z.string().min(1).optional(),
    /** Multiplies every SLO duration (periods, burn windows, buckets, retention): 0.001 runs 30 days in 43 minutes. Tests and game days only. */
    timeScale: z.number().min(0.0001).max(1).default(1),
    /** Recorded SLI buckets older than this are deleted; an SLO's period may not exceed it. */
    retentionDays: z.number().int().min(1).max(400).default(35),
    /** Price of one CPU-hour (any currency) for `cost` SLIs; cost SLOs are refused without it. */
    costPerCpuHour: z.number().positive().optional(),
    /** How often counts are written and monitoring windows read (at most one bucket: a minute, scaled). */
    tickMs: z.number().int().min(10).max(600_000).default(5000),
  })
  .strict()
  .default({});

const trafficSchema = z
  .object({
    /** Count requests per deployment per minute and hour for GET /api/v1/deployments/{name}/traffic (docs/monitoring.md). */
    enabled: z.boolean().default(true),
    /** How often the counts are written to the event store (and at shutdown). */
    flushIntervalMs: z.number().int().min(100).max(600_000).default(10_000),
    /** Minute buckets older than this are deleted. */
    minuteRetentionDays: z.number().int().min(1).max(400).default(14),
    /** Hour buckets older than this are deleted. */
    hourRetentionDays: z.number().int().min(1).max(3650).default(400),
  })
  .strict()
  .default({});

/** The online feature store on each replica (docs/features.md#online-store-and-enrichment). */
const featuresSchema = z
  .object({
    /**
     * The feature definitions file (YAML or JSON, docs/features.md#the-definitions-file): read and validated at start
     * (invalid → the server refuses to start) and written to the metadata store when it differs, so every replica
     * serves the same definitions. Unset: the definitions are what PUT /api/v1/features (warden features apply) stored.
     */
    file: z.string().min(1).optional(),
    /**
     * Folders the file sources of definitions sent through the API (PUT /api/v1/features, warden features apply) must
     * be in; a path elsewhere is refused (400). Unset: any file the server can read. features.file is not checked.
     */
    sourceDirs: z.array(z.string().min(1)).min(1).max(64).optional(),
    /** How often a replica reads the online rows written since its last read (by any replica): the bound on how stale its copy is. */
    syncMs: z.number().int().min(50).max(600_000).default(1000),
    /** Each read of the changes goes back this far before the newest write seen: writes stamped earlier but committed later (a long batch, another replica's clock) are still read. */
    syncOverlapMs: z.number().int().min(0).max(600_000).default(1000),
    /** Online rows a replica holds in memory over every view a deployment reads; past it new entities are refused (logged, counted), never evicted. */
    maxOnlineRows: z.number().int().min(1).max(100_000_000).default(1_000_000),
    /** Materialize every view this often (on one replica, by lease); 0: only when asked (API, CLI). */
    materializeEveryMs: z.number().int().min(0).max(30 * 86_400_000).default(0),
    /** Compare a sample of served feature values with the offline store this often (docs/features.md#skew; one replica, by lease); 0: off. */
    skewEveryMs: z.number().int().min(0).max(30 * 86_400_000).default(300_000),
    /** Served rows sampled per feature view between two skew checks at most (a uniform reservoir). */
    skewSampleRows: z.number().int().min(1).max(100_000).default(200),
  })
  .strict()
  .default({});

const featureName = z.string().min(1).max(256);
const privacySchema = z
  .object({
    /**
     * Key of the keyed hash (HMAC-SHA256) for `hash` rules, at least 16 characters; pass it by WARDEN_PRIVACY_HASH_KEY
     * rather than in a file. Changing it changes every hashed value from then on.
     */
    hashKey: z.string().min(16, 'privacy.hashKey must be at least 16 characters').max(1024).optional(),
    /** Per deployment: input features (or input tensor names) kept out of the prediction log, its exports, logs and traces. */
    deployments: z
      .record(
        z.string().min(1).max(256),
        z
          .object({
            /** Logged as missing (NaN; "[redacted]" in a refused request's JSON). */
            redact: z.array(featureName).max(1000).default([]),
            /** Logged as HMAC-SHA256(hashKey, value) cut to an integer below 2^24: equal values stay equal, nothing else is kept. */
            hash: z.array(featureName).max(1000).default([]),
          })
          .strict(),
      )
      .default({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    for (const [name, rule] of Object.entries(p.deployments)) {
      const both = rule.redact.filter((f) => rule.hash.includes(f));
      if (both.length) ctx.addIssue({ code: 'custom', path: ['deployments', name], message: `${both.join(', ')} is both redacted and hashed; choose one` });
      if (rule.hash.length && !p.hashKey) ctx.addIssue({ code: 'custom', path: ['deployments', name, 'hash'], message: 'hash rules need privacy.hashKey (WARDEN_PRIVACY_HASH_KEY), at least 16 characters' });
    }
  })
  .default({});

const accessAlertsSchema = z
  .object({
    /** Watch each API key's traffic for spikes, input sweeps, refused bursts and new addresses (docs/security.md#unusual-access). */
    enabled: z.boolean().default(true),
    /** A minute with this many times the key's mean per minute over the hour before is a spike… */
    spikeFactor: z.number().min(1.5).max(1000).default(5),
    /** …and at least this many requests. */
    spikeMinPerMinute: z.number().int().min(1).max(10_000_000).default(300),
    /** Distinct inputs in 5 minutes this many times the key's mean per 5 minutes over the hour before is a sweep… */
    sweepFactor: z.number().min(1.5).max(1000).default(5),
    /** …and at least this many (the count is estimated; up to a few thousand it is within a few per cent). */
    sweepMinDistinct: z.number().int().min(10).max(20_000).default(500),
    /** Requests refused (401, 403) in a minute for one key, or from one address without a known key. */
    refusedPerMinute: z.number().int().min(1).max(1_000_000).default(20),
    /** Addresses a key is used from within this long after start are learned, not alerted on. */
    learnMs: z.number().int().min(0).max(30 * 86_400_000).default(3_600_000),
    /** An alert stays active this long after its pattern was last seen. */
    holdMs: z.number().int().min(1000).max(86_400_000).default(600_000),
  })
  .strict()
  .default({});

const budgetAmount = (what: string) =>
  z
    .number({ message: `${what} must be a number (currency units)` })
    .positive(`${what} must be above 0 (leave it out for no budget)`)
    .max(1e12)
    .optional();

/** One deployment's budgets (docs/cost.md#budgets-and-caps). */
export const costBudgetSchema = z
  .object({
    /** Spend allowed per UTC day. */
    daily: budgetAmount('daily'),
    /** Spend allowed per UTC calendar month. */
    monthly: budgetAmount('monthly'),
    /** Past 100 %: only the alert (`none`), 429 WARDEN_BUDGET_EXCEEDED (`throttle`), or serve `capVersion` (`route`). */
    cap: z.enum(['none', 'throttle', 'route']).default('none'),
    /** The cheaper version a `route` cap serves. */
    capVersion: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.daily === undefined && b.monthly === undefined) ctx.addIssue({ code: 'custom', message: 'give "daily", "monthly" or both' });
    if (b.cap === 'route' && b.capVersion === undefined) ctx.addIssue({ code: 'custom', path: ['capVersion'], message: 'a route cap needs "capVersion": the cheaper version to serve' });
    if (b.cap !== 'route' && b.capVersion !== undefined) ctx.addIssue({ code: 'custom', path: ['capVersion'], message: '"capVersion" is for cap "route" only' });
  });

/** The cost model, budgets and cost alerts (docs/cost.md). */
const costSchema = z
  .object({
    /** How a deployment's cost is measured: its share of process CPU time, or of replica-hours shared by traffic. */
    model: z.enum(['cpu', 'replica']).default('cpu'),
    /** Price of one CPU-hour (model `cpu`); default slo.costPerCpuHour. */
    pricePerCpuHour: z.number().positive().max(1e9).optional(),
    /** Price of one replica-hour (model `replica`). */
    pricePerReplicaHour: z.number().positive().max(1e9).optional(),
    /** Replicas paid for (model `replica`): each costs pricePerReplicaHour whether busy or idle. */
    replicas: z.number().int().min(1).max(10_000).default(1),
    /** Shown with amounts; Warden never converts. */
    currency: z.string().min(1).max(8).default('USD'),
    /** How often spend is re-read from the traffic counts (every replica's) and caps are re-decided. */
    refreshMs: z.number().int().min(100).max(600_000).default(10_000),
    anomaly: z
      .object({
        /** An hour costing this many times the deployment's mean hour (over the baseline) is an anomaly… */
        factor: z.number().min(1.1).max(1000).default(3),
        /** …measured over this many complete hours before it… */
        baselineHours: z.number().int().min(2).max(24 * 31).default(24),
        /** …of which at least this many had spend (a new deployment has no baseline)… */
        minBaselineHours: z.number().int().min(1).max(24 * 31).default(6),
        /** …and at least this amount (tiny spends are noise). */
        minSpend: z.number().min(0).default(0),
      })
      .strict()
      .default({}),
    /** Budgets by deployment name; the API's (PUT /api/v1/cost/budgets/{name}) replace a deployment's. */
    deployments: z.record(z.string().min(1), costBudgetSchema).default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.model === 'replica' && c.pricePerReplicaHour === undefined && Object.keys(c.deployments).length > 0) {
      ctx.addIssue({ code: 'custom', path: ['pricePerReplicaHour'], message: 'cost model "replica" needs cost.pricePerReplicaHour' });
    }
  })
  .default({});

export const configSchema = z
  .object({
    server: serverSchema,
    storage: storageSchema,
    predictionLog: predictionLogSchema,
    auth: authSchema,
    rateLimits: rateLimitsSchema,
    quotas: quotasSchema,
    serving: servingSchema,
    monitoring: monitoringSchema,
    alerting: alertingSchema,
    tracing: tracingSchema,
    slo: sloSchema,
    traffic: trafficSchema,
    rollouts: rolloutsSchema,
    retraining: retrainingSchema,
    cluster: clusterSchema,
    features: featuresSchema,
    privacy: privacySchema,
    accessAlerts: accessAlertsSchema,
    cost: costSchema,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    demo: z.boolean().default(false),
  })
  .strict();

export type WardenConfig = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

/** `headers`: `name=value,name=value` with URL-encoded values, as OTEL_EXPORTER_OTLP_HEADERS. */
type EnvType = 'string' | 'number' | 'boolean' | 'headers';

/** Environment variable → config path. Listed explicitly so a typo in WARDEN_* is an error, not a no-op. */
const envKeys: Record<string, { path: string[]; type: EnvType }> = {
  WARDEN_HOST: { path: ['server', 'host'], type: 'string' },
  WARDEN_PORT: { path: ['server', 'port'], type: 'number' },
  WARDEN_BODY_LIMIT_BYTES: { path: ['server', 'bodyLimitBytes'], type: 'number' },
  WARDEN_UPLOAD_LIMIT_BYTES: { path: ['server', 'uploadLimitBytes'], type: 'number' },
  WARDEN_REFERENCE_LIMIT_BYTES: { path: ['server', 'referenceLimitBytes'], type: 'number' },
  WARDEN_MAX_UPLOADS: { path: ['server', 'maxUploads'], type: 'number' },
  WARDEN_MAX_CONNECTIONS: { path: ['server', 'maxConnections'], type: 'number' },
  WARDEN_MAX_INFLIGHT: { path: ['server', 'maxInflight'], type: 'number' },
  WARDEN_REQUEST_TIMEOUT_MS: { path: ['server', 'requestTimeoutMs'], type: 'number' },
  WARDEN_DRAIN_DELAY_MS: { path: ['server', 'drainDelayMs'], type: 'number' },
  WARDEN_DATA_DIR: { path: ['storage', 'dataDir'], type: 'string' },
  WARDEN_STORAGE_URL: { path: ['storage', 'url'], type: 'string' },
  WARDEN_STORAGE_MAX_CONNECTIONS: { path: ['storage', 'maxConnections'], type: 'number' },
  WARDEN_PREDICTION_LOG_ENABLED: { path: ['predictionLog', 'enabled'], type: 'boolean' },
  WARDEN_PREDICTION_LOG_QUEUE_CAPACITY: { path: ['predictionLog', 'queueCapacity'], type: 'number' },
  WARDEN_PREDICTION_LOG_FLUSH_INTERVAL_MS: { path: ['predictionLog', 'flushIntervalMs'], type: 'number' },
  WARDEN_PREDICTION_LOG_BATCH_SIZE: { path: ['predictionLog', 'batchSize'], type: 'number' },
  WARDEN_PREDICTION_LOG_WRITER_NICE: { path: ['predictionLog', 'writerNice'], type: 'number' },
  WARDEN_PREDICTION_LOG_RETENTION_DAYS: { path: ['predictionLog', 'retentionDays'], type: 'number' },
  WARDEN_AUTH_REQUIRED: { path: ['auth', 'required'], type: 'boolean' },
  WARDEN_AUTH_KEY_REFRESH_MS: { path: ['auth', 'keyRefreshMs'], type: 'number' },
  WARDEN_AUTH_LAST_USED_FLUSH_MS: { path: ['auth', 'lastUsedFlushMs'], type: 'number' },
  WARDEN_QUOTAS_FLUSH_MS: { path: ['quotas', 'flushMs'], type: 'number' },
  WARDEN_QUOTAS_KEY_PER_DAY: { path: ['quotas', 'key', 'perDay'], type: 'number' },
  WARDEN_QUOTAS_KEY_PER_MONTH: { path: ['quotas', 'key', 'perMonth'], type: 'number' },
  WARDEN_QUOTAS_DEPLOYMENT_PER_DAY: { path: ['quotas', 'deployment', 'perDay'], type: 'number' },
  WARDEN_QUOTAS_DEPLOYMENT_PER_MONTH: { path: ['quotas', 'deployment', 'perMonth'], type: 'number' },
  WARDEN_RATE_LIMITS_PER_REPLICA: { path: ['rateLimits', 'perReplica'], type: 'number' },
  WARDEN_RATE_LIMITS_MAX_BUCKETS: { path: ['rateLimits', 'maxBuckets'], type: 'number' },
  WARDEN_RATE_LIMITS_KEY_RATE: { path: ['rateLimits', 'key', 'rate'], type: 'number' },
  WARDEN_RATE_LIMITS_KEY_BURST: { path: ['rateLimits', 'key', 'burst'], type: 'number' },
  WARDEN_RATE_LIMITS_DEPLOYMENT_RATE: { path: ['rateLimits', 'deployment', 'rate'], type: 'number' },
  WARDEN_RATE_LIMITS_DEPLOYMENT_BURST: { path: ['rateLimits', 'deployment', 'burst'], type: 'number' },
  WARDEN_SERVING_MAX_BATCH_ROWS: { path: ['serving', 'maxBatchRows'], type: 'number' },
  WARDEN_SERVING_INTRA_OP_THREADS: { path: ['serving', 'intraOpThreads'], type: 'number' },
  WARDEN_SERVING_DYNAMIC_BATCHING: { path: ['serving', 'dynamicBatching'], type: 'boolean' },
  WARDEN_MONITORING_ENABLED: { path: ['monitoring', 'enabled'], type: 'boolean' },
  WARDEN_MONITORING_WINDOW_MS: { path: ['monitoring', 'windowMs'], type: 'number' },
  WARDEN_MONITORING_TICK_MS: { path: ['monitoring', 'tickMs'], type: 'number' },
  WARDEN_MONITORING_IDLE_CLOSE_MS: { path: ['monitoring', 'idleCloseMs'], type: 'number' },
  WARDEN_MONITORING_IMPORTANCE_ROWS: { path: ['monitoring', 'importanceRows'], type: 'number' },
  WARDEN_MONITORING_IMPORTANCE_BUDGET: { path: ['monitoring', 'importanceBudget'], type: 'number' },
  WARDEN_TRACING_ENABLED: { path: ['tracing', 'enabled'], type: 'boolean' },
  WARDEN_TRACING_OTLP_ENDPOINT: { path: ['tracing', 'otlpEndpoint'], type: 'string' },
  WARDEN_TRACING_SERVICE_NAME: { path: ['tracing', 'serviceName'], type: 'string' },
  WARDEN_TRACING_SAMPLE_RATIO: { path: ['tracing', 'sampleRatio'], type: 'number' },
  WARDEN_TRACING_HEADERS: { path: ['tracing', 'headers'], type: 'headers' },
  WARDEN_TRACING_MAX_QUEUE_SIZE: { path: ['tracing', 'maxQueueSize'], type: 'number' },
  WARDEN_TRACING_SCHEDULED_DELAY_MS: { path: ['tracing', 'scheduledDelayMs'], type: 'number' },
  WARDEN_TRACING_EXPORT_TIMEOUT_MS: { path: ['tracing', 'exportTimeoutMs'], type: 'number' },
  WARDEN_ALERTING_ENABLED: { path: ['alerting', 'enabled'], type: 'boolean' },
  WARDEN_ALERTING_EVALUATION_INTERVAL_MS: { path: ['alerting', 'evaluationIntervalMs'], type: 'number' },
  WARDEN_ALERTING_RULES_FILE: { path: ['alerting', 'rulesFile'], type: 'string' },
  WARDEN_ALERTING_EXTERNAL_URL: { path: ['alerting', 'externalUrl'], type: 'string' },
  WARDEN_ALERTING_RUNBOOK_BASE_URL: { path: ['alerting', 'runbookBaseUrl'], type: 'string' },
  WARDEN_SLO_ENABLED: { path: ['slo', 'enabled'], type: 'boolean' },
  WARDEN_SLO_FILE: { path: ['slo', 'file'], type: 'string' },
  WARDEN_SLO_TIME_SCALE: { path: ['slo', 'timeScale'], type: 'number' },
  WARDEN_SLO_RETENTION_DAYS: { path: ['slo', 'retentionDays'], type: 'number' },
  WARDEN_SLO_COST_PER_CPU_HOUR: { path: ['slo', 'costPerCpuHour'], type: 'number' },
  WARDEN_PRIVACY_HASH_KEY: { path: ['privacy', 'hashKey'], type: 'string' },
  WARDEN_ACCESS_ALERTS_ENABLED: { path: ['accessAlerts', 'enabled'], type: 'boolean' },
  WARDEN_SLO_TICK_MS: { path: ['slo', 'tickMs'], type: 'number' },
  WARDEN_COST_MODEL: { path: ['cost', 'model'], type: 'string' },
  WARDEN_COST_PRICE_PER_CPU_HOUR: { path: ['cost', 'pricePerCpuHour'], type: 'number' },
  WARDEN_COST_PRICE_PER_REPLICA_HOUR: { path: ['cost', 'pricePerReplicaHour'], type: 'number' },
  WARDEN_COST_REPLICAS: { path: ['cost', 'replicas'], type: 'number' },
  WARDEN_COST_CURRENCY: { path: ['cost', 'currency'], type: 'string' },
  WARDEN_TRAFFIC_ENABLED: { path: ['traffic', 'enabled'], type: 'boolean' },
  WARDEN_TRAFFIC_FLUSH_INTERVAL_MS: { path: ['traffic', 'flushIntervalMs'], type: 'number' },
  WARDEN_TRAFFIC_MINUTE_RETENTION_DAYS: { path: ['traffic', 'minuteRetentionDays'], type: 'number' },
  WARDEN_TRAFFIC_HOUR_RETENTION_DAYS: { path: ['traffic', 'hourRetentionDays'], type: 'number' },
  WARDEN_ROLLOUTS_SYNC_MS: { path: ['rollouts', 'syncMs'], type: 'number' },
  WARDEN_RETRAINING_ENABLED: { path: ['retraining', 'enabled'], type: 'boolean' },
  WARDEN_RETRAINING_INTERVAL_MS: { path: ['retraining', 'intervalMs'], type: 'number' },
  WARDEN_RETRAINING_LEASE_MS: { path: ['retraining', 'leaseMs'], type: 'number' },
  WARDEN_RETRAINING_JOBS_DIR: { path: ['retraining', 'jobsDir'], type: 'string' },
  WARDEN_ROLLOUTS_LEASE_MS: { path: ['rollouts', 'leaseMs'], type: 'number' },
  WARDEN_CLUSTER_SYNC_INTERVAL_MS: { path: ['cluster', 'syncIntervalMs'], type: 'number' },
  WARDEN_CLUSTER_RESYNC_MS: { path: ['cluster', 'resyncMs'], type: 'number' },
  WARDEN_CLUSTER_LEASE_MS: { path: ['cluster', 'leaseMs'], type: 'number' },
  WARDEN_SERVING_SHADOW_QUEUE_CAPACITY: { path: ['serving', 'shadowQueueCapacity'], type: 'number' },
  WARDEN_SERVING_SHADOW_CONCURRENCY: { path: ['serving', 'shadowConcurrency'], type: 'number' },
  WARDEN_SERVING_SHADOW_THREAD: { path: ['serving', 'shadowThread'], type: 'boolean' },
  WARDEN_FEATURES_FILE: { path: ['features', 'file'], type: 'string' },
  WARDEN_FEATURES_SYNC_MS: { path: ['features', 'syncMs'], type: 'number' },
  WARDEN_FEATURES_SYNC_OVERLAP_MS: { path: ['features', 'syncOverlapMs'], type: 'number' },
  WARDEN_FEATURES_MAX_ONLINE_ROWS: { path: ['features', 'maxOnlineRows'], type: 'number' },
  WARDEN_FEATURES_MATERIALIZE_EVERY_MS: { path: ['features', 'materializeEveryMs'], type: 'number' },
  WARDEN_FEATURES_SKEW_EVERY_MS: { path: ['features', 'skewEveryMs'], type: 'number' },
  WARDEN_FEATURES_SKEW_SAMPLE_ROWS: { path: ['features', 'skewSampleRows'], type: 'number' },
  WARDEN_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  WARDEN_DEMO: { path: ['demo'], type: 'boolean' },
};

/** Names of every WARDEN_* variable the config understands (documented in docs/configuration.md). */
export const configEnvNames = Object.keys(envKeys);

function envValue(name: string, raw: string, type: EnvType): unknown {
  if (type === 'string') return raw;
  if (type === 'headers') return envHeaders(name, raw);
  if (type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `${name}=${JSON.stringify(raw)} is not a number`);
    }
    return n;
  }
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new WardenError('WARDEN_CONFIG_INVALID', `${name}=${JSON.stringify(raw)} is not a boolean (use true or false)`);
}

/** Parses `name=value,name=value` (values URL-encoded, as the OpenTelemetry exporter variables take them). */
function envHeaders(name: string, raw: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [i, pair] of raw.split(',').entries()) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    let value: string | undefined;
    try {
      value = eq > 0 ? decodeURIComponent(pair.slice(eq + 1).trim()) : undefined;
    } catch {
      value = undefined;
    }
    if (value === undefined) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `${name} must be name=value pairs separated by commas (values URL-encoded); pair ${i + 1} is not (its text is not shown: it may hold a secret)`);
    }
    headers[pair.slice(0, eq).trim()] = value;
  }
  return headers;
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    // A file value of the wrong type (`server: 8080`) is left for validation to name, not replaced.
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) return;
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validate a raw config object; throws WARDEN_CONFIG_INVALID naming the first bad key. */
export function parseConfig(raw: unknown, source = 'config'): WardenConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (where === '(root)' ? k : `${where}.${k}`));
        return `unknown key ${keys.join(', ')}`;
      }
      return `${where}: ${issue.message}`;
    });
    throw new WardenError('WARDEN_CONFIG_INVALID', `${source} is invalid: ${issues.join('; ')}`);
  }
  return deepFreeze(result.data);
}

export interface LoadConfigOptions {
  /** Path to a YAML file; default `warden.yaml` in the working directory when it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values that win over file and env (CLI flags). */
  overrides?: Record<string, unknown>;
}

/** Read file + env + overrides into one validated, frozen config. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<WardenConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.WARDEN_CONFIG ?? (existsSync('warden.yaml') ? 'warden.yaml' : undefined);
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `cannot read config file ${path.resolve(file)}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (e) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `config file ${file} is not valid YAML: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new WardenError('WARDEN_CONFIG_INVALID', `config file ${file} must hold a mapping at the top level`);
      }
      raw = parsed as Record<string, unknown>;
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WARDEN_') || value === undefined || name === 'WARDEN_CONFIG' || name === 'WARDEN_API_KEY' || name === 'WARDEN_URL') continue;
    const spec = envKeys[name];
    if (!spec) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `unknown environment variable ${name}; known: ${configEnvNames.join(', ')}`);
    }
    setPath(raw, spec.path, envValue(name, value, spec.type));
  }
  for (const [dotted, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) setPath(raw, dotted.split('.'), value);
  }
  return parseConfig(raw, file ? `config (${file} + WARDEN_* env)` : 'config (WARDEN_* env)');
}
