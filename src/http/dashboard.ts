import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { WardenError } from '../errors.ts';

/** Where `vite build` writes the dashboard (web/vite.config.ts). */
export const dashboardDir = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/**
 * The dashboard's pages may load scripts, styles, images and data only from this origin: no inline script or
 * style, no eval, no framing (clickjacking), no form posts anywhere. Every API call is a fetch with the key in an
 * `authorization` header the page sets itself, so no cookie is ever sent and a cross-site request carries nothing.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the built dashboard at `/` from web/dist (built by `npm install`'s prepare step and again by `npm start`
 * when its sources changed). Files are registered one route each when the server starts (no wildcard route), so
 * unknown paths keep Warden's 404 and the route table lists what is served. Without a build, `/` answers 503
 * saying how to build it.
 */
export function registerDashboard(app: FastifyInstance, dir = dashboardDir): void {
  const secure = (reply: { header: (k: string, v: string) => unknown }) => {
    reply.header('content-security-policy', DASHBOARD_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
  };
  if (!existsSync(path.join(dir, 'index.html'))) {
    app.get('/', async () => {
      throw new WardenError('WARDEN_DASHBOARD_NOT_BUILT', `the dashboard is not built (no ${path.join(dir, 'index.html')}); run "npm run build:web" (npm install and npm start do it)`);
    });
    return;
  }
  // Fastify loads plugins when the server becomes ready, so this stays synchronous like the other routes.
  void app.register(fastifyStatic, {
    root: dir,
    wildcard: false,
    cacheControl: false,
    index: ['index.html'],
    // Hashed asset names change with their content; index.html names them, so it is revalidated every time.
    setHeaders: (res, file) => {
      secure({ header: (k, v) => res.setHeader(k, v) });
      res.setHeader('cache-control', /[\\/]assets[\\/]/.test(file) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
}
