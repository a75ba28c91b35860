/**
 * The audit log's hash chain (docs/audit.md#the-chain): each entry's hash covers its own fields and the hash of the
 * entry before it, so editing an entry changes its hash, and deleting or reordering entries breaks the link of the
 * next. Both store adapters compute it when they append; `warden audit verify` recomputes it.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, NewAuditEntry } from './ports.ts';

/** The first entry's previous hash. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level: the same entry gives the same bytes whichever store read it back. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** sha256 (hex) of the entry's fields, in a fixed order, with the previous entry's hash. */
export function auditEntryHash(seq: number, prevHash: string, e: NewAuditEntry): string {
  const fields = [seq, prevHash, e.at, e.actor.kind, e.actor.id, e.actor.role, e.action, e.object, e.requestId, e.summary];
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

/** Chains new entries after the head (seq and hash of the newest entry, or none). */
export function chainEntries(head: { seq: number; hash: string } | undefined, entries: readonly NewAuditEntry[]): AuditEntry[] {
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_HASH;
  return entries.map((e) => {
    seq++;
    const hash = auditEntryHash(seq, prev, e);
    const out: AuditEntry = { ...e, seq, prevHash: prev, hash };
    prev = hash;
    return out;
  });
}
