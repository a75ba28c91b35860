/**
 * Links in the README and the docs it points to for the API, CLI and concepts lead somewhere: every relative link
 * names a file of the repo, and every `#anchor` a heading of its target (GitHub's slugs).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/server.ts';

/** The pages checked: the README and the docs this part of the project keeps. */
/** The README and every page under docs/ (runbooks included). */
const PAGES = ['README.md', ...readdirSync(path.join(repoRoot, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => `docs/${f.split(path.sep).join('/')}`).sort()];

/** GitHub's heading anchors (github-slugger): lowercase, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const h = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const base = h[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Markdown links `[text](target)` outside code, with their line. */
function links(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  let fenced = false;
  for (const [i, line] of markdown.split('\n').entries()) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) out.push({ target: m[1]!, line: i + 1 });
  }
  return out;
}

describe('links in the README and docs', () => {
  for (const page of PAGES) {
    it(page, () => {
      const text = readFileSync(path.join(repoRoot, page), 'utf8');
      const broken: string[] = [];
      for (const { target, line } of links(text)) {
        if (/^[a-z]+:/i.test(target)) continue;
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const resolved = file === '' ? path.join(repoRoot, page) : path.resolve(path.dirname(path.join(repoRoot, page)), file);
        if (!existsSync(resolved)) {
          broken.push(`${page}:${line}: ${target} (no such file)`);
          continue;
        }
        if (anchor && statSync(resolved).isFile() && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) {
          broken.push(`${page}:${line}: ${target} (no heading with that anchor)`);
        }
      }
      expect(broken).toEqual([]);
    });
  }
});
