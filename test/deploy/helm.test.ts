/**
 * The Helm chart (deploy/helm/warden), checked by the real Helm binary when one is here (`helm lint --strict`,
 * `helm template`, values.schema.json) and its rendered objects by kubernetes-models' Kubernetes schemas, a strict
 * unknown-field check, yamllint, Warden's own config loader (with and without the kubelet's service-link variables)
 * and SLO parser, assertions about probes, drain and security, and NOTES.txt as `helm install --dry-run=client`
 * prints it. Without helm the chart is not rendered and these tests skip, saying so.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { parseSloFile } from '../../src/slo/index.ts';
import { deployDir, findHelm, run, schemaErrors, unknownFieldErrors, which, type K8sObject } from './tools.ts';

const chart = path.join(deployDir, 'helm', 'warden');
const helm = findHelm();
const yamllint = which('yamllint');
if (!helm) console.warn('test/deploy/helm: no helm binary (PATH, or what .ci/run fetches): the Helm chart is not rendered or linted here');
if (!yamllint) console.warn('test/deploy/helm: no yamllint (Debian package yamllint): rendered YAML style not checked');

const tmp = mkdtempSync(path.join(tmpdir(), 'warden-helm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function template(args: string[]): { objects: K8sObject[]; text: string } {
  const r = run(helm!, ['template', 'warden', chart, '--namespace', 'ml', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const objects = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { objects, text: r.stdout };
}

function templateFails(args: string[]): string {
  const r = run(helm!, ['template', 'warden', chart, ...args]);
  expect(r.code).not.toBe(0);
  return r.stderr;
}

function one(objects: K8sObject[], kind: string): any {
  const found = objects.filter((o) => o.kind === kind);
  expect(found.map((o) => o.metadata.name), kind).toHaveLength(1);
  return found[0];
}

/** The container's environment as the pod would see it, with secretKeyRef values read from the rendered Secret. */
function podEnv(objects: K8sObject[], container: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env as { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === e.valueFrom!.secretKeyRef.name) as { data: Record<string, string> } | undefined;
      expect(secret, `Secret ${e.valueFrom.secretKeyRef.name}`).toBeDefined();
      env[e.name] = Buffer.from(secret!.data[e.valueFrom.secretKeyRef.key]!, 'base64').toString('utf8');
    }
  }
  return env;
}

/**
 * The Docker-link variables the kubelet gives every container for each Service of its namespace unless the pod sets
 * `enableServiceLinks: false` (Kubernetes' pkg/kubelet/envvars): `{NAME}_SERVICE_HOST`, `{NAME}_PORT_{port}_TCP`…
 */
function serviceLinkEnv(svc: any): Record<string, string> {
  const name = String(svc.metadata.name).toUpperCase().replace(/-/g, '_');
  const ip = '10.96.0.10';
  const env: Record<string, string> = { [`${name}_SERVICE_HOST`]: ip };
  for (const [i, p] of (svc.spec.ports as { name?: string; port: number; protocol?: string }[]).entries()) {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
    if (i === 0) {
      env[`${name}_SERVICE_PORT`] = String(p.port);
      env[`${name}_PORT`] = `${proto}://${ip}:${p.port}`;
    }
    if (p.name) env[`${name}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    Object.assign(env, { [prefix]: `${proto}://${ip}:${p.port}`, [`${prefix}_PROTO`]: proto, [`${prefix}_PORT`]: String(p.port), [`${prefix}_ADDR`]: ip });
  }
  return env;
}

const VALUE_SETS = {
  default: [] as string[],
  postgres: ['-f', path.join(chart, 'ci', 'postgres-values.yaml')],
};

describe.skipIf(!helm)('Helm chart deploy/helm/warden (real helm)', () => {
  it('helm version is the one .ci/run fetches or any helm on PATH', () => {
    const r = run(helm!, ['version', '--short']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^v[34]\./);
  });

  for (const [name, args] of Object.entries(VALUE_SETS)) {
    it(`helm lint --strict passes with the ${name} values`, () => {
      const r = run(helm!, ['lint', '--strict', chart, ...args]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('0 chart(s) failed');
    });

    it(`${name} values: every rendered object passes the Kubernetes schemas with no unknown field, and yamllint`, () => {
      const { objects, text } = template(args);
      expect(schemaErrors(objects)).toEqual([]);
      expect(unknownFieldErrors(objects)).toEqual([]);
      if (yamllint) {
        const file = path.join(tmp, `${name}.yaml`);
        writeFileSync(file, text);
        const r = run(yamllint, ['-s', '-c', path.join(deployDir, '.yamllint.yaml'), file]);
        expect(r.code, r.stdout + r.stderr).toBe(0);
      }
    });

    it(`${name} values: the pod's warden.yaml and environment load with Warden's own config loader`, async () => {
      const { objects } = template(args);
      const dep = one(objects, 'Deployment');
      const c = dep.spec.template.spec.containers[0];
      const env = podEnv(objects, c);
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === dep.spec.template.spec.volumes.find((v: any) => v.name === 'config').configMap.name) as any;
      const file = path.join(tmp, `${name}-warden.yaml`);
      writeFileSync(file, cm.data['warden.yaml']);
      expect(env.WARDEN_CONFIG).toBe('/etc/warden/warden.yaml');
      const { WARDEN_CONFIG: _config, ...rest } = env;
      const config = await loadConfig({ file, env: rest });
      expect(config.server.host).toBe('0.0.0.0');
      expect(config.server.port).toBe(8080);
      expect(config.auth.required).toBe(true);
      expect(config.server.drainDelayMs).toBe(10_000);
      // The release is named warden, so its Service is too: the kubelet's link variables for it would be WARDEN_*
      // names Warden does not know, and it would refuse to start. The pod turns them off.
      expect(dep.spec.template.spec.enableServiceLinks).toBe(false);
      const links = serviceLinkEnv(one(objects, 'Service'));
      expect(Object.keys(links)).toContain('WARDEN_SERVICE_HOST');
      // The kubelet lets the container's own env win over a link variable of the same name (WARDEN_PORT).
      await expect(loadConfig({ file, env: { ...links, ...rest } })).rejects.toThrow(/unknown environment variable WARDEN_/);
      if (cm.data['slo.yaml']) {
        expect(env.WARDEN_SLO_FILE).toBe('/etc/warden/slo.yaml');
        expect(parseSloFile(parseYaml(cm.data['slo.yaml'])).map((s) => s.name)).toEqual(['bike-busy-availability']);
      }
    });
  }

  it('Deployment: probes on the health routes, drain shorter than the grace period, resources, non-root read-only container', () => {
    const { objects } = template(VALUE_SETS.postgres);
    const dep = one(objects, 'Deployment');
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(120);
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    const env = podEnv(objects, c);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(env.WARDEN_DRAIN_DELAY_MS) + 10_000);
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    // A read-only root needs writable /tmp (tsx's cache) and data directory.
    expect(c.volumeMounts.map((m: any) => m.mountPath).sort()).toEqual(['/etc/warden', '/tmp', '/var/lib/warden']);
    expect(pod.automountServiceAccountToken).toBe(false);
    // Several replicas on PostgreSQL: the URL comes from the Secret, the data directory is scratch, rolling updates.
    expect(c.env.find((e: any) => e.name === 'WARDEN_STORAGE_URL').valueFrom.secretKeyRef).toEqual({ name: 'warden-storage', key: 'storage-url' });
    expect(env.WARDEN_STORAGE_URL).toBe('postgres://warden:change-me@postgres.db.svc:5432/warden?schema=warden');
    expect(pod.volumes.find((v: any) => v.name === 'data')).toEqual({ name: 'data', emptyDir: { sizeLimit: '2Gi' } });
    expect(dep.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    expect(dep.spec.replicas).toBeUndefined();
    expect(dep.spec.template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('HPA (autoscaling/v2), PDB (policy/v1), Service, ServiceAccount and Secret point at the same pods', () => {
    const { objects } = template(VALUE_SETS.postgres);
    const dep = one(objects, 'Deployment');
    const selector = dep.spec.selector.matchLabels;
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name });
    expect(hpa.spec.minReplicas).toBe(3);
    expect(hpa.spec.metrics.map((m: any) => m.resource.name)).toEqual(['cpu', 'memory']);
    const pdb = one(objects, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.selector.matchLabels).toEqual(selector);
    const svc = one(objects, 'Service');
    expect(svc.spec.selector).toEqual(selector);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
    expect(dep.spec.template.spec.serviceAccountName).toBe(one(objects, 'ServiceAccount').metadata.name);
    expect(one(objects, 'Secret').type).toBe('Opaque');
    for (const [k, v] of Object.entries(selector)) expect(dep.spec.template.metadata.labels[k]).toBe(v);
    // helm test's pod asks the Service for readiness.
    const testPod = one(objects, 'Pod');
    expect(testPod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(testPod.spec.containers[0].command.join(' ')).toContain(`http://${svc.metadata.name}:8080/v2/health/ready`);
  });

  it('default values: one replica on the embedded store, a PersistentVolumeClaim, Recreate, no HPA', () => {
    const { objects } = template(VALUE_SETS.default);
    const dep = one(objects, 'Deployment');
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
    expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'Secret')).toBe(false);
    const pvc = one(objects, 'PersistentVolumeClaim');
    expect(dep.spec.template.spec.volumes.find((v: any) => v.name === 'data').persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
    expect(dep.spec.template.spec.containers[0].env.some((e: any) => e.name === 'WARDEN_STORAGE_URL')).toBe(false);
  });

  it('refuses values that cannot work: several replicas without PostgreSQL, a grace period shorter than the drain, auth off, a bad type', () => {
    expect(templateFails(['--set', 'autoscaling.enabled=true'])).toContain('autoscaling.enabled needs storage.url');
    expect(templateFails(['--set', 'replicaCount=3'])).toContain('replicaCount > 1 needs storage.url');
    expect(templateFails(['--set', 'terminationGracePeriodSeconds=5'])).toContain('must be longer than drain.delayMs');
    expect(templateFails(['--set', 'auth.required=false'])).toContain('refuses open auth');
    // values.schema.json, applied by helm itself.
    expect(templateFails(['--set', 'drain.delayMs=soon'])).toMatch(/delayMs/);
    expect(templateFails(['--set', 'storage.url=mysql://x'])).toMatch(/storage\/url|storage\.url/);
    expect(templateFails(['--set', 'replicas=3'])).toMatch(/replicas/);
    // With an existing Secret the chart makes none and reads the URL from it.
    const { objects } = template(['--set', 'storage.existingSecret=pg', '--set', 'storage.existingSecretKey=url', '--set', 'replicaCount=2']);
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
    const c = one(objects, 'Deployment').spec.template.spec.containers[0];
    expect(c.env.find((e: any) => e.name === 'WARDEN_STORAGE_URL').valueFrom.secretKeyRef).toEqual({ name: 'pg', key: 'url' });
  });

  it("NOTES.txt renders (helm install --dry-run=client) with the first key's command and routes the server has", () => {
    const notes = (args: string[]) => {
      const r = run(helm!, ['install', 'warden', chart, '--namespace', 'ml', '--dry-run=client', ...args]);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.slice(r.stdout.indexOf('NOTES:'));
    };
    const pg = notes(VALUE_SETS.postgres);
    expect(pg).toContain('Store: PostgreSQL (WARDEN_STORAGE_URL from Secret warden-storage)');
    expect(pg).toContain('Replicas: 3-6 (HorizontalPodAutoscaler on CPU and memory)');
    expect(pg).toContain('kubectl -n ml exec deploy/warden -- warden keys create --role admin --name bootstrap');
    expect(pg).toContain('http://127.0.0.1:8080/api/v1/models');
    expect(pg).toContain('served for 10000 ms');
    const embedded = notes(VALUE_SETS.default);
    expect(embedded).toContain('Store: the embedded SQLite store on a PersistentVolumeClaim; one replica.');
    expect(embedded).not.toContain('HorizontalPodAutoscaler');
  });

  it('the strict checks do catch what they are for (a misspelt field, a wrong type)', () => {
    const { objects } = template(VALUE_SETS.postgres);
    const dep = structuredClone(one(objects, 'Deployment'));
    dep.spec.template.spec.containers[0].livenesProbe = dep.spec.template.spec.containers[0].livenessProbe;
    expect(unknownFieldErrors([dep]).join('\n')).toContain('livenesProbe');
    dep.spec.replicas = 'three';
    expect(schemaErrors([dep]).join('\n')).toContain('replicas must be integer');
  });
});
