import { z } from 'zod';
import { WardenError } from '../errors.ts';
import type { FeatureSpec, VersionMetadata } from '../storage/index.ts';

const metadataSchema = z
  .object({
    description: z.string().max(10_000).optional(),
    params: z.record(z.union([z.string(), z.number(), z.boolean()])).optional(),
    metrics: z.record(z.number().finite()).optional(),
    trainingDataSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256').optional(),
    sourceCommit: z.string().max(200).optional(),
    tags: z.record(z.string().max(1000)).optional(),
  })
  .strict();

const featureSchema = z
  .object({
    name: z.string().min(1).max(256),
    datatype: z.enum(['FP32', 'FP64', 'INT32', 'INT64', 'BOOL']).default('FP32'),
    min: z.number().finite().optional(),
    max: z.number().finite().optional(),
    mean: z.number().finite().optional(),
    std: z.number().finite().optional(),
  })
  .strict()
  .refine((f) => f.min === undefined || f.max === undefined || f.min <= f.max, 'min must be ≤ max');

function describe(error: z.ZodError, what: string): WardenError {
  const msg = error.issues.map((i) => `${[what, ...i.path].join('.')}: ${i.message}`).join('; ');
  return new WardenError('WARDEN_BAD_REQUEST', msg);
}

/** Validates version metadata (params, offline metrics, data hash, commit, tags, description). */
export function validateMetadata(raw: unknown): VersionMetadata {
  const r = metadataSchema.safeParse(raw);
  if (!r.success) throw describe(r.error, 'metadata');
  return r.data as VersionMetadata;
}

/** Validates a list of named features with optional allowed ranges; names must be unique. */
export function validateFeatures(raw: unknown): FeatureSpec[] {
  const r = z.array(featureSchema).min(1).max(100_000).safeParse(raw);
  if (!r.success) throw describe(r.error, 'features');
  const seen = new Set<string>();
  for (const f of r.data) {
    if (seen.has(f.name)) throw new WardenError('WARDEN_BAD_REQUEST', `features: duplicate feature name ${f.name}`);
    seen.add(f.name);
  }
  return r.data as FeatureSpec[];
}
