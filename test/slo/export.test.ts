/**
 * `warden slo export --format prometheus`: recording and alerting rules from SLO definitions. The generated file
 * must pass `promtool check rules`, and the committed unit test test/fixtures/slo/rules.test.yml (synthetic
 * series, hand-computed firing times) must pass `promtool test rules` against rules regenerated from
 * test/fixtures/slo/slo.yaml — both run when promtool is installed (CI installs Debian's `prometheus`).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { latencyBucket, parseSloFile, promDuration, prometheusRules, ratioRuleName, type SloDefinition } from '../../src/slo/index.ts';
import { LATENCY_BUCKETS, createMetrics } from '../../src/telemetry/index.ts';
import { repoRoot } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

const promtool = spawnSync('promtool', ['--version']).status === 0;
const FIXTURES = path.join(repoRoot, 'test', 'fixtures', 'slo');

const fixture = (): SloDefinition[] => parseSloFile(parseYaml(readFileSync(path.join(FIXTURES, 'slo.yaml'), 'utf8')), 'slo.yaml');

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-slo-export-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prometheusRules', () => {
  const { text, notes } = prometheusRules(fixture());
  const file = parseYaml(text) as RuleFile;

  it('writes one group per latency/availability SLO and names the others as skipped in the header', () => {
    expect(file.groups.map((g) => g.name)).toEqual(['warden-slo:busy-availability', 'warden-slo:busy-latency', 'warden-slo:busy-latency-20ms']);
    expect(notes.map((n) => [n.slo, n.exported])).toEqual([
      ['busy-availability', true],
      ['busy-latency', true],
      ['busy-latency-20ms', true],
      ['busy-accuracy', false],
    ]);
    expect(text).toMatch(/^# Skipped \(only latency and availability SLIs can be computed from exported metrics\):\n# {3}- busy-accuracy: accuracy is computed inside Warden from evaluated monitoring windows/m);
    expect(text).toContain('# threshold 20 ms is not a bucket bound of warden_inference_duration_seconds: the rules use le=0.01 (10 ms)');
  });

  it('skips explanation coverage, saying why: its failed explanations are not told apart in /metrics', () => {
    const { text: t, notes: n } = prometheusRules([{ ...fixture()[0]!, name: 'busy-explained', sli: { kind: 'explanation_coverage' } }]);
    expect(n).toEqual([{ slo: 'busy-explained', exported: false, note: expect.stringContaining('explanation_coverage counts requests whose explanation failed as bad') }]);
    expect((parseYaml(t) as RuleFile).groups).toEqual([]);
    expect(t).toContain("docs/explainability.md#coverage has the PromQL of the explained share of successful requests); not expressible from exported metrics — Warden's own SLOErrorBudgetBurn alerts cover it");
  });

  it('records the error ratio over the seven workbook windows of a 30-day SLO', () => {
    const g = file.groups[0]!;
    const records = g.rules.filter((r) => r.record);
    expect(records.map((r) => r.record)).toEqual(['5m', '30m', '1h', '2h', '6h', '1d', '3d'].map((w) => `warden:slo_errors:ratio_rate${w}`));
    expect(records.every((r) => r.labels?.deployment === 'busy' && r.labels.slo === 'busy-availability')).toBe(true);
    // Availability: server errors over valid (ok + server error) requests; client errors are in neither.
    expect(records[0]!.expr).toContain('(sum(rate(warden_inference_requests_total{model="busy",outcome="server_error"}[5m])) or vector(0))');
    expect(records[0]!.expr).toContain('sum(rate(warden_inference_requests_total{model="busy",outcome=~"ok|server_error"}[5m]))');
    // Latency: 1 − share of successful requests in the threshold's bucket (le 0.025, either spelling of a bound).
    const lat = file.groups[1]!.rules[0]!;
    expect(lat.expr).toContain('warden_inference_duration_seconds_bucket{model="busy",outcome="ok",le=~"0\\\\.025"}[5m]');
    expect(lat.expr).toContain('warden_inference_duration_seconds_count{model="busy",outcome="ok"}[5m]');
  });

  it("restricts an SLO of one version to that version's series", () => {
    const one = fixture()[0]!;
    const { text: v } = prometheusRules([{ ...one, name: 'busy-v2', version: 2 }]);
    expect(v).toContain('warden_inference_requests_total{model="busy",version="2",outcome="server_error"}[5m]');
    expect(v).not.toContain('{model="busy",outcome=');
  });

  it('alerts on both windows of each policy row, with severity, window and runbook', () => {
    const alerts = file.groups[0]!.rules.filter((r) => r.alert);
    expect(alerts.map((a) => [a.alert, a.labels?.severity, a.labels?.window])).toEqual([
      ['SLOErrorBudgetBurn', 'page', '1h/5m'],
      ['SLOErrorBudgetBurn', 'page', '6h/30m'],
      ['SLOErrorBudgetBurn', 'ticket', '1d/2h'],
      ['SLOErrorBudgetBurn', 'ticket', '3d/6h'],
    ]);
    expect(alerts[0]!.expr).toBe(
      'warden:slo_errors:ratio_rate1h{deployment="busy",slo="busy-availability"} > (14.4 * (1 - 0.999))\nand\nwarden:slo_errors:ratio_rate5m{deployment="busy",slo="busy-availability"} > (14.4 * (1 - 0.999))',
    );
    expect(alerts[3]!.expr).toContain('ratio_rate3d{deployment="busy",slo="busy-availability"} > (1 * (1 - 0.999))');
    expect(alerts[0]!.annotations?.runbook_url).toBe('docs/runbooks/pipeline-failure-nans.md');
    expect(file.groups[1]!.rules.find((r) => r.alert)!.annotations?.runbook_url).toBe('docs/runbooks/latency-spike.md');
  });

  it('scales windows with the period and the time scale; prefixes runbooks with a base URL', () => {
    // 7d: 5m → 70 s, 1h → 14 min, 3d → 16.8 h.
    const week = file.groups[2]!.rules.filter((r) => r.record).map((r) => r.record);
    expect(week).toEqual(['1m10s', '7m', '14m', '28m', '1h24m', '5h36m', '16h48m'].map((w) => `warden:slo_errors:ratio_rate${w}`));
    const scaled = parseYaml(prometheusRules(fixture().slice(0, 1), { timeScale: 0.001, runbookBaseUrl: 'https://git.example.com/warden/blob/main/' }).text) as RuleFile;
    expect(scaled.groups[0]!.rules.filter((r) => r.record).map((r) => r.record)).toEqual(
      ['300ms', '1s800ms', '3s600ms', '7s200ms', '21s600ms', '1m26s400ms', '4m19s200ms'].map((w) => `warden:slo_errors:ratio_rate${w}`),
    );
    expect(scaled.groups[0]!.rules.find((r) => r.alert)!.annotations?.runbook_url).toBe('https://git.example.com/warden/blob/main/docs/runbooks/pipeline-failure-nans.md');
  });

  it('maps thresholds to histogram buckets, and knows the buckets /metrics really exports', async () => {
    expect(latencyBucket(25)).toBe(0.025);
    expect(latencyBucket(7.5)).toBe(0.0075);
    expect(latencyBucket(20)).toBe(0.01);
    expect(latencyBucket(10_000)).toBe(10);
    expect(latencyBucket(60_000)).toBe(10);
    expect(latencyBucket(0.1)).toBeUndefined();
    expect(prometheusRules([{ ...fixture()[1]!, sli: { kind: 'latency', thresholdMs: 0.1 } }]).notes[0]).toMatchObject({ exported: false, note: expect.stringContaining('below the smallest latency bucket') });
    // The bounds the export matches are the histogram's own, as prom-client writes them.
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    m.inferenceDuration.observe({ model: 'm', version: '1', outcome: 'ok' }, 0.001);
    const les = [...(await m.registry.metrics()).matchAll(/warden_inference_duration_seconds_bucket\{le="([^"]+)"/g)].map((x) => x[1]);
    expect(les).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
  });

  it('formats Prometheus durations and rule names', () => {
    expect(promDuration(3 * 86_400_000)).toBe('3d');
    expect(promDuration(5_400_000)).toBe('1h30m');
    expect(promDuration(70_000)).toBe('1m10s');
    expect(promDuration(300)).toBe('300ms');
    expect(ratioRuleName(300_000)).toBe('warden:slo_errors:ratio_rate5m');
  });
});

describe.skipIf(!promtool)('promtool', () => {
  it('accepts the generated rules (promtool check rules)', () => {
    const out = path.join(dir, 'check.yml');
    writeFileSync(out, prometheusRules(fixture()).text);
    const r = spawnSync('promtool', ['check', 'rules', out], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 33 rules found');
  });

  it('fires the page after the right time on synthetic series (promtool test rules, test/fixtures/slo/rules.test.yml)', { timeout: 180_000 }, () => {
    const work = mkdtempSync(path.join(dir, 'unit-'));
    writeFileSync(path.join(work, 'rules.yml'), prometheusRules(fixture()).text);
    copyFileSync(path.join(FIXTURES, 'rules.test.yml'), path.join(work, 'rules.test.yml'));
    const r = spawnSync('promtool', ['test', 'rules', path.join(work, 'rules.test.yml')], { encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });
});

describe('warden slo export', () => {
  const run = (args: string[]) => runWarden(args);

  it('writes the rules of a slo.yaml to --out and says what it skipped', async () => {
    const out = path.join(dir, 'rules.yml');
    const r = await run(['slo', 'export', '--format', 'prometheus', '--file', path.join(FIXTURES, 'slo.yaml'), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${out}: rules for 3 of 4 SLO(s)`);
    expect(r.stdout).toContain('busy-accuracy: skipped, accuracy is computed inside Warden');
    expect(readFileSync(out, 'utf8')).toBe(prometheusRules(fixture()).text);
  });

  it('refuses other formats and invalid files with exit code 2', async () => {
    const fmt = await run(['slo', 'export', '--format', 'json', '--file', path.join(FIXTURES, 'slo.yaml')]);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toContain('--format json is not supported; use --format prometheus');
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'slos:\n  - { name: a, deployment: b, sli: { kind: latency }, objective: 0.9, period: 1d }\n');
    const invalid = await run(['slo', 'export', '--format', 'prometheus', '--file', bad]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('slos[0].sli.thresholdMs: Required');
  });
});
