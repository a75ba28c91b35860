/**
 * The trainer's target-leakage warning. The README's `warden train … --where yr=0` without `--exclude` trains on
 * casual and registered, which sum to cnt, and scored r2 = 1.000 without a word. The check's numbers are compared
 * with numpy/scipy brute force over every feature and pair (test/fixtures/trainer/make_leakage_fixtures.py).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTrain } from '../../src/cli/train.ts';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, readOnnxMetadataProps, train, type TrainOptions, type TrainResult } from '../../src/lifecycle/index.ts';
import { loadCsv, selectDataset } from '../../src/lifecycle/trainer/csv-dataset.ts';
import { LEAKAGE_THRESHOLD, pearson, subsetScore, type LeakageInput } from '../../src/lifecycle/trainer/leakage.ts';
import { columnStats, standardize } from '../../src/lifecycle/trainer/linalg.ts';
import { holdoutSplit } from '../../src/lifecycle/trainer/split.ts';
import { startTestServer } from '../helpers/server.ts';
import fixture from '../fixtures/trainer/bike-sharing-2011-leaky.json' with { type: 'json' };

/** The README's command without --exclude: every numeric column but cnt is a feature. */
const leaky = (model: 'linear' | 'logistic'): TrainOptions => ({ csvPath: BIKE_SHARING_CSV, target: 'cnt', model, where: { yr: 0 } });

const models = {} as Record<'linear' | 'logistic', TrainResult>;
let dir = '';

beforeAll(async () => {
  models.linear = await train(leaky('linear'));
  models.logistic = await train(leaky('logistic'));
  dir = await mkdtemp(join(tmpdir(), 'warden-leakage-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** What train() hands the check, rebuilt here from the same rows and split. */
async function leakageInput(kind: 'linear' | 'logistic'): Promise<LeakageInput & { xEval: Float64Array }> {
  const data = selectDataset(await loadCsv(BIKE_SHARING_CSV), leaky(kind));
  const k = data.featureNames.length;
  const split = holdoutSplit(data.rows, 0.2, 42);
  const take = (idx: number[]) => ({
    x: Float64Array.from(idx.flatMap((r) => Array.from(data.x.subarray(r * k, (r + 1) * k)))),
    y: Float64Array.from(idx, (r) => data.y[r] as number),
  });
  const fit = take(split.train);
  const ev = take(split.holdout);
  const stats = columnStats(fit.x, split.train.length, k);
  const scale = stats.std.map((s) => (s > 0 ? s : 1));
  return {
    kind,
    target: 'cnt',
    featureNames: data.featureNames,
    zFit: standardize(fit.x, split.train.length, k, stats.mean, scale),
    yFit: fit.y,
    zEval: standardize(ev.x, split.holdout.length, k, stats.mean, scale),
    yEval: ev.y,
    xEval: ev.x,
    constant: Array.from(stats.std, (s) => !(s > 0)),
    l2: kind === 'linear' ? 1e-6 : 1e-4,
    ...(kind === 'logistic' ? { threshold: fixture.threshold } : {}),
    metrics: {},
    evaluatedOn: 'holdout',
    exclude: [],
  };
}

describe('the README command without --exclude', () => {
  it('linear: names casual and registered, which reconstruct cnt, and suggests --exclude casual,registered', () => {
    expect(models.linear.metrics.r2).toBeGreaterThan(LEAKAGE_THRESHOLD);
    expect(models.linear.warnings).toEqual([
      {
        code: 'target_leakage',
        columns: ['casual', 'registered'],
        metric: 'r2',
        score: expect.closeTo(fixture.linear_r2['2'][0]!.r2, 6),
        message:
          'possible target leakage: casual and registered reconstruct cnt on the holdout rows (r2 = 1.000 from those columns alone). ' +
          'A feature derived from the target makes offline metrics perfect and live predictions wrong. ' +
          'If they are not known before cnt is, rerun with --exclude casual,registered.',
      },
    ]);
  });

  it('logistic: names the same columns, which separate cnt > 108', () => {
    expect(models.logistic.threshold).toBe(fixture.threshold);
    expect(models.logistic.warnings).toHaveLength(1);
    expect(models.logistic.warnings[0]).toMatchObject({ columns: ['casual', 'registered'], metric: 'roc_auc', score: expect.closeTo(fixture.logistic_auc['2'][0]!.roc_auc, 4) });
    expect(models.logistic.warnings[0]!.message).toContain('casual and registered separate cnt > 108 on the holdout rows (roc_auc = 1.000 from those columns alone)');
  });

  it('records the warning in the params the registry keeps as metadata', () => {
    for (const m of [models.linear, models.logistic]) {
      expect(m.params).toMatchObject({ leakage_suspected: 'casual,registered', leakage_warning: m.warnings[0]!.message });
      expect(JSON.parse(readOnnxMetadataProps(m.onnx)['warden.params']!)).toMatchObject({ leakage_suspected: 'casual,registered' });
    }
  });

  it('says nothing about the demo models, which leave casual and registered out', async () => {
    for (const kind of ['linear', 'logistic'] as const) {
      const demo = await train(bikeSharingDemoOptions(kind));
      expect(demo.warnings).toEqual([]);
      expect(demo.params).not.toHaveProperty('leakage_warning');
    }
  });
});

describe('the check against numpy/scipy brute force', () => {
  it('Pearson r of every feature with cnt on the holdout rows matches numpy.corrcoef', async () => {
    const input = await leakageInput('linear');
    const k = input.featureNames.length;
    for (const [name, r] of Object.entries(fixture.holdout_pearson_r)) {
      expect(pearson(input.xEval, k, input.featureNames.indexOf(name), input.yEval)).toBeCloseTo(r, 12);
    }
    expect(Number.isNaN(pearson(input.xEval, k, input.featureNames.indexOf('yr'), input.yEval))).toBe(true);
  });

  it.each(['linear', 'logistic'] as const)('%s: scores the brute-force top singles and pairs alike, and the greedy pick is the best pair', async (kind) => {
    const input = await leakageInput(kind);
    const table = kind === 'linear' ? fixture.linear_r2 : fixture.logistic_auc;
    const value = (e: { r2?: number; roc_auc?: number }) => (kind === 'linear' ? e.r2 : e.roc_auc) as number;
    for (const size of ['1', '2'] as const) {
      for (const entry of table[size]) {
        const cols = entry.columns.map((c) => input.featureNames.indexOf(c));
        expect(subsetScore(input, cols), entry.columns.join('+')).toBeCloseTo(value(entry), kind === 'linear' ? 6 : 4);
      }
    }
    // No single feature reaches the bar, so the search needs a pair; the best pair is the one the warning names.
    expect(value(table['1'][0]!)).toBeLessThan(LEAKAGE_THRESHOLD);
    expect(value(table['2'][0]!)).toBeGreaterThanOrEqual(LEAKAGE_THRESHOLD);
    expect(value(table['2'][1]!)).toBeLessThan(LEAKAGE_THRESHOLD);
    expect([...table['2'][0]!.columns].sort()).toEqual(models[kind].warnings[0]!.columns);
  });
});

describe('synthetic leaks', () => {
  /** 200 rows: noise features a, b, c, d and the target y = a + b + c + d, plus `extra` columns computed from a row. */
  async function csv(name: string, extra: Record<string, (row: { a: number; b: number; c: number; d: number; y: number }) => number> = {}): Promise<string> {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 10;
    const lines = [['a', 'b', 'c', 'd', ...Object.keys(extra), 'y'].join(',')];
    for (let i = 0; i < 200; i++) {
      const [a, b, c, d] = [rand(), rand(), rand(), rand()] as [number, number, number, number];
      const row = { a, b, c, d, y: a + b + c + d };
      lines.push([a, b, c, d, ...Object.values(extra).map((f) => f(row)), row.y].join(','));
    }
    const path = join(dir, name);
    await writeFile(path, lines.join('\n'));
    return path;
  }

  it('names a single copy of the target by |r|, and suggests --features without it when features were listed', async () => {
    const csvPath = await csv('copy.csv', { y_cents: (r) => Math.round(r.y * 100) });
    const auto = await train({ csvPath, target: 'y', model: 'linear' });
    expect(auto.warnings[0]).toMatchObject({ columns: ['y_cents'], metric: 'abs_r' });
    expect(auto.warnings[0]!.message).toContain('y_cents predicts y almost exactly on the holdout rows (|r| = 1.000)');
    expect(auto.warnings[0]!.message).toContain('rerun with --exclude y_cents.');
    const listed = await train({ csvPath, target: 'y', model: 'linear', features: ['a', 'y_cents', 'b'] });
    expect(listed.warnings[0]!.message).toContain('rerun with --features a,b.');
    const excluded = await train({ csvPath, target: 'y', model: 'logistic', exclude: ['d'] });
    expect(excluded.warnings[0]).toMatchObject({ columns: ['y_cents'], metric: 'roc_auc', score: 1 });
    expect(excluded.warnings[0]!.message).toContain('rerun with --exclude d,y_cents.');
  });

  it('warns without naming columns when only all four features together reconstruct the target', async () => {
    const result = await train({ csvPath: await csv('sum.csv'), target: 'y', model: 'linear' });
    expect(result.metrics.r2).toBeGreaterThan(0.999999);
    expect(result.warnings).toEqual([
      expect.objectContaining({
        columns: [],
        metric: 'r2',
        message: expect.stringContaining('the model scores r2 = 1.000 on the holdout rows, though no set of up to 3 features does alone'),
      }),
    ]);
    expect(result.params.leakage_suspected).toBe('');
  });

  it('says nothing when the features explain the target only partly', async () => {
    const result = await train({ csvPath: await csv('partial.csv'), target: 'y', model: 'linear', exclude: ['d'] });
    expect(result.metrics.r2).toBeLessThan(0.9);
    expect(result.warnings).toEqual([]);
  });
});

describe('warden train and warden models get', () => {
  it('prints the warning on stderr after the summary, still writes the model, and the registry shows it', async () => {
    let out = '';
    let err = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerTrain(program);
    const file = join(dir, 'bike.onnx');
    await program
      .parseAsync(['train', '--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--model', 'linear', '--where', 'yr=0', '--out', file], { from: 'user' })
      .catch((e: unknown) => {
        if (e instanceof CommanderError) expect.fail(`warden train failed: ${e.message}`);
        throw e;
      });
    expect(out).toContain('r2=1.000');
    expect(out).not.toContain('warning');
    expect(err.trimEnd().split('\n').at(-1)).toBe(`warning: ${models.linear.warnings[0]!.message}`);

    const srv = await startTestServer();
    try {
      const push = await fetch(`${srv.url}/api/v1/models/my-bikes/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: await readFile(file) });
      expect(push.status).toBe(201);
      const version = await srv.json('GET', '/api/v1/models/my-bikes/versions/1');
      expect(version.body.metadata.params).toMatchObject({ leakage_suspected: 'casual,registered', leakage_warning: models.linear.warnings[0]!.message });
    } finally {
      await srv.close();
    }
  });
});
