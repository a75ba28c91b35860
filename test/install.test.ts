/**
 * Install is quiet and honest: no npm command warns about the project's own settings, onnxruntime-node's GPU download
 * is denied through npm's own `allowScripts` field, and no locked dependency asks for a newer Node than `engines` says.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/server.ts';

interface LockPackage {
  engines?: { node?: string } | string[];
  optional?: boolean;
}
const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  engines: { node: string; npm: string };
  allowScripts: Record<string, boolean>;
};
const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };

describe('install', () => {
  it('every locked dependency runs on the oldest Node that engines allows', () => {
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    const tooNew = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && p.engines && !Array.isArray(p.engines) && p.engines.node && !semver.satisfies(oldest, p.engines.node))
      .map(([name, p]) => `${name} needs node ${(p.engines as { node: string }).node}`);
    expect(tooNew).toEqual([]);
  });

  it("onnxruntime-node's install script (the CUDA download) is denied; the native builds are allowed", () => {
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
    expect(pkg.allowScripts['better-sqlite3']).toBe(true);
    // The old .npmrc key made every npm command warn "Unknown project config".
    expect(existsSync(path.join(repoRoot, '.npmrc'))).toBe(false);
    // The CPU build onnxruntime needs ships in the npm package itself.
    expect(existsSync(path.join(repoRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node'))).toBe(process.platform === 'linux' && process.arch === 'x64');
  });

  it('npm commands print no warning about the project', () => {
    const r = spawnSync('npm', ['ls', '--depth=0'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /warn/i.test(l))).toEqual([]);
  });

  it('every install script in the tree is reviewed in allowScripts', () => {
    const r = spawnSync('npm', ['install-scripts', 'ls'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/not yet covered|blocked because/i);
  });
});
