import type { TestProject } from 'vitest/node';
import { pgServerAvailable, startPgCluster, type PgCluster } from '../helpers/postgres.ts';

/**
 * Vitest global setup: one throw-away PostgreSQL cluster for every storage test that runs against PostgreSQL, unless
 * WARDEN_TEST_PG_URL names a server already (CI). Without a PostgreSQL server on the machine those tests skip and
 * say why; `.ci/run` installs one, so CI never skips them.
 */
let cluster: PgCluster | undefined;

export default async function setup(project: TestProject): Promise<() => void> {
  if (process.env.WARDEN_TEST_PG_URL) {
    project.provide('pgUrl', process.env.WARDEN_TEST_PG_URL);
  } else if (pgServerAvailable()) {
    cluster = await startPgCluster();
    project.provide('pgUrl', cluster.url);
  } else {
    console.warn('no PostgreSQL server (Debian package postgresql): the PostgreSQL storage tests are skipped');
    project.provide('pgUrl', '');
  }
  return () => cluster?.destroy();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}
