// What unusual-access detection adds to a served request: the body fingerprint and observe() for a key already
// tracked, below and above the spike threshold. Prints ns per request.
//   node --import tsx bench/security/access.mts
import { AccessMonitor, inputFingerprint } from '../../src/security/index.ts';

const body = JSON.stringify({ instances: [{ hr: 8, temp: 0.42, hum: 0.61, windspeed: 0.19, weekday: 3, workingday: 1, weathersit: 1, season: 2, mnth: 5, holiday: 0, yr: 1, atemp: 0.4 }] });
function time(label: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < n / 10; i++) fn(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  console.log(`${label}: ${(Number(process.hrtime.bigint() - t) / n).toFixed(0)} ns`);
}
let x = 0;
time(`inputFingerprint of a ${body.length}-character body`, 2_000_000, () => (x ^= inputFingerprint(body)));
const quiet = new AccessMonitor({ spikeMinPerMinute: 1e9, sweepMinDistinct: 20_000 });
time('fingerprint + observe(), below the thresholds', 2_000_000, (i) => quiet.observe('key:a1b2c3', '10.0.0.1', false, inputFingerprint(body) ^ i));
const loud = new AccessMonitor({ spikeMinPerMinute: 1, sweepMinDistinct: 10 });
time('fingerprint + observe(), past both thresholds (the sums every 16th request)', 2_000_000, (i) => loud.observe('key:a1b2c3', '10.0.0.1', false, inputFingerprint(body) ^ i));
if (x === 42) console.log(x);
