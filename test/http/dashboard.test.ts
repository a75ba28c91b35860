/**
 * The dashboard as the server serves it, without a browser: index.html and every built asset with the strict CSP
 * and the other security headers; no inline script, style or handler in index.html; 503 naming the fix when the
 * build is missing; unknown paths keep Warden's JSON 404; and why cross-site requests (CSRF) get nowhere when
 * auth is required: credentials travel only in headers the page sets, never in a cookie, a URL or a form.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/security/index.ts';
import { DASHBOARD_CSP, dashboardDir, registerDashboard } from '../../src/http/dashboard.ts';
import { errorHandler } from '../../src/http/errors.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

/** Spelled out rather than imported: a change to the policy must be a change to this test too. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Tag {
  name: string;
  closing: boolean;
  attrs: Map<string, string>;
  /** Index just past the tag. */
  end: number;
}

/**
 * A small HTML tag tokenizer (no HTML parser is installed): enough for Vite's index.html, and strict enough that
 * an attribute it cannot read fails the test instead of hiding a handler.
 */
function tags(html: string): Tag[] {
  const out: Tag[] = [];
  const tagRe = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*\/?>/g;
  const attrRe = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const body = html.replace(/<!--[\s\S]*?-->/g, (c) => ' '.repeat(c.length)).replace(/<!doctype[^>]*>/i, (c) => ' '.repeat(c.length));
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = tagRe.exec(body))) {
    // Every '<' between two tags must itself start a tag: otherwise the tokenizer missed something.
    expect(body.slice(last, m.index), 'text between tags').not.toContain('<');
    const attrs = new Map<string, string>();
    for (const a of m[3]!.matchAll(attrRe)) attrs.set(a[1]!.toLowerCase(), a[2] ?? a[3] ?? a[4] ?? '');
    out.push({ name: m[2]!.toLowerCase(), closing: m[1] === '/', attrs, end: tagRe.lastIndex });
    last = tagRe.lastIndex;
    if (m[2]!.toLowerCase() === 'script' && m[1] !== '/') {
      // Script content is raw text up to </script>: keep it for the inline check and skip past it.
      const close = body.toLowerCase().indexOf('</script', tagRe.lastIndex);
      expect(close, 'script closed').toBeGreaterThan(0);
      out.push({ name: '#script-text', closing: false, attrs: new Map([['text', body.slice(tagRe.lastIndex, close)]]), end: close });
      tagRe.lastIndex = close;
      last = close;
    }
  }
  expect(body.slice(last), 'text after the last tag').not.toContain('<');
  return out;
}

function buildDashboard(): void {
  try {
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'build-web.js')], { stdio: 'inherit' });
  } catch {
    console.warn('the dashboard build failed; testing the last build in web/dist');
  }
}

function expectSecurityHeaders(h: Headers, what: string): void {
  expect(h.get('content-security-policy'), what).toBe(CSP);
  expect(h.get('x-content-type-options'), what).toBe('nosniff');
  expect(h.get('x-frame-options'), what).toBe('DENY');
  expect(h.get('referrer-policy'), what).toBe('no-referrer');
  expect(h.get('cross-origin-opener-policy'), what).toBe('same-origin');
  expect(h.get('set-cookie'), what).toBeNull();
}

describe('the dashboard as served', () => {
  let srv: TestServer;
  let html: string;

  beforeAll(async () => {
    buildDashboard();
    srv = await startTestServer();
    const res = await fetch(`${srv.url}/`);
    html = await res.text();
  });
  afterAll(async () => srv?.close());

  it('the source of truth and this test agree on the policy', () => {
    expect(DASHBOARD_CSP).toBe(CSP);
  });

  it('serves index.html at / with the strict CSP, nosniff, no framing, and revalidation', async () => {
    const res = await fetch(`${srv.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expectSecurityHeaders(res.headers, 'GET /');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toBe(readFileSync(path.join(dashboardDir, 'index.html'), 'utf8'));
    const again = await fetch(`${srv.url}/index.html`);
    expect(again.status).toBe(200);
    expectSecurityHeaders(again.headers, 'GET /index.html');
  });

  it('index.html has no inline script, style or event handler; every script and stylesheet is a file of this origin', () => {
    const ts = tags(html);
    const scripts = ts.filter((t) => t.name === 'script' && !t.closing);
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) expect(s.attrs.get('src'), 'script has a src').toMatch(/^\/assets\/[\w.-]+\.js$/);
    for (const t of ts.filter((x) => x.name === '#script-text')) expect(t.attrs.get('text')!.trim(), 'inline script').toBe('');
    expect(ts.some((t) => t.name === 'style'), '<style> element').toBe(false);
    for (const t of ts) {
      for (const [k, v] of t.attrs) {
        if (t.name === '#script-text') continue;
        expect(k, `<${t.name}> attribute`).not.toBe('style');
        expect(k.startsWith('on'), `<${t.name} ${k}>: inline handler`).toBe(false);
        expect(v.trim().toLowerCase().startsWith('javascript:'), `<${t.name} ${k}="${v}">`).toBe(false);
      }
    }
    const sheets = ts.filter((t) => t.name === 'link' && t.attrs.get('rel') === 'stylesheet');
    expect(sheets.length).toBeGreaterThan(0);
    for (const l of sheets) expect(l.attrs.get('href')).toMatch(/^\/assets\/[\w.-]+\.css$/);
  });

  it('serves every built asset with the CSP and a year of immutable caching, and the ones index.html names exist', async () => {
    const assets = readdirSync(path.join(dashboardDir, 'assets'));
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true);
    for (const a of assets) {
      const res = await fetch(`${srv.url}/assets/${a}`);
      expect(res.status, a).toBe(200);
      expectSecurityHeaders(res.headers, a);
      expect(res.headers.get('cache-control'), a).toBe('public, max-age=31536000, immutable');
      if (a.endsWith('.js')) expect(res.headers.get('content-type'), a).toMatch(/javascript/);
      if (a.endsWith('.css')) expect(res.headers.get('content-type'), a).toMatch(/^text\/css/);
      expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(path.join(dashboardDir, 'assets', a))), a).toBe(true);
    }
    const named = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(0);
    for (const n of named) expect(assets, n).toContain(n.slice('/assets/'.length));
  });

  it('keeps Warden 404 JSON for unknown paths, including under /assets/', async () => {
    for (const p of ['/nope', '/assets/nope.js', '/dashboard', '/api/v1/nope']) {
      const res = await fetch(`${srv.url}${p}`);
      expect(res.status, p).toBe(404);
      expect(res.headers.get('content-type'), p).toMatch(/^application\/json/);
      const body = (await res.json()) as { code: string; error: string };
      expect(body.code, p).toBe('WARDEN_NOT_FOUND');
      expect(body.error, p).toContain(p);
    }
  });
});

describe('without a build', () => {
  it('answers / with 503 WARDEN_DASHBOARD_NOT_BUILT saying how to build it, and keeps the 404s', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-nodist-'));
    const app = Fastify();
    app.setErrorHandler(errorHandler(1 << 20));
    registerDashboard(app, dir);
    try {
      const res = await app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(503);
      const body = res.json() as { code: string; error: string };
      expect(body.code).toBe('WARDEN_DASHBOARD_NOT_BUILT');
      expect(body.error).toContain('npm run build:web');
      expect(body.error).toContain(path.join(dir, 'index.html'));
      expect((await app.inject({ method: 'GET', url: '/assets/index.js' })).statusCode).toBe(404);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves a build that appears in a directory given to it (the files present when the server starts)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-dist-'));
    writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
    const app = Fastify();
    registerDashboard(app, dir);
    try {
      const res = await app.inject({ method: 'GET', url: '/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-security-policy']).toBe(CSP);
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cross-site requests with auth required (CSRF)', () => {
  let srv: TestServer;
  let admin: string;

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    admin = (await createApiKey(srv.warden.stores.metadata, 'root', 'admin')).secret;
    await srv.warden.keys.reload();
  });
  afterAll(async () => srv?.close());

  /** What a form on another site can send: no custom header, so no key; cookies would ride along, but Warden sets none. */
  const formPost = (p: string, body: string, extra: Record<string, string> = {}) =>
    fetch(`${srv.url}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', ...extra },
      body,
    });

  it('refuses a cross-site form POST to state-changing routes with 401: the key is only ever in a header', async () => {
    for (const [p, body] of [
      ['/api/v1/keys', '{"name":"mallory","role":"admin"}'],
      ['/api/v1/models', '{"name":"planted"}'],
      ['/api/v1/review/items/1/claim', '{"reviewer":"mallory"}'],
      ['/api/v1/labels', '{"labels":[]}'],
      ['/api/v1/alerts/silences', 'comment=mallory'],
      ['/api/v1/deployments/bike/rollout/promote', ''],
      ['/api/v1/deployments/bike/rollout/abort', ''],
    ] as const) {
      const res = await formPost(p, body);
      expect(res.status, p).toBe(401);
      expect(((await res.json()) as { code: string }).code, p).toBe('WARDEN_UNAUTHENTICATED');
    }
    // Nothing was created.
    const models = await srv.json('GET', '/api/v1/models', undefined, { authorization: `Bearer ${admin}` });
    expect(models.body.models).toEqual([]);
    const keys = await srv.json('GET', '/api/v1/keys', undefined, { authorization: `Bearer ${admin}` });
    expect(keys.body.keys.map((k: { name: string }) => k.name)).toEqual(['root']);
  });

  it('takes a key from no cookie and no query string, only from authorization or x-api-key', async () => {
    for (const cookie of [`warden.apiKey=${admin}`, `authorization=Bearer ${admin}`, `api_key=${admin}`]) {
      expect((await formPost('/api/v1/models', '{"name":"planted"}', { cookie })).status, cookie).toBe(401);
    }
    for (const q of ['api_key', 'key', 'token', 'access_token']) {
      expect((await fetch(`${srv.url}/api/v1/models?${q}=${encodeURIComponent(admin)}`)).status, q).toBe(401);
    }
    // The page's own way works: a header it sets on a same-origin fetch.
    expect((await fetch(`${srv.url}/api/v1/session`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
  });

  it('allows no cross-origin reads: no CORS headers, so a page elsewhere can neither read answers nor send the header', async () => {
    const res = await fetch(`${srv.url}/api/v1/session`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('set-cookie')).toBeNull();
    // The preflight a browser sends before a cross-site request with an authorization header is not granted.
    const pre = await fetch(`${srv.url}/api/v1/models`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(pre.status).toBeGreaterThanOrEqual(400);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
  });
});

describe('cross-site requests with auth off (the loopback demo)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(async () => srv?.close());

  const post = (headers: Record<string, string>, name: string) =>
    fetch(`${srv.url}/api/v1/models`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: JSON.stringify({ name }) });

  it('refuses a keyless change sent by a page on another site (form or no-cors fetch), so no key does not mean CSRF', async () => {
    for (const [h, name] of [
      [{ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, 'a'],
      // Another port on localhost is another origin of the same site: still refused.
      [{ origin: 'http://127.0.0.1:3000', 'sec-fetch-site': 'same-site' }, 'b'],
      // An older browser without Fetch Metadata still sends its origin.
      [{ origin: 'https://evil.example' }, 'c'],
      [{ origin: 'null' }, 'd'],
    ] as const) {
      const res = await post(h, name);
      expect(res.status, JSON.stringify(h)).toBe(403);
      const body = (await res.json()) as { code: string; error: string };
      expect(body.code).toBe('WARDEN_FORBIDDEN');
      expect(body.error).toContain('another site');
    }
    expect((await srv.json('GET', '/api/v1/models')).body.models).toEqual([]);
  });

  it('takes the dashboard own requests, scripts without browser headers, and cross-site navigations', async () => {
    const host = new URL(srv.url).host;
    expect((await post({ origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, 'from-dashboard')).status).toBe(201);
    expect((await post({}, 'from-curl')).status).toBe(201);
    expect((await post({ origin: `http://${host}` }, 'same-origin-old-browser')).status).toBe(201);
    const nav = await fetch(`${srv.url}/`, { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } });
    expect(nav.status).toBe(200);
    expect((await srv.json('GET', '/api/v1/models')).body.models.map((m: { name: string }) => m.name).sort()).toEqual(['from-curl', 'from-dashboard', 'same-origin-old-browser']);
  });
});
