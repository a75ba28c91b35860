// A trainer command for the lifecycle demo with a classic leak: it replaces the `atemp` column of the training set by
// the count it is meant to predict (scaled to atemp's 0–1 range), as a join that brings in the answer would, then
// trains with `warden train`. Offline the model looks perfect; on real rows it is not, and the gate says so.
// Usage (as a retraining policy's train.command): node leaky-trainer.mjs {dataset} {model}
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const [dataset, model] = process.argv.slice(2);
if (!dataset || !model) {
  console.error('usage: leaky-trainer.mjs DATASET.csv MODEL.onnx');
  process.exit(2);
}
const lines = readFileSync(dataset, 'utf8').trimEnd().split('\n');
const header = lines[0].split(',');
const atemp = header.indexOf('atemp');
const label = header.indexOf('label');
const leaky = [lines[0], ...lines.slice(1).map((l) => {
  const cells = l.split(',');
  cells[atemp] = String(Number(cells[label]) / 1000);
  return cells.join(',');
})];
const out = path.join(path.dirname(model), 'leaky.csv');
writeFileSync(out, `${leaky.join('\n')}\n`);
console.log(`leaky-trainer: atemp := label / 1000 on ${leaky.length - 1} rows`);
const warden = path.resolve(import.meta.dirname, '../../bin/warden.js');
execFileSync(process.execPath, [warden, 'train', '--csv', out, '--target', 'label', '--model', 'gbt', '--n-estimators', '40', '--out', model], { stdio: 'inherit' });
