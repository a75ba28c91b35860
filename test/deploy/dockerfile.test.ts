/**
 * The Dockerfile, without a Docker engine (none on this machine): linted by dockerfile-utils (the checks of the
 * Dockerfile language server), its structure read with dockerfile-ast, the build context checked against
 * .dockerignore, and the runtime stage rehearsed for real: the files its COPY lines take, with the production
 * dependencies only (what `npm prune --omit=dev` keeps, read from the lockfile), are laid out in a folder where
 * `warden serve` starts, serves the dashboard, a prediction and /metrics, passes the image's HEALTHCHECK command,
 * fails it while draining, and writes nothing outside its data directory and TMPDIR. What is NOT checked here: that
 * `docker build` succeeds (the base images, `npm ci` with network, better-sqlite3's prebuilt binary, the user).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/server.ts';
import { cleanEnv } from '../helpers/cli.ts';
import { freePort } from './ports.ts';
import { run } from './tools.ts';

const text = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const args = new Map(dockerfile.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue() ?? '']));
const resolve = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, n: string) => args.get(n) ?? '');

/** The instructions of each stage, by stage name. */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of dockerfile.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      current = [];
      out.set(dockerfile.getFROMs().find((f) => f.getRange().start.line === i.getRange().start.line)!.getBuildStage() ?? '', current);
    }
    current?.push(i);
  }
  return out;
}
const byStage = stages();
const build = byStage.get('build')!;
const runtime = byStage.get('runtime')!;
const all = (ins: Instruction[], kw: string) => ins.filter((i) => i.getKeyword() === kw);
const argsOf = (i: Instruction) => i.getArguments().map((a) => a.getValue());

/** .dockerignore as regular expressions (Go filepath.Match with `**`, as Docker reads it). */
const ignores = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((p) => new RegExp(`^${p.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*')}(/.*)?$`));
const ignored = (rel: string) => ignores.some((re) => re.test(rel));

describe('Dockerfile: lint and structure', () => {
  it('dockerfile-utils finds nothing to report (and does report a broken file)', () => {
    expect(validate(text)).toEqual([]);
    const broken = validate('FROM node:20 AS a\nEXPOSE eighty\nHEALTHCHECK --interval=soon CMD true\nCOPY --from=a\n');
    expect(broken.length).toBeGreaterThanOrEqual(3);
  });

  it('two stages: a full Node 20 Debian image builds, a slim one runs', () => {
    expect([...byStage.keys()]).toEqual(['build', 'runtime']);
    const [buildFrom, runFrom] = dockerfile.getFROMs().map((f) => resolve(f.getArguments()[0]!.getValue()));
    expect(buildFrom).toBe('node:20-bookworm');
    expect(runFrom).toBe('node:20-bookworm-slim');
  });

  it('build stage: npm new enough for allowScripts, the CUDA download off, npm ci, the dashboard built, dev dependencies pruned', () => {
    const runs = all(build, 'RUN').map((i) => i.getArgumentsContent()!.replace(/\s+/g, ' '));
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { npm: string }; allowScripts: Record<string, boolean> };
    const npmVersion = /npm install -g npm@(\d+)\.(\d+)\.\d+/.exec(runs.join('\n'));
    const [, wantMajor, wantMinor] = /^>=(\d+)\.(\d+)/.exec(pkg.engines.npm)!;
    expect(npmVersion, 'npm install -g npm@x.y.z').not.toBeNull();
    expect(Number(npmVersion![1]) * 1000 + Number(npmVersion![2])).toBeGreaterThanOrEqual(Number(wantMajor) * 1000 + Number(wantMinor));
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    const env = all(build, 'ENV').map((i) => i.getArgumentsContent()).join(' ');
    expect(env).toContain('ONNXRUNTIME_NODE_INSTALL=skip');
    const order = ['npm install -g npm@', 'npm ci', 'npm run build:web', 'npm prune --omit=dev'].map((s) => runs.join('\n').indexOf(s));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('runtime stage: non-root numeric user, 0.0.0.0:8080, the data volume, a HEALTHCHECK on readiness with Node fetch, SIGTERM', () => {
    const users = all(runtime, 'USER').map((i) => i.getArgumentsContent());
    expect(users).toEqual(['10001:10001']);
    // The USER line comes after every RUN, so nothing after it runs as root, and before the entrypoint.
    const lines = (kw: string) => all(runtime, kw).map((i) => i.getRange().start.line);
    expect(Math.max(...lines('RUN'))).toBeLessThan(lines('USER')[0]!);
    const env = Object.fromEntries(
      all(runtime, 'ENV').flatMap((i) => (i as unknown as { getProperties(): { getName(): string; getValue(): string }[] }).getProperties().map((p) => [p.getName(), p.getValue()])),
    );
    expect(env).toMatchObject({ WARDEN_HOST: '0.0.0.0', WARDEN_PORT: '8080', WARDEN_DATA_DIR: '/var/lib/warden', NODE_ENV: 'production' });
    expect(all(runtime, 'EXPOSE').map((i) => i.getArgumentsContent())).toEqual(['8080']);
    expect(all(runtime, 'VOLUME').map((i) => i.getArgumentsContent())).toEqual(['["/var/lib/warden"]']);
    expect(all(runtime, 'STOPSIGNAL').map((i) => i.getArgumentsContent())).toEqual(['SIGTERM']);
    expect(JSON.parse(all(runtime, 'ENTRYPOINT')[0]!.getArgumentsContent()!)).toEqual(['node', '/app/bin/warden.js']);
    expect(JSON.parse(all(runtime, 'CMD')[0]!.getArgumentsContent()!)).toEqual(['serve']);
    const hc = healthcheck();
    expect(hc.cmd.slice(0, 2)).toEqual(['node', '-e']);
    expect(hc.cmd[2]).toContain('/v2/health/ready');
    expect(hc.cmd[2]).toContain('fetch(');
    expect(hc.flags).toMatchObject({ interval: '10s', timeout: '3s', retries: '3' });
    // Nothing runtime-side installs anything: no npm, no apt in the runtime stage.
    expect(all(runtime, 'RUN').map((i) => i.getArgumentsContent()).join('\n')).not.toMatch(/\bnpm\b|apt-get/);
  });

  it('the build context: every COPY source exists and is not excluded by .dockerignore; node_modules and state are', () => {
    for (const c of all(build, 'COPY')) {
      const parts = argsOf(c);
      for (const src of parts.slice(0, -1)) {
        const rel = src.replace(/\/$/, '');
        expect(existsSync(path.join(repoRoot, rel)), `${src} exists`).toBe(true);
        expect(ignored(rel), `${src} is not in .dockerignore`).toBe(false);
      }
    }
    for (const rel of ['node_modules', 'web/node_modules', '.warden', '.git', 'web/dist', 'test-artifacts', 'test/fixtures']) expect(ignored(rel), rel).toBe(true);
  });
});

/** The HEALTHCHECK's command (exec form) and flags. */
function healthcheck(): { cmd: string[]; flags: Record<string, string> } {
  const hc = dockerfile.getHEALTHCHECKs();
  expect(hc).toHaveLength(1);
  const content = hc[0]!.getArgumentsContent()!;
  const cmd = JSON.parse(content.slice(content.indexOf('CMD') + 3).replace(/\\\n/g, '').trim()) as string[];
  return { cmd, flags: Object.fromEntries(hc[0]!.getFlags().map((f) => [f.getName(), f.getValue() ?? ''])) };
}

/** The runtime stage's COPY --from=build lines as [source relative to the build WORKDIR, destination relative to /app]. */
function runtimeCopies(): [string, string][] {
  const buildDir = all(build, 'WORKDIR')[0]!.getArgumentsContent()!;
  expect(all(runtime, 'WORKDIR').map((i) => i.getArgumentsContent())).toEqual(['/app']);
  const out: [string, string][] = [];
  for (const c of all(runtime, 'COPY')) {
    expect(c.getArgumentsContent()).not.toBeNull();
    const flags = (c as unknown as { getFlags(): { getName(): string; getValue(): string }[] }).getFlags();
    expect(flags.map((f) => `${f.getName()}=${f.getValue()}`)).toEqual(['from=build']);
    const parts = argsOf(c);
    const dest = parts.at(-1)!;
    for (const src of parts.slice(0, -1)) {
      expect(src.startsWith(`${buildDir}/`), src).toBe(true);
      const rel = src.slice(buildDir.length + 1).replace(/\/$/, '');
      out.push([rel, dest === './' ? rel : dest.replace(/\/$/, '')]);
    }
  }
  return out;
}

/** Every file under dir (relative), for before/after comparisons. */
function files(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, base, out);
    else out.push(path.relative(base, p));
  }
  return out;
}

/** Hard-links a tree (cheap: node_modules is hundreds of MB); nothing in the app folder is written to. */
function linkTree(src: string, dest: string): void {
  if (statSync(src).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    for (const e of readdirSync(src)) linkTree(path.join(src, e), path.join(dest, e));
  } else linkSync(src, dest);
}

describe('Dockerfile: the runtime stage, rehearsed without Docker', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'warden-image-'));
  const app = path.join(work, 'app');
  const data = path.join(work, 'var-lib-warden');
  const tmp = path.join(work, 'tmp');
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('lays out exactly what the image copies, production dependencies only', () => {
    const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const prod = Object.entries(lock.packages)
      .filter(([k, v]) => k.startsWith('node_modules/') && !k.slice('node_modules/'.length).includes('/node_modules/') && !v.dev)
      .map(([k]) => k);
    const copies = runtimeCopies();
    expect(copies.map(([s]) => s).sort()).toEqual(['bin', 'data', 'node_modules', 'package-lock.json', 'package.json', 'src', 'tsconfig.json', 'web/dist']);
    for (const [src, dest] of copies) {
      if (src === 'node_modules') {
        for (const k of prod) if (existsSync(path.join(repoRoot, k))) linkTree(path.join(repoRoot, k), path.join(app, k));
      } else {
        expect(existsSync(path.join(repoRoot, src)), `${src} (web/dist is built by the test setup)`).toBe(true);
        cpSync(path.join(repoRoot, src), path.join(app, dest), { recursive: true });
      }
    }
    for (const dev of ['vitest', 'typescript', 'eslint', 'playwright-core', 'dockerfile-utils']) expect(existsSync(path.join(app, 'node_modules', dev)), dev).toBe(false);
    for (const need of ['tsx', 'fastify', 'onnxruntime-node', 'better-sqlite3']) expect(existsSync(path.join(app, 'node_modules', need)), need).toBe(true);
    mkdirSync(data);
    mkdirSync(tmp);
  });

  it('`warden keys create` works there (what a container runs for its first key)', () => {
    const r = run(process.execPath, ['bin/warden.js', 'keys', 'create', '--role', 'admin', '--name', 'image-test'], {
      cwd: app,
      env: { ...cleanEnv(), WARDEN_DATA_DIR: data, TMPDIR: tmp } as Record<string, string>,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\S{20,}$/);
  });

  it('`warden serve` starts there: dashboard, prediction, /metrics, the HEALTHCHECK passes, fails while draining; nothing written outside data and TMPDIR', async () => {
    const before = files(app).sort();
    const port = await freePort(18540, 18549);
    const env = { ...cleanEnv(), WARDEN_DATA_DIR: path.join(work, 'demo-data'), WARDEN_PORT: String(port), WARDEN_DRAIN_DELAY_MS: '2000', WARDEN_LOG_LEVEL: 'info', TMPDIR: tmp };
    // The image's CMD is `serve` on 0.0.0.0 with keys; the rehearsal stays on loopback, where --demo may run without keys.
    child = spawn(process.execPath, ['bin/warden.js', 'serve', '--demo', '--host', '127.0.0.1'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null }>((r) => child!.once('exit', (code) => r({ code })));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (!out.includes('Warden listening on')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const hc = healthcheck();
    const probe = () => run(hc.cmd[0]!, hc.cmd.slice(1), { cwd: app, env: { WARDEN_PORT: String(port) } }).code;
    expect(probe()).toBe(0);
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const pred = await fetch(`${url}/v1/models/bike-demand:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 }] }),
    });
    expect(pred.status).toBe(200);
    expect((await (await fetch(`${url}/metrics`)).text())).toContain('warden_inference_requests_total');
    child.kill('SIGTERM');
    const t0 = Date.now();
    let unhealthy = false;
    while (!unhealthy && Date.now() - t0 < 1500) unhealthy = probe() === 1;
    expect(unhealthy, 'HEALTHCHECK fails once draining').toBe(true);
    expect(await exited, out).toEqual({ code: 0 });
    expect(files(app).sort()).toEqual(before);
  });
});
