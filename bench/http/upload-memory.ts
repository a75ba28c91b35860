/**
 * Memory a Warden server adds while callers stream large bodies at it: N concurrent uploads of M MiB each, sent
 * with chunked transfer (no content-length, so nothing can refuse them from the header alone) to a route chosen
 * by --route, with or without an API key. Prints the server's RSS before, its peak (VmHWM) after, and what every
 * upload was answered.
 *
 *   npm run bench:upload -- [--uploads 8] [--mib 128] [--route /api/v1/models/m/versions] [--type application/octet-stream] [--key none|deployer]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '8' },
    mib: { type: 'string', default: '128' },
    route: { type: 'string', default: '/api/v1/models/m/versions' },
    type: { type: 'string', default: 'application/octet-stream' },
    key: { type: 'string', default: 'none' },
  },
});
const uploads = Number(values.uploads);
const mib = Number(values.mib);
const root = path.resolve(import.meta.dirname, '../..');
const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-bench-upload-'));

function status(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [path.join(root, 'bin/warden.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`warden ${args.join(' ')} exited ${code}`))));
  });
}

const env: NodeJS.ProcessEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_'))), WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'error' };
let key = '';
if (values.key !== 'none') {
  key = (await run(['keys', 'create', '--role', values.key], env)).trim();
}
const server = spawn(process.execPath, [path.join(root, 'bin/warden.js'), 'serve', '--port', '0'], {
  cwd: root,
  env: { ...env, WARDEN_LOG_LEVEL: 'info', WARDEN_AUTH_REQUIRED: 'true' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((resolve, reject) => {
  let buf = '';
  server.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const m = /"url":"([^"]+)"/.exec(buf);
    if (m) resolve(m[1]!);
  });
  server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
});
await new Promise((r) => setTimeout(r, 500));
const before = status(server.pid!);

const chunk = Buffer.alloc(1024 * 1024, 0x61);
function upload(): Promise<string> {
  return new Promise((resolve) => {
    const u = new URL(values.route!, url);
    const headers: Record<string, string> = { 'content-type': values.type! };
    if (key) headers.authorization = `Bearer ${key}`;
    const req = request(u, { method: values.route!.includes('reference') ? 'PUT' : 'POST', headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body.slice(0, 100)}`));
    });
    req.on('error', (e) => {
      if (!answered) resolve(`connection ${(e as NodeJS.ErrnoException).code ?? e.message}`);
    });
    let sent = 0;
    const pump = () => {
      while (sent < mib) {
        sent++;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}
const t0 = performance.now();
const answers = await Promise.all(Array.from({ length: uploads }, upload));
const seconds = (performance.now() - t0) / 1000;
const after = status(server.pid!);
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dataDir, { recursive: true, force: true });

const counts = new Map<string, number>();
for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
console.log(`${uploads} concurrent uploads of ${mib} MiB to ${values.route} (${values.type}, key: ${values.key}) in ${seconds.toFixed(1)} s`);
console.log(`server RSS before ${before.rss.toFixed(0)} MB, peak ${after.hwm.toFixed(0)} MB: added ${(after.hwm - before.rss).toFixed(0)} MB`);
for (const [a, n] of counts) console.log(`  ${n} × ${a}`);
