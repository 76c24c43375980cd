import { defineConfig } from 'vitest/config';
import { pgdevDatabases } from 'pgdev/vitest';

// Run from the repository root:  npx vitest run --root examples/vitest-integration
export default defineConfig({
  // Every test file gets a database of its own, cloned from a template built once from migrations/ and seed.sql.
  plugins: [pgdevDatabases({ migrations: 'migrations', seed: 'seed.sql' })],
  test: {
    include: ['tests/**/*.test.ts'],
    // Two test files at a time, each in a process of its own (forks), each with a database of its own.
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
