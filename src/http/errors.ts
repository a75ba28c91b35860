import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { WardenError, isWardenError, type ErrorCode } from '../errors.ts';
import { classifyStoreError, storeOfError, storeUnavailable } from '../storage/index.ts';
import { bodyPending, limitSetting } from './body.ts';

/** The error body every route answers with: OIP's `{"error": "..."}` plus Warden's stable code. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
}

/** Seconds a client should wait before retrying, per code; every 429 and 503 carries one (RFC 9110 §10.2.3). */
const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  WARDEN_RATE_LIMITED: 1,
  WARDEN_SHUTTING_DOWN: 5,
  WARDEN_MODEL_NOT_READY: 5,
  WARDEN_FAULT_INJECTED: 1,
  WARDEN_STORE_UNAVAILABLE: 30,
};

/** Retry-After for a status: the code's own, else 1 s for 429 and 5 s for 503; none for other statuses. */
export function retryAfterSeconds(code: ErrorCode, status: number): number | undefined {
  if (status !== 429 && status !== 503) return undefined;
  return RETRY_AFTER_SECONDS[code] ?? (status === 429 ? 1 : 5);
}

/** Maps Fastify's own parse/limit errors onto Warden codes with messages a caller can act on. */
export function toWardenError(err: unknown, bodyLimit: number, limitName = 'server.bodyLimitBytes'): WardenError {
  if (isWardenError(err)) return err;
  // A store that refuses a write (disk full, read-only, I/O error) is not a bug: say which and what to do.
  const fault = classifyStoreError(err);
  if (fault) return storeUnavailable(storeOfError(err), fault);
  const fe = err as Partial<FastifyError> & { statusCode?: number };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new WardenError('WARDEN_BODY_TOO_LARGE', `request body exceeds this route's limit of ${bodyLimit} bytes (${limitName})`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', 'unsupported content-type; send JSON with content-type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new WardenError('WARDEN_BAD_REQUEST', 'request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new WardenError('WARDEN_BAD_REQUEST', 'content-length does not match the body sent');
    case 'FST_ERR_VALIDATION':
      return new WardenError('WARDEN_BAD_REQUEST', fe.message ?? 'request does not match the route schema');
  }
  if (err instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new WardenError('WARDEN_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new WardenError(fe.statusCode === 413 ? 'WARDEN_BODY_TOO_LARGE' : 'WARDEN_BAD_REQUEST', fe.message ?? 'bad request');
  }
  return new WardenError('WARDEN_INTERNAL', 'internal error; see the server log for this request id');
}

/**
 * One error handler: 4xx logged at warn, 5xx at error with the original error. The log line's `msg` says what
 * happened ("request refused"); the message sent to the caller is its own field, `reason`, so JSON log tools that
 * keep one `msg` per line lose neither.
 */
/**
 * Refusals of who the caller is or what it may do (401, 403): counted by unusual-access detection. Not 429: the
 * server's own overload (server.maxInflight) refuses every caller alike and says nothing about one.
 */
const REFUSALS = new Set([401, 403]);

export function errorHandler(bodyLimit: number, onRefused?: (req: FastifyRequest, status: number) => void) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    // Framework errors can come before routing, when there are no route options yet.
    const routed = req.routeOptions?.config !== undefined;
    const we = routed ? toWardenError(err, req.routeOptions.bodyLimit ?? bodyLimit, limitSetting(req)) : toWardenError(err, bodyLimit);
    // Traced routes only (tracing on): the server span gets the code and the exception as thrown.
    req.trace?.recordError(err, we.code);
    // A game day's injected failures are deliberate: its start and end are logged at warn, not every request.
    if (we.code === 'WARDEN_FAULT_INJECTED') req.log.debug({ code: we.code, reason: we.message }, 'injected fault');
    else if (we.status >= 500) req.log.error({ err, code: we.code, reason: we.message.slice(0, 300) }, 'request failed');
    else req.log.warn({ code: we.code, reason: we.message.slice(0, 300) }, 'request refused');
    // A body the client is still sending is not read to keep the connection: refuse and close (the guard does the
    // same for refused keys).
    if (bodyPending(req) && !reply.hasHeader('connection')) void reply.header('connection', 'close');
    const retryAfter = retryAfterSeconds(we.code, we.status);
    if (retryAfter !== undefined && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(retryAfter));
    if (onRefused && REFUSALS.has(we.status)) onRefused(req, we.status);
    const body: ErrorBody = { error: we.message, code: we.code };
    void reply.status(we.status).send(body);
  };
}
