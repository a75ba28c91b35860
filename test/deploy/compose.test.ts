/**
 * deploy/compose/compose.yaml, without a Docker engine: validated against the Compose Specification's own JSON
 * schema (compose-spec/compose-spec, vendored in test/deploy/schemas) with ajv, by Debian's docker-compose
 * (`config -q`, when installed), and by yamllint; the replicas' environment is loaded by Warden's own config loader,
 * and the files it mounts exist. The Prometheus file it mounts is checked by Debian's promtool (`check config`) and
 * yamllint, and scrapes every replica directly. Not checked here: that the services start (no engine to run them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { deployDir, run, which } from './tools.ts';

const file = path.join(deployDir, 'compose', 'compose.yaml');
const text = readFileSync(file, 'utf8');
const compose = parseYaml(text, { merge: true }) as { services: Record<string, any>; volumes: Record<string, unknown> };
const promFile = path.join(deployDir, 'prometheus', 'prometheus.yml');
const dockerCompose = which('docker-compose');
const promtool = which('promtool');
const yamllint = which('yamllint');
if (!dockerCompose) console.warn('test/deploy/compose: no docker-compose (Debian package docker-compose): `docker-compose config` not run');
if (!yamllint) console.warn('test/deploy/compose: no yamllint (Debian package yamllint): YAML style not checked');
if (!promtool) console.warn('test/deploy/compose: no promtool (Debian package prometheus): prometheus.yml not checked by it');

const replicas = ['warden-1', 'warden-2', 'warden-3'];

/** ${VAR:?msg} and ${VAR:-default} as Compose interpolates them. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::[?-]([^}]*))?\}/g, (_, name: string) => env[name] ?? '');
}

describe('compose.yaml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    const schema = JSON.parse(readFileSync(path.join(import.meta.dirname, 'schemas', 'compose-spec.json'), 'utf8')) as object;
    const ajv = new Ajv({ strict: false, allErrors: true });
    // The schema names draft-07's meta-schema by its https address; ajv ships it under the http one.
    const draft07 = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('ajv/dist/refs/json-schema-draft-07.json'), 'utf8')) as { $id: string };
    ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
    const check = ajv.compile(schema);
    // Validated as written (the merge keys of the x-warden anchor kept, as Compose reads them).
    const raw = parseYaml(text, { merge: true }) as unknown;
    expect(check(raw) ? [] : check.errors).toEqual([]);
    // And the schema does catch a misspelt key.
    const bad = structuredClone(raw) as { services: Record<string, Record<string, unknown>> };
    bad.services['warden-1']!.healthchek = {};
    expect(check(bad)).toBe(false);
  });

  it.skipIf(!dockerCompose)('docker-compose config -q accepts it (Debian docker-compose 1.29)', () => {
    const r = run(dockerCompose!, ['-f', file, 'config', '-q'], { env: { POSTGRES_PASSWORD: 'compose-test' } });
    expect(r.code, r.stderr).toBe(0);
    const missing = run(dockerCompose!, ['-f', file, 'config', '-q'], { env: { POSTGRES_PASSWORD: '' } });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('POSTGRES_PASSWORD');
    const resolved = run(dockerCompose!, ['-f', file, 'config'], { env: { POSTGRES_PASSWORD: 'compose-test' } });
    const cfg = parseYaml(resolved.stdout) as { services: Record<string, any> };
    expect(Object.keys(cfg.services).sort()).toEqual(['haproxy', 'postgres', 'prometheus', ...replicas]);
    for (const r of replicas) expect(cfg.services[r].environment.WARDEN_STORAGE_URL).toBe('postgres://warden:compose-test@postgres:5432/warden?schema=warden');
  });

  it.skipIf(!yamllint)('yamllint', () => {
    const r = run(yamllint!, ['-s', '-c', path.join(deployDir, '.yamllint.yaml'), file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('PostgreSQL 15, three replicas on it behind HAProxy, Prometheus; each mounted file exists', () => {
    expect(compose.services.postgres.image).toMatch(/^postgres:15(\b|-)/);
    expect(compose.services.postgres.healthcheck.test.join(' ')).toContain('pg_isready');
    for (const r of replicas) {
      const s = compose.services[r];
      expect(s.environment.WARDEN_STORAGE_URL).toContain('@postgres:5432/');
      expect(s.depends_on.postgres.condition).toBe('service_healthy');
      expect(s.build.context).toBe('../..');
      expect(existsSync(path.resolve(path.dirname(file), s.build.context, s.build.dockerfile))).toBe(true);
      expect(s.read_only).toBe(true);
      // Longer than the drain delay plus closing.
      expect(Number.parseInt(s.stop_grace_period, 10) * 1000).toBeGreaterThan(Number(s.environment.WARDEN_DRAIN_DELAY_MS) + 10_000);
    }
    expect(new Set(replicas.map((r) => compose.services[r].hostname)).size).toBe(3);
    expect(compose.services.haproxy.depends_on).toEqual(replicas);
    expect(compose.services.haproxy.ports).toContain('8080:8080');
    for (const svc of ['haproxy', 'prometheus']) {
      for (const v of compose.services[svc].volumes as string[]) {
        const [src] = v.split(':');
        if (src!.startsWith('.')) expect(existsSync(path.resolve(path.dirname(file), src!)), v).toBe(true);
      }
    }
  });

  it("each replica's environment is a configuration Warden loads (no unknown WARDEN_* variable, no bad value)", async () => {
    for (const r of replicas) {
      const env = Object.fromEntries(Object.entries(compose.services[r].environment as Record<string, string>).map(([k, v]) => [k, interpolate(String(v), { POSTGRES_PASSWORD: 'pw' })]));
      const config = await loadConfig({ env: { ...env, WARDEN_HOST: '0.0.0.0' } });
      expect(config.auth.required).toBe(true);
      expect(config.server.drainDelayMs).toBe(5000);
      expect(config.storage.url).toBe('postgres://warden:pw@postgres:5432/warden?schema=warden');
      // SLOs live in the shared store, not in a file the replicas would have to share.
      expect(config.slo.file).toBeUndefined();
    }
  });
});

describe('prometheus.yml (mounted by compose)', () => {
  const prom = parseYaml(readFileSync(promFile, 'utf8')) as { scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[]; relabel_configs?: { regex: string; replacement: string }[] }[] };

  it.skipIf(!promtool)('promtool check config accepts it', () => {
    const r = run(promtool!, ['check', 'config', promFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it.skipIf(!yamllint)('yamllint', () => {
    const r = run(yamllint!, ['-s', '-c', path.join(deployDir, '.yamllint.yaml'), promFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("scrapes each replica's /metrics directly (not through HAProxy), and HAProxy's exporter on 8404", () => {
    const job = (name: string) => prom.scrape_configs.find((j) => j.job_name === name)!;
    const warden = job('warden');
    expect(warden.metrics_path).toBe('/metrics');
    expect(warden.static_configs.flatMap((c) => c.targets)).toEqual(replicas.map((r) => `${r}:8080`));
    // instance="warden-1": the relabel rule's regex, anchored as Prometheus anchors it ($1 means the same in JS).
    const rule = warden.relabel_configs![0]!;
    expect('warden-1:8080'.replace(new RegExp(`^(?:${rule.regex})$`), rule.replacement)).toBe('warden-1');
    expect(job('haproxy').static_configs.flatMap((c) => c.targets)).toEqual(['haproxy:8404']);
    expect(compose.services.prometheus.volumes).toContain('../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });
});
