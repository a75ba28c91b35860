import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWarden, isLoopback } from '../src/app.ts';
import { configEnvNames, loadConfig, parseConfig } from '../src/config.ts';
import { WardenError } from '../src/errors.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function yamlFile(text: string): string {
  const file = path.join(dir, 'warden.yaml');
  writeFileSync(file, text);
  return file;
}

/** The WARDEN_CONFIG_INVALID message a config load fails with. */
async function configError(load: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await load();
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe('WARDEN_CONFIG_INVALID');
    return (e as WardenError).message;
  }
  throw new Error('expected the config to be refused');
}

describe('config', () => {
  it('parses with no file and no environment: defaults only', async () => {
    const cfg = await loadConfig({ env: {} });
    expect(cfg.server).toEqual({
      host: '127.0.0.1',
      port: 8080,
      bodyLimitBytes: 8 * 1024 * 1024,
      uploadLimitBytes: 1024 * 1024 * 1024,
      referenceLimitBytes: 256 * 1024 * 1024,
      maxUploads: 4,
      maxConnections: 4096,
      maxInflight: 1024,
      requestTimeoutMs: 30_000,
      drainDelayMs: 5_000,
    });
    expect(cfg.storage.dataDir).toBe('./.warden');
    expect(cfg.storage.url).toBeUndefined();
    expect(cfg.cluster).toEqual({ syncIntervalMs: 1_000, resyncMs: 300_000, leaseMs: 15_000 });
    expect(cfg.predictionLog).toEqual({ enabled: true, queueCapacity: 100_000, flushIntervalMs: 200, batchSize: 2_000, writerNice: 10 });
    expect(cfg.logLevel).toBe('info');
    expect(cfg.demo).toBe(false);
    expect(cfg.auth.required).toBe(true);
    expect(parseConfig({})).toEqual(cfg);
  });

  it('reads a YAML file, lets WARDEN_* env override it and CLI overrides win over both', async () => {
    const file = yamlFile(['server:', '  port: 9000', '  maxInflight: 64', 'predictionLog:', '  flushIntervalMs: 100', 'logLevel: warn', ''].join('\n'));
    const cfg = await loadConfig({
      file,
      env: { WARDEN_PORT: '9100', WARDEN_PREDICTION_LOG_ENABLED: 'false', WARDEN_DATA_DIR: '/var/lib/warden', PATH: '/bin' },
    });
    expect(cfg.server.port).toBe(9100);
    expect(cfg.server.maxInflight).toBe(64);
    expect(cfg.server.host).toBe('127.0.0.1');
    expect(cfg.predictionLog.flushIntervalMs).toBe(100);
    expect(cfg.predictionLog.enabled).toBe(false);
    expect(cfg.storage.dataDir).toBe('/var/lib/warden');
    expect(cfg.logLevel).toBe('warn');

    const flagged = await loadConfig({ file, env: { WARDEN_PORT: '9100' }, overrides: { 'server.port': 9200, 'server.host': undefined } });
    expect(flagged.server.port).toBe(9200);
    expect(flagged.server.host).toBe('127.0.0.1');
  });

  it('finds the file through WARDEN_CONFIG', async () => {
    const file = yamlFile('server:\n  port: 7000\n');
    expect((await loadConfig({ env: { WARDEN_CONFIG: file } })).server.port).toBe(7000);
  });

  it('refuses an unknown key in the file, naming its path', async () => {
    const msg = await configError(() => loadConfig({ file: yamlFile('server:\n  prot: 8080\n'), env: {} }));
    expect(msg).toContain('server.prot');
    expect(await configError(() => loadConfig({ file: yamlFile('servr:\n  port: 8080\n'), env: {} }))).toContain('servr');
    expect(await configError(() => parseConfig({ predictionLog: { flushInterval: 5 } }))).toContain('predictionLog.flushInterval');
  });

  it('refuses an unknown WARDEN_* variable, naming it', async () => {
    const msg = await configError(() => loadConfig({ env: { WARDEN_FOO: '1' } }));
    expect(msg).toContain('WARDEN_FOO');
    expect(msg).toContain('WARDEN_PORT');
    // The client-side variables are not the server's business and are ignored.
    await expect(loadConfig({ env: { WARDEN_URL: 'http://x', WARDEN_API_KEY: 'k' } })).resolves.toBeTruthy();
    expect(configEnvNames).toContain('WARDEN_PREDICTION_LOG_FLUSH_INTERVAL_MS');
  });

  it('refuses values of the wrong type or out of range, naming the path or variable', async () => {
    expect(await configError(() => loadConfig({ file: yamlFile('server:\n  port: eighty\n'), env: {} }))).toContain('server.port');
    expect(await configError(() => parseConfig({ server: { port: 70_000 } }))).toContain('server.port');
    expect(await configError(() => parseConfig({ predictionLog: { flushIntervalMs: 1 } }))).toContain('predictionLog.flushIntervalMs');
    expect(await configError(() => parseConfig({ predictionLog: { writerNice: 20 } }))).toContain('predictionLog.writerNice');
    expect(await configError(() => parseConfig({ logLevel: 'loud' }))).toContain('logLevel');
    expect(await configError(() => parseConfig({ auth: { required: 'yes' } }))).toContain('auth.required');
    expect(await configError(() => loadConfig({ env: { WARDEN_PORT: 'abc' } }))).toContain('WARDEN_PORT');
    expect(await configError(() => loadConfig({ env: { WARDEN_PORT: '' } }))).toContain('WARDEN_PORT');
    expect(await configError(() => loadConfig({ env: { WARDEN_AUTH_REQUIRED: 'maybe' } }))).toContain('WARDEN_AUTH_REQUIRED');
    expect(await configError(() => loadConfig({ env: { WARDEN_LOG_LEVEL: 'loud' } }))).toContain('logLevel');
    // A section of the wrong type is reported even when an env variable sets a key inside it.
    expect(await configError(() => loadConfig({ file: yamlFile('server: 8080\n'), env: { WARDEN_PORT: '9000' } }))).toContain('server');
  });

  it('refuses a file that is not YAML or not a mapping, and a file that cannot be read', async () => {
    expect(await configError(() => loadConfig({ file: yamlFile('server: [unclosed\n'), env: {} }))).toMatch(/not valid YAML/);
    expect(await configError(() => loadConfig({ file: yamlFile('- a\n- b\n'), env: {} }))).toMatch(/mapping/);
    expect(await configError(() => loadConfig({ file: path.join(dir, 'missing.yaml'), env: {} }))).toContain('missing.yaml');
  });

  it('returns a deeply frozen config', async () => {
    const cfg = await loadConfig({ file: yamlFile('server:\n  port: 9000\n'), env: {} });
    expect(Object.isFrozen(cfg)).toBe(true);
    for (const section of [cfg.server, cfg.storage, cfg.predictionLog, cfg.auth, cfg.serving]) expect(Object.isFrozen(section)).toBe(true);
    expect(() => {
      (cfg.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(cfg.server.port).toBe(9000);
  });
});

describe('createWarden and open auth', () => {
  it('refuses auth.required=false on a non-loopback host, before touching the data dir', async () => {
    const dataDir = path.join(dir, 'data');
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'warden.example.com']) {
      const cfg = parseConfig({ server: { host }, auth: { required: false }, storage: { dataDir }, logLevel: 'silent' });
      const msg = await configError(() => createWarden(cfg));
      expect(msg).toContain('auth.required');
      expect(msg).toContain(host);
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('allows open auth on loopback and auth on any host', async () => {
    const dataDir = path.join(dir, 'data');
    for (const [host, required] of [
      ['127.0.0.1', false],
      ['0.0.0.0', true],
    ] as const) {
      const warden = createWarden(parseConfig({ server: { host }, auth: { required }, storage: { dataDir }, logLevel: 'silent' }));
      await warden.close();
    }
    expect(existsSync(path.join(dataDir, 'metadata.db'))).toBe(true);
  });

  it('knows which hosts are loopback', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '127.0.0.1.nip.io', 'localhost.example.com']) {
      expect(isLoopback(host), host).toBe(false);
    }
  });
});
