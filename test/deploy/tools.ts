/**
 * What the deployment tests share: finding the validators (Debian packages, a Helm binary), running them, and
 * checking rendered Kubernetes objects against kubernetes-models (Kubernetes 1.27.1's OpenAPI schemas) twice over —
 * its generated JSON-schema validators for types, required fields and enums, and TypeScript's excess-property check
 * against its interfaces for fields that do not exist (what the OpenAPI schemas alone let through).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { repoRoot } from '../helpers/server.ts';

export const deployDir = path.join(repoRoot, 'deploy');

/** Absolute path of an executable on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** helm on PATH, else where .ci/run puts it (the official v4.1.4 binary, fetched with `npm pack`). */
export function findHelm(): string | undefined {
  const cached = path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'warden-ci', 'helm-v4.1.4', 'helm');
  try {
    accessSync(cached, constants.X_OK);
    return which('helm') ?? cached;
  } catch {
    return which('helm');
  }
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion (no shell), with `env` added to this process' environment. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Ran {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A Kubernetes object as rendered. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The kubernetes-models class and interface of each apiVersion/kind the chart renders. */
const MODELS: Record<string, { model: { new (data: never): { validate(): void } }; module: string; type: string }> = {
  'apps/v1/Deployment': { model: Deployment as never, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler as never,
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
    type: 'IHorizontalPodAutoscaler',
  },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget as never, module: 'kubernetes-models/policy/v1/PodDisruptionBudget', type: 'IPodDisruptionBudget' },
  'v1/ConfigMap': { model: ConfigMap as never, module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  'v1/PersistentVolumeClaim': { model: PersistentVolumeClaim as never, module: 'kubernetes-models/v1/PersistentVolumeClaim', type: 'IPersistentVolumeClaim' },
  'v1/Pod': { model: Pod as never, module: 'kubernetes-models/v1/Pod', type: 'IPod' },
  'v1/Secret': { model: Secret as never, module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  'v1/Service': { model: Service as never, module: 'kubernetes-models/v1/Service', type: 'IService' },
  'v1/ServiceAccount': { model: ServiceAccount as never, module: 'kubernetes-models/v1/ServiceAccount', type: 'IServiceAccount' },
};

/** Schema errors of each object (`Kind/name: message`); an apiVersion/kind without a model is an error too. */
export function schemaErrors(objects: K8sObject[]): string[] {
  const errors: string[] = [];
  for (const o of objects) {
    const m = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!m) {
      errors.push(`${o.kind}/${o.metadata?.name}: no model for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new m.model(o as never).validate();
    } catch (e) {
      errors.push(`${o.kind}/${o.metadata.name}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/**
 * Fields that the Kubernetes types do not have (a typo such as `livenesProbe`, a field at the wrong level), and any
 * other type error, found by type-checking each object as a TypeScript literal of its kubernetes-models interface.
 */
export function unknownFieldErrors(objects: K8sObject[]): string[] {
  const file = path.join(repoRoot, 'test', 'deploy', '__rendered_objects__.ts');
  const lines: string[] = [];
  const imports = new Set<string>();
  objects.forEach((o, i) => {
    const m = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!m) return;
    imports.add(`import type { ${m.type} } from '${m.module}';`);
    lines.push(`// ${o.kind}/${o.metadata.name}`, `export const o${i}: ${m.type} = ${JSON.stringify(o, null, 2)};`);
  });
  const source = [...imports, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sf = program.getSourceFile(file)!;
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const line = where ? source.split('\n')[where.line]!.trim() : '';
    return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')}${line ? ` (at: ${line.slice(0, 120)})` : ''}`;
  });
}
