/**
 * The README's commands are the first thing a user runs, so they run here, as written: every command of every
 * ```sh block of README.md, in order, with bash, against a real `warden serve --demo` (what `npm start` runs) on a
 * fresh data directory, from a working directory that holds a copy of the repo's files and nothing else (as a
 * fresh clone after `npm install` does). Each must exit 0; a curl must not get a Warden error back; a command followed by a
 * `# {…}` comment must print JSON of that shape. Figures the README quotes from the demos are checked against what
 * the demos print.
 *
 * What the test changes in a command, and why:
 * - `http://127.0.0.1:8080` becomes the test server's URL (it listens on a free port; 8080 may be taken), and
 *   WARDEN_URL points the CLI and the demo scripts there;
 * - `npx warden` runs this repo's `bin/warden.js` through a shell function: npx resolves it to the same file in a
 *   clone, but from a temporary directory it could go to the registry for a package of that name;
 * - `/tmp/` becomes a folder of the working directory, so two runs at once do not share files.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, startCliServer, stopCliServers, type RunningCli } from '../helpers/cli.ts';
import { repoRoot } from '../helpers/server.ts';

const README = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const DEFAULT_URL = 'http://127.0.0.1:8080';

/**
 * Commands not run, by their text without the trailing comment. Keep this list short: each entry is a command
 * this test cannot run as written, with the reason.
 */
const SKIPPED = new Map<string, string>([
  // Installs (already done: this test runs from the installed tree) and then runs the server in the foreground
  // forever. The test starts the same server itself: `npm start` is `warden serve --demo` (checked below).
  ['npm install && npm start', 'install is done; the server it starts is the one the test starts in the background'],
  // The whole suite, which includes this test.
  ['npm test', 'runs every test, this one included'],
  // "in one terminal": the server the other commands talk to, started by the test as above.
  ['npm start', 'the server the test starts in the background'],
]);

interface ReadmeCommand {
  /** The command as the README shows it, continuation lines joined with their `\`. */
  text: string;
  /** The text without a trailing `# comment`. */
  bare: string;
  /** The JSON a `# {…}` comment right after the command shows. */
  expected?: unknown;
  /** 1-based line in README.md. */
  line: number;
}

/** Index of a trailing ` #` comment outside quotes, or -1. */
function commentStart(line: string): number {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return i;
    }
  }
  return -1;
}

/** Every command of every ```sh block, in README order. */
function readmeCommands(markdown: string): ReadmeCommand[] {
  const out: ReadmeCommand[] = [];
  const lines = markdown.split('\n');
  let inSh = false;
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const fence = /^\s*```\s*(\S*)/.exec(raw);
    if (fence) {
      if (fenced) {
        fenced = false;
        inSh = false;
      } else {
        fenced = true;
        inSh = fence[1] === 'sh' || fence[1] === 'bash' || fence[1] === 'shell';
      }
      continue;
    }
    if (!inSh || raw.trim() === '') continue;
    const line = i + 1;
    if (raw.trimStart().startsWith('#')) {
      const comment = raw.trimStart().slice(1).trim();
      const last = out.at(-1);
      // `# {…}` right under a command is the output it prints.
      if (last && last.expected === undefined && /^[[{]/.test(comment) && lines[i - 1]!.trim() !== '' && !lines[i - 1]!.trimStart().startsWith('#')) {
        last.expected = JSON.parse(comment) as unknown;
      }
      continue;
    }
    let text = raw;
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text}\n${lines[++i]!}`;
    const at = commentStart(text);
    out.push({ text, bare: (at < 0 ? text : text.slice(0, at)).trim(), line });
  }
  return out;
}

/** Differences between a JSON value and the README's example of it; `"…"` stands for any non-empty string. */
function shapeDiff(actual: unknown, expected: unknown, at = '$'): string[] {
  if (expected === '…') return typeof actual === 'string' && actual !== '' ? [] : [`${at}: expected a string, got ${JSON.stringify(actual)}`];
  if (typeof expected === 'number') {
    // Predictions are float32 sums: allow for a different rounding on another CPU, not for another model.
    return typeof actual === 'number' && Math.abs(actual - expected) <= 1e-5 * Math.max(1, Math.abs(expected)) ? [] : [`${at}: expected ${expected}, got ${JSON.stringify(actual)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${at}: expected an array of ${expected.length}, got ${JSON.stringify(actual)}`];
    return expected.flatMap((e, i) => shapeDiff(actual[i], e, `${at}[${i}]`));
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${at}: expected an object, got ${JSON.stringify(actual)}`];
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = (o: object) => Object.keys(o).sort().join(',');
    if (keys(a) !== keys(e)) return [`${at}: keys ${keys(a)}, README shows ${keys(e)}`];
    return Object.keys(e).flatMap((k) => shapeDiff(a[k], e[k], `${at}.${k}`));
  }
  return actual === expected ? [] : [`${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr: err && code === null ? `${stderr}\n(killed: ${err.signal ?? err.message})` : stderr, ms: performance.now() - t0 });
    });
  });
}

const commands = readmeCommands(README);
const runs = new Map<string, Run>();

describe('README.md commands', () => {
  let server: RunningCli;
  const servers: RunningCli[] = [];
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startCliServer({}, 'warden-readme-');
    servers.push(server);
    // A copy of the repo's files and nothing else, like a clone after `npm install` (node_modules is linked, not
    // copied); what the commands write stays here. Copied rather than linked: the demo scripts run only when
    // their path is the file's real path, as it is in a clone.
    work = mkdtempSync(path.join(tmpdir(), 'warden-readme-work-'));
    const skip = new Set(['.git', '.warden', 'node_modules'].map((n) => path.join(repoRoot, n)));
    cpSync(repoRoot, work, { recursive: true, filter: (src) => !skip.has(src) });
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'));
    mkdirSync(path.join(work, 'tmp'), { recursive: true });
    env = cleanEnv({ WARDEN_URL: server.url });
  });

  afterAll(async () => {
    await stopCliServers(servers);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('has sh blocks, and every skipped command is still in them', () => {
    expect(commands.length).toBeGreaterThan(15);
    // The `# {…}` lines under the predictions and the SLO PUT: if none were found, the parser broke, not the README.
    expect(commands.filter((c) => c.expected !== undefined).length).toBeGreaterThanOrEqual(3);
    const bare = new Set(commands.map((c) => c.bare));
    for (const skipped of SKIPPED.keys()) expect(bare.has(skipped), `skipped command "${skipped}" is no longer in README.md; drop it from SKIPPED`).toBe(true);
    // Running our own `warden serve --demo` instead of `npm start` is only fair while that is what npm start runs.
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node bin/warden.js serve --demo');
  });

  for (const cmd of commands) {
    const skip = SKIPPED.get(cmd.bare);
    const title = `README.md:${cmd.line}: ${cmd.bare.split('\n')[0]!.slice(0, 100)}`;
    if (skip) {
      it.skip(`${title} (${skip})`, () => undefined);
      continue;
    }
    it(title, { timeout: 120_000 }, async () => {
      const script = cmd.text.replaceAll(DEFAULT_URL, server.url).replaceAll('/tmp/', `${work}/tmp/`);
      const preamble = [
        'set -o pipefail',
        `npx() { if [ "$1" = warden ]; then shift; node ${JSON.stringify(path.join(repoRoot, 'bin', 'warden.js'))} "$@"; else echo "README test: npx $1 is not this repo's CLI" >&2; return 127; fi; }`,
      ].join('\n');
      const run = await bash(`${preamble}\n${script}`, work, env, 110_000);
      runs.set(cmd.bare, run);
      const context = `\n$ ${cmd.text}\nexit ${run.code} after ${Math.round(run.ms)} ms\nstdout:\n${run.stdout.slice(-3000)}\nstderr:\n${run.stderr.slice(-3000)}`;
      expect(run.code, context).toBe(0);
      if (cmd.bare.startsWith('curl ')) {
        // curl -s exits 0 on a 4xx or 5xx too: an answer in Warden's error shape is a failure.
        let body: unknown;
        try {
          body = JSON.parse(run.stdout);
        } catch {
          body = undefined;
        }
        const code = (body as { code?: unknown } | undefined)?.code;
        expect(typeof code === 'string' && code.startsWith('WARDEN_') ? code : undefined, context).toBeUndefined();
      }
      if (cmd.expected !== undefined) {
        let actual: unknown;
        try {
          actual = JSON.parse(run.stdout);
        } catch {
          throw new Error(`README.md:${cmd.line} shows JSON output, the command printed something else:${context}`);
        }
        expect(shapeDiff(actual, cmd.expected), context).toEqual([]);
      }
    });
  }

  /** Output of the first run command that starts with `prefix`. */
  const outputOf = (prefix: string): Run => {
    const cmd = commands.find((c) => c.bare.startsWith(prefix));
    expect(cmd, `README.md has no command starting with ${prefix}`).toBeDefined();
    const run = runs.get(cmd!.bare);
    expect(run, `${prefix} did not run`).toBeDefined();
    return run!;
  };

  it('the training command writes the same model as the demo bike-demand (as the README says)', async () => {
    expect(README).toMatch(/same bytes and sha256 as bike-demand's version 1/);
    const sha = /sha256:\s+([0-9a-f]{64})/.exec(outputOf('npx warden train').stdout)?.[1];
    const v1 = (await (await fetch(`${server.url}/api/v1/models/bike-demand/versions/1`)).json()) as { sha256: string };
    expect(sha).toBe(v1.sha256);
  });

  it('the monitoring demo catches each injected fault in the window it starts', () => {
    expect(README).toMatch(/each injected fault .* is caught in the window it starts/s);
    const lines = outputOf('npm run demo:monitoring').stdout.split('\n').filter((l) => l.includes('<- fault:'));
    expect(lines).toHaveLength(3);
    const caught = { 'temp sent in °F': /temp:out_of_range_share=/, 'hum sent as null': /hum:completeness=0/, 'weathersit 5': /weathersit:new_category_share=/ };
    for (const [fault, check] of Object.entries(caught)) expect(lines.find((l) => l.includes(fault)) ?? `no window with fault ${fault}`).toMatch(check);
  });

  it("the performance demo's mean error is the figure the README quotes", () => {
    const quoted = /mean absolute error ≈ ([0-9.]+) points/.exec(README)?.[1];
    expect(quoted, 'README.md quotes the demo mean error as "mean absolute error ≈ N points"').toBeDefined();
    const printed = /mean absolute estimation error: ([0-9.]+) points/.exec(outputOf('npm run demo:performance').stdout)?.[1];
    expect(printed).toBe(quoted);
  });

  it('the game day reports the SLO alert it expects', () => {
    expect(outputOf('npx warden gameday').stdout).toMatch(/SLOErrorBudgetBurn\s+page/);
  });
});
