import { RE2JS, RE2JSException } from 're2js';
import { WardenError } from '../errors.ts';

/**
 * Longest regex a caller may give. RE2 runs in time linear in the input, but compiling and the automaton's size
 * grow with the pattern; label matchers are short (Alertmanager's are rarely past a few hundred characters).
 */
export const MAX_PATTERN_LENGTH = 1024;

/**
 * Most copies counted repetitions (`x{n}`, `x{n,m}`) may make in one pattern. RE2 expands them when compiling, so a
 * 1,024-character pattern of `\pL{1000}` pieces would compile to 100,000 instructions and take about a second of the
 * event loop to compile and first match; RE2 itself bounds a single (or nested) repetition at 1,000.
 */
export const MAX_REPEAT_TOTAL = 1000;

/** A label regex compiled for full-value matching (Prometheus and Alertmanager anchor both ends). */
export interface LabelRegex {
  test(value: string): boolean;
}

function refusal(message: string): string {
  // RE2 (Go's regexp, which Prometheus and Alertmanager use) has no backreferences or lookaround by design: that is
  // what keeps matching linear. Say so, since a JavaScript or PCRE habit is the usual cause.
  if (/unsupported Perl syntax|invalid named capture|invalid escape sequence: `\\[1-9]/.test(message)) {
    return `${message}; backreferences (\\1) and lookaround ((?=…), (?!…), (?<=…), (?<!…)) are not RE2 syntax, which Prometheus and Alertmanager use`;
  }
  return message;
}

/** The error of the pattern as written, whose excerpt the caller recognises (the anchored form's shows `^(?:…)$`). */
function rawError(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return e instanceof RE2JSException ? e.message : undefined;
  }
}

/**
 * Compiles a caller's label regex with RE2 (the re2js port), anchored as `^(?:re)$`: matching takes time linear in
 * the value whatever the pattern, so a pattern such as `(a|a)*b` cannot stall the event loop as a backtracking
 * `RegExp` does. Throws WARDEN_BAD_REQUEST naming the matcher (`what`) for a pattern too long or not RE2 syntax.
 */
export function compileLabelRegex(pattern: string, what: string): LabelRegex {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new WardenError('WARDEN_BAD_REQUEST', `${what}: the regular expression is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`);
  }
  let repeats = 0;
  // Counts every {n} / {n,m} / {n,} in the text: a brace that is really a literal only makes the bound stricter.
  for (const m of pattern.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) repeats += Number(m[2] ? m[2] : m[1]);
  if (repeats > MAX_REPEAT_TOTAL) {
    throw new WardenError('WARDEN_BAD_REQUEST', `${what}: the counted repetitions ({n}, {n,m}) of the regular expression add up to ${repeats}; at most ${MAX_REPEAT_TOTAL} are allowed`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?:${pattern})$`);
  } catch (e) {
    if (!(e instanceof RE2JSException)) throw e;
    throw new WardenError('WARDEN_BAD_REQUEST', `${what}: invalid regular expression ${JSON.stringify(pattern)}: ${refusal(rawError(pattern) ?? e.message)}`);
  }
  // `matches` is a full match of the whole value; the anchors also make `(?:a)|b` mean what Prometheus means.
  return { test: (value) => re.matches(value) };
}
