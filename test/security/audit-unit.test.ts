/**
 * The audit log's parts without a server: body summaries are bounded and never hold a secret-named field; the writer
 * queues entries while the store refuses them and writes them, in order, when it takes them again (nothing lost below
 * the bound, counted above it); a loop action's notes become the loop's entries, none when it changed nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, auditStorageEnabled, bodySummary, currentAudit, noteAudit, openAuditContext, openAuditContexts, runInAuditContext, type AuditContext } from '../../src/security/audit/index.ts';
import { SqliteMetadataStore, type NewAuditEntry } from '../../src/storage/index.ts';

const entry = (i: number): NewAuditEntry => ({ at: i, actor: { kind: 'key', id: 'k', role: 'admin' }, action: 'PUT /x', object: `x:${i}`, summary: {}, requestId: `r${i}` });

describe('audit body summaries', () => {
  it('redacts secret-named fields at any depth and bounds strings, arrays, keys and depth', () => {
    const s = bodySummary({ name: 'ci', apiKey: 'wdn_x', nested: { password: 'p', Authorization: 'Bearer y', list: [{ token: 't', ok: 1 }] }, long: 'a'.repeat(500), many: Array.from({ length: 30 }, (_, i) => i) }, 100) as Record<string, unknown>;
    expect(JSON.stringify(s)).not.toMatch(/wdn_x|"p"|Bearer y|"t"/);
    expect(s).toMatchObject({ name: 'ci', apiKey: '[redacted]', nested: { password: '[redacted]', Authorization: '[redacted]', list: [{ token: '[redacted]', ok: 1 }] } });
    expect(s.long).toBe(`${'a'.repeat(200)}… (500 chars)`);
    expect((s.many as unknown[]).length).toBe(21);
    expect((s.many as unknown[])[20]).toBe('… 10 more items');
    expect(bodySummary({ a: { b: { c: { d: { e: 1 } } } } }, 10)).toEqual({ a: { b: { c: { d: '{…}' } } } });
  });

  it('keeps a large body as its size and keys, a buffer as its size and digest', () => {
    const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'x'.repeat(190)]));
    expect(bodySummary(big, 9999)).toMatchObject({ bytes: 9999, keys: expect.arrayContaining(['k0', 'k39']) });
    expect(bodySummary(Buffer.from('abc'), 3)).toEqual({ bytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
    expect(bodySummary(undefined, undefined)).toBeUndefined();
  });
});

describe('audit contexts', () => {
  const ctx = (id: string): AuditContext => ({ requestId: id, notes: [] });
  const tick = () => new Promise((r) => setTimeout(r, 1));

  it('carry notes across awaits, and turn the async-hook storage off whenever none is open', async () => {
    expect(openAuditContexts()).toBe(0);
    expect(auditStorageEnabled()).toBe(false);
    const a = ctx('a');
    const p = runInAuditContext(a, async () => {
      await tick();
      noteAudit({ object: 'x:1', change: 'one' });
      await Promise.resolve();
      setImmediate(() => noteAudit({ object: 'x:2', change: 'two' }));
      await tick();
      expect(auditStorageEnabled()).toBe(true);
      return currentAudit()?.requestId;
    });
    expect(openAuditContexts()).toBe(1);
    expect(await p).toBe('a');
    expect(a.notes.map((n) => n.change)).toEqual(['one', 'two']);
    expect(openAuditContexts()).toBe(0);
    expect(auditStorageEnabled()).toBe(false);
    // A synchronous function, and one that throws, close their context too.
    expect(runInAuditContext(ctx('s'), () => currentAudit()?.requestId)).toBe('s');
    expect(() => runInAuditContext(ctx('t'), () => { throw new Error('boom'); })).toThrow('boom');
    await expect(runInAuditContext(ctx('u'), async () => { await tick(); throw new Error('late'); })).rejects.toThrow('late');
    expect(openAuditContexts()).toBe(0);
    expect(auditStorageEnabled()).toBe(false);
    expect(currentAudit()).toBeUndefined();
  });

  it('an open context keeps its notes while another one closes, and the storage goes off only when the last one does', async () => {
    const req = ctx('req');
    let later!: () => void;
    const resumed = new Promise<void>((r) => (later = r));
    const close = openAuditContext(req, () => {
      void (async () => {
        await resumed;
        noteAudit({ object: 'model:m', change: 'alias.set' });
      })();
    });
    const loop = ctx('loop');
    await runInAuditContext(loop, async () => {
      await tick();
      noteAudit({ object: 'deployment:d', change: 'rollout.abort' });
    });
    expect(openAuditContexts()).toBe(1);
    expect(auditStorageEnabled()).toBe(true);
    later();
    await tick();
    expect(req.notes.map((n) => n.change)).toEqual(['alias.set']);
    expect(loop.notes.map((n) => n.change)).toEqual(['rollout.abort']);
    close();
    close(); // a second call closes nothing more
    expect(openAuditContexts()).toBe(0);
    expect(auditStorageEnabled()).toBe(false);
    // The next context turns it back on.
    await runInAuditContext(ctx('next'), async () => {
      await tick();
      expect(currentAudit()?.requestId).toBe('next');
    });
    expect(auditStorageEnabled()).toBe(false);
  });
});

describe('AuditLog', () => {
  let dir: string;
  let store: SqliteMetadataStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-audit-'));
    store = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('queues entries while the store refuses them and writes them in order once it takes them; past the bound they are counted as dropped', async () => {
    let down = true;
    const flaky = {
      appendAudit: (e: readonly NewAuditEntry[]) => (down ? Promise.reject(new Error('database is locked')) : store.appendAudit(e)),
      listAudit: store.listAudit.bind(store),
      auditHead: store.auditHead.bind(store),
    };
    const prom = new Registry();
    const log = new AuditLog({ metadata: flaky, logger: pino({ level: 'silent' }), promRegistry: prom, maxPending: 5, retryMs: 20 });
    await log.record([entry(1), entry(2)]);
    await log.record([entry(3)]);
    expect(await store.auditHead()).toBeUndefined();
    await log.record([entry(4), entry(5), entry(6)]);
    const metrics = await prom.getMetricsAsJSON();
    const value = (name: string) => metrics.find((m) => m.name === name)!.values[0]?.value;
    expect(value('warden_audit_dropped_total')).toBe(1);
    expect(value('warden_audit_pending_entries')).toBe(5);
    down = false;
    for (let i = 0; i < 100 && (await store.auditHead())?.seq !== 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store.listAudit({ afterSeq: 0, limit: 10 })).map((e) => e.requestId)).toEqual(['r1', 'r2', 'r3', 'r4', 'r5']);
    expect((await log.verify()).ok).toBe(true);
    await log.stop();
  });

  it('a loop action writes its notes as the loop\'s entries, and nothing when it changed nothing', async () => {
    const log = new AuditLog({ metadata: store, logger: pino({ level: 'silent' }), promRegistry: new Registry() });
    await log.loop({ loop: 'rollouts', action: 'rollout.control' }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      noteAudit({ object: 'deployment:d', change: 'rollout.abort', before: { state: 'running' }, after: { state: 'aborted' } });
    });
    await log.loop({ loop: 'rollouts', action: 'rollout.control' }, async () => undefined);
    await expect(log.loop({ loop: 'retraining', action: 'retrain.job' }, async () => {
      noteAudit({ object: 'job:1', change: 'retrain.end', after: { state: 'failed' } });
      throw new Error('boom');
    })).rejects.toThrow('boom');
    noteAudit({ object: 'outside', change: 'ignored' });
    const all = await store.listAudit({ afterSeq: 0, limit: 10 });
    expect(all.map((e) => [e.actor, e.action, e.object])).toEqual([
      [{ kind: 'loop', id: 'rollouts', role: '' }, 'rollout.abort', 'deployment:d'],
      [{ kind: 'loop', id: 'retraining', role: '' }, 'retrain.end', 'job:1'],
    ]);
    expect(all[0]!.summary).toEqual({ change: 'rollout.abort', before: { state: 'running' }, after: { state: 'aborted' } });
    expect(all[0]!.requestId).toMatch(/^loop-rollouts-[0-9a-f]{12}$/);
  });
});
