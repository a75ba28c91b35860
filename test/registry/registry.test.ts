import { createHash } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError, type ErrorCode } from '../../src/errors.ts';
import { Registry, type RegistryChange } from '../../src/registry/index.ts';
import { LocalDirArtifactStore, SqliteMetadataStore } from '../../src/storage/index.ts';
import { fixturesDir, startTestServer } from '../helpers/server.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const gbr = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const FEATURES = ['season', 'yr', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function expectWardenError(p: Promise<unknown>, code: ErrorCode): Promise<WardenError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(WardenError);
  expect((caught as WardenError).code).toBe(code);
  return caught as WardenError;
}

/** Overwrites one byte of a stored artifact the way an operator (or an attacker) with shell access would. */
async function tamper(artifacts: LocalDirArtifactStore, sha256: string): Promise<void> {
  const file = artifacts.pathOf(sha256);
  await chmod(file, 0o644);
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
  await writeFile(file, bytes);
}

/** Opens a registry over SQLite and a local artifact directory under `dir`. */
function openRegistry(dir: string) {
  const metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
  const artifacts = new LocalDirArtifactStore(path.join(dir, 'artifacts'));
  let clock = 1_000;
  const registry = new Registry({ metadata, artifacts, now: () => clock++ });
  return { metadata, artifacts, registry };
}

describe('Registry over SQLite', () => {
  let dir: string;
  let metadata: SqliteMetadataStore;
  let artifacts: LocalDirArtifactStore;
  let registry: Registry;
  let changes: RegistryChange[];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-registry-'));
    ({ metadata, artifacts, registry } = openRegistry(dir));
    changes = [];
    registry.onChange((c) => changes.push(c));
  });
  afterEach(async () => {
    await metadata.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('push', () => {
    it('stores a real ONNX file as version 1 with the signature read from the file', async () => {
      const res = await registry.push({ model: 'busy', bytes: logreg, description: 'busy hours' });
      expect(res.created).toBe(true);
      expect(res.version.version).toBe(1);
      expect(res.version.sha256).toBe(sha(logreg));
      expect(res.version.sizeBytes).toBe(logreg.byteLength);
      expect(res.version.signature.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 12] }]);
      expect(res.version.signature.outputs).toEqual([{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }]);
      expect((await registry.getModel('busy')).description).toBe('busy hours');
      expect(await registry.getVersion('busy', 1)).toEqual(res.version);
      expect(Buffer.from(await registry.readArtifact(res.version)).equals(logreg)).toBe(true);
      expect(changes).toEqual([{ kind: 'version-created', model: 'busy', version: 1 }]);
    });

    it('returns the existing version with created=false for identical bytes', async () => {
      const first = await registry.push({ model: 'busy', bytes: logreg });
      const again = await registry.push({ model: 'busy', bytes: Buffer.from(logreg) });
      expect(again.created).toBe(false);
      expect(again.version).toEqual(first.version);
      expect((await registry.listVersions('busy')).length).toBe(1);
      const other = await registry.push({ model: 'busy', bytes: gbr });
      expect([other.created, other.version.version]).toEqual([true, 2]);
    });

    it('refuses bytes that are not an ONNX model with WARDEN_INVALID_MODEL and registers nothing', async () => {
      const garbage = Buffer.from('this is not a model, just some text pretending to be one\n'.repeat(20));
      const e = await expectWardenError(registry.push({ model: 'junk', bytes: garbage }), 'WARDEN_INVALID_MODEL');
      expect(e.status).toBe(422);
      await expectWardenError(registry.push({ model: 'junk', bytes: logreg.subarray(0, 100) }), 'WARDEN_INVALID_MODEL');
      expect(await registry.listModels()).toEqual([]);
      expect(await artifacts.has(sha(garbage))).toBe(false);
    });

    it('validates metadata and names the bad key', async () => {
      let e = await expectWardenError(
        registry.push({ model: 'busy', bytes: logreg, metadata: { metrics: { auc: 'high' } } }),
        'WARDEN_BAD_REQUEST',
      );
      expect(e.message).toContain('metadata.metrics.auc');
      e = await expectWardenError(registry.push({ model: 'busy', bytes: logreg, metadata: { trainingDataSha256: 'abc' } }), 'WARDEN_BAD_REQUEST');
      expect(e.message).toContain('metadata.trainingDataSha256');
      e = await expectWardenError(registry.push({ model: 'busy', bytes: logreg, metadata: { colour: 'red' } }), 'WARDEN_BAD_REQUEST');
      expect(e.message).toContain('colour');
      expect(await registry.listModels()).toEqual([]);

      const ok = await registry.push({
        model: 'busy',
        bytes: logreg,
        metadata: { metrics: { auc: 0.87 }, params: { C: 1 }, tags: { team: 'bikes' }, sourceCommit: 'abc123' },
      });
      expect(ok.version.metadata).toMatchObject({ metrics: { auc: 0.87 }, params: { C: 1 }, tags: { team: 'bikes' }, sourceCommit: 'abc123' });
    });

    it('refuses named features whose count differs from the input width (WARDEN_INVALID_MODEL)', async () => {
      const e = await expectWardenError(
        registry.push({ model: 'busy', bytes: logreg, features: [{ name: 'temp' }, { name: 'hum' }, { name: 'windspeed' }] }),
        'WARDEN_INVALID_MODEL',
      );
      expect(e.message).toContain('(3)');
      expect(e.message).toContain('input[-1,12]');
      await expectWardenError(registry.push({ model: 'busy', bytes: logreg, features: [{ name: 'a' }, { name: 'a' }] }), 'WARDEN_BAD_REQUEST');
      const ok = await registry.push({ model: 'busy', bytes: logreg, features: FEATURES.map((name) => ({ name })) });
      expect(ok.version.signature.features?.map((f) => f.name)).toEqual(FEATURES);
    });

    it('refuses unsafe model and alias names', async () => {
      await expectWardenError(registry.push({ model: '../etc', bytes: logreg }), 'WARDEN_BAD_REQUEST');
      await expectWardenError(registry.push({ model: 'ok', bytes: logreg, aliases: ['latest'] }), 'WARDEN_BAD_REQUEST');
      expect(await registry.listModels()).toEqual([]);
    });
  });

  describe('aliases', () => {
    beforeEach(async () => {
      await registry.push({ model: 'm', bytes: logreg, aliases: ['champion'] });
      await registry.push({ model: 'm', bytes: gbr });
    });

    it('moves an alias atomically: resolving it always gives the old or the new version', async () => {
      const seen = new Set<number>();
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        ops.push(registry.setAlias('m', 'champion', 1 + (i % 2)));
        ops.push(registry.resolve('m', 'champion').then((v) => seen.add(v.version)));
      }
      await Promise.all(ops);
      expect([...seen].every((v) => v === 1 || v === 2)).toBe(true);
      await registry.setAlias('m', 'champion', 2);
      expect((await registry.resolve('m', 'champion')).version).toBe(2);
      expect((await registry.resolve('m', 'latest')).version).toBe(2);
      expect((await registry.resolve('m', '1')).version).toBe(1);
      expect(changes.at(-1)).toEqual({ kind: 'alias-set', model: 'm', alias: 'champion', version: 2 });
    });

    it('refuses an alias to a missing version', async () => {
      await expectWardenError(registry.setAlias('m', 'champion', 9), 'WARDEN_VERSION_NOT_FOUND');
      expect((await registry.resolve('m', 'champion')).version).toBe(1);
    });

    it('refuses to delete a version an alias points at (WARDEN_CONFLICT, "in use")', async () => {
      const e = await expectWardenError(registry.deleteVersion('m', 1), 'WARDEN_CONFLICT');
      expect(e.message).toContain('in use');
      expect(e.message).toContain('champion');
      expect((await registry.getVersion('m', 1)).version).toBe(1);
      await registry.setAlias('m', 'champion', 2);
      await registry.deleteVersion('m', 1);
      await expectWardenError(registry.getVersion('m', 1), 'WARDEN_VERSION_NOT_FOUND');
    });

    it('refuses to delete a model with aliases unless forced', async () => {
      const e = await expectWardenError(registry.deleteModel('m'), 'WARDEN_CONFLICT');
      expect(e.message).toContain('in use');
      expect((await registry.listVersions('m')).length).toBe(2);
      await registry.deleteModel('m', { force: true });
      await expectWardenError(registry.getModel('m'), 'WARDEN_MODEL_NOT_FOUND');
      expect(await metadata.listAliases('m')).toEqual([]);
      // Both artifacts were only used by this model: collected.
      expect(await artifacts.has(sha(logreg))).toBe(false);
      expect(await artifacts.has(sha(gbr))).toBe(false);
      expect(changes.at(-1)).toEqual({ kind: 'model-deleted', model: 'm' });
    });
  });

  it('collects an artifact when the last version using it is deleted, not before', async () => {
    await registry.push({ model: 'a', bytes: logreg });
    await registry.push({ model: 'b', bytes: logreg });
    await registry.push({ model: 'b', bytes: gbr });
    const file = artifacts.pathOf(sha(logreg));
    await registry.deleteVersion('a', 1);
    expect(existsSync(file)).toBe(true);
    await registry.deleteVersion('b', 1);
    expect(existsSync(file)).toBe(false);
    expect(await artifacts.has(sha(gbr))).toBe(true);
    // Deleting a model without aliases needs no force and collects its artifacts.
    await registry.deleteModel('b');
    expect(await artifacts.has(sha(gbr))).toBe(false);
  });

  it('refuses a tampered artifact with WARDEN_ARTIFACT_TAMPERED naming the model, version and sha; pushing the file again repairs it', async () => {
    const { version } = await registry.push({ model: 'm', bytes: logreg });
    await tamper(artifacts, version.sha256);
    const e = await expectWardenError(registry.readArtifact(version), 'WARDEN_ARTIFACT_TAMPERED');
    expect(e.message).toContain(version.sha256);
    expect(e.message).toContain('model m version 1');
    expect(e.message).toMatch(/modified on disk/);

    const again = await registry.push({ model: 'm', bytes: logreg });
    expect(again.created).toBe(false);
    expect(Buffer.from(await registry.readArtifact(version)).equals(logreg)).toBe(true);
  });
});

describe('a tampered artifact over HTTP', () => {
  it('answers 500 WARDEN_ARTIFACT_TAMPERED for the tampered version and keeps serving the others', async () => {
    // Register before the server starts, so only the default version (v2, latest) is loaded and v1
    // is read from disk on its first request.
    const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-tamper-'));
    const pre = openRegistry(dataDir);
    const v1 = (await pre.registry.push({ model: 'm', bytes: logreg })).version;
    await pre.registry.push({ model: 'm', bytes: gbr });
    await pre.metadata.close();

    const srv = await startTestServer({ storage: { dataDir } });
    try {
      await tamper(pre.artifacts, v1.sha256);
      const body = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
      const res = await srv.json('POST', '/v2/models/m/versions/1/infer', body);
      expect(res.status).toBe(500);
      expect(res.body.code).toBe('WARDEN_ARTIFACT_TAMPERED');
      expect(res.body.error).toContain(v1.sha256);
      expect(res.body.error).toContain('model m version 1');
      expect(res.body.error).toMatch(/refusing to load it/);
      // Asking again does not serve it either (a failed load is not cached as a success).
      expect((await srv.json('POST', '/v2/models/m/versions/1/infer', body)).status).toBe(500);
      expect((await srv.json('GET', '/v2/models/m/versions/1/ready')).status).toBe(503);

      const ok = await srv.json('POST', '/v2/models/m/versions/2/infer', body);
      expect(ok.status).toBe(200);
      expect(ok.body.model_version).toBe('2');
    } finally {
      await srv.close();
    }
  });
});
