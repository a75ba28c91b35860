import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { AuditLog } from '../../security/index.ts';
import type { AuditEntry, AuditQuery } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';
import { optionalTimeParam } from '../query.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Most entries one page answers; an export (`format=jsonl`) pages through the store itself. */
export const AUDIT_PAGE_LIMIT = 1000;

interface AuditQuerystring {
  since?: string;
  until?: string;
  actor?: string;
  object?: string;
  action?: string;
  requestId?: string;
  deployment?: string;
  before?: string;
  after?: string;
  limit?: string;
  format?: string;
}

function seqParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw bad(`${name} must be an entry's seq (an integer ≥ 0)`);
  return n;
}

function textParam(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > 300) throw bad(`${name} must be at most 300 characters`);
  return raw;
}

/**
 * The audit log (docs/audit.md): entries newest first (or after a seq, oldest first), filtered by time, actor,
 * object, action prefix or request id; `format=jsonl` streams every matching entry as JSON lines, oldest first;
 * `/verify` walks the hash chain. Admin role: the log names every key and what it did.
 */
export function registerAuditRoutes(app: FastifyInstance, deps: { audit: AuditLog; guard: Guard }): void {
  const { audit, guard } = deps;
  app.get<{ Querystring: AuditQuerystring }>('/api/v1/audit', { onRequest: guard('admin') }, async (req, reply) => {
    const q = req.query;
    const since = optionalTimeParam(q.since, 'since');
    const until = optionalTimeParam(q.until, 'until');
    const actor = textParam(q.actor, 'actor');
    const object = textParam(q.object, 'object');
    const deployment = textParam(q.deployment, 'deployment');
    if (object !== undefined && deployment !== undefined) throw bad('give object or deployment, not both');
    const action = textParam(q.action, 'action');
    const requestId = textParam(q.requestId, 'requestId');
    const filter: Omit<AuditQuery, 'limit'> = {
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(actor !== undefined ? { actorId: actor } : {}),
      ...(object !== undefined ? { objects: [object] } : {}),
      // A deployment is named by its model: alias moves are on model:NAME, rollouts on deployment:NAME.
      ...(deployment !== undefined ? { objects: [`deployment:${deployment}`, `model:${deployment}`] } : {}),
      ...(action !== undefined ? { actionPrefix: action } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
    };
    if (q.format !== undefined && q.format !== 'json' && q.format !== 'jsonl') throw bad('format must be json or jsonl');
    if (q.format === 'jsonl') {
      const after0 = seqParam(q.after, 'after') ?? 0;
      async function* lines(): AsyncGenerator<string> {
        let after = after0;
        for (;;) {
          const page = await audit.list({ ...filter, afterSeq: after, order: 'asc', limit: 1000 });
          if (page.length) yield page.map((e) => JSON.stringify(e)).join('\n') + '\n';
          if (page.length < 1000) return;
          after = page[page.length - 1]!.seq;
        }
      }
      return reply.type('application/x-ndjson').header('content-disposition', 'attachment; filename="audit.jsonl"').send(Readable.from(lines()));
    }
    const limitRaw = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limitRaw) || limitRaw < 1 || limitRaw > AUDIT_PAGE_LIMIT) throw bad(`limit must be an integer from 1 to ${AUDIT_PAGE_LIMIT}`);
    const after = seqParam(q.after, 'after');
    const before = seqParam(q.before, 'before');
    if (after !== undefined && before !== undefined) throw bad('give after or before, not both');
    const entries: AuditEntry[] = await audit.list({
      ...filter,
      ...(after !== undefined ? { afterSeq: after } : {}),
      ...(before !== undefined ? { beforeSeq: before } : {}),
      limit: limitRaw,
    });
    const full = entries.length === limitRaw;
    const last = entries[entries.length - 1];
    return { entries, ...(full && last ? (after !== undefined ? { nextAfter: last.seq } : { nextBefore: last.seq }) : {}) };
  });

  app.get<{ Querystring: { expectSeq?: string; expectHash?: string } }>('/api/v1/audit/verify', { onRequest: guard('admin') }, async (req) => {
    const seq = seqParam(req.query.expectSeq, 'expectSeq');
    const hash = req.query.expectHash;
    if (hash !== undefined && !/^[0-9a-f]{64}$/.test(hash)) throw bad('expectHash must be an entry hash: 64 hex digits');
    if (hash !== undefined && seq === undefined) throw bad('expectHash needs expectSeq: the seq of the entry with that hash');
    return audit.verify(seq !== undefined ? { expectHead: { seq, ...(hash ? { hash } : {}) } } : {});
  });
}
