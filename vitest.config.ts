import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/bundle-from-src.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Every test file starts real PGlite servers; on a 2-core machine more parallelism only adds noise.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
