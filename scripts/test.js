#!/usr/bin/env node
// `npm test`: typecheck, lint, then every vitest test; ends with one plain line "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const bin = (name) => path.join('node_modules', '.bin', name);
let failed = 0;
let passed = 0;

function step(name, cmd, args) {
  process.stdout.write(`\n== ${name}: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  return r.status === 0;
}

for (const [name, tool, args] of [
  ['typecheck', 'tsc', ['--noEmit', '-p', '.']],
  ['typecheck web', 'tsc', ['--noEmit', '-p', 'web']],
  ['lint', 'eslint', ['.']],
]) {
  if (step(name, bin(tool), args)) passed++;
  else failed++;
}

const dir = mkdtempSync(path.join(tmpdir(), 'warden-vitest-'));
const report = path.join(dir, 'report.json');
const extra = process.argv.slice(2);
step('tests', bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra]);
let vitestOk = false;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests + (r.numFailedTestSuites ?? 0);
  vitestOk = r.success && r.numTotalTests > 0;
} catch (e) {
  process.stdout.write(`could not read the vitest report: ${e.message}\n`);
  failed++;
}
rmSync(dir, { recursive: true, force: true });
if (!vitestOk && failed === 0) failed++;
process.stdout.write(`\n(typecheck and lint count as one test each)\n${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
