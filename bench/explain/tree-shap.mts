// Time per explained row: exact interventional TreeSHAP on the 60-tree, depth-4 bike GBR and the 40-tree, depth-3
// bike GradientBoostingClassifier (margin space) in test/fixtures/models, with 100 and 1,000 background rows (the
// first hourly rows of 2011), over the 64 probe rows, after a warm-up. Also the worst additivity error
// |Σφ + E[f] − f(x)| seen.
import { readFileSync } from 'node:fs';
import { readTreeEnsemble, treeShap } from '../../src/explain/index.ts';

const probe = JSON.parse(readFileSync('test/fixtures/models/bike_gbr.expected.json', 'utf8')) as { features: string[]; input: number[][] };
const lines = readFileSync('data/bike-sharing/hour.csv', 'utf8').trim().split('\n');
const header = lines[0]!.split(',');
const cols = probe.features.map((f) => header.indexOf(f));
for (const [file, sizes] of [
  ['bike_gbr.onnx', [100, 1000]],
  ['bike_busy_gbc.onnx', [100]],
] as const) {
  const model = readTreeEnsemble(readFileSync(`test/fixtures/models/${file}`));
  for (const size of sizes) {
    const bg = lines.slice(1, 1 + size).map((l) => Float32Array.from(cols.map((c) => Number(l.split(',')[c]))));
    const rows = probe.input.map((r) => Float32Array.from(r));
    for (const r of rows.slice(0, 8)) treeShap(model, r, bg);
    const times: number[] = [];
    let worst = 0;
    for (let rep = 0; rep < 5; rep++) {
      for (const r of rows) {
        const t0 = performance.now();
        const e = treeShap(model, r, bg);
        times.push(performance.now() - t0);
        worst = Math.max(worst, Math.abs(e.shap.reduce((a, b) => a + b, 0) + e.expected - e.value));
      }
    }
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!.toFixed(2);
    console.log(`${file}: ${model.trees.length} trees, ${size} background rows: ${times.length} rows explained; per row p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms; worst additivity error ${worst.toExponential(2)}`);
  }
}
