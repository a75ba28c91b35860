/**
 * The runbooks in docs/runbooks/ are what an on-call engineer opens from an alert, so they must exist, keep
 * one shape, and show only commands that work: every runbook has the required sections, every runbook file
 * named anywhere in src/ (alert rules, SLO kinds) exists, and every `warden …` line in a code block resolves to
 * a real command of the CLI built by `buildProgram()`, with known options and the right number of arguments.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.ts';
import { repoRoot } from '../helpers/server.ts';
import { RUNBOOKS } from '../helpers/runbooks.ts';

const RUNBOOK_DIR = path.join(repoRoot, 'docs', 'runbooks');

/** The runbooks issue 5 asks for. */

/** Sections every runbook has, in this order. */
const SECTIONS = ['What it means', 'Alerts and metrics', 'Severity', 'First 5 minutes', 'Diagnosis', 'Mitigation', 'Follow-up'];

/** Other docs whose `warden` lines are held to the same check. */
const CHECKED_DOCS = [...RUNBOOKS.map((f) => path.join('docs', 'runbooks', f)), path.join('docs', 'runbooks', 'README.md'), path.join('docs', 'gameday.md')];

const read = (rel: string) => readFileSync(path.join(repoRoot, rel), 'utf8');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/**
 * Runbook file names the sources refer to: `docs/runbooks/<name>.md` literals, and in files that mention
 * `docs/runbooks/` (e.g. through a helper such as `runbook('data-drift.md')`), every quoted `<name>.md`.
 */
function runbooksReferencedInSrc(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (name: string, file: string) => found.set(name, [...(found.get(name) ?? []), path.relative(repoRoot, file)]);
  for (const file of walk(path.join(repoRoot, 'src')).filter((f) => /\.(ts|js|json|ya?ml)$/.test(f))) {
    const text = readFileSync(file, 'utf8');
    if (!text.includes('docs/runbooks/')) continue;
    for (const m of text.matchAll(/docs\/runbooks\/([A-Za-z0-9_.-]+\.md)/g)) add(m[1]!, file);
    for (const m of text.matchAll(/['"`]([a-z0-9][a-z0-9-]*\.md)['"`]/g)) add(m[1]!, file);
  }
  return found;
}

/** `warden …` lines inside fenced code blocks, with `\` continuations joined. */
function wardenLines(markdown: string): { line: string; at: number }[] {
  const out: { line: string; at: number }[] = [];
  const lines = markdown.split('\n');
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (/^\s*```/.test(raw)) {
      fenced = !fenced;
      continue;
    }
    if (!fenced) continue;
    let line = raw.trim();
    const at = i + 1;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1).trim()} ${lines[++i]!.trim()}`;
    if (line.startsWith('warden ')) out.push({ line, at });
  }
  return out;
}

/** Shell words of a command line up to a pipe, redirection, `&&`, `;` or comment. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const m of line.matchAll(re)) {
    const word = m[1] ?? m[2] ?? m[3]!;
    if (m[3] !== undefined && (/^(\||\|\||&&|;|>|>>|<|2>|2>&1)$/.test(word) || word.startsWith('#') || /^[0-9]?>/.test(word))) break;
    out.push(word);
  }
  return out;
}

function findOption(cmd: Command, flag: string): Option | undefined {
  for (let c: Command | null = cmd; c; c = c.parent) {
    const o = c.options.find((x) => x.long === flag || x.short === flag);
    if (o) return o;
  }
  return undefined;
}

/** Resolves one `warden …` line against the program; returns what is wrong with it, or undefined. */
function checkCommandLine(program: Command, line: string): string | undefined {
  const argv = words(line).slice(1);
  let cmd = program;
  const args: string[] = [];
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '-h' || w === '--help') return undefined;
    if (w.startsWith('-') && w.length > 1 && !/^-[0-9.]/.test(w)) {
      const [flag, inline] = w.includes('=') ? [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] : [w, undefined];
      const o = findOption(cmd, flag!);
      if (!o) return `unknown option ${flag} for "${cmd.name()}"`;
      given.add(o.attributeName());
      if (o.required && inline === undefined) {
        if (i + 1 >= argv.length) return `option ${flag} needs a value`;
        i++;
      }
      continue;
    }
    if (cmd.commands.length > 0 && args.length === 0) {
      const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
      if (!sub) return `"${cmd.name()}" has no subcommand ${JSON.stringify(w)} (has ${cmd.commands.map((c) => c.name()).join(', ')})`;
      cmd = sub;
      continue;
    }
    args.push(w);
  }
  if (cmd === program) return 'no command';
  if (cmd.commands.length > 0) return `"${cmd.name()}" needs a subcommand (${cmd.commands.map((c) => c.name()).join(', ')})`;
  const declared = cmd.registeredArguments;
  const required = declared.filter((a) => a.required).length;
  const variadic = declared.some((a) => a.variadic);
  if (args.length < required) return `"${cmd.name()}" needs ${required} argument(s), got ${args.length}`;
  if (!variadic && args.length > declared.length) return `"${cmd.name()}" takes ${declared.length} argument(s), got ${args.length}: ${args.join(' ')}`;
  const missing = cmd.options.filter((o) => o.mandatory && !given.has(o.attributeName()));
  if (missing.length) return `"${cmd.name()}" needs ${missing.map((o) => o.long).join(', ')}`;
  return undefined;
}

describe('runbooks', () => {
  it.each(RUNBOOKS)('%s exists with every required section, in order', (file) => {
    const p = path.join(RUNBOOK_DIR, file);
    expect(existsSync(p), `${file} is missing`).toBe(true);
    const text = readFileSync(p, 'utf8');
    expect(text).toMatch(/^# Runbook: .+/);
    const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.trim());
    expect(headings).toEqual(SECTIONS);
    // Each section says something, and the first five minutes are commands to run.
    const bodies = text.split(/^## .+$/m).slice(1);
    for (const [i, body] of bodies.entries()) expect(body.trim().length, `${file}: section ${SECTIONS[i]} is empty`).toBeGreaterThan(80);
    expect(wardenLines(bodies[3]!).length, `${file}: First 5 minutes has no warden command`).toBeGreaterThan(0);
  });

  it('the README indexes every runbook', () => {
    const index = readFileSync(path.join(RUNBOOK_DIR, 'README.md'), 'utf8');
    for (const f of RUNBOOKS) expect(index).toContain(`](${f})`);
    const extra = readdirSync(RUNBOOK_DIR).filter((f) => f !== 'README.md' && !RUNBOOKS.includes(f));
    expect(extra).toEqual([]);
  });

  it('every runbook named in src/ exists', () => {
    const referenced = runbooksReferencedInSrc();
    // The alert rules and SLO kinds name several; finding none would mean this check is broken.
    expect(referenced.size).toBeGreaterThanOrEqual(5);
    const missing = [...referenced].filter(([name]) => !existsSync(path.join(RUNBOOK_DIR, name))).map(([name, files]) => `${name} (named in ${[...new Set(files)].join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('every `warden …` line in a code block is a real command with known options', () => {
    const program = buildProgram();
    const problems: string[] = [];
    let checked = 0;
    for (const rel of CHECKED_DOCS) {
      if (!existsSync(path.join(repoRoot, rel))) continue;
      for (const { line, at } of wardenLines(read(rel))) {
        checked++;
        const problem = checkCommandLine(program, line);
        if (problem) problems.push(`${rel}:${at}: ${line}\n    → ${problem}`);
      }
    }
    expect(checked).toBeGreaterThan(40);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('the command check itself catches wrong commands, options and arguments', () => {
    const program = buildProgram();
    expect(checkCommandLine(program, 'warden models alias bike-demand champion 3')).toBeUndefined();
    expect(checkCommandLine(program, 'warden --json monitor windows bike-demand champion --since 2026-01-01 | jq .')).toBeUndefined();
    expect(checkCommandLine(program, 'warden models rollback bike-demand')).toMatch(/no subcommand "rollback"/);
    expect(checkCommandLine(program, 'warden monitor windows bike-demand champion --window 5m')).toMatch(/unknown option --window/);
    expect(checkCommandLine(program, 'warden models alias bike-demand champion')).toMatch(/needs 3 argument/);
    expect(checkCommandLine(program, 'warden labels')).toMatch(/needs a subcommand/);
    expect(checkCommandLine(program, 'warden train --csv a.csv --target cnt --out m.onnx')).toMatch(/needs --model/);
    expect(checkCommandLine(program, 'warden rollout advance bike-demand')).toMatch(/"rollout" has no subcommand "advance"/);
  });
});
