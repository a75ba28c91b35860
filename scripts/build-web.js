#!/usr/bin/env node
// Builds the dashboard (web/ → web/dist) with Vite when the build is missing or older than its sources.
// Run by `npm install` (prepare), `npm start` (prestart) and `npm run build:web`; `--force` always builds.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'web');
const built = path.join(web, 'dist', 'index.html');

function newest(p) {
  if (!existsSync(p)) return 0;
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  let m = 0;
  for (const e of readdirSync(p)) m = Math.max(m, newest(path.join(p, e)));
  return m;
}

const sources = Math.max(newest(path.join(web, 'src')), newest(path.join(web, 'public')), newest(path.join(web, 'index.html')), newest(path.join(web, 'vite.config.ts')));
const force = process.argv.includes('--force');
if (!force && existsSync(built) && statSync(built).mtimeMs >= sources) {
  process.exit(0);
}
let vite;
try {
  vite = await import('vite');
} catch (e) {
  process.stderr.write(`warden: cannot build the dashboard: vite is not installed (${e.message}); run npm install\n`);
  process.exit(1);
}
const t0 = performance.now();
process.stdout.write('warden: building the dashboard (web/ → web/dist) … ');
try {
  await vite.build({ configFile: path.join(web, 'vite.config.ts'), logLevel: 'warn' });
} catch (e) {
  process.stdout.write('failed\n');
  process.stderr.write(`warden: the dashboard build failed: ${e.message}\n`);
  process.exit(1);
}
process.stdout.write(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
