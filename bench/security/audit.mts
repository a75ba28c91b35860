// Audit log costs on the embedded store: appending one entry per call (what each audited request does before its
// answer goes out) and verifying the whole chain. Prints figures; asserts nothing.
//   node --import tsx bench/security/audit.mts [entries=100000]
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { verifyAuditChain } from '../../src/security/index.ts';
import { SqliteMetadataStore, type NewAuditEntry } from '../../src/storage/index.ts';

const n = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(path.join(tmpdir(), 'warden-bench-audit-'));
const store = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
const entry = (i: number): NewAuditEntry => ({
  at: Date.now(),
  actor: { kind: 'key', id: 'a1b2c3d4e5f6', role: 'deployer' },
  action: 'PUT /api/v1/models/:name/aliases/:alias → alias.set',
  object: `model:bike-${i % 50}`,
  summary: { status: 200, params: { name: `bike-${i % 50}`, alias: 'champion' }, change: 'alias.set', before: { alias: 'champion', version: i }, after: { alias: 'champion', version: i + 1 } },
  requestId: `req-${i}`,
});
const single = Math.min(n, 5000);
const lat: number[] = [];
for (let i = 0; i < single; i++) {
  const t = performance.now();
  await store.appendAudit([entry(i)]);
  lat.push(performance.now() - t);
}
lat.sort((a, b) => a - b);
const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(3);
console.log(`append, one entry per call (${single} calls): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
const t0 = performance.now();
for (let i = single; i < n; i += 500) await store.appendAudit(Array.from({ length: Math.min(500, n - i) }, (_, k) => entry(i + k)));
console.log(`append in batches of 500: ${Math.round((n - single) / ((performance.now() - t0) / 1000))} entries/s`);
const rss0 = process.memoryUsage().rss;
const v = await verifyAuditChain(store);
console.log(`verify ${v.entries} entries: ${v.ms} ms (${Math.round(v.entries / (v.ms / 1000))} entries/s), ok=${v.ok}, RSS +${Math.round((process.memoryUsage().rss - rss0) / 1e6)} MB`);
await store.close();
const bytes = statSync(path.join(dir, 'metadata.db')).size + (existsSync(path.join(dir, 'metadata.db-wal')) ? statSync(path.join(dir, 'metadata.db-wal')).size : 0);
console.log(`store size: ${(bytes / 1e6).toFixed(1)} MB for ${n} entries (${Math.round(bytes / n)} bytes an entry, indexes included)`);
rmSync(dir, { recursive: true, force: true });
