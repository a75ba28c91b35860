/**
 * docs/cli.md says it lists "every `warden` command": every command of the CLI that `buildProgram()` builds is
 * documented there with each of its options, and every option the doc names exists on a command of the section
 * that names it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.ts';
import { repoRoot } from '../helpers/server.ts';

const doc = readFileSync(path.join(repoRoot, 'docs', 'cli.md'), 'utf8');

interface Section {
  /** Command words of the heading: `## \`warden labels import <file.csv>\`` → ['labels', 'import']. */
  prefix: string[];
  text: string;
}

/** The `## \`warden …\`` sections of the doc. */
function sections(markdown: string): Section[] {
  const parts = markdown.split(/^(?=## )/m).filter((p) => p.startsWith('## '));
  return parts.flatMap((text) => {
    const heading = /^## `warden ([^`]*)`/.exec(text);
    if (!heading) return [];
    const prefix: string[] = [];
    for (const word of heading[1]!.split(/\s+/)) {
      if (!/^[a-z][a-z-]*$/.test(word)) break;
      prefix.push(word);
    }
    return [{ prefix, text }];
  });
}

interface Leaf {
  path: string[];
  cmd: Command;
}

/** Commands that run something (no subcommands), with their path under `warden`. */
function leaves(cmd: Command, at: string[] = []): Leaf[] {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  if (subs.length === 0) return [{ path: at, cmd }];
  return subs.flatMap((c) => leaves(c, [...at, c.name()]));
}

const program = buildProgram();
const GLOBAL = new Set([...program.options.map((o) => o.long), '--help', '--version']);
const all = leaves(program);
const docSections = sections(doc);

/** The section whose heading is the longest prefix of the command's path. */
function sectionOf(p: string[]): Section | undefined {
  return docSections
    .filter((s) => s.prefix.length > 0 && s.prefix.every((w, i) => p[i] === w))
    .sort((a, b) => b.prefix.length - a.prefix.length)[0];
}

const mentions = (text: string, flag: string) => new RegExp(`(^|[^\\w-])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`).test(text);

describe('docs/cli.md', () => {
  it('has a section for every command, naming it', () => {
    expect(all.length).toBeGreaterThan(30);
    const missing = all.filter((l) => {
      const s = sectionOf(l.path);
      return !s || !s.text.includes(l.path.slice(s.prefix.length - 1).join(' '));
    });
    expect(missing.map((l) => `warden ${l.path.join(' ')}`)).toEqual([]);
  });

  it("documents every command's options in its section", () => {
    const missing: string[] = [];
    for (const l of all) {
      const s = sectionOf(l.path);
      if (!s) continue;
      for (const o of l.cmd.options) {
        const flag = o.long ?? o.short!;
        if (!mentions(s.text, flag)) missing.push(`warden ${l.path.join(' ')} ${flag}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('names only options that exist', () => {
    const unknown: string[] = [];
    for (const s of docSections) {
      const under = all.filter((l) => s.prefix.every((w, i) => l.path[i] === w));
      expect(under.length, `## warden ${s.prefix.join(' ')} is not a command`).toBeGreaterThan(0);
      const known = new Set([...GLOBAL, ...under.flatMap((l) => l.cmd.options.map((o) => o.long ?? o.short!))]);
      for (const m of s.text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)) if (!known.has(m[0])) unknown.push(`${m[0]} in ## warden ${s.prefix.join(' ')}`);
    }
    expect(unknown).toEqual([]);
  });

  it('documents the global options in its introduction', () => {
    const intro = doc.slice(0, doc.indexOf('\n## '));
    for (const o of program.options) if (o.long && o.long !== '--version') expect(mentions(intro, o.long), o.long).toBe(true);
  });
});
