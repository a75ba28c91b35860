/**
 * Starting replicas on one PostgreSQL: two `serve --demo` started at the same moment both come up (the one that loses
 * the race to register a demo model keeps the winner's), and a start that fails after the pools opened exits instead
 * of hanging on them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchWarden, runWarden, stopCliServers, type RunningCli } from '../helpers/cli.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';

describe.skipIf(!pgTestUrl())('warden serve on PostgreSQL', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  const servers: RunningCli[] = [];
  let tmp: string;
  beforeAll(async () => {
    schema = await freshPgSchema();
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-serve-start-'));
  });
  afterAll(async () => {
    await stopCliServers(servers);
    rmSync(tmp, { recursive: true, force: true });
    await schema.drop();
  });

  it('two --demo replicas started together both serve the demo model they trained', async () => {
    const env = { WARDEN_STORAGE_URL: schema.url };
    const started = await Promise.allSettled(
      ['a', 'b'].map((n) => launchWarden(['serve', '--demo', '--port', '0'], path.join(tmp, n), env, () => undefined)),
    );
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    for (const s of started) expect(s.status, s.status === 'rejected' ? String(s.reason) : '').toBe('fulfilled');
    for (const s of servers) {
      // Usually one version; two only when the second push passed its "model exists" check in the moment between
      // the first one's model row and its version row. Either way both replicas trained the same bytes.
      const { versions } = (await (await fetch(`${s.url}/api/v1/models/bike-demand/versions`)).json()) as { versions: { sha256: string }[] };
      expect(versions.length).toBeGreaterThanOrEqual(1);
      expect(versions[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(new Set(versions.map((v) => v.sha256)).size).toBe(1);
      const ready = await fetch(`${s.url}/v2/models/bike-demand/ready`);
      expect(ready.status).toBe(200);
    }
  }, 90_000);

  it('exits when the port is taken instead of hanging on open PostgreSQL pools', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      // runWarden rejects if the process is still running after 30 s.
      const r = await runWarden(['serve', '--port', String(port)], { WARDEN_STORAGE_URL: schema.url, WARDEN_DATA_DIR: path.join(tmp, 'c') });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/EADDRINUSE|in use/);
    } finally {
      blocker.close();
    }
  }, 60_000);
});
