import { defineConfig } from 'vitest/config';

// Run from the repository root:  npx vitest run --root examples/vitest-per-worker
// Against a Postgres of your own:  DATABASE_URL=postgres://... npx vitest run --root examples/vitest-per-worker
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Builds the template database once, before any worker starts; drops everything after the run.
    globalSetup: ['./global-setup.ts'],
    // Test files run at the same time, each in a process of its own (forks), each with a database of its own.
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
