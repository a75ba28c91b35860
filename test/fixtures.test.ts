/**
 * The repo is self-contained: every file a test reads lives in it, with the checksum its README records, and no
 * test, script, benchmark or doc reaches outside the clone for reference material.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir, repoRoot } from './helpers/server.ts';

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/**
 * A path to the folder CI keeps beside the clone, written as `../<name>` or `'..', '<name>'`. The name is assembled
 * so that this file does not itself contain the path it looks for.
 */
const SIDE = ['sha', 'red'].join('');
const BESIDE = new RegExp(`\\.\\.[\\/]${SIDE}|['"]\\.\\.['"], *['"]${SIDE}`);

describe('fixtures', () => {
  for (const folder of ['models', 'open-inference-protocol']) {
    it(`${folder}: every file has the sha256 its README records`, () => {
      const readme = readFileSync(path.join(fixturesDir, folder, 'README.md'), 'utf8');
      const recorded = new Map([...readme.matchAll(/^\s+([0-9a-f]{64})\s+(\S+)$/gm)].map((m) => [m[2]!, m[1]!]));
      const files = readdirSync(path.join(fixturesDir, folder)).filter((f) => f !== 'README.md');
      expect(files.length).toBeGreaterThan(0);
      expect([...recorded.keys()].sort()).toEqual(files.sort());
      for (const f of files) {
        const sha = createHash('sha256').update(readFileSync(path.join(fixturesDir, folder, f))).digest('hex');
        expect(sha, f).toBe(recorded.get(f));
      }
    });
  }

  it('no test, script, benchmark, source file or doc reads a folder beside the repo', () => {
    const roots = ['src', 'test', 'scripts', 'bench', 'docs', '.ci'].map((d) => path.join(repoRoot, d));
    const files = [...roots.flatMap(filesUnder), path.join(repoRoot, 'README.md'), path.join(repoRoot, 'package.json')];
    const offenders = files.filter((f) => {
      if (!/\.(ts|js|mjs|cjs|py|sh|md|json|ya?ml)$|\/run$/.test(f) || f === import.meta.filename) return false;
      return BESIDE.test(readFileSync(f, 'utf8'));
    });
    expect(offenders.map((f) => path.relative(repoRoot, f))).toEqual([]);
  });
});
