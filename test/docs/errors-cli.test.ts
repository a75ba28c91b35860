/**
 * docs/errors.md ("In the CLI") says what `warden` prints and how it exits when something fails. Each row of that
 * table is run here: the line on stderr must be the one the doc shows (its examples are taken from the doc
 * itself) and the exit code the one it gives.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWarden } from '../helpers/cli.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const doc = readFileSync(path.join(repoRoot, 'docs', 'errors.md'), 'utf8');
const cliSection = doc.slice(doc.indexOf('## In the CLI'), doc.indexOf('## Codes'));

/** The `e.g.` examples of the doc's CLI table, which the CLI must print verbatim. */
const examples = [...cliSection.matchAll(/e\.g\. `([^`]+)`/g)].map((m) => m[1]!);

/** A port nothing listens on: bound once by the OS, then closed. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('docs/errors.md: the CLI error lines', () => {
  let srv: TestServer;
  let failing: Server;
  let failingUrl: string;
  let dataDir: string;

  beforeAll(async () => {
    srv = await startTestServer();
    // A server that fails every request the way Warden's 5xx answers look.
    failing = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'an unexpected server error; the log has the details under the request id', code: 'WARDEN_INTERNAL' }));
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
    dataDir = mkdtempSync(path.join(tmpdir(), 'warden-errors-cli-'));
  });

  afterAll(async () => {
    await srv?.close();
    await new Promise<void>((resolve) => (failing ? failing.close(() => resolve()) : resolve()));
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** The doc's example that starts with `prefix`. */
  const example = (prefix: string) => {
    const found = examples.find((e) => e.startsWith(prefix));
    expect(found, `docs/errors.md has no CLI example starting with ${prefix}; examples: ${examples.join(' | ')}`).toBeDefined();
    return found!;
  };

  it('a server error answer: METHOD PATH → STATUS: CODE: message, exit 2 for a 4xx', async () => {
    const r = await runWarden(['models', 'get', 'nope'], { WARDEN_URL: srv.url });
    expect(r.stderr).toBe(`${example('warden: GET /api/v1/models/nope')}\n`);
    expect(r.code).toBe(2);
  });

  it('a server error answer with a 5xx exits 1', async () => {
    const r = await runWarden(['models', 'list'], { WARDEN_URL: failingUrl });
    expect(r.stderr).toBe('warden: GET /api/v1/models → 500: WARDEN_INTERNAL: an unexpected server error; the log has the details under the request id\n');
    expect(r.code).toBe(1);
  });

  it('a local error with a code: CODE: message (WARDEN_CONFIG_INVALID is a 500: exit 1)', async () => {
    const r = await runWarden(['serve', '--data-dir', dataDir, '--port', '0'], { WARDEN_PORT: 'abc' });
    expect(r.stderr).toBe(`${example('warden: WARDEN_CONFIG_INVALID')}\n`);
    expect(r.code).toBe(1);
  });

  it('warden train: error: message without the code, exit 2', async () => {
    const r = await runWarden(['train', '--csv', path.join(dataDir, 'missing.csv'), '--target', 'cnt', '--model', 'linear', '--out', path.join(dataDir, 'm.onnx')]);
    expect(r.stderr).toMatch(/^error: cannot read CSV .*missing\.csv: file not found\n$/);
    expect(r.stderr).not.toContain('WARDEN_');
    expect(r.code).toBe(2);
  });

  it('another local problem: warden: message, exit 2', async () => {
    const r = await runWarden(['slo', 'export', '--format', 'foo'], { WARDEN_URL: srv.url });
    expect(r.stderr).toBe(`${example('warden: --format foo')}\n`);
    expect(r.code).toBe(2);
    const unreadable = await runWarden(['push', path.join(dataDir, 'missing.onnx'), '--model', 'm'], { WARDEN_URL: srv.url });
    expect(unreadable.stderr).toMatch(/^warden: cannot read .*missing\.onnx: ENOENT/);
    expect(unreadable.code).toBe(2);
  });

  it('no server at the URL: exit 1', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await runWarden(['models', 'list'], { WARDEN_URL: url });
    // The doc's example is for the default URL; the test's server-less URL stands in for it.
    expect(r.stderr).toBe(`${example('warden: cannot reach Warden').replace('http://127.0.0.1:8080', url)}\n`);
    expect(r.code).toBe(1);
  });

  it("usage mistakes: commander's error: … with the command's help, exit 1", async () => {
    for (const args of [['frobnicate'], ['push'], ['models', 'get'], ['models', 'list', '--bogus']]) {
      const r = await runWarden(args);
      expect(r.stderr, args.join(' ')).toMatch(/^error: /);
      expect(r.stderr, args.join(' ')).toContain('Usage: warden');
      expect(r.code, args.join(' ')).toBe(1);
    }
  });

  it('every example of the table is checked above', () => {
    expect(examples).toHaveLength(4);
  });
});
