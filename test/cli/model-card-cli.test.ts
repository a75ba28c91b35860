/**
 * `warden models card` end to end: the real binary against a server started in this process. Without a version it
 * prints the stable version's card (not the latest); Markdown by default, JSON with --format json or --json, to a
 * file with --out; the card is the API's. An unknown model and a bad --format exit 2 with the reason.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../src/registry/index.ts';
import { runWarden } from '../helpers/cli.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const LOGREG = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));

describe('warden models card', () => {
  let srv: TestServer;
  let tmp: string;
  const cli = (...args: string[]) => runWarden(['--url', srv.url, ...args]);

  beforeAll(async () => {
    srv = await startTestServer();
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-card-cli-'));
    const push = async (bytes: Buffer, q: string, metadata: unknown) => {
      const r = await fetch(`${srv.url}/api/v1/models/m/versions${q}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-warden-metadata': JSON.stringify(metadata) },
        body: new Uint8Array(bytes),
      });
      expect(r.status, await r.text()).toBe(201);
    };
    await push(LOGREG, '?alias=champion', { sourceCommit: 'abc123', tags: { owner: 'cli-team' } });
    await push(GBR, '', { tags: { owner: 'other-team', 'lineage.parent': '1' } });
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('prints the stable version’s card as Markdown when no version is given', async () => {
    const r = await cli('models', 'card', 'm');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# Model card: m v1\n/);
    expect(r.stdout).toContain('**Owner:** cli-team _(from v1 tags.owner)_');
    expect(r.stdout).toContain('**Source commit:** `abc123`');
    expect(r.stdout).toContain('| `lineage.trainingDataSha256` |');
  });

  it('writes the JSON card of a named version to --out, the card the API gives', async () => {
    const file = path.join(tmp, 'card.json');
    const r = await cli('models', 'card', 'm', '2', '--format', 'json', '--out', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`to ${file}`);
    const written = JSON.parse(readFileSync(file, 'utf8')) as ModelCard;
    const api = (await srv.json('GET', '/api/v1/models/m/versions/2/card')).body as ModelCard;
    expect({ ...written, generatedAt: 0 }).toEqual({ ...api, generatedAt: 0 });
    expect(written.lineage.parentVersion).toBe(1);
    expect(written.overview.owner).toEqual({ value: 'other-team', from: 'v2 tags.owner' });
    // --json selects JSON too.
    const j = await cli('--json', 'models', 'card', 'm', 'champion');
    expect((JSON.parse(j.stdout) as ModelCard).version).toBe(1);
  });

  it('exits 2 naming the cause for an unknown model and for a bad --format', async () => {
    const unknown = await cli('models', 'card', 'nope');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('WARDEN_MODEL_NOT_FOUND');
    const v = await cli('models', 'card', 'm', '7');
    expect(v.code).toBe(2);
    expect(v.stderr).toContain('WARDEN_VERSION_NOT_FOUND');
    const bad = await cli('models', 'card', 'm', '--format', 'pdf');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format must be md or json, got pdf');
  });
});
