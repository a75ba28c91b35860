/**
 * The audit log on a real server with auth on: pushes, alias moves, deploys, SLOs and keys recorded with the key id
 * and role, before → after, the request id; secrets never stored; "which version served D at T and who put it there"
 * in one call; the hash chain verified by API and by the CLI on the database file, which finds an edited, a deleted,
 * a reordered and a truncated entry after the file is tampered with.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditStorageEnabled, createApiKey, openAuditContexts } from '../../src/security/index.ts';
import type { AuditEntry } from '../../src/storage/index.ts';
import { runWarden } from '../helpers/cli.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelA = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const modelB = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_gbc.onnx'));

describe('audit log', () => {
  let srv: TestServer;
  const keys: Record<string, { id: string; secret: string }> = {};
  const as = (role: string) => ({ authorization: `Bearer ${keys[role]!.secret}` });
  let createdSecret = '';
  let deployedAt = 0;

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    for (const role of ['viewer', 'deployer', 'admin'] as const) {
      const k = await createApiKey(srv.warden.stores.metadata, `audit-${role}`, role);
      keys[role] = { id: k.record.id, secret: k.secret };
    }
    await srv.warden.keys.reload();
    const push = async (bytes: Buffer, alias?: string) => {
      const res = await fetch(`${srv.url}/api/v1/models/bike/versions${alias ? `?alias=${alias}` : ''}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...as('deployer') }, body: new Uint8Array(bytes) });
      expect(res.status, await res.text()).toBe(201);
    };
    await push(modelA, 'champion');
    await push(modelB);
    await srv.warden.table.settled();
    const dep = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, reason: 'better AUC', force: true }, as('deployer'));
    expect(dep.status, JSON.stringify(dep.body)).toBe(200);
    deployedAt = Date.now();
    const slo = await srv.json('PUT', '/api/v1/slos/bike-avail', { deployment: 'bike', sli: { kind: 'availability' }, objective: 0.999, period: '30d' }, as('deployer'));
    expect(slo.status, JSON.stringify(slo.body)).toBe(201);
    const key = await srv.json('POST', '/api/v1/keys', { name: 'ci-bot', role: 'predictor' }, as('admin'));
    expect(key.status).toBe(201);
    createdSecret = key.body.secret;
    // A refused call changes nothing and is not an entry.
    expect((await srv.json('DELETE', '/api/v1/models/bike?force=true', undefined, as('deployer'))).status).toBe(403);
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
  });

  const entries = async (q = ''): Promise<AuditEntry[]> => {
    const res = await srv.json('GET', `/api/v1/audit?limit=1000${q}`, undefined, as('admin'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.entries;
  };

  it('closes every request\'s context, an aborted upload\'s too, so the async-hook storage is off between audited calls', async () => {
    const { request } = await import('node:http');
    const u = new URL(`${srv.url}/api/v1/models/bike/versions`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': '100000', ...as('deployer') } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(1000));
    await new Promise((r) => setTimeout(r, 200));
    expect(openAuditContexts()).toBeGreaterThan(0);
    req.destroy();
    // Control loops open short contexts of their own: wait for a moment with none open.
    const until = Date.now() + 5000;
    while (openAuditContexts() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(openAuditContexts()).toBe(0);
    expect(auditStorageEnabled()).toBe(false);
  });

  it('records each change with who, what, before → after and the request id; admin only', async () => {
    expect((await srv.json('GET', '/api/v1/audit', undefined, as('deployer'))).status).toBe(403);
    const all = (await entries()).reverse();
    const registered = all.filter((e) => e.action.endsWith('→ version.register'));
    expect(registered.map((e) => (e.summary.after as { version: number }).version)).toEqual([1, 2]);
    expect(registered[0]).toMatchObject({ actor: { kind: 'key', id: keys.deployer!.id, role: 'deployer' }, object: 'model:bike', action: 'POST /api/v1/models/:name/versions → version.register' });
    expect((registered[0]!.summary.after as { sha256: string }).sha256).toMatch(/^[0-9a-f]{64}$/);
    // The push's body is an upload: kept as its size and digest, not its bytes.
    expect(registered[0]!.summary.body).toEqual({ upload: true, bytes: modelA.length });
    const aliasMoves = all.filter((e) => e.summary.change === 'alias.set');
    expect(aliasMoves.map((e) => [e.summary.before, e.summary.after])).toEqual([
      [{ alias: 'champion', version: null }, { alias: 'champion', version: 1 }],
      [{ alias: 'champion', version: 1 }, { alias: 'champion', version: 2 }],
    ]);
    expect(aliasMoves[1]).toMatchObject({ action: 'POST /api/v1/deployments/:name/deploy → alias.set', summary: { status: 200, params: { name: 'bike' }, body: { version: 2, reason: 'better AUC', force: true } } });
    const slo = all.find((e) => e.action === 'PUT /api/v1/slos/:name')!;
    expect(slo).toMatchObject({ object: 'slo:bike-avail', summary: { status: 201, body: { deployment: 'bike', objective: 0.999 } } });
    const key = all.find((e) => e.action === 'POST /api/v1/keys')!;
    expect(key).toMatchObject({ actor: { id: keys.admin!.id, role: 'admin' }, summary: { body: { name: 'ci-bot', role: 'predictor' } } });
    expect(all.some((e) => e.action.startsWith('DELETE'))).toBe(false);
    // Every request id is the one the server answered with (x-request-id).
    expect(new Set(all.map((e) => e.requestId)).size).toBeGreaterThanOrEqual(5);
    // Filters.
    expect((await entries(`&actor=${keys.admin!.id}`)).every((e) => e.actor.id === keys.admin!.id)).toBe(true);
    expect((await entries('&deployment=bike')).length).toBe(all.filter((e) => e.object === 'model:bike' || e.object === 'deployment:bike').length);
    expect((await entries('&action=PUT%20/api/v1/slos')).map((e) => e.object)).toEqual(['slo:bike-avail']);
    expect((await srv.json('GET', '/api/v1/audit?limit=0', undefined, as('admin'))).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/audit?since=yesterday', undefined, as('admin'))).body.error).toMatch(/since must be epoch milliseconds or an ISO-8601 time/);
  });

  it('never stores the secret of a key it created; exports every entry as JSON lines', async () => {
    const res = await srv.json('POST', '/api/v1/alerts/silences', { matchers: [{ name: 'alertname', value: 'X' }], endsAt: Date.now() + 60_000, comment: 'maint' }, as('deployer'));
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    const res2 = await fetch(`${srv.url}/api/v1/audit?format=jsonl`, { headers: as('admin') });
    const text = await res2.text();
    expect(res2.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    expect(text).not.toContain(createdSecret);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    expect(lines.map((e) => e.seq)).toEqual(lines.map((_, i) => i + 1));
    expect(lines.find((e) => e.action === 'POST /api/v1/alerts/silences')).toMatchObject({ object: 'alerts/silences', summary: { status: 201, body: { comment: 'maint' } } });
  });

  it('answers which version served the deployment at a time, and who put it there, in one call', async () => {
    const res = await srv.json('GET', `/api/v1/deployments/bike/served?at=${deployedAt}`, undefined, as('viewer'));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: 2, event: { kind: 'deploy', toVersion: 2 }, by: { actor: { kind: 'key', id: keys.deployer!.id, role: 'deployer' } } });
    expect(res.body.by.entries.map((e: { action: string }) => e.action)).toContain('POST /api/v1/deployments/:name/deploy → alias.set');
    const cli = await runWarden(['--url', srv.url, '--api-key', keys.viewer!.secret, 'deployments', 'served', 'bike', '--at', new Date(deployedAt).toISOString()]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`v2 (the last change at or before this time)`);
    expect(cli.stdout).toMatch(/set by deploy at \S+: key \w+ \(audit-deployer, deployer\), "better AUC"/);
    expect(cli.stdout).toContain(`audit: key ${keys.deployer!.id}, role deployer, request `);
  });

  it('verifies the chain by API and CLI; tampering with the database file is found, entry by entry', async () => {
    const ok = await srv.json('GET', '/api/v1/audit/verify', undefined, as('admin'));
    expect(ok.body).toMatchObject({ ok: true, problems: [] });
    const n = ok.body.entries as number;
    expect(n).toBeGreaterThanOrEqual(7);
    const head = `${ok.body.head.seq}:${ok.body.head.hash}`;
    const cliOk = await runWarden(['--url', srv.url, '--api-key', keys.admin!.secret, 'audit', 'verify']);
    expect(cliOk.code, cliOk.stderr).toBe(0);
    expect(cliOk.stdout).toMatch(new RegExp(`^audit log intact: ${n} entries, head ${head.replace(':', ':')} `));

    const db = new Database(path.join(srv.dataDir, 'metadata.db'));
    const row = (seq: number) => db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq) as Record<string, unknown>;
    const put = (r: Record<string, unknown>) =>
      db.prepare('INSERT OR REPLACE INTO audit_log (seq, at, actor_kind, actor_id, actor_role, action, object, summary, request_id, prev_hash, hash) VALUES (@seq, @at, @actor_kind, @actor_id, @actor_role, @action, @object, @summary, @request_id, @prev_hash, @hash)').run(r);
    const verifyCli = (...extra: string[]) => runWarden(['audit', 'verify', '--data-dir', srv.dataDir, ...extra]);
    try {
      // 1. An edit: who did it.
      const third = row(3);
      db.prepare('UPDATE audit_log SET actor_id = ? WHERE seq = 3').run('someone-else');
      const edited = await verifyCli();
      expect(edited.code).toBe(1);
      expect(edited.stdout).toMatch(/audit log TAMPERED: 1 problem\(s\)/);
      expect(edited.stdout).toMatch(/seq 3: edited: its fields do not hash to its stored hash/);
      put(third);
      expect((await verifyCli()).code).toBe(0);

      // 2. A deletion in the middle.
      const fifth = row(5);
      db.prepare('DELETE FROM audit_log WHERE seq = 5').run();
      const deleted = await verifyCli();
      expect(deleted.code).toBe(1);
      expect(deleted.stdout).toMatch(/seq 6: gap: entries 5–5 are missing \(deleted\)/);
      expect(deleted.stdout).toMatch(/seq 6: broken-link/);
      put(fifth);

      // 3. Two entries swapped (their contents moved, seq kept): the links around them break.
      const [r2, r4] = [row(2), row(4)];
      put({ ...r4, seq: 2 });
      put({ ...r2, seq: 4 });
      const swapped = await verifyCli('--json');
      expect(swapped.code).toBe(1);
      const v = JSON.parse(swapped.stdout);
      expect(v.ok).toBe(false);
      expect(v.problems.map((p: { seq: number; problem: string }) => `${p.seq}:${p.problem}`)).toEqual(expect.arrayContaining(['2:edited', '3:broken-link', '4:edited', '5:broken-link']));
      put(r2);
      put(r4);
      expect((await verifyCli()).code).toBe(0);

      // 4. The newest entries deleted: the shorter chain is valid in itself; the head recorded earlier (and the
      //    server's own memory of what it wrote) shows the loss.
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(n - 2);
      expect((await verifyCli()).code).toBe(0);
      const truncated = await verifyCli('--expect-head', head);
      expect(truncated.code).toBe(1);
      expect(truncated.stdout).toContain(`truncated: the chain ends at ${n - 2}, but entry ${n} was written: entries ${n - 1}–${n} were deleted`);
      const api = await srv.json('GET', '/api/v1/audit/verify', undefined, as('admin'));
      expect(api.body.ok).toBe(false);
      expect(api.body.problems[0]).toMatchObject({ problem: 'truncated' });
    } finally {
      db.close();
    }
    expect((await runWarden(['audit', 'verify', '--data-dir', srv.dataDir, '--expect-head', 'nope'])).code).toBe(2);
    // `warden keys` writes the store itself: it records its own entry, as the local user, on the same chain.
    const made = await runWarden(['keys', 'create', '--role', 'viewer', '--name', 'from-cli', '--data-dir', srv.dataDir]);
    expect(made.code, made.stderr).toBe(0);
    const id = /created key (\w+)/.exec(made.stderr)![1]!;
    const log = await runWarden(['--url', srv.url, '--api-key', keys.admin!.secret, 'audit', 'log', '--object', `key:${id}`]);
    expect(log.stdout).toMatch(new RegExp(`local user \\S+ +warden keys → key\\.create +key:${id}`));
  });
});
