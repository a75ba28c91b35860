/**
 * The first errors after a model version loads must reach the exported SLO rules. Prometheus' rate() ignores a
 * series' first sample, so every series the rules of `warden slo export --format prometheus` read has to exist at 0
 * from the load: checked on /metrics of a real Warden right after a push, then through promtool — both with the
 * committed synthetic test (test/fixtures/slo/first-errors.test.yml) and with series made of what a real Warden
 * exported before and after its first errors.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseSloFile, prometheusRules } from '../../src/slo/index.ts';
import { LATENCY_BUCKETS } from '../../src/telemetry/index.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer, withCrashingRuntime } from '../helpers/server.ts';

const promtool = spawnSync('promtool', ['--version']).status === 0;
const FIXTURES = path.join(repoRoot, 'test', 'fixtures', 'slo');
const rulesText = () => prometheusRules(parseSloFile(parseYaml(readFileSync(path.join(FIXTURES, 'slo.yaml'), 'utf8')), 'slo.yaml')).text;
const good = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.25) }] };

/** Samples of /metrics as `name{labels}` → value, for the series of one model (label order as exported). */
function samples(text: string, model: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(warden_inference_(?:requests_total|duration_seconds_bucket|duration_seconds_count))(\{[^}]*\}) (\S+)$/.exec(line);
    if (m && m[2]!.includes(`model="${model}"`)) out.set(`${m[1]}${m[2]}`, Number(m[3]));
  }
  return out;
}

function runPromtool(work: string, testFile: string): { status: number | null; out: string } {
  writeFileSync(path.join(work, 'rules.yml'), rulesText());
  const r = spawnSync('promtool', ['test', 'rules', path.join(work, testFile)], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-first-errors-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('request series exist at 0 from the moment a version loads', () => {
  let srv: TestServer;
  let atLoad: Map<string, number>;

  beforeAll(async () => {
    srv = await startTestServer({ serving: { dynamicBatching: false } });
    await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')), aliases: ['champion'] });
    await srv.warden.table.settled();
    expect(srv.warden.table.peek('busy', 1)).toBeDefined();
    atLoad = samples(await (await fetch(`${srv.url}/metrics`)).text(), 'busy');
  });
  afterAll(() => srv?.close());

  it('has every outcome and protocol of warden_inference_requests_total, and the _unresolved failures, at 0', () => {
    for (const protocol of ['oip', 'predict']) {
      for (const outcome of ['ok', 'client_error', 'server_error']) {
        expect(atLoad.get(`warden_inference_requests_total{model="busy",version="1",outcome="${outcome}",protocol="${protocol}"}`), `${outcome} ${protocol}`).toBe(0);
      }
      for (const outcome of ['client_error', 'server_error']) {
        expect(atLoad.get(`warden_inference_requests_total{model="busy",version="_unresolved",outcome="${outcome}",protocol="${protocol}"}`)).toBe(0);
      }
    }
  });

  it('has every bucket and the count of the latency histogram at 0, for each outcome', () => {
    for (const outcome of ['ok', 'client_error', 'server_error']) {
      for (const le of [...LATENCY_BUCKETS.map(String), '+Inf']) {
        expect(atLoad.get(`warden_inference_duration_seconds_bucket{le="${le}",model="busy",version="1",outcome="${outcome}"}`), `${outcome} le=${le}`).toBe(0);
      }
      expect(atLoad.get(`warden_inference_duration_seconds_count{model="busy",version="1",outcome="${outcome}"}`)).toBe(0);
    }
  });

  it('a reload of the version (evicted, then loaded again) keeps the counts', async () => {
    expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(200);
    // What the model table calls on a later load of the same version (the first one was at the push).
    srv.warden.metrics.zeroVersionSeries('busy', '1');
    const after = samples(await (await fetch(`${srv.url}/metrics`)).text(), 'busy');
    expect(after.get('warden_inference_requests_total{model="busy",version="1",outcome="ok",protocol="oip"}')).toBe(1);
    expect(after.get('warden_inference_duration_seconds_count{model="busy",version="1",outcome="ok"}')).toBe(1);
  });

  it.skipIf(!promtool)('the first two server errors it exported give a non-zero error ratio and page in Prometheus (promtool)', async () => {
    // The traffic after the load: two more successes, then two requests whose model run fails (500).
    for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(200);
    await withCrashingRuntime(srv, 'busy', 1, async () => {
      for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(500);
    });
    const later = samples(await (await fetch(`${srv.url}/metrics`)).text(), 'busy');
    expect(later.get('warden_inference_requests_total{model="busy",version="1",outcome="server_error",protocol="oip"}')).toBe(2);

    // Prometheus scraped once at the load (0m) and then every minute after the errors (1m … 5m); a series missing
    // from a scrape has no sample there (`_`).
    const series = [...new Set([...atLoad.keys(), ...later.keys()])].map((s) => ({ series: s, values: `${atLoad.get(s) ?? '_'} ${later.get(s)}x4` }));
    const work = mkdtempSync(path.join(dir, 'scraped-'));
    writeFileSync(
      path.join(work, 'scraped.test.yml'),
      JSON.stringify({
        rule_files: ['rules.yml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: series,
            promql_expr_test: [
              { expr: 'warden:slo_errors:ratio_rate5m{slo="busy-availability"} > bool 0', eval_time: '5m', exp_samples: [{ labels: '{deployment="busy",slo="busy-availability"}', value: 1 }] },
              {
                expr: 'count by (slo) (ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing",slo="busy-availability"})',
                eval_time: '5m',
                exp_samples: [{ labels: '{slo="busy-availability"}', value: 4 }],
              },
            ],
          },
        ],
      }),
    );
    const r = runPromtool(work, 'scraped.test.yml');
    expect(r.status, r.out).toBe(0);
  });
});

describe.skipIf(!promtool)('promtool test rules: test/fixtures/slo/first-errors.test.yml', () => {
  it('the first errors after a load give a non-zero error ratio and fire, and series born at their first error would not', () => {
    const work = mkdtempSync(path.join(dir, 'fixture-'));
    copyFileSync(path.join(FIXTURES, 'first-errors.test.yml'), path.join(work, 'first-errors.test.yml'));
    const r = runPromtool(work, 'first-errors.test.yml');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });
});
