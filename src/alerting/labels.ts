import { createHash } from 'node:crypto';
import { WardenError } from '../errors.ts';
import { compileLabelRegex, type LabelRegex } from './regex.ts';

/** One label matcher in Alertmanager's v2 API form: `isEqual: false` negates, `isRegex` matches the whole value. */
export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * The identity of an alert: alertname plus its labels in sorted order (severity included), hashed. Two
 * conditions with the same fingerprint are the same alert (Alertmanager's `model.LabelSet.Fingerprint` idea).
 */
export function fingerprint(labels: Readonly<Record<string, string>>): string {
  const canonical = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Prometheus label-set text: `{a="1", b="2"}` in sorted order (also Alertmanager's group key form). */
export function labelSetText(labels: Readonly<Record<string, string>>): string {
  return `{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(', ')}}`;
}

/** Validates a label name as Prometheus does (`[a-zA-Z_][a-zA-Z0-9_]*`). */
export function checkLabelName(name: string, where: string): string {
  if (!LABEL_NAME.test(name)) throw bad(`${where}: label name ${JSON.stringify(name)} must match [a-zA-Z_][a-zA-Z0-9_]*`);
  return name;
}

const matcherWhat = (m: Matcher, where: string) => `${where === 'matcher' ? '' : `${where}: `}matcher ${m.name}${m.isEqual ? '=~' : '!~'}${JSON.stringify(m.value)}`;

/** Refuses a regex matcher whose pattern RE2 cannot run (or is too long), naming the matcher. */
function checkRegex(m: Matcher, where: string): void {
  if (m.isRegex) regexFor(m.value, matcherWhat(m, where));
}

const OPS = ['!=', '!~', '=~', '='] as const;

/** The operator a typo such as `==`, `=!`, `~=` or `!==` most likely meant. */
function intendedOp(run: string): string {
  const negated = run.includes('!');
  const regex = run.includes('~');
  return negated ? (regex ? '!~' : '!=') : regex ? '=~' : '=';
}

function typo(text: string, where: string, name: string, run: string, rest: string): WardenError {
  const literal = OPS.find((op) => run.startsWith(op));
  const quoted = literal ? ` To match a value that really starts with ${JSON.stringify(run.slice(literal.length))}, quote it: ${name}${literal}${JSON.stringify(run.slice(literal.length) + rest)}.` : '';
  return bad(`${where}: ${JSON.stringify(text)} has the operator ${JSON.stringify(run)}, which is not one of =, !=, =~, !~. Did you mean ${name}${intendedOp(run)}${rest}?${quoted}`);
}

/**
 * Parses `name=value`, `name!=value`, `name=~regex` or `name!~regex` (the value may be double-quoted). An operator
 * such as `==`, `=!`, `~=` or `!==` is refused with the likely intended one (`deployment==x` would otherwise match
 * the value "=x" and silence nothing); a value that really starts with `=`, `!` or `~` is written quoted.
 */
export function parseMatcherText(text: string, where = 'matcher'): Matcher {
  const t = text.trim();
  const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(t)?.[0];
  // The operator is the run of =, ! and ~ after the name, spaces included, so `a = = b` reads as the typo it is.
  let at = name?.length ?? 0;
  while (at < t.length && '=!~ \t'.includes(t[at]!)) at++;
  const run = t.slice(name?.length ?? 0, at).replace(/[ \t]+/g, '');
  if (!name || !run) throw bad(`${where}: ${JSON.stringify(text)} is not a matcher; write name=value, name!=value, name=~regex or name!~regex`);
  const rest = t.slice(at);
  if (!(OPS as readonly string[]).includes(run)) throw typo(text, where, name, run, rest);
  let value = rest;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      value = JSON.parse(value) as string;
    } catch {
      throw bad(`${where}: ${JSON.stringify(text)} has a badly quoted value`);
    }
  }
  const matcher: Matcher = { name, value, isRegex: run === '=~' || run === '!~', isEqual: run === '=' || run === '=~' };
  checkRegex(matcher, where);
  return matcher;
}

/**
 * Reads matchers in any of the forms the API and rule files accept: a `{label: value}` object (equality), or a
 * list of `"name=value"` strings and/or `{name, value, isRegex?, isEqual?}` objects.
 */
export function parseMatchers(raw: unknown, where: string): Matcher[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) && typeof raw === 'object') {
    return Object.entries(raw as Record<string, unknown>).map(([name, value]) => {
      checkLabelName(name, where);
      if (typeof value !== 'string') throw bad(`${where}.${name} must be a string`);
      return { name, value, isRegex: false, isEqual: true };
    });
  }
  if (!Array.isArray(raw)) throw bad(`${where} must be an object of label values or a list of matchers`);
  return raw.map((item, i) => {
    const at = `${where}[${i}]`;
    if (typeof item === 'string') return parseMatcherText(item, at);
    if (!item || typeof item !== 'object') throw bad(`${at} must be "name=value" or {name, value, isRegex, isEqual}`);
    const o = item as Record<string, unknown>;
    if (typeof o.name !== 'string') throw bad(`${at}.name must be a string`);
    checkLabelName(o.name, at);
    if (typeof o.value !== 'string') throw bad(`${at}.value must be a string`);
    if (o.isRegex !== undefined && typeof o.isRegex !== 'boolean') throw bad(`${at}.isRegex must be a boolean`);
    if (o.isEqual !== undefined && typeof o.isEqual !== 'boolean') throw bad(`${at}.isEqual must be a boolean`);
    const m: Matcher = { name: o.name, value: o.value, isRegex: o.isRegex === true, isEqual: o.isEqual !== false };
    checkRegex(m, at);
    return m;
  });
}

/** Compiled patterns by source; `null` for one that does not compile (a silence stored before RE2 was used). */
const regexCache = new Map<string, LabelRegex | null>();

function regexFor(pattern: string, what: string): LabelRegex {
  const cached = regexCache.get(pattern);
  if (cached) return cached;
  const re = compileLabelRegex(pattern, what);
  if (regexCache.size >= 1000) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

function cachedRegex(pattern: string): LabelRegex | null {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = compileLabelRegex(pattern, 'matcher');
    } catch {
      re = null;
    }
    if (regexCache.size >= 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/**
 * True when the label set satisfies one matcher; a missing label reads as the empty string (Alertmanager's rule).
 * A regex is matched by RE2 in time linear in the value. A pattern RE2 refuses (only possible for matchers stored
 * before they were validated with RE2; `invalidMatcher` finds them) satisfies nothing, negated or not, so such a
 * silence mutes no alert rather than every one.
 */
export function matches(m: Matcher, labels: Readonly<Record<string, string>>): boolean {
  const v = labels[m.name] ?? '';
  let hit: boolean;
  if (m.isRegex) {
    const re = cachedRegex(m.value);
    if (!re) return false;
    hit = re.test(v);
  } else hit = v === m.value;
  return m.isEqual ? hit : !hit;
}

/** Why one of the matchers cannot be used (a regex RE2 refuses), or undefined when they all can. */
export function invalidMatcher(ms: readonly Matcher[], where: string): string | undefined {
  for (const m of ms) {
    try {
      checkRegex(m, where);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}

/** True when the label set satisfies every matcher. */
export function matchesAll(ms: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return ms.every((m) => matches(m, labels));
}

/** A matcher as text (`name=~"regex"`), for logs, the CLI and Slack. */
export function matcherText(m: Matcher): string {
  const op = m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!=';
  return `${m.name}${op}${JSON.stringify(m.value)}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a Prometheus duration (`30s`, `5m`, `1h30m`, `0`) into milliseconds. */
export function parseDuration(raw: unknown, where: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw;
  if (typeof raw !== 'string') throw bad(`${where} must be a duration such as "30s", "5m" or "1h30m"`);
  if (raw.trim() === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;
  let total = 0;
  let at = 0;
  const text = raw.trim();
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) throw bad(`${where}: ${JSON.stringify(raw)} is not a duration; write e.g. "30s", "5m" or "1h30m"`);
    total += Number(m[1]) * UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  if (text.length === 0) throw bad(`${where} must not be empty`);
  return total;
}

/** Formats milliseconds as a short duration (`1h30m`, `45s`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
