import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Vitest global setup: builds the dashboard once, before any test file runs, when web/ sources are newer than
 * web/dist. The browser and HTTP tests serve web/dist; built here, two files running at once never rebuild it
 * under each other (Vite empties the folder first), and their own build calls find it fresh.
 */
export default function setup(): void {
  try {
    execFileSync(process.execPath, [path.join(import.meta.dirname, '..', '..', 'scripts', 'build-web.js')], { stdio: 'inherit' });
  } catch {
    // The web typecheck step reports what is wrong; the tests then run against the last build.
    console.warn('the dashboard build failed; the browser tests use the last build in web/dist');
  }
}
