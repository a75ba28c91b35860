import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { WardenError, isWardenError, type ErrorCode } from '../errors.ts';

/** The error body every route answers with: OIP's `{"error": "..."}` plus Warden's stable code. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
}

/** Maps Fastify's own parse/limit errors onto Warden codes with messages a caller can act on. */
export function toWardenError(err: unknown, bodyLimit: number): WardenError {
  if (isWardenError(err)) return err;
  const fe = err as Partial<FastifyError> & { statusCode?: number };
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new WardenError('WARDEN_BODY_TOO_LARGE', `request body exceeds the limit of ${bodyLimit} bytes (server.bodyLimitBytes)`);
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

/** One error handler: 4xx logged at warn, 5xx at error with the original error. */
export function errorHandler(bodyLimit: number) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    const we = toWardenError(err, bodyLimit);
    // Traced routes only (tracing on): the server span gets the code and the exception as thrown.
    req.trace?.recordError(err, we.code);
    // A game day's injected failures are deliberate: its start and end are logged at warn, not every request.
    if (we.code === 'WARDEN_FAULT_INJECTED') req.log.debug({ code: we.code }, we.message);
    else if (we.status >= 500) req.log.error({ err, code: we.code }, we.message);
    else req.log.warn({ code: we.code, msg: we.message.slice(0, 300) }, 'request refused');
    const body: ErrorBody = { error: we.message, code: we.code };
    void reply.status(we.status).send(body);
  };
}
