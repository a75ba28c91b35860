import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.ts';
import { inputFingerprint, type AccessMonitor } from '../security/index.ts';
import type { InferenceService, ModelTable, RequestContext } from '../serving/index.ts';
import type { StoreHealth } from '../storage/index.ts';
import type { Tracing } from '../telemetry/index.ts';
import type { Guard } from './auth.ts';
import { tracedRoute } from './tracing.ts';

export interface OipRouteDeps {
  table: ModelTable;
  inference: InferenceService;
  guard: Guard;
  serverVersion: string;
  health: StoreHealth;
  /** True once the server drains before shutting down: readiness then answers 503 (liveness stays 200). */
  draining: () => boolean;
  maxInflight: number;
  /** Present when tracing is on: inference routes then get a SERVER span each. */
  tracing?: Tracing;
  /** Unusual-access detection: each served request of a key is counted, with a fingerprint of its body. */
  access?: Pick<AccessMonitor, 'observe'>;
}

interface ModelParams {
  name: string;
  version?: string;
}

/**
 * The request body as parsed JSON. CSV, Parquet and octet-stream bodies arrive as bytes (their parsers serve the
 * upload routes); inference needs JSON, so such bodies get a 415 that names the content-type instead of a
 * misleading complaint about missing fields.
 */
function jsonBody(req: FastifyRequest): unknown {
  const body: unknown = req.body;
  if (body instanceof Uint8Array) {
    const type = String(req.headers['content-type'] ?? '').slice(0, 80);
    throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', `content-type ${JSON.stringify(type)} is not JSON; send the body as JSON with content-type: application/json`);
  }
  return body;
}

function context(req: FastifyRequest): RequestContext {
  return req.trace
    ? { requestId: req.id, started: req.startedAt, ts: req.startedAtMs, trace: req.trace, bodyText: req.bodyText }
    : { requestId: req.id, started: req.startedAt, ts: req.startedAtMs, bodyText: req.bodyText };
}

declare module 'fastify' {
  interface FastifyRequest {
    startedAt: number;
    startedAtMs: number;
  }
}

/**
 * Open Inference Protocol v2 REST routes (health, server and model metadata, model ready, infer,
 * each with and without `/versions/{v}`), plus the named-feature `:predict` form.
 */
export function registerOipRoutes(app: FastifyInstance, deps: OipRouteDeps): void {
  const { table, inference, guard } = deps;
  let inflight = 0;

  app.get('/v2/health/live', async () => ({ live: true }));
  // A degraded store does not make the server unready: predictions are still served (only their log is at risk), and
  // a single replica taken out of rotation would serve nothing. The answer and warden_store_degraded say so.
  app.get('/v2/health/ready', async (_req, reply) => {
    if (deps.draining()) return reply.status(503).header('retry-after', '5').send({ ready: false, draining: true });
    const ready = table.allReady();
    if (!ready) void reply.header('retry-after', '5');
    const degraded = deps.health.degraded();
    if (degraded.length === 0) return reply.status(ready ? 200 : 503).send({ ready });
    return reply.status(ready ? 200 : 503).send({
      ready,
      degraded: degraded.map((d) => ({ store: d.store, code: d.code, cause: d.cause, fix: d.fix, since: new Date(d.since).toISOString() })),
    });
  });
  const serverMetadata = async () => ({ name: 'warden', version: deps.serverVersion, extensions: ['warden_predict'] });
  app.get('/v2', serverMetadata);
  app.get('/v2/', serverMetadata);

  const modelMetadata = async (req: FastifyRequest<{ Params: ModelParams }>) => {
    const { name, version } = req.params;
    const v = table.resolveNumber(name, version);
    const lv = table.peek(name, v) ?? (await table.load(name, v));
    const sig = lv.record.signature;
    return {
      name,
      versions: table.versionsOf(name).map(String),
      // The OIP platform name for ONNX models (inference_rest.md, "Platforms": `<project>_<format>`).
      platform: 'onnx_onnxv1',
      inputs: sig.inputs,
      outputs: sig.outputs,
      properties: { version: lv.label, sha256: lv.record.sha256 },
    };
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name', { onRequest: guard('viewer') }, modelMetadata);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version', { onRequest: guard('viewer') }, modelMetadata);

  const modelReady = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = req.params;
    const v = table.resolveNumber(name, version);
    let ready = table.peek(name, v) !== undefined;
    if (!ready) {
      // A version that is registered but not warm gets loaded now, so a readiness probe warms it.
      ready = await table.load(name, v).then(
        () => true,
        () => false,
      );
    }
    if (!ready) void reply.header('retry-after', '5');
    return reply.status(ready ? 200 : 503).send({ name, version: String(v), ready });
  };
  app.get<{ Params: ModelParams }>('/v2/models/:name/ready', { onRequest: guard('viewer') }, modelReady);
  app.get<{ Params: ModelParams }>('/v2/models/:name/versions/:version/ready', { onRequest: guard('viewer') }, modelReady);

  /** Past `maxInflight` concurrent inference requests callers get 429 instead of an ever-growing queue. */
  const admit = () => {
    if (inflight >= deps.maxInflight) {
      throw new WardenError('WARDEN_RATE_LIMITED', `more than ${deps.maxInflight} inference requests in flight (server.maxInflight); retry with backoff`);
    }
    inflight++;
  };

  // Keyed requests only: with auth off there is no one to tell apart (refusals are counted by the error handler).
  const access = deps.access;
  const observe = (req: FastifyRequest) => {
    const key = req.apiKey;
    if (access && key) access.observe(`key:${key.id}`, req.ip, false, req.bodyText === undefined ? undefined : inputFingerprint(req.bodyText));
  };

  // The bound is checked and released inline rather than through a wrapper: one async frame less per request.
  const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
    const { name, version } = req.params;
    admit();
    try {
      const res = await inference.infer(name, version, jsonBody(req), context(req));
      void reply.header('x-model-version', res.model_version);
      observe(req);
      return res;
    } finally {
      inflight--;
    }
  };
  // The span starts first, so a refused key is recorded on it; the guard runs before the body is read.
  const guarded = (route: string) => {
    const t = tracedRoute(deps.tracing, 'POST', route);
    const auth = guard('predictor', { deploymentLimit: true });
    return { ...t, onRequest: t.onRequest ? [t.onRequest, auth] : auth };
  };
  app.post<{ Params: ModelParams }>('/v2/models/:name/infer', guarded('/v2/models/{name}/infer'), infer);
  app.post<{ Params: ModelParams }>(
    '/v2/models/:name/versions/:version/infer',
    guarded('/v2/models/{name}/versions/{version}/infer'),
    infer,
  );

  // The `:predict` verb is part of the last path segment (`bike:predict`), as in Google-style custom methods.
  const predict = async (name: string, version: string | undefined, req: FastifyRequest, reply: FastifyReply) => {
    admit();
    try {
      const res = await inference.predict(name, version, jsonBody(req), context(req));
      void reply.header('x-model-version', res.model_version);
      observe(req);
      return res;
    } finally {
      inflight--;
    }
  };
  const splitVerb = (segment: string): string => {
    if (!segment.endsWith(':predict')) throw new WardenError('WARDEN_NOT_FOUND', `unknown method in ${JSON.stringify(segment.slice(0, 80))}; use {name}:predict`);
    return segment.slice(0, -':predict'.length);
  };
  app.post<{ Params: { target: string } }>('/v1/models/:target', guarded('/v1/models/{name}:predict'), (req, reply) =>
    predict(splitVerb(req.params.target), undefined, req, reply),
  );
  app.post<{ Params: { name: string; target: string } }>(
    '/v1/models/:name/versions/:target',
    guarded('/v1/models/{name}/versions/{version}:predict'),
    (req, reply) => predict(req.params.name, splitVerb(req.params.target), req, reply),
  );
}
