// What global feature importance adds to a monitoring window: a real Warden (embedded stores in a temporary
// directory) serves the 60-tree bike GBR and the bike logistic regression with a reference of 1,500 rows of 2011;
// 20 hourly windows of 200 rows of 2012 each are served through :predict and each window is flushed
// (POST /api/v1/monitoring/flush: the log handed over, the profile stored, the window evaluated). Run twice, with
// monitoring.importanceRows 0 and 50 (100 background rows; KernelSHAP at 256 coalitions for the logistic
// regression), the flush's time per window is compared, with the event loop's longest stall during the flushes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { createWarden } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';

const FEATURES = (JSON.parse(readFileSync('test/fixtures/models/bike_gbr.expected.json', 'utf8')) as { features: string[] }).features;
const lines = readFileSync('data/bike-sharing/hour.csv', 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
const bike = (from: number, n: number) =>
  lines.slice(1 + from, 1 + from + n).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
  });
const WINDOWS = 20;
const ROWS = 200;
const HOUR = 3_600_000;

async function run(model: string, file: string, importanceRows: number): Promise<{ p50: number; max: number; stall: number; importance: unknown }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-bench-'));
  const cfg = parseConfig({
    server: { host: '127.0.0.1', port: 0 },
    storage: { dataDir },
    auth: { required: false },
    logLevel: 'silent',
    monitoring: { tickMs: 600_000, idleCloseMs: 3_600_000, importanceRows },
    predictionLog: { flushIntervalMs: 50 },
  });
  const warden = createWarden(cfg, { logger: pino({ level: 'silent' }) });
  const url = await warden.listen();
  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${url}${p}`, { method, headers, ...(body === undefined ? {} : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }) });
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<{ windows: { importance?: unknown }[] }>;
  };
  try {
    await call('POST', `/api/v1/models/${model}/versions?alias=champion`, readFileSync(file), {
      'content-type': 'application/octet-stream',
      'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))),
    });
    await call('PUT', `/api/v1/models/${model}/versions/1/reference`, { rows: bike(0, 1500) });
    await warden.table.settled();
    const start = Date.UTC(2012, 5, 1);
    const times: number[] = [];
    let stall = 0;
    for (let w = 0; w < WINDOWS + 2; w++) {
      const rows = bike(9000 + w * ROWS, ROWS);
      for (let i = 0; i < rows.length; i += 50) await call('POST', `/v1/models/${model}:predict`, { instances: rows.slice(i, i + 50), parameters: { event_time: start + w * HOUR + i } });
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const t0 = performance.now();
      await call('POST', '/api/v1/monitoring/flush', undefined, {});
      const ms = performance.now() - t0;
      loop.disable();
      // The first two windows warm up (the model's parse, the explain cache, the JIT).
      if (w >= 2) {
        times.push(ms);
        stall = Math.max(stall, loop.max / 1e6);
      }
    }
    const last = await call('GET', `/api/v1/models/${model}/versions/1/monitoring/windows?order=newest&limit=1`);
    times.sort((a, b) => a - b);
    return { p50: times[Math.floor(times.length / 2)]!, max: times.at(-1)!, stall, importance: last.windows[0]?.importance };
  } finally {
    await warden.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const [model, file, label] of [
  ['gbr', 'test/fixtures/models/bike_gbr.onnx', 'GBR, 60 trees of depth 4 (TreeSHAP)'],
  ['busy', 'test/fixtures/models/bike_busy_logreg.onnx', 'logistic regression (KernelSHAP, 256 coalitions)'],
] as const) {
  const off = await run(model, file, 0);
  const on = await run(model, file, 50);
  console.log(
    `${label}: ${WINDOWS} windows of ${ROWS} rows; flush per window p50 ${off.p50.toFixed(1)} ms without importance, ${on.p50.toFixed(1)} ms with 50 rows × 100 background rows ` +
      `(+${(on.p50 - off.p50).toFixed(1)} ms); max ${off.max.toFixed(1)} / ${on.max.toFixed(1)} ms; event loop's longest stall ${off.stall.toFixed(1)} / ${on.stall.toFixed(1)} ms`,
  );
  console.log(`  latest window: ${JSON.stringify(on.importance)}`);
}
