import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../helpers/server.ts';

/**
 * Browser tests drive Debian's Chromium (installed by .ci/run) through playwright-core; nothing is downloaded.
 * Set CHROMIUM_PATH to use another binary. Without one the e2e suites are skipped with the reason printed.
 */
export const chromiumPath = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Where every view's screenshot is written (a CI artifact; docs/dashboard.md shows copies from docs/img). */
export const artifactsDir = path.join(repoRoot, 'test-artifacts', 'screenshots');

export interface BrowserSession {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console errors and CSP violations the page reported: a test asserts there are none. */
  problems: string[];
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with the flags this sandbox needs (no background networking: the machine has no
 * network beyond loopback) and a fresh profile, and opens one page that records console errors and failed loads.
 */
export async function openBrowser(opts: { colorScheme?: 'light' | 'dark'; viewport?: { width: number; height: number } } = {}): Promise<BrowserSession> {
  if (!chromiumPath) throw new Error('no Chromium: install Debian package chromium (or set CHROMIUM_PATH)');
  // Playwright gives launch() a fresh temporary profile of its own (it refuses a --user-data-dir argument).
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1400, height: 1000 }, colorScheme: opts.colorScheme ?? 'light' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return {
    browser,
    context,
    page,
    problems,
    async close() {
      await browser.close();
    },
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * Runs axe-core in the page (WCAG 2.1 A and AA rules plus best practices) and returns its violations. axe is
 * injected through the DevTools protocol (addScriptTag would be refused by the page's CSP, as it should be).
 */
export async function axe(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    // axe is defined on window by the script evaluated above.
    const w = window as unknown as { axe: { run: (ctx: Document, o: unknown) => Promise<{ violations: AxeViolation[] }> } };
    const r = await w.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
}

/** One line per violation, for an assertion message a person can act on. */
export function describeViolations(vs: AxeViolation[]): string {
  return vs.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`).join('\n');
}

/** Saves a full-page screenshot as test-artifacts/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(artifactsDir, { recursive: true });
  const file = path.join(artifactsDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * The first screen (the viewport, not the full page) for docs/img/dashboard-<name>.png. Written there only with
 * WARDEN_DOCS_SCREENSHOTS=1 (`WARDEN_DOCS_SCREENSHOTS=1 npm test` refreshes the docs' pictures), so that a plain
 * `npm test` leaves the clone unmodified; otherwise it goes to test-artifacts/screenshots/docs-<name>.png.
 */
export async function docsScreenshot(page: Page, name: string): Promise<string> {
  const docs = process.env.WARDEN_DOCS_SCREENSHOTS === '1';
  const dir = docs ? path.join(repoRoot, 'docs', 'img') : artifactsDir;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, docs ? `dashboard-${name}.png` : `docs-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/**
 * Init script that records every Content-Security-Policy violation the page raises (add it to the context before
 * loading a view); cspViolations reads them back.
 */
export const CSP_PROBE = `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`;
export const cspViolations = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
