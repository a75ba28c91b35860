/**
 * One typed configuration, read once at start from `warden.yaml` (optional) and `WARDEN_*`
 * environment variables, validated, frozen and passed down. A bad key fails fast naming its path:
 * a server that silently falls back to defaults hides mistakes until production.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { WardenError } from './errors.ts';

const serverSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    bodyLimitBytes: z.number().int().min(1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
    maxInflight: z.number().int().min(1).default(1024),
    requestTimeoutMs: z.number().int().min(100).default(30_000),
  })
  .strict()
  .default({});

const storageSchema = z
  .object({
    dataDir: z.string().min(1).default('./.warden'),
  })
  .strict()
  .default({});

const predictionLogSchema = z
  .object({
    enabled: z.boolean().default(true),
    queueCapacity: z.number().int().min(1).max(10_000_000).default(100_000),
    flushIntervalMs: z.number().int().min(10).max(60_000).default(200),
    batchSize: z.number().int().min(1).max(100_000).default(2_000),
  })
  .strict()
  .default({});

const authSchema = z
  .object({
    /** When false, every route is open. Only allowed on a loopback host (the demo runs so). */
    required: z.boolean().default(true),
  })
  .strict()
  .default({});

const servingSchema = z
  .object({
    maxBatchRows: z.number().int().min(1).max(1_000_000).default(10_000),
    intraOpThreads: z.number().int().min(0).max(256).default(1),
    /** Stack concurrent requests for one version into one model run (no added delay). */
    dynamicBatching: z.boolean().default(true),
  })
  .strict()
  .default({});

const monitoringSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Default tumbling window of event time; a reference may set its own. */
    windowMs: z.number().int().min(1000).max(31 * 24 * 3600 * 1000).default(3_600_000),
    tickMs: z.number().int().min(50).max(600_000).default(1000),
    idleCloseMs: z.number().int().min(0).max(3_600_000).default(5000),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    server: serverSchema,
    storage: storageSchema,
    predictionLog: predictionLogSchema,
    auth: authSchema,
    serving: servingSchema,
    monitoring: monitoringSchema,
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    demo: z.boolean().default(false),
  })
  .strict();

export type WardenConfig = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variable → config path. Listed explicitly so a typo in WARDEN_* is an error, not a no-op. */
const envKeys: Record<string, { path: string[]; type: 'string' | 'number' | 'boolean' }> = {
  WARDEN_HOST: { path: ['server', 'host'], type: 'string' },
  WARDEN_PORT: { path: ['server', 'port'], type: 'number' },
  WARDEN_BODY_LIMIT_BYTES: { path: ['server', 'bodyLimitBytes'], type: 'number' },
  WARDEN_MAX_INFLIGHT: { path: ['server', 'maxInflight'], type: 'number' },
  WARDEN_REQUEST_TIMEOUT_MS: { path: ['server', 'requestTimeoutMs'], type: 'number' },
  WARDEN_DATA_DIR: { path: ['storage', 'dataDir'], type: 'string' },
  WARDEN_PREDICTION_LOG_ENABLED: { path: ['predictionLog', 'enabled'], type: 'boolean' },
  WARDEN_PREDICTION_LOG_QUEUE_CAPACITY: { path: ['predictionLog', 'queueCapacity'], type: 'number' },
  WARDEN_PREDICTION_LOG_FLUSH_INTERVAL_MS: { path: ['predictionLog', 'flushIntervalMs'], type: 'number' },
  WARDEN_PREDICTION_LOG_BATCH_SIZE: { path: ['predictionLog', 'batchSize'], type: 'number' },
  WARDEN_AUTH_REQUIRED: { path: ['auth', 'required'], type: 'boolean' },
  WARDEN_SERVING_MAX_BATCH_ROWS: { path: ['serving', 'maxBatchRows'], type: 'number' },
  WARDEN_SERVING_INTRA_OP_THREADS: { path: ['serving', 'intraOpThreads'], type: 'number' },
  WARDEN_SERVING_DYNAMIC_BATCHING: { path: ['serving', 'dynamicBatching'], type: 'boolean' },
  WARDEN_MONITORING_ENABLED: { path: ['monitoring', 'enabled'], type: 'boolean' },
  WARDEN_MONITORING_WINDOW_MS: { path: ['monitoring', 'windowMs'], type: 'number' },
  WARDEN_MONITORING_TICK_MS: { path: ['monitoring', 'tickMs'], type: 'number' },
  WARDEN_MONITORING_IDLE_CLOSE_MS: { path: ['monitoring', 'idleCloseMs'], type: 'number' },
  WARDEN_LOG_LEVEL: { path: ['logLevel'], type: 'string' },
  WARDEN_DEMO: { path: ['demo'], type: 'boolean' },
};

/** Names of every WARDEN_* variable the config understands (documented in docs/configuration.md). */
export const configEnvNames = Object.keys(envKeys);

function envValue(name: string, raw: string, type: 'string' | 'number' | 'boolean'): unknown {
  if (type === 'string') return raw;
  if (type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `${name}=${JSON.stringify(raw)} is not a number`);
    }
    return n;
  }
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new WardenError('WARDEN_CONFIG_INVALID', `${name}=${JSON.stringify(raw)} is not a boolean (use true or false)`);
}

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    // A file value of the wrong type (`server: 8080`) is left for validation to name, not replaced.
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) return;
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validate a raw config object; throws WARDEN_CONFIG_INVALID naming the first bad key. */
export function parseConfig(raw: unknown, source = 'config'): WardenConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issues = result.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.map((k) => (where === '(root)' ? k : `${where}.${k}`));
        return `unknown key ${keys.join(', ')}`;
      }
      return `${where}: ${issue.message}`;
    });
    throw new WardenError('WARDEN_CONFIG_INVALID', `${source} is invalid: ${issues.join('; ')}`);
  }
  return deepFreeze(result.data);
}

export interface LoadConfigOptions {
  /** Path to a YAML file; default `warden.yaml` in the working directory when it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values that win over file and env (CLI flags). */
  overrides?: Record<string, unknown>;
}

/** Read file + env + overrides into one validated, frozen config. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<WardenConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.WARDEN_CONFIG ?? (existsSync('warden.yaml') ? 'warden.yaml' : undefined);
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `cannot read config file ${path.resolve(file)}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (e) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `config file ${file} is not valid YAML: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new WardenError('WARDEN_CONFIG_INVALID', `config file ${file} must hold a mapping at the top level`);
      }
      raw = parsed as Record<string, unknown>;
    }
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WARDEN_') || value === undefined || name === 'WARDEN_CONFIG' || name === 'WARDEN_API_KEY' || name === 'WARDEN_URL') continue;
    const spec = envKeys[name];
    if (!spec) {
      throw new WardenError('WARDEN_CONFIG_INVALID', `unknown environment variable ${name}; known: ${configEnvNames.join(', ')}`);
    }
    setPath(raw, spec.path, envValue(name, value, spec.type));
  }
  for (const [dotted, value] of Object.entries(opts.overrides ?? {})) {
    if (value !== undefined) setPath(raw, dotted.split('.'), value);
  }
  return parseConfig(raw, file ? `config (${file} + WARDEN_* env)` : 'config (WARDEN_* env)');
}
