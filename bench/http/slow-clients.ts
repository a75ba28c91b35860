/**
 * How long a slow client can hold a connection: one trickles a header line every 500 ms, one sends its headers and
 * then one body byte every 500 ms, one connects and sends nothing. Prints when the server cut each, against
 * server.requestTimeoutMs (default 30000 here; `--timeout-ms`).
 *
 *   npm run bench:slow-clients [-- --timeout-ms 30000]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createWarden } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';

const { values } = parseArgs({ options: { 'timeout-ms': { type: 'string', default: '30000' } } });
const timeoutMs = Number(values['timeout-ms']);
const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-bench-slow-'));
const cfg = parseConfig({ server: { host: '127.0.0.1', port: 0, requestTimeoutMs: timeoutMs }, storage: { dataDir }, auth: { required: false }, logLevel: 'silent' });
const warden = createWarden(cfg, { logger: pino({ level: 'silent' }) });
const url = new URL(await warden.listen());

const modes = {
  'slow headers': { first: 'POST /v2/models/x/infer HTTP/1.1\r\nHost: x\r\n', drip: 'x-slow: 1\r\n' },
  'slow body': { first: 'POST /v2/models/x/infer HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":', drip: ' ' },
  silent: { first: '', drip: '' },
};
const results = await Promise.all(
  Object.entries(modes).map(
    ([mode, m]) =>
      new Promise<string>((resolve) => {
        const t0 = performance.now();
        const s = net.connect(Number(url.port), url.hostname, () => {
          if (m.first) s.write(m.first);
          const t = setInterval(() => m.drip && !s.destroyed && s.write(m.drip), 500);
          let out = '';
          s.on('data', (d: Buffer) => (out += d.toString()));
          s.on('error', () => undefined);
          s.on('close', () => {
            clearInterval(t);
            resolve(`${mode.padEnd(12)} cut after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${out.split('\r\n')[0] || '(closed, no answer)'}`);
          });
        });
      }),
  ),
);
console.log(`server.requestTimeoutMs ${timeoutMs}`);
for (const r of results) console.log(r);
await warden.close();
rmSync(dataDir, { recursive: true, force: true });
