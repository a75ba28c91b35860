import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds web/dist once when stale, so the dashboard tests running in parallel do not rebuild it under each other.
    globalSetup: ['test/setup/build-dashboard.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: onnxruntime and SQLite tests are I/O and CPU heavy, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
