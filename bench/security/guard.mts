/**
 * The request guard's cost per request (docs/benchmarks.md#request-guard): the onRequest hook of the inference route
 * called in a loop with a request object as Fastify hands it over (headers, parsed params), no sockets, so what is
 * measured is the guard alone. Cases:
 *
 * - `guard before issue 15`: the accepted path as it was (header, sha256, map lookup, role), inlined;
 * - `guard, key, no limits`: the whole hook with an unscoped key (lookup, constant-time digest compare, expiry, role,
 *   last-use note);
 * - `guard, scoped key + key and deployment limits`: the same with a scope check and both token buckets;
 * - `guard, auth off, deployment limit`: a keyless request on a loopback server with a deployment limit;
 * - `buckets alone`: RateLimiter.takeKey + takeDeployment;
 * - `guard, key, cost caps on (another deployment capped)`: the key path with cost caps in force elsewhere, so each
 *   request pays the cap lookup (src/cost: a Map get) and passes;
 * - `guard, key, key and deployment quotas`: the key path with a daily quota on the key and the deployment (high
 *   enough never to refuse), so each request is checked and counted against both.
 *
 * Limits are high enough (1e9/s) never to refuse, so every iteration takes the accepted path. Also prints the heap
 * held per rate-limit bucket (100,000 keys).
 *
 *   node --import tsx --expose-gc bench/security/guard.mts [--iterations 1000000] [--rounds 7]
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseConfig } from '../../src/config.ts';
import { makeGuard, modelOfRequest, type BudgetCaps } from '../../src/http/auth.ts';
import type { UploadSlots } from '../../src/http/body.ts';
import { createApiKey, KeyRing, QuotaCounter, RateLimiter, roleAllows } from '../../src/security/index.ts';
import type { ApiKeyRecord, MetadataStore, RateLimitRecord } from '../../src/storage/index.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ITER = arg('iterations', 1_000_000);
const ROUNDS = arg('rounds', 7);

/** A store of the few calls the guard's parts make. */
function fakeStore(keys: ApiKeyRecord[], limits: RateLimitRecord[] = []): MetadataStore {
  const store = {
    createApiKey: async (k: ApiKeyRecord) => void keys.push(k),
    getModel: async (name: string) => ({ name, description: '', createdAt: 0 }),
    listApiKeys: async () => keys,
    touchApiKeys: async () => undefined,
    listRateLimits: async () => limits,
  };
  return store as unknown as MetadataStore;
}

const uploads = { takeUploadSlot: () => undefined } as unknown as UploadSlots;
const reply = { header: () => reply } as unknown as FastifyReply;

const records: ApiKeyRecord[] = [];
const store = fakeStore(records);
const plain = await createApiKey(store, 'plain', 'predictor');
const scoped = await createApiKey(store, 'scoped', 'predictor', { scopes: ['bike', 'taxi'] });
// A realistic ring: 1,000 other keys.
for (let i = 0; i < 1000; i++) await createApiKey(store, `k${i}`, 'viewer');
const ring = new KeyRing(store, { lastUsedFlushMs: 3_600_000 });
await ring.reload();

const high = { rate: 1e9, burst: 1e9 };
const noLimits = new RateLimiter({ store, config: parseConfig({}).rateLimits });
// Past the config's bounds on purpose (the class takes them as given), so no iteration is refused.
const limits = new RateLimiter({ store, config: { ...parseConfig({}).rateLimits, key: high, deployment: high } });

const request = (secret: string | undefined) =>
  ({ headers: secret ? { authorization: `Bearer ${secret}` } : {}, params: { name: 'bike' }, method: 'POST' }) as unknown as FastifyRequest;

let refused = 0;
const done = (err?: Error) => {
  if (err) refused++;
};

function time(label: string, fn: () => void): number {
  const best: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITER; i++) fn();
    best.push(Number(process.hrtime.bigint() - t0) / ITER);
  }
  best.sort((a, b) => a - b);
  const median = best[Math.floor(best.length / 2)]!;
  console.log(`${label.padEnd(52)} ${median.toFixed(0).padStart(6)} ns/request (median of ${ROUNDS} × ${ITER.toLocaleString('en')}; best ${best[0]!.toFixed(0)})`);
  return median;
}

// The guard's accepted path as it was before issue 15 (src/http/auth.ts at 410f3b7), inlined: header, sha256, lookup,
// role, done. Same request object, same closures.
const plainReq = request(plain.secret);
const byHash = new Map(records.map((k) => [k.hash, k]));
const presentedKey = (req: FastifyRequest): string | undefined => {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
};
const oldHook = (req: FastifyRequest, _reply: FastifyReply, cb: (err?: Error) => void) => {
  const secret = presentedKey(req);
  if (!secret) return cb();
  const key = byHash.get(createHash('sha256').update(secret).digest('hex'));
  if (!key) return cb(new Error('unknown'));
  req.apiKey = key;
  if (!roleAllows(key.role, 'predictor')) return cb(new Error('forbidden'));
  cb();
};
const before = time('guard before issue 15 (key, role)', () => oldHook(plainReq, reply, done));

const hook = (limiter: RateLimiter, required: boolean, caps?: BudgetCaps, quotas?: QuotaCounter) => makeGuard(ring, required, uploads, limiter, caps, quotas)('predictor', { scope: modelOfRequest, deploymentLimit: true });
const scopedReq = request(scoped.secret);
const keyless = request(undefined);
const h1 = hook(noLimits, true);
const keyOnly = time('guard, key, no limits', () => h1(plainReq, reply, done));
const h2 = hook(limits, true);
const full = time('guard, scoped key + key and deployment limits', () => h2(scopedReq, reply, done));
const h3 = hook(limits, false);
const open = time('guard, auth off, deployment limit', () => h3(keyless, reply, done));
// Caps as CostMeter.capOf keeps them: a Map of the deployments past their budget, here another one.
const capped = new Map([['taxi', { action: 'throttle' as const, period: 'day' as const, until: Date.now() + 3_600_000 }]]);
const caps: BudgetCaps = { capOf: (d) => (capped.size === 0 ? undefined : capped.get(d)), countRefused: () => undefined };
const h4 = hook(noLimits, true, caps);
const withCaps = time('guard, key, cost caps on (another deployment capped)', () => h4(plainReq, reply, done));
const h5 = hook(noLimits, false);
const openPlain = time('guard, auth off, no limits, no caps', () => h5(keyless, reply, done));
const h6 = hook(noLimits, false, caps);
const openCaps = time('guard, auth off, cost caps on (another capped)', () => h6(keyless, reply, done));
const quotaStore = { listQuotas: async () => [], addQuotaUsage: async () => undefined, quotaUsage: async () => [], pruneQuotaUsage: async () => 0 };
const quotas = new QuotaCounter({ store: quotaStore, config: { ...parseConfig({}).quotas, key: { perDay: 1e12 }, deployment: { perDay: 1e12 } } });
const h7 = hook(noLimits, true, undefined, quotas);
const withQuotas = time('guard, key, key and deployment quotas', () => h7(plainReq, reply, done));
const h8 = hook(noLimits, false, undefined, quotas);
const openQuotas = time('guard, auth off, deployment quota', () => h8(keyless, reply, done));
let sink = 0;
const now = Date.now();
const buckets = time('buckets alone (takeKey + takeDeployment)', () => {
  sink += limits.takeKey('k', now) + limits.takeDeployment('bike', now);
});

console.log(`\nadded by issue 15 per request with a key: ${(keyOnly - before).toFixed(0)} ns without limits, ${(full - before).toFixed(0)} ns with scope and both limits`);
console.log(`keyless with a deployment limit: ${open.toFixed(0)} ns; buckets alone ${buckets.toFixed(0)} ns`);
console.log(`cost caps on: ${(withCaps - keyOnly).toFixed(0)} ns more than the key path without them (noisy: sha256 dominates); keyless ${(openCaps - openPlain).toFixed(0)} ns more (${openPlain.toFixed(0)} → ${openCaps.toFixed(0)} ns)`);
console.log(`quotas: ${(withQuotas - keyOnly).toFixed(0)} ns more than the key path without them; keyless ${(openQuotas - openPlain).toFixed(0)} ns more (${openPlain.toFixed(0)} → ${openQuotas.toFixed(0)} ns)`);
console.log(`refused during the run: ${refused} (must be 0)`);

// Heap per bucket: 100,000 keys, one token each.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  const many = new RateLimiter({ store, config: { ...parseConfig({}).rateLimits, key: high, maxBuckets: 200_000 } });
  const ids = Array.from({ length: 100_000 }, (_, i) => `key${String(i).padStart(8, '0')}`);
  gc();
  const h0 = process.memoryUsage().heapUsed;
  for (const id of ids) many.takeKey(id, now);
  gc();
  if (many.bucketCount().key !== ids.length) throw new Error('buckets were dropped');
  console.log(`heap per bucket: ${((process.memoryUsage().heapUsed - h0) / ids.length).toFixed(0)} bytes (100,000 buckets; key strings not counted)`);
} else {
  console.log('run with --expose-gc for the heap per bucket');
}
if (sink < 0) console.log(sink);
