/**
 * HTTP: the Fastify server — Open Inference Protocol v2 routes, the `/api/v1` admin API,
 * `/metrics`, one error shape (`{"error", "code"}`) and API-key guards. Thin: routes parse and call domains.
 */
export { buildHttpServer } from './server.ts';
export type { HttpDeps } from './server.ts';
export type { ErrorBody } from './errors.ts';
