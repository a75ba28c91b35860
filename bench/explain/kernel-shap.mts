// Time per explained row: KernelSHAP of the bike logistic regression (MatMul + Add + Sigmoid, no trees;
// test/fixtures/models/bike_busy_logreg.onnx) through the serving runtime (OnnxModel, one intra-op thread, as
// `warden serve` loads it), 100 background rows spread over 2011–2012 (every 173rd hour, the last one a holiday, so
// all 12 features vary), over the 64 probe rows after a warm-up; at the default budget (2,048 coalitions: sampled)
// and at 4,096 (every coalition: exact). Also the worst additivity error and the event loop's longest stall.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { kernelShap } from '../../src/explain/index.ts';
import { OnnxModel } from '../../src/serving/runtimes/onnx.ts';

const bytes = readFileSync('test/fixtures/models/bike_busy_logreg.onnx');
const probe = JSON.parse(readFileSync('test/fixtures/models/bike_busy_logreg.expected.json', 'utf8')) as { features: string[]; input: number[][] };
const lines = readFileSync('data/bike-sharing/hour.csv', 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
const cols = probe.features.map((f) => header.indexOf(f));
const hours = lines.slice(1).map((l) => Float32Array.from(cols.map((c) => Number(l.split(',')[c]))));
const step = Math.floor(hours.length / 100);
const bg = hours.filter((_, i) => i % step === 0).slice(0, 100);
bg[99] = hours.find((z) => z[probe.features.indexOf('holiday')] === 1)!;
const runtime = await OnnxModel.load(bytes, [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }], { intraOpThreads: 1 });
const f = async (data: Float32Array, rows: number) => {
  const [out] = await runtime.run([{ name: 'input', datatype: 'FP32', dims: [rows, 12], data }], ['probability']);
  return out!.data as number[];
};
const rows = probe.input.map((r) => Float32Array.from(r));
for (const budget of [2048, 4096]) {
  // As the explain service does: each row starts at the batch size the previous one settled on.
  let batchRows = 1024;
  for (const r of rows.slice(0, 8)) batchRows = (await kernelShap(f, r, bg, { budget, batchRows })).batchRows;
  const times: number[] = [];
  let worst = 0;
  let modelRows = 0;
  let runs = 0;
  let exact = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (const r of rows) {
    const t0 = performance.now();
    const e = await kernelShap(f, r, bg, { budget, batchRows });
    batchRows = e.batchRows;
    times.push(performance.now() - t0);
    worst = Math.max(worst, Math.abs(e.shap.reduce((a, b) => a + b, 0) + e.expected - e.value));
    modelRows += e.modelRows;
    runs += e.runs;
    if (e.exact) exact++;
  }
  loop.disable();
  times.sort((a, b) => a - b);
  const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(1);
  console.log(
    `budget ${budget}: ${times.length} rows (${exact} exact), ${bg.length} background rows; per row p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; ` +
      `${Math.round(modelRows / times.length)} model rows in ${(runs / times.length).toFixed(1)} runs per row; worst additivity error ${worst.toExponential(2)}; ` +
      `event loop delay max ${(loop.max / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms`,
  );
}
await runtime.release();
