import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import { ExplainService, MAX_EXPLAINED_ROWS } from '../../explain/index.ts';
import { decodeInstances, decodeTensor } from '../../quality/index.ts';
import type { Registry } from '../../registry/index.ts';
import type { Guard } from '../auth.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * `POST /api/v1/models/{name}/explain`: Shapley values of the rows sent (docs/explainability.md): TreeSHAP for tree
 * ensembles, KernelSHAP (within `budget` coalitions per row) for other models. The rows are checked as inference
 * checks them (named features with their ranges, or an OIP tensor), then explained; nothing is served or logged.
 */
export function registerExplainRoutes(app: FastifyInstance, deps: { explain: ExplainService; registry: Registry; guard: Guard }): void {
  app.post<{ Params: { name: string }; Body: unknown }>('/api/v1/models/:name/explain', { onRequest: deps.guard('predictor') }, async (req) => {
    const body = req.body as { version?: unknown; instances?: unknown; inputs?: unknown; background?: unknown; budget?: unknown } | null;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body must be {"instances": [{feature: value}, …]} or {"inputs": [tensor]}, with optional "version", "background" and "budget"');
    for (const k of Object.keys(body)) if (!['version', 'instances', 'inputs', 'background', 'budget'].includes(k)) throw bad(`unknown field ${k}`);
    if ((body.instances === undefined) === (body.inputs === undefined)) throw bad('send either instances (named features) or inputs (an OIP tensor), not both or neither');
    const ref = body.version === undefined ? undefined : String(body.version);
    if (ref !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(ref)) throw bad('version must be a version number, an alias or latest');
    if (body.background !== undefined && (typeof body.background !== 'number' || !Number.isInteger(body.background))) throw bad('background must be an integer number of rows');
    if (body.budget !== undefined && (typeof body.budget !== 'number' || !Number.isInteger(body.budget))) throw bad('budget must be an integer number of coalitions');
    const name = req.params.name;
    // Default: what callers of the deployment are answered by (its stable alias), else the newest version.
    const version = await deps.registry.resolve(name, ref ?? 'champion').catch((e: unknown) => {
      if (ref === undefined && e instanceof WardenError && e.code === 'WARDEN_VERSION_NOT_FOUND') return deps.registry.resolve(name, 'latest');
      throw e;
    });
    const { signature } = version;
    const spec = signature.inputs[0];
    if (!spec || signature.inputs.length !== 1) throw bad(`${name} v${version.version} has ${signature.inputs.length} inputs; explanations need exactly one`);
    let flat: Float32Array;
    let width: number;
    if (body.instances !== undefined) {
      if (!signature.features?.length) throw bad(`${name} v${version.version} has no named features; send inputs as an OIP tensor`);
      flat = decodeInstances(body.instances, signature.features, MAX_EXPLAINED_ROWS);
      width = signature.features.length;
    } else {
      if (!Array.isArray(body.inputs) || body.inputs.length !== 1) throw bad(`inputs must hold one tensor, ${spec.name}`);
      const t = decodeTensor(body.inputs[0], spec, MAX_EXPLAINED_ROWS, signature.features);
      if (!(t.data instanceof Float32Array) || t.dims.length !== 2) throw bad(`explanations take a 2-D FP32 input; ${spec.name} is ${t.datatype} ${JSON.stringify(t.dims)}`);
      flat = t.data;
      width = t.dims[1]!;
    }
    const rows: Float32Array[] = [];
    for (let i = 0; i < flat.length; i += width) rows.push(flat.subarray(i, i + width));
    return deps.explain.explain(version, rows, {
      protocol: 'api',
      ...(body.background === undefined ? {} : { background: body.background as number }),
      ...(body.budget === undefined ? {} : { budget: body.budget as number }),
    });
  });
}
