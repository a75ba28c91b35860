/**
 * docs/api.md describes the HTTP API: every route it names exists, every route the server has is in it, each
 * route asks for the role the doc gives it (checked with real keys on a server with auth on), and every metric
 * it lists is exported with the type and labels it says.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/security/index.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const doc = readFileSync(path.join(repoRoot, 'docs', 'api.md'), 'utf8');

type Role = 'viewer' | 'predictor' | 'deployer' | 'admin';
const ROLES: Role[] = ['viewer', 'predictor', 'deployer', 'admin'];

interface DocRoute {
  method: string;
  /** Fastify's pattern, as in the server's route table: `/api/v1/models/:name`. */
  url: string;
  /** The least role the doc gives; `null` for an open route; undefined where the doc gives none. */
  role?: Role | null;
  /** Where in api.md. */
  where: string;
}

/**
 * A documented path as Fastify patterns: `{x}` → `:x`, `[/versions/{v}]` → with and without, query strings
 * dropped, `{name}:predict` → the `:target` segment the server splits.
 */
function patterns(docPath: string): string[] {
  const noQuery = docPath.replace(/\[\?[^\]]*\]/g, '').replace(/\?.*$/, '');
  const optional = /\[([^\]]+)\]/.exec(noQuery);
  const variants = optional ? [noQuery.replace(optional[0], ''), noQuery.replace(optional[0], optional[1]!)] : [noQuery];
  return variants.map((v) => v.replace(/\{[^}]+\}:predict$/, ':target').replace(/\{[^}]+\}/g, ':p'));
}

/** Params renamed alike, so doc and server patterns compare; `:target` is the `{name}:predict` segment. */
const shape = (url: string) => url.replace(/:(?!target$)[A-Za-z]+/g, ':p');

/** Every `METHOD /path` the doc names: table rows (with their role column when the table has one) and inline code. */
function docRoutes(markdown: string): DocRoute[] {
  const out: DocRoute[] = [];
  let section = '';
  let roleColumn = -1;
  let fenced = false;
  for (const [i, line] of markdown.split('\n').entries()) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    if (line.startsWith('## ')) section = line.slice(3);
    const cells = line.startsWith('|') ? line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()) : [];
    if (cells[0] === 'method') roleColumn = cells.indexOf('role');
    if (cells.length > 0 && /^(GET|POST|PUT|DELETE)$/.test(cells[0]!)) {
      const p = /^`([^`]+)`/.exec(cells[1]!)?.[1];
      if (!p) continue;
      const role = roleColumn >= 0 ? (cells[roleColumn] as Role) : undefined;
      for (const url of patterns(p)) out.push({ method: cells[0]!, url, ...(role ? { role } : {}), where: `api.md:${i + 1} (${section})` });
      // `GET /v2` (and `/v2/`)
      if (cells[1]!.includes('(and `/v2/`)')) out.push({ method: 'GET', url: '/v2/', where: `api.md:${i + 1}` });
      continue;
    }
    for (const m of line.matchAll(/`(GET|POST|PUT|DELETE) (\/[^`\s]*)/g)) {
      for (const url of patterns(m[2]!)) out.push({ method: m[1]!, url, where: `api.md:${i + 1} (${section})` });
    }
  }
  return out;
}

/**
 * Roles the doc gives in prose rather than in a role column: the "Authentication" section (open routes; viewer
 * reads model metadata and readiness; predictor runs inference), "Prediction log" (viewer) and "API keys" (admin).
 */
function proseRole(r: DocRoute): Role | null | undefined {
  if (r.url.startsWith('/v2/health/') || r.url === '/v2' || r.url === '/v2/' || r.url === '/metrics' || r.url === '/') return null;
  if (r.method === 'POST' && (r.url.endsWith('/infer') || r.url.startsWith('/v1/models/'))) return 'predictor';
  if (r.url.startsWith('/v2/models/')) return 'viewer';
  if (r.url.startsWith('/api/v1/predictions')) return 'viewer';
  if (r.url.startsWith('/api/v1/keys')) return 'admin';
  return undefined;
}

const documented = docRoutes(doc);

describe('docs/api.md', () => {
  let srv: TestServer;
  const secrets = {} as Record<Role, string>;

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    for (const role of ROLES) secrets[role] = (await createApiKey(srv.warden.stores.metadata, `doc-${role}`, role)).secret;
    await srv.warden.keys.reload();
  });
  afterAll(() => srv?.close());

  it('names only routes the server has', () => {
    const served = new Set(srv.warden.http.routeTable.map((r) => `${r.method} ${shape(r.url)}`));
    expect(documented.length).toBeGreaterThan(60);
    expect(documented.filter((r) => !served.has(`${r.method} ${r.url}`)).map((r) => `${r.method} ${r.url} (${r.where})`)).toEqual([]);
  });

  it('names every route the server has', () => {
    const named = new Set(documented.map((r) => `${r.method} ${r.url}`));
    // The dashboard's static files (index.html, its hashed assets) are one route each; api.md describes them together.
    const api = srv.warden.http.routeTable.filter((r) => r.url === '/' || /^\/(api|v1|v2|metrics)(\/|$)/.test(r.url));
    expect(api.filter((r) => !named.has(`${r.method} ${shape(r.url)}`)).map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });

  it('gives every route a role, and each route asks for exactly that role', async () => {
    const wrong: string[] = [];
    const checked = new Set<string>();
    for (const r of documented) {
      const role = r.role !== undefined ? r.role : proseRole(r);
      const id = `${r.method} ${r.url}`;
      if (role === undefined) {
        // Named in prose with no role; its table row (or prose rule) must give one.
        if (!documented.some((d) => `${d.method} ${d.url}` === id && (d.role !== undefined || proseRole(d) !== undefined))) wrong.push(`${id}: no role in the doc (${r.where})`);
        continue;
      }
      if (checked.has(id)) continue;
      checked.add(id);
      // Concrete values for the params; a request that gets past the guard then fails on them (404, 400) at worst.
      const url = r.url.replace(':target', 'doc-probe:predict').replace(/:p/g, 'doc-probe');
      const send = async (key?: string) => {
        const res = await fetch(`${srv.url}${url}`, {
          method: r.method,
          headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(r.method === 'POST' || r.method === 'PUT' ? { 'content-type': 'application/json' } : {}) },
          ...(r.method === 'POST' || r.method === 'PUT' ? { body: '{}' } : {}),
        });
        await res.arrayBuffer();
        return res.status;
      };
      const anonymous = await send();
      if (role === null) {
        if (anonymous === 401 || anonymous === 403) wrong.push(`${id}: documented as open, got ${anonymous} without a key`);
        continue;
      }
      if (anonymous !== 401) wrong.push(`${id}: needs ${role}, got ${anonymous} without a key`);
      const below = ROLES[ROLES.indexOf(role) - 1];
      if (below) {
        const s = await send(secrets[below]);
        if (s !== 403) wrong.push(`${id}: needs ${role}, got ${s} with a ${below} key`);
      }
      const s = await send(secrets[role]);
      if (s === 401 || s === 403) wrong.push(`${id}: needs ${role}, got ${s} with a ${role} key`);
    }
    expect(wrong).toEqual([]);
  });

  it('lists metrics that are exported, with their type and labels', async () => {
    const table = doc.slice(doc.indexOf('## Metrics'));
    const rows = [...table.matchAll(/^\| `(warden_[a-z_]+)` \| (\w+) \|(.*)\|$/gm)];
    expect(rows.length).toBeGreaterThan(8);
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    for (const [, name, type, labels] of rows) {
      expect(text, name).toContain(`# TYPE ${name} ${type}`);
      const documentedLabels = [...labels!.replace(/\([^)]*\)/g, '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
      const metric = srv.warden.metrics.registry.getSingleMetric(name!) as unknown as { labelNames?: string[] } | undefined;
      expect([...(metric?.labelNames ?? [])].sort(), name).toEqual(documentedLabels.sort());
    }
  });

  it('names only metrics that are exported', async () => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    const named = new Set([...doc.matchAll(/`(warden_[a-z_]+)`/g)].map((m) => m[1]!));
    expect([...named].filter((n) => !text.includes(`# TYPE ${n} `))).toEqual([]);
  });
});
