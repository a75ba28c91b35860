/**
 * Verifies the audit log's hash chain (docs/audit.md#verifying): reads every entry in seq order, a page at a time
 * (memory does not grow with the log), and recomputes each hash. An edited entry no longer matches its hash; a deleted
 * one leaves a gap in seq and a broken link; entries moved out of order break the links around them. Entries deleted
 * from the end leave a shorter chain that is valid in itself: only a head recorded elsewhere (this process's memory,
 * `--expect-head`, the warden_audit_head_seq series) shows it.
 */
import { auditEntryHash, GENESIS_HASH, type AuditEntry, type MetadataStore } from '../../storage/index.ts';

export interface AuditProblem {
  seq: number;
  problem: 'edited' | 'gap' | 'broken-link' | 'truncated';
  detail: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries read. */
  entries: number;
  /** The last entry read (the chain's head as stored). */
  head?: { seq: number; hash: string; at: number };
  /** The first problems found (at most 20). */
  problems: AuditProblem[];
  ms: number;
}

const PAGE = 5000;

export async function verifyAuditChain(
  store: Pick<MetadataStore, 'listAudit'>,
  opts: { expectHead?: { seq: number; hash?: string }; onProgress?: (entries: number) => void } = {},
): Promise<AuditVerification> {
  const t0 = performance.now();
  const problems: AuditProblem[] = [];
  const add = (p: AuditProblem) => {
    if (problems.length < 20) problems.push(p);
  };
  let prevSeq = 0;
  let prevHash = GENESIS_HASH;
  let entries = 0;
  let last: AuditEntry | undefined;
  for (;;) {
    const page = await store.listAudit({ afterSeq: prevSeq, order: 'asc', limit: PAGE });
    for (const e of page) {
      entries++;
      if (e.seq !== prevSeq + 1) add({ seq: e.seq, problem: 'gap', detail: `entries ${prevSeq + 1}–${e.seq - 1} are missing (deleted)` });
      if (e.prevHash !== prevHash) {
        add({ seq: e.seq, problem: 'broken-link', detail: `its previous hash ${e.prevHash.slice(0, 12)}… is not the hash of the entry before it (${prevHash.slice(0, 12)}…): an entry before it was deleted, edited or moved` });
      }
      const { seq, prevHash: storedPrev, hash, ...fields } = e;
      const expected = auditEntryHash(seq, storedPrev, fields);
      if (expected !== hash) add({ seq, problem: 'edited', detail: `its fields do not hash to its stored hash (${hash.slice(0, 12)}…, recomputed ${expected.slice(0, 12)}…): the entry was changed after it was written` });
      prevSeq = e.seq;
      // The stored hash, not the recomputed one, links the next entry: one edit is reported once, not at every entry after.
      prevHash = hash;
      last = e;
    }
    opts.onProgress?.(entries);
    if (page.length < PAGE) break;
  }
  const expect = opts.expectHead;
  if (expect && (!last || last.seq < expect.seq)) {
    add({ seq: last ? last.seq + 1 : 1, problem: 'truncated', detail: `the chain ends at ${last?.seq ?? 0}, but entry ${expect.seq} was written: entries ${(last?.seq ?? 0) + 1}–${expect.seq} were deleted` });
  } else if (expect?.hash && last) {
    // The expected head must be in the chain with the same hash.
    const at = last.seq === expect.seq ? last : (await store.listAudit({ afterSeq: expect.seq - 1, order: 'asc', limit: 1 }))[0];
    if (at && at.seq === expect.seq && at.hash !== expect.hash) {
      add({ seq: expect.seq, problem: 'edited', detail: `entry ${expect.seq} has hash ${at.hash.slice(0, 12)}…, not the ${expect.hash.slice(0, 12)}… recorded when it was written: the chain was rewritten from there` });
    }
  }
  return { ok: problems.length === 0, entries, ...(last ? { head: { seq: last.seq, hash: last.hash, at: last.at } } : {}), problems, ms: Math.round(performance.now() - t0) };
}
