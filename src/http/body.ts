/**
 * Request bodies under bounds. Every route reads at most its own limit (the server's `bodyLimitBytes` unless it
 * names a larger one), auth runs before the first byte is read (guards are `onRequest` hooks), model files stream to
 * a temp file instead of memory, and uploads in flight are counted so that a crowd of them cannot exhaust the server.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.ts';
import { classifyStoreError, storeUnavailable, type StoreHealth } from '../storage/index.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes uploads: it holds one of `server.maxUploads` slots while its body arrives and is handled. */
    upload?: boolean;
    /** An `application/octet-stream` body is streamed to a temp file and arrives as an {@link UploadedFile}. */
    bodyToFile?: boolean;
  }
}

/**
 * True while the client is still sending a body nobody has read: a refusal then closes the connection, since keeping
 * it alive would make Node read and discard the rest of that body first.
 */
export function bodyPending(req: FastifyRequest): boolean {
  if (req.raw.complete) return false;
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** A body streamed to disk: where it is (the registry hashes the bytes when it stores them). */
export interface UploadedFile {
  kind: 'uploaded-file';
  path: string;
}

/** True for a body the octet-stream parser wrote to disk. */
export function isUploadedFile(body: unknown): body is UploadedFile {
  return typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'uploaded-file';
}

function tooLarge(limit: number, setting: string): WardenError {
  return new WardenError('WARDEN_BODY_TOO_LARGE', `request body exceeds this route's limit of ${limit} bytes (${setting})`);
}

/** The setting that sets a route's limit, so a 413 names what to raise. */
export function limitSetting(req: FastifyRequest): string {
  if (req.routeOptions.config.bodyToFile) return 'server.uploadLimitBytes';
  if (req.routeOptions.config.upload) return 'server.referenceLimitBytes';
  return 'server.bodyLimitBytes';
}

/** A declared content-length over the limit is refused before reading; a body that grows past it is cut off. */
function checkDeclaredLength(req: FastifyRequest, limit: number): void {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw tooLarge(limit, limitSetting(req));
}

/** Reads a whole body into memory, up to the route's limit (its declared length was checked by the parser). */
function readBodyBuffer(req: FastifyRequest, payload: Readable): Promise<Buffer> {
  const limit = req.routeOptions.bodyLimit;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge(limit, limitSetting(req)));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
  });
}

/** Streams a body to `<dir>/<random>.upload`; the file is removed when anything fails. */
function streamBodyToFile(req: FastifyRequest, payload: Readable, dir: string, health: StoreHealth | undefined): Promise<UploadedFile> {
  const limit = req.routeOptions.bodyLimit;
  return new Promise((resolve, reject) => {
    // A client already gone (during an async key check, say) gets no file opened for it.
    if (payload.destroyed || req.raw.destroyed) {
      reject(new WardenError('WARDEN_BAD_REQUEST', 'the upload was aborted by the client before it ended'));
      return;
    }
    const file = path.join(dir, `${randomBytes(8).toString('hex')}.upload`);
    const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    let size = 0;
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      payload.unpipe(out);
      out.destroy();
      void rm(file, { force: true });
      reject(e);
    };
    payload.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        fail(tooLarge(limit, 'server.uploadLimitBytes'));
      }
    });
    payload.on('error', fail);
    // A client that hangs up mid-upload leaves no partial file behind.
    const aborted = () => fail(new WardenError('WARDEN_BAD_REQUEST', 'the upload was aborted by the client before it ended'));
    payload.on('aborted', aborted);
    payload.on('close', () => {
      if (!req.raw.complete) aborted();
    });
    out.on('error', (e) => fail(storeError(e, health)));
    out.on('finish', () => {
      if (!failed) resolve({ kind: 'uploaded-file', path: file });
    });
    payload.pipe(out);
  });
}

/**
 * A write failure while storing an upload: say which and what to do, not "internal error". The temp file is not a
 * store port, so its fault is reported to the store health here (the ports report their own).
 */
function storeError(e: NodeJS.ErrnoException, health: StoreHealth | undefined): WardenError {
  const fault = classifyStoreError(e);
  if (!fault) return new WardenError('WARDEN_INTERNAL', `cannot store the upload: ${e.message}`);
  health?.fault('artifacts', fault);
  return storeUnavailable('artifacts', fault);
}

/** Removes the temp file behind an uploaded body once its request has ended, whatever the route did with it. */
export function discardUpload(req: FastifyRequest): void {
  if (isUploadedFile(req.body)) void rm(req.body.path, { force: true });
}

/**
 * A crash can leave partial uploads behind. Only old ones are removed: another server may share the data directory,
 * and its uploads in flight are younger than any request may take.
 */
function removeStaleUploads(dir: string): void {
  const cutoff = Date.now() - 3_600_000;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.upload')) continue;
    const file = path.join(dir, name);
    try {
      if (statSync(file).mtimeMs < cutoff) rmSync(file, { force: true });
    } catch {
      /* removed meanwhile by its owner */
    }
  }
}

/** One upload's hold on a slot of `server.maxUploads`. */
interface UploadSlot {
  responseClosed: boolean;
  handlerRunning: boolean;
  released: boolean;
  release(): void;
}

declare module 'fastify' {
  interface FastifyRequest {
    uploadSlot?: UploadSlot;
  }
}

/**
 * Runs an upload route's handler while it holds the request's slot: the slot (and the temp file) is released only
 * when both the handler has finished and the response has closed. A request whose client left before the handler
 * started is refused at once (nobody reads the answer).
 */
export async function withUploadSlot<T>(req: FastifyRequest, handler: () => Promise<T>): Promise<T> {
  const slot = req.uploadSlot;
  if (!slot) return handler();
  if (slot.released) throw new WardenError('WARDEN_BAD_REQUEST', 'the client went away before its upload was handled');
  slot.handlerRunning = true;
  try {
    return await handler();
  } finally {
    slot.handlerRunning = false;
    if (slot.responseClosed) slot.release();
  }
}

/** The bound on uploads in flight, taken by an upload route's guard once the caller is authenticated. */
export interface UploadSlots {
  takeUploadSlot(req: FastifyRequest, reply: FastifyReply): WardenError | undefined;
}

export interface BodyOptions {
  /** Where uploads stream to; files older than an hour are removed at start (a crash can leave partial ones). */
  uploadDir: string;
  maxUploads: number;
  /** Told when the upload's temp file cannot be written (disk full, read-only). */
  health?: StoreHealth;
}

/**
 * Installs the body parsers and the upload bound. Every parser reads at most the route's limit; none sets a larger
 * one of its own (a parser-level limit would let any route read that much).
 */
export function installBodyHandling(app: FastifyInstance, opts: BodyOptions): UploadSlots {
  mkdirSync(opts.uploadDir, { recursive: true });
  removeStaleUploads(opts.uploadDir);

  // A declared length over the limit is refused before any byte is read (a parser that throws answers at once).
  const buffered = (req: FastifyRequest, payload: Readable) => {
    checkDeclaredLength(req, req.routeOptions.bodyLimit);
    return readBodyBuffer(req, payload);
  };
  // Reference data: CSV as text bytes, Parquet as bytes (JSON goes through the JSON parser). A route that streams its
  // CSV body to a file (`bodyToFile`: historical retrieval's entity rows) gets an UploadedFile instead.
  app.addContentTypeParser('text/csv', (req: FastifyRequest, payload: Readable) => {
    checkDeclaredLength(req, req.routeOptions.bodyLimit);
    return req.routeOptions.config.bodyToFile ? streamBodyToFile(req, payload, opts.uploadDir, opts.health) : readBodyBuffer(req, payload);
  });
  app.addContentTypeParser(['application/vnd.apache.parquet', 'application/x-parquet'], buffered);
  app.addContentTypeParser('application/octet-stream', (req: FastifyRequest, payload: Readable) => {
    checkDeclaredLength(req, req.routeOptions.bodyLimit);
    return req.routeOptions.config.bodyToFile ? streamBodyToFile(req, payload, opts.uploadDir, opts.health) : readBodyBuffer(req, payload);
  });

  let inFlight = 0;
  const takeUploadSlot = (req: FastifyRequest, reply: FastifyReply): WardenError | undefined => {
    // The client may have gone while its key was checked: no slot for a request nobody waits for.
    if (req.raw.destroyed || reply.raw.destroyed || reply.raw.writableEnded) {
      return new WardenError('WARDEN_BAD_REQUEST', 'the client went away before its upload started');
    }
    if (inFlight >= opts.maxUploads) {
      void reply.header('retry-after', '5');
      return new WardenError('WARDEN_RATE_LIMITED', `${opts.maxUploads} uploads are already in flight (server.maxUploads); retry when one has finished`);
    }
    inFlight++;
    const slot: UploadSlot = { responseClosed: false, handlerRunning: false, released: false, release: () => undefined };
    slot.release = () => {
      if (slot.released) return;
      slot.released = true;
      inFlight--;
      discardUpload(req);
    };
    req.uploadSlot = slot;
    // Freed when the response has closed and the handler, if it started, has finished with the upload: a client
    // that hangs up after sending its body must not free the slot while its model is still being validated.
    reply.raw.once('close', () => {
      slot.responseClosed = true;
      if (!slot.handlerRunning) slot.release();
    });
    return undefined;
  };
  return { takeUploadSlot };
}

/**
 * An onRequest hook that refuses a body of any other content-type before reading it, for routes that take large
 * bodies: otherwise a JSON or text body could be read up to the route's large limit only to be refused after.
 */
export function requireContentType(types: readonly string[], hint: string) {
  return (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    const raw = req.headers['content-type'];
    const type = typeof raw === 'string' ? raw.split(';', 1)[0]!.trim().toLowerCase() : '';
    if (types.includes(type)) {
      done();
      return;
    }
    void reply.header('connection', 'close');
    done(new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', `content-type ${JSON.stringify(type.slice(0, 80) || '(none)')} is not accepted here; ${hint}`));
  };
}
