/**
 * Caller-supplied label regexes (silence and rule matchers) run on RE2 (re2js): linear time whatever the pattern,
 * Prometheus/Alertmanager semantics (anchored full match), RE2 syntax only, bounded length. And matcher typos such
 * as `deployment==x`, which used to be stored as the value "=x" and silence nothing, are refused.
 */
import { describe, expect, it } from 'vitest';
import { invalidMatcher, matches, parseMatcherText, parseMatchers, parseRule, type Matcher } from '../../src/alerting/index.ts';
import { WardenError } from '../../src/errors.ts';

const re = (value: string, isEqual = true): Matcher => ({ name: 'deployment', value, isRegex: true, isEqual });

function refusal(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    return e as WardenError;
  }
  throw new Error('expected a WARDEN_BAD_REQUEST');
}

describe('label regexes run in linear time (RE2)', () => {
  it('matches (a|a)*b against 40 characters in milliseconds (a backtracking RegExp takes about an hour)', () => {
    const m = parseMatcherText('deployment=~(a|a)*b');
    const labels = { deployment: 'a'.repeat(40) };
    const t0 = performance.now();
    expect(matches(m, labels)).toBe(false);
    expect(matches(re('(a|a)*'), labels)).toBe(true);
    // A longer value stays linear too.
    expect(matches(m, { deployment: 'a'.repeat(10_000) })).toBe(false);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(250);
  });

  it('keeps Prometheus semantics: anchored on both ends, a missing label reads as empty, != and !~ negate', () => {
    expect(matches(re('foo'), { deployment: 'foobar' })).toBe(false);
    expect(matches(re('foo.*'), { deployment: 'foobar' })).toBe(true);
    expect(matches(re('foo|bar'), { deployment: 'bar' })).toBe(true);
    expect(matches(re('foo|bar'), { deployment: 'foobar' })).toBe(false);
    // Prometheus writes ^(?:re)$, so an unbalanced-looking alternation still has to cover the whole value.
    expect(matches(re('a)|(b'), { deployment: 'ab' })).toBe(false);
    expect(matches(re('a)|(b'), { deployment: 'b' })).toBe(true);
    expect(matches(re('.*'), {})).toBe(true);
    expect(matches(re('.+'), {})).toBe(false);
    expect(matches(re('fraud', false), { deployment: 'churn' })).toBe(true);
    expect(matches(re('fraud', false), { deployment: 'fraud' })).toBe(false);
    expect(matches(re('(?i)FRAUD'), { deployment: 'fraud' })).toBe(true);
    expect(matches(re('v[0-9]+'), { deployment: 'v12' })).toBe(true);
    // RE2's `.` does not match a newline, as in Go (and as JavaScript did before).
    expect(matches(re('a.b'), { deployment: 'a\nb' })).toBe(false);
  });

  it('refuses backreferences and lookaround with a 400 naming the matcher and saying why', () => {
    for (const text of ['deployment=~(a)\\1', 'deployment=~(?=x).*', 'deployment!~(?!x).*', 'deployment=~(?<=x)y']) {
      const e = refusal(() => parseMatcherText(text, 'matchers[0]'));
      expect(e.code).toBe('WARDEN_BAD_REQUEST');
      expect(e.status).toBe(400);
      expect(e.message).toMatch(/^matchers\[0\]: matcher deployment[=!]~/);
      expect(e.message).toContain('not RE2 syntax');
    }
    const obj = refusal(() => parseMatchers([{ name: 'alertname', value: '(?=W).*', isRegex: true }], 'matchers'));
    expect(obj.message).toMatch(/^matchers\[0\]: matcher alertname=~"\(\?=W\)\.\*": invalid regular expression/);
    expect(refusal(() => parseMatcherText('deployment=~[a-')).message).toContain('missing closing ]');
    // Rule matchers go through the same parser.
    const rule = refusal(() => parseRule({ name: 'R', metric: 'warden_dataset_drift', labels: ['model=~(x)\\1'], op: '==', threshold: 1, severity: 'ticket', summary: 's', runbook: 'r' }, 'rules[0]'));
    expect(rule.message).toMatch(/^rules\[0\]\.labels\[0\]: matcher model=~/);
  });

  it('bounds the pattern at 1,024 characters and its counted repetitions at 1,000', () => {
    expect(parseMatcherText(`deployment=~${'a'.repeat(1024)}`).value).toHaveLength(1024);
    const e = refusal(() => parseMatcherText(`deployment=~${'a'.repeat(1025)}`));
    expect(e.message).toContain('the regular expression is 1025 characters long; at most 1024 are allowed');
    // Counted repetitions expand when RE2 compiles: 100 × \pL{1000} in 900 characters would take about a second.
    expect(parseMatcherText('deployment=~\\pL{1000}').value).toBe('\\pL{1000}');
    const t0 = performance.now();
    const big = refusal(() => parseMatcherText(`deployment=~${'\\pL{1000}'.repeat(100)}`));
    expect(performance.now() - t0).toBeLessThan(50);
    expect(big.message).toContain('the counted repetitions ({n}, {n,m}) of the regular expression add up to 100000; at most 1000 are allowed');
  });

  it('a stored matcher RE2 refuses (saved before RE2) matches nothing and is reported', () => {
    const legacy = re('(?!x).*');
    expect(matches(legacy, { deployment: 'y' })).toBe(false);
    expect(matches({ ...legacy, isEqual: false }, { deployment: 'y' })).toBe(false);
    expect(invalidMatcher([{ name: 'a', value: 'b', isRegex: false, isEqual: true }, legacy], 'silence s1')).toMatch(/^silence s1: matcher deployment=~"\(\?!x\)\.\*": invalid regular expression/);
    expect(invalidMatcher([re('ok.*')], 'silence s2')).toBeUndefined();
  });
});

describe('matcher typos are refused, not stored as a value', () => {
  it.each([
    ['deployment==x', '==', 'deployment=x', 'deployment="=x"'],
    ['deployment=!x', '=!', 'deployment!=x', 'deployment="!x"'],
    ['deployment~=x', '~=', 'deployment=~x', undefined],
    ['deployment!==x', '!==', 'deployment!=x', 'deployment!="=x"'],
    ['deployment = = x', '==', 'deployment=x', 'deployment="=x"'],
    ['deployment=~~x', '=~~', 'deployment=~x', 'deployment=~"~x"'],
    ['deployment!x', '!', 'deployment!=x', undefined],
  ])('%s', (text, op, meant, quoted) => {
    const e = refusal(() => parseMatcherText(text, 'matchers[0]'));
    expect(e.code).toBe('WARDEN_BAD_REQUEST');
    expect(e.message).toContain(`matchers[0]: ${JSON.stringify(text)} has the operator "${op}", which is not one of =, !=, =~, !~. Did you mean ${meant}?`);
    if (quoted) expect(e.message).toContain(`quote it: ${quoted}`);
  });

  it('still reads the four operators, quoted values (which may start with = or !) and spaces around the operator', () => {
    expect(parseMatcherText('deployment=x')).toEqual({ name: 'deployment', value: 'x', isRegex: false, isEqual: true });
    expect(parseMatcherText('deployment != x')).toEqual({ name: 'deployment', value: 'x', isRegex: false, isEqual: false });
    expect(parseMatcherText('alertname=~"Warden.*Drift"')).toEqual({ name: 'alertname', value: 'Warden.*Drift', isRegex: true, isEqual: true });
    expect(parseMatcherText('alertname!~Warden.*')).toEqual({ name: 'alertname', value: 'Warden.*', isRegex: true, isEqual: false });
    expect(parseMatcherText('deployment="=x"')).toEqual({ name: 'deployment', value: '=x', isRegex: false, isEqual: true });
    expect(parseMatcherText('deployment=')).toEqual({ name: 'deployment', value: '', isRegex: false, isEqual: true });
    expect(() => parseMatcherText('deployment x')).toThrow(/is not a matcher/);
    expect(() => parseMatcherText('=x')).toThrow(/is not a matcher/);
  });
});
