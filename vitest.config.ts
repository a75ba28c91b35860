import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Builds web/dist once when stale, so the dashboard tests never rebuild it under each other.
    globalSetup: ['test/setup/build-dashboard.ts', 'test/setup/postgres.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: onnxruntime and SQLite tests are I/O and CPU heavy, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/e2e/**'], sequence: { groupOrder: 0 } } },
      // The browser tests run after the rest, one file at a time: each starts a server and a Chromium, which on two
      // cores would otherwise starve each other and the timing-sensitive tests into timeouts.
      { extends: true, test: { name: 'browser', include: ['test/e2e/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
