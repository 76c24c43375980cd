import { defineConfig } from 'vitest/config';

// Run from the repository root:  npx vitest run --root examples/vitest
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // One pgdev server for the whole run, started before any test file and closed after the last.
    globalSetup: ['./global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
