/**
 * @module
 * Vitest's global setup: bundles the CLI and the database host from `src/` before any test runs. Tests start both
 * as programs (`bin/pgdev.js`, the server's database threads), which run the bundles in `dist/`: without this, editing
 * `src/` and running the tests would test the last build.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function bundleFromSrc(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../scripts/bundle.mjs', import.meta.url))], { stdio: 'inherit' });
}
