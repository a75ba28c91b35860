import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores on CI: onnxruntime and SQLite tests are I/O and CPU heavy, so keep parallelism modest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
