/**
 * The `warden` CLI end to end: every case spawns the real binary (`node bin/warden.js`, which
 * registers tsx, so no build) from the repo root. Client commands talk to a server started in this
 * process with startTestServer(); `serve` is spawned as its own process. docs/cli.md is the contract:
 * errors print one line `warden: …` and exit 2 for bad input (4xx), 1 otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot, fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

const BIN = path.join(repoRoot, 'bin', 'warden.js');
const VERSION = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const GBR = path.join(fixturesDir, 'models', 'bike_gbr.onnx');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without any WARDEN_* the developer's shell may carry, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_')));
  return { ...env, NO_COLOR: '1', ...extra };
}

const warden = (args: string[], extraEnv: Record<string, string> = {}) => runWarden(args, extraEnv);

/** Reads one row of a `table()` print by the header's column offsets (cells may be blank). */
function tableRow(out: string, firstCell: string): Record<string, string> | undefined {
  const [header, ...lines] = out.split('\n');
  const line = lines.find((l) => l.startsWith(`${firstCell} `) || l === firstCell);
  if (!header || !line) return undefined;
  const starts = [...header.matchAll(/(?:^|\s{2})(\S(?:\S| (?=\S))*)/g)].map((m) => ({
    name: m[1]!,
    at: m.index! + m[0].length - m[1]!.length,
  }));
  return Object.fromEntries(
    starts.map((c, i) => [c.name, line.slice(c.at, starts[i + 1]?.at ?? undefined).trim()]),
  );
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The single stderr line of a failed command; fails when there is more than one. */
function oneErrorLine(r: Result): string {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^warden: /);
  return lines[0]!;
}

describe('warden CLI against a running server', () => {
  let srv: TestServer;
  let tmp: string;
  let client: (...args: string[]) => Promise<Result>;
  let trained: string;

  beforeAll(async () => {
    srv = await startTestServer();
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-cli-'));
    trained = path.join(tmp, 'm.onnx');
    client = (...args) => warden(['--url', srv.url, ...args]);
  });
  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('train writes an ONNX model for the 2011 rows and prints its metrics and sha256', async () => {
    const r = await warden([
      'train',
      '--csv',
      'data/bike-sharing/hour.csv',
      '--where',
      'yr=0',
      '--exclude',
      'instant,dteday,casual,registered,yr',
      '--target',
      'cnt',
      '--model',
      'linear',
      '--out',
      trained,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(trained)).toBe(true);
    expect(r.stdout).toContain('trained linear model for cnt (where yr=0)');
    expect(r.stdout).toMatch(/^features: season, mnth, hr, holiday, weekday, workingday, weathersit, temp, atemp, hum, windspeed \(11\)$/m);
    expect(r.stdout).toMatch(/^holdout: +mae=[\d.]+ rmse=[\d.]+ r2=[\d.]+$/m);
    expect(r.stdout).toContain(`sha256:   ${sha256(trained)}`);
    expect(r.stderr, 'progress goes to stderr').toContain('kept 8645 rows where yr=0');
  });

  it('push registers version 1 with an alias and prints the sha256; the same bytes again are not a new version', async () => {
    const r = await client('push', trained, '--model', 'cli-bikes', '--alias', 'champion');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual(['registered cli-bikes v1', `sha256 ${sha256(trained)}`, 'alias champion → v1']);

    const again = await client('push', trained, '--model', 'cli-bikes');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already registered (same bytes) cli-bikes v1');
  });

  it('models list shows the model with its latest version and alias (text and --json)', async () => {
    const [text, json] = await Promise.all([client('models', 'list'), client('--json', 'models', 'list')]);
    expect(text.code, text.stderr).toBe(0);
    const [header, ...rows] = text.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'LATEST', 'VERSIONS', 'ALIASES', 'CREATED']);
    const row = rows.find((l) => l.startsWith('cli-bikes '));
    expect(row, text.stdout).toBeDefined();
    expect(row!.split(/\s+/).slice(0, 4)).toEqual(['cli-bikes', '1', '1', 'champion→v1']);

    expect(json.code, json.stderr).toBe(0);
    const listed = (JSON.parse(json.stdout) as { models: { name: string; latestVersion: number; aliases: { alias: string; version: number }[] }[] }).models;
    expect(listed.find((m) => m.name === 'cli-bikes')).toMatchObject({ latestVersion: 1, aliases: [{ alias: 'champion', version: 1 }] });
  });

  it('models get shows versions and the signature; with an alias and --json, the full version record', async () => {
    const [text, json] = await Promise.all([client('models', 'get', 'cli-bikes'), client('models', 'get', 'cli-bikes', 'champion', '--json')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^cli-bikes/);
    expect(text.stdout).toContain('aliases: champion→v1');
    expect(text.stdout).toContain(sha256(trained).slice(0, 12));
    expect(text.stdout).toMatch(/:FP32\[-1,11\]/);

    expect(json.code, json.stderr).toBe(0);
    const v = JSON.parse(json.stdout);
    expect(v).toMatchObject({ model: 'cli-bikes', version: 1, sha256: sha256(trained), format: 'onnx' });
    expect(v.signature.inputs).toHaveLength(1);
    expect(v.signature.inputs[0]).toMatchObject({ datatype: 'FP32', shape: [-1, 11] });
    expect(v.signature.outputs[0].shape[0]).toBe(-1);
  });

  it('logs tail shows a prediction made over HTTP, by its request id', async () => {
    const info = JSON.parse((await client('--json', 'models', 'get', 'cli-bikes', '1')).stdout);
    const requestId = 'cli-e2e-request-1';
    const res = await srv.json(
      'POST',
      '/v2/models/cli-bikes/infer',
      { inputs: [{ name: info.signature.inputs[0].name, shape: [1, 11], datatype: 'FP32', data: [3, 7, 17, 0, 3, 1, 1, 0.7, 0.65, 0.5, 0.2] }] },
      { 'x-request-id': requestId },
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    await srv.warden.log!.flush();

    const r = await client('logs', 'tail', '--model', 'cli-bikes', '-n', '5');
    expect(r.code, r.stderr).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.includes(requestId));
    expect(line, r.stdout).toBeDefined();
    expect(line).toMatch(/cli-bikes v1 +ok/);
    expect(line).toContain(String(res.body.outputs[0].data[0]).slice(0, 6));
  });

  it('an aliased version cannot be deleted; after unalias it can', async () => {
    const pushed = await client('push', GBR, '--model', 'cli-bikes');
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain('registered cli-bikes v2');
    expect(pushed.stdout).toContain(`sha256 ${sha256(GBR)}`);

    const alias = await client('models', 'alias', 'cli-bikes', 'challenger', '2');
    expect(alias.code, alias.stderr).toBe(0);
    expect(alias.stdout.trim()).toBe('cli-bikes: challenger → v2');
    const list = await client('models', 'list');
    const row = list.stdout.split('\n').find((l) => l.startsWith('cli-bikes '));
    expect(row!.split(/\s+/).slice(0, 3)).toEqual(['cli-bikes', '2', '2']);
    expect(row).toContain('champion→v1');
    expect(row).toContain('challenger→v2');

    const refused = await client('models', 'delete', 'cli-bikes', '2');
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(oneErrorLine(refused)).toContain('in use');

    const unalias = await client('models', 'unalias', 'cli-bikes', 'challenger');
    expect(unalias.code, unalias.stderr).toBe(0);
    expect(unalias.stdout.trim()).toBe('cli-bikes: alias challenger deleted');
    const deleted = await client('models', 'delete', 'cli-bikes', '2');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe('deleted cli-bikes v2');

    const after = JSON.parse((await client('--json', 'models', 'get', 'cli-bikes')).stdout);
    expect(after.versions.map((v: { version: number }) => v.version)).toEqual([1]);
    expect(after.aliases).toEqual([expect.objectContaining({ alias: 'champion', version: 1 })]);
  });

  it('bad input to client commands exits 2 with one line', async () => {
    const [notNumber, unknownModel, missingFile] = await Promise.all([
      client('models', 'alias', 'cli-bikes', 'champion', 'two'),
      client('models', 'get', 'no-such-model'),
      client('push', path.join(tmp, 'missing.onnx'), '--model', 'cli-bikes'),
    ]);
    expect(notNumber.code).toBe(2);
    expect(oneErrorLine(notNumber)).toContain('version must be a number');
    expect(unknownModel.code).toBe(2);
    expect(oneErrorLine(unknownModel)).toContain('404');
    expect(missingFile.code).toBe(2);
    expect(oneErrorLine(missingFile)).toContain(`cannot read ${path.join(tmp, 'missing.onnx')}`);
  });

  it('WARDEN_URL works in place of --url', async () => {
    const r = await warden(['models', 'list'], { WARDEN_URL: srv.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('cli-bikes');
  });
});

describe('warden keys', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'warden-cli-keys-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('create prints the secret once; list never shows it; revoke marks it revoked', async () => {
    const created = await warden(['keys', 'create', '--role', 'admin', '--name', 'ops', '--data-dir', dataDir]);
    expect(created.code, created.stderr).toBe(0);
    const secret = created.stdout.trim();
    expect(created.stdout).toMatch(/^wdn_\S+\n$/);
    const id = /created key (\S+) \(admin\)/.exec(created.stderr)?.[1];
    expect(id, created.stderr).toBeDefined();

    const listed = await warden(['keys', 'list', '--data-dir', dataDir]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(secret);
    const row = tableRow(listed.stdout, id!);
    expect(row, listed.stdout).toBeDefined();
    expect([row!.ID, row!.NAME, row!.ROLE, row!.SCOPES]).toEqual([id, 'ops', 'admin', '*']);
    expect(Date.parse(row!.CREATED!)).toBeGreaterThan(Date.now() - 60_000);
    expect(row!.REVOKED).toBe('');

    const revoked = await warden(['keys', 'revoke', id!, '--data-dir', dataDir]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout.trim()).toBe(`revoked ${id}`);
    const [again, listedAfter, badRole] = await Promise.all([
      warden(['keys', 'revoke', id!, '--data-dir', dataDir]),
      warden(['keys', 'list', '--data-dir', dataDir]),
      warden(['keys', 'create', '--role', 'root', '--data-dir', dataDir]),
    ]);
    expect(again.code).toBe(2);
    expect(oneErrorLine(again)).toContain(`no active key ${id}`);
    expect(Date.parse(tableRow(listedAfter.stdout, id!)!.REVOKED!)).toBeGreaterThan(Date.now() - 60_000);
    expect(badRole.code).toBe(2);
    expect(oneErrorLine(badRole)).toContain('unknown role root');
  });
});

describe.concurrent('warden errors, help and version', () => {
  it('an unknown command exits non-zero and prints the help', async () => {
    const r = await warden(['frobnicate']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain('Usage: warden');
    expect(r.stderr).toContain('push [options] <file>');
  });

  it('a client command against a dead URL exits 1 with "cannot reach Warden" and the reason', async () => {
    // A port that was free a moment ago: connection refused. Port 1 is one fetch refuses to dial at all.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const [refused, blocked] = await Promise.all([
      warden(['--url', `http://127.0.0.1:${closed}`, 'models', 'list']),
      warden(['--url', 'http://127.0.0.1:1', 'models', 'list']),
    ]);
    expect(refused.code).toBe(1);
    expect(oneErrorLine(refused)).toMatch(new RegExp(`^warden: cannot reach Warden at http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
    expect(blocked.code).toBe(1);
    expect(oneErrorLine(blocked)).toMatch(/^warden: cannot reach Warden at http:\/\/127\.0\.0\.1:1 \((?!fetch failed\)).+\)/);
  });

  it('push of a missing file exits 2 before contacting any server', async () => {
    const r = await warden(['--url', 'http://127.0.0.1:1', 'push', '/nonexistent/model.onnx', '--model', 'x']);
    expect(r.code).toBe(2);
    expect(oneErrorLine(r)).toContain('cannot read /nonexistent/model.onnx');
  });

  it('train with bad input exits 2 with one error line and no help text', async () => {
    const [missingCsv, badKind] = await Promise.all([
      warden(['train', '--csv', '/nonexistent/hour.csv', '--target', 'cnt', '--model', 'linear', '--out', '/nonexistent/m.onnx']),
      warden(['train', '--csv', 'data/bike-sharing/hour.csv', '--target', 'cnt', '--model', 'forest', '--out', '/nonexistent/m.onnx']),
    ]);
    expect(missingCsv.code).toBe(2);
    expect(missingCsv.stderr).toBe('error: cannot read CSV /nonexistent/hour.csv: file not found\n');
    expect(badKind.code).toBe(2);
    expect(badKind.stderr).toBe('error: --model must be linear, logistic, gbt or gbt-classifier, got "forest"\n');
  });

  it('--version prints the package version', async () => {
    const r = await warden(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
  });
});

describe.concurrent('warden serve', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-cli-serve-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('starts with auth on, warns that no key exists, answers 401 without a key, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', path.join(tmp, 'data')], {
      cwd: repoRoot,
      env: cleanEnv({ WARDEN_LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const records: Record<string, unknown>[] = [];
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "url" log line within 15 s; stdout: ${stdout}; stderr: ${stderr}`)), 15_000);
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const lines = stdout.split('\n');
          for (const line of lines.slice(records.length, -1)) records.push(JSON.parse(line) as Record<string, unknown>);
          const listening = records.find((r) => typeof r.url === 'string');
          if (listening) {
            clearTimeout(timer);
            resolve(listening.url as string);
          }
        });
        void exited.then(({ code }) => reject(new Error(`serve exited with ${code} before listening; stderr: ${stderr}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const warning = records.find((r) => String(r.msg).includes('no API key exists'));
      expect(warning, stdout).toMatchObject({ level: 40 });

      const models = await fetch(`${url}/api/v1/models`);
      expect(models.status).toBe(401);
      expect((await models.json()).code).toBe('WARDEN_UNAUTHENTICATED');
      expect((await fetch(`${url}/v2/health/live`)).status).toBe(200);

      child.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(stdout).toContain('stopped cleanly');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses --demo (auth off) on a non-loopback host', async () => {
    const r = await warden(['serve', '--host', '0.0.0.0', '--demo', '--port', '0', '--data-dir', path.join(tmp, 'demo')]);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r)).toContain('loopback');
  });

  it('exits (does not hang) when the port is taken, naming the address', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      // runWarden rejects when the process is still running at the timeout: a start that failed but left the stores
      // open would hang here.
      const r = await warden(['serve', '--port', String(port), '--data-dir', path.join(tmp, 'taken')]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/EADDRINUSE|in use/);
    } finally {
      blocker.close();
    }
  });

  it('refuses a config file with an unknown key, naming it', async () => {
    const file = path.join(tmp, 'warden.yaml');
    writeFileSync(file, 'server: {prot: 1}\n');
    const r = await warden(['serve', '-c', file, '--port', '0', '--data-dir', path.join(tmp, 'bad')]);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r)).toContain('server.prot');
  });
});
