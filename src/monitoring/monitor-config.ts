import { z } from 'zod';
import { WardenError } from '../errors.ts';
import { DRIFT_TESTS, type DriftTestName } from './drift/tests.ts';
import type { DriftConfig } from './drift/engine.ts';
import type { QualityThresholds } from './quality.ts';
import type { WindowSpec } from './collector.ts';
import type { EmbeddingConfig, MultivariateConfig } from './vector-drift.ts';
import type { PerformanceConfig } from './performance-window.ts';

const testNames = Object.keys(DRIFT_TESTS) as [DriftTestName, ...DriftTestName[]];

const schema = z
  .object({
    window: z
      .union([
        z.object({ kind: z.literal('time'), sizeMs: z.number().int().min(1000).max(31 * 24 * 3600 * 1000) }).strict(),
        z.object({ kind: z.literal('count'), size: z.number().int().min(10).max(10_000_000) }).strict(),
      ])
      .optional(),
    drift: z
      .object({
        columns: z.record(z.object({ test: z.enum(testNames).optional(), threshold: z.number().min(0).optional() }).strict()).optional(),
        datasetDriftShare: z.number().gt(0).max(1).optional(),
      })
      .strict()
      .optional(),
    quality: z
      .object({
        completeness: z.number().min(0).max(1).optional(),
        nonFinite: z.number().min(0).max(1).optional(),
        typeErrors: z.number().min(0).max(1).optional(),
        outOfRange: z.number().min(0).max(1).optional(),
        newCategories: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    embeddings: z.record(z.array(z.string()).min(2).max(4096)).optional(),
    multivariate: z
      .object({
        columns: z.array(z.string()).min(2).optional(),
        varianceRatio: z.number().gt(0).max(1).optional(),
        chunks: z.number().int().min(3).max(100).optional(),
      })
      .strict()
      .optional(),
    performance: z
      .object({
        task: z.enum(['binary', 'regression']),
        target: z.string().min(1),
        targetThreshold: z.number().finite().optional(),
        prediction: z.string().optional(),
        threshold: z.number().min(0).max(1).optional(),
        offlineTolerance: z.number().min(0).max(10).optional(),
        segments: z.array(z.string()).max(20).optional(),
        labelShift: z.number().min(0).optional(),
        mismatchRate: z.number().min(0).max(1).optional(),
        machineLabelShare: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    /** Profiling choices made once when the reference is registered. */
    columns: z.array(z.string()).optional(),
    categorical: z.array(z.string()).optional(),
    numeric: z.array(z.string()).optional(),
    bins: z.number().int().min(2).max(200).optional(),
    sampleSize: z.number().int().min(100).max(100_000).optional(),
  })
  .strict();

/** Per-version monitoring settings, stored with the reference. */
export interface MonitoringConfig {
  window?: WindowSpec;
  drift?: DriftConfig;
  quality?: Partial<QualityThresholds>;
  /** Embedding name → its numeric columns; drift of each vector per window. */
  embeddings?: EmbeddingConfig;
  /** PCA reconstruction drift over numeric features. */
  multivariate?: MultivariateConfig;
  /** Live and estimated performance: the task and where the reference's ground truth is. */
  performance?: PerformanceConfig;
  columns?: string[];
  categorical?: string[];
  numeric?: string[];
  bins?: number;
  sampleSize?: number;
}

/** Validates monitoring settings; an unknown key or test is a 400 naming it. */
export function parseMonitoringConfig(raw: unknown): MonitoringConfig {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) {
    const msg = r.error.issues
      .map((i) => (i.code === 'unrecognized_keys' ? `unknown key ${i.keys.map((k) => [...i.path, k].join('.')).join(', ')}` : `${i.path.join('.') || '(root)'}: ${i.message}`))
      .join('; ');
    throw new WardenError('WARDEN_BAD_REQUEST', `monitoring config is invalid: ${msg}`);
  }
  return r.data as MonitoringConfig;
}
