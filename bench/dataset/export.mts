// Training-set export throughput and memory: one Warden (embedded SQLite, in this process) serves `--rows` predictions
// of bike-demand in requests of 200 rows, every row gets a label, then POST /api/v1/datasets is read to the end as CSV
// and as Parquet over loopback. Prints rows/s, MB/s, file size and the process's RSS before and at its peak during
// each export (sampled every 20 ms), so a growth that tracks the file's size would show.
import { parseArgs } from 'node:util';
import { seedDemo } from '../../src/lifecycle/index.ts';
import { mulberry32 } from '../../src/random.ts';
import { startTestServer } from '../../test/helpers/server.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '100000' } } });
const TOTAL = Number(values.rows);
const PER_REQUEST = 200;
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];

const srv = await startTestServer({ predictionLog: { flushIntervalMs: 50 } });
try {
  await seedDemo(srv.warden.registry, srv.warden.logger);
  await srv.warden.table.settled();
  const rand = mulberry32(1);
  const t0 = performance.now();
  for (let r = 0; r * PER_REQUEST < TOTAL; r++) {
    // Inside the demo model's allowed feature ranges.
    const instances = Array.from({ length: PER_REQUEST }, () => {
      const v = [1 + Math.floor(rand() * 4), 1 + Math.floor(rand() * 12), Math.floor(rand() * 24), rand() < 0.05 ? 1 : 0, Math.floor(rand() * 7), rand() < 0.7 ? 1 : 0, 1 + Math.floor(rand() * 3), rand(), rand(), rand(), rand() * 0.6];
      return Object.fromEntries(FEATURES.map((f, j) => [f, v[j]]));
    });
    const res = await srv.json('POST', '/v1/models/bike-demand:predict', { instances }, { 'x-request-id': `b-${r}` });
    if (res.status !== 200) throw new Error(`predict ${res.status}: ${JSON.stringify(res.body)}`);
  }
  await srv.warden.log!.flush();
  for (let r = 0; r * PER_REQUEST < TOTAL; r += 25) {
    const labels = [];
    for (let q = r; q < r + 25 && q * PER_REQUEST < TOTAL; q++) for (let i = 0; i < PER_REQUEST; i++) labels.push({ requestId: `b-${q}`, row: i, value: Math.round(rand() * 500), source: 'human' });
    const res = await srv.json('POST', '/api/v1/labels', { labels });
    if (res.status !== 200) throw new Error(`labels ${res.status}: ${JSON.stringify(res.body)}`);
  }
  console.log(`seeded ${TOTAL} labelled predictions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  for (const format of ['csv', 'parquet', 'csv', 'parquet']) {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const start = performance.now();
    const res = await fetch(`${srv.url}/api/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'bike-demand', format }) });
    let bytes = 0;
    for await (const chunk of res.body!) bytes += (chunk as Uint8Array).byteLength;
    const s = (performance.now() - start) / 1000;
    clearInterval(sampler);
    const id = res.headers.get('x-warden-dataset-id');
    const record = (await srv.json('GET', `/api/v1/datasets/${id}`)).body as { rows: number; state: string };
    console.log(
      `${format.padEnd(7)} ${record.state} ${record.rows} rows in ${s.toFixed(2)} s: ${Math.round(record.rows / s).toLocaleString('en-US')} rows/s, ` +
        `${(bytes / 1e6).toFixed(1)} MB (${(bytes / 1e6 / s).toFixed(1)} MB/s); RSS ${(rssBefore / 1e6).toFixed(0)} MB before, peak ${(peak / 1e6).toFixed(0)} MB`,
    );
  }
} finally {
  await srv.close();
}
