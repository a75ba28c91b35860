// What sensitive-input rules cost on the request path: the check for a deployment without rules, and the copy with
// one feature redacted and one hashed (HMAC-SHA256) for 1 and 64 rows of 12 features. Prints figures.
//   node --import tsx bench/security/privacy.mts
import { Privacy } from '../../src/security/index.ts';
import type { ModelSignature, PredictionEvent } from '../../src/storage/index.ts';

const k = 12;
const sig: ModelSignature = { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, k] }], outputs: [], features: Array.from({ length: k }, (_, i) => ({ name: `f${i}`, datatype: 'FP32' })) };
const p = new Privacy({ hashKey: 'bench-key-0123456789abcdef', deployments: { d: { redact: ['f3'], hash: ['f7'] } } });
const ev = (rows: number): PredictionEvent => ({ requestId: 'r', ts: 0, model: 'd', version: 1, status: 'ok', latencyMs: 1, inputs: [{ name: 'input', datatype: 'FP32', dims: [rows, k], data: Float32Array.from({ length: rows * k }, (_, i) => i) }], outputs: null });
function time(label: string, n: number, fn: () => unknown): void {
  for (let i = 0; i < n / 10; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  console.log(`${label}: ${(Number(process.hrtime.bigint() - t) / n).toFixed(0)} ns`);
}
let x = 0;
time('applies() for a deployment without rules', 5_000_000, () => (x += p.applies('other') ? 1 : 0));
const one = ev(1);
const many = ev(64);
time('event(): 1 row, one feature redacted and one hashed', 200_000, () => p.event(one, sig));
time('event(): 64 rows, one feature redacted and one hashed', 20_000, () => p.event(many, sig));
if (x < 0) console.log(x);
