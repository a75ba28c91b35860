import type { FastifyBaseLogger, onRequestAbortHookHandler, onRequestHookHandler, onResponseHookHandler } from 'fastify';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import { WardenAttr, type RequestTrace, type Tracing } from '../telemetry/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's spans, on traced routes while tracing is on. */
    trace?: RequestTrace;
  }
}

/** Route-level hooks that wrap one route in a SERVER span. */
export interface TracedRouteHooks {
  onRequest?: onRequestHookHandler;
  onResponse?: onResponseHookHandler;
  onRequestAbort?: onRequestAbortHookHandler;
}

const NONE: TracedRouteHooks = Object.freeze({});

/**
 * Hooks that give each request of a route a SERVER span named `{method} {route}` (the template, never the raw
 * URL, so span names stay few), with the HTTP semantic-convention attributes and Warden's request id, and
 * that bind the trace id into the request's log lines. With tracing off it returns no hooks at all, so the
 * route pays nothing. The error handler adds `error.type` and the exception; the response ends the span.
 */
export function tracedRoute(tracing: Tracing | undefined, method: 'POST', route: string): TracedRouteHooks {
  if (!tracing) return NONE;
  const name = `${method} ${route}`;
  return {
    onRequest(req, _reply, done) {
      const t = tracing.startRequest(name, req.headers);
      if (t.recording) {
        const q = req.url.indexOf('?');
        t.setAttributes({
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_HTTP_ROUTE]: route,
          [ATTR_URL_PATH]: q < 0 ? req.url : req.url.slice(0, q),
          [ATTR_URL_SCHEME]: req.protocol,
          [ATTR_SERVER_ADDRESS]: req.hostname,
          [ATTR_SERVER_PORT]: req.port ?? undefined,
          [ATTR_CLIENT_ADDRESS]: req.ip,
          [ATTR_NETWORK_PROTOCOL_VERSION]: req.raw.httpVersion,
          [ATTR_USER_AGENT_ORIGINAL]: req.headers['user-agent'],
          [WardenAttr.requestId]: req.id,
        });
      }
      req.trace = t;
      // Log lines of this request (the error handler's) carry the trace id beside the request id. Fastify gave
      // the request a pino child of its own: binding in place costs a fraction of another child.
      const bindings = { traceId: t.traceId, spanId: t.spanId };
      const log = req.log as FastifyBaseLogger & Partial<Pick<Logger, 'setBindings'>>;
      if (log !== this.log && log.setBindings) log.setBindings(bindings);
      else req.log = req.log.child(bindings);
      done();
    },
    onResponse(req, reply, done) {
      req.trace?.end(reply.statusCode);
      done();
    },
    onRequestAbort(req, done) {
      req.trace?.abort();
      done();
    },
  };
}
