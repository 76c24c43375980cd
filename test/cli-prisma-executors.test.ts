/**
 * `pgdev prisma-executors`: listing the bundled and cached executors and pre-fetching one, through the real CLI,
 * against a stand-in npm registry (no network), with XDG_CACHE_HOME in a temporary folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_EXECUTOR_VERSION } from '../src/http/executors.js';
import { baseEnv, cleanupCli, createScratchDir, runCli } from './support/cli.js';
import { startNpmRegistry, unreachableRegistry, type NpmRegistry } from './support/npm-registry.js';

let registry: NpmRegistry;

beforeAll(async () => {
  registry = await startNpmRegistry('@prisma/query-plan-executor', [{ version: '7.1.0', source: 'exports.fake = true;' }]);
});
afterAll(() => registry?.close());
afterEach(cleanupCli);

function cliEnv(cacheHome: string, npmRegistry = registry.url) {
  return baseEnv({ XDG_DATA_HOME: path.join(cacheHome, 'data'), XDG_CACHE_HOME: cacheHome, npm_config_registry: npmRegistry });
}

describe('pgdev prisma-executors', () => {
  it('lists the bundled executor, fetches another into the cache, and lists both', async () => {
    const cacheHome = createScratchDir();
    const cache = path.join(cacheHome, 'pgdev', 'prisma-executors');
    const before = await runCli(['prisma-executors'], { env: cliEnv(cacheHome) });
    expect(before.stderr).toBe('');
    expect(before.stdout).toMatch(new RegExp(`^VERSION +SERVES PRISMA CLIENT +SOURCE +FOLDER\\n${BUNDLED_EXECUTOR_VERSION.replace(/\./g, '\\.')} .* bundled `));
    expect(before.stdout).toContain(`other 7.x versions are fetched from the npm registry on their first request, into ${cache}`);

    const fetched = await runCli(['prisma-executors', '--fetch', '7.1'], { env: cliEnv(cacheHome) });
    expect(fetched.stderr).toBe('');
    expect(fetched.status).toBe(0);
    expect(fetched.stdout).toMatch(new RegExp(`^@prisma/query-plan-executor 7\\.1\\.0 \\(Prisma Client 7\\.1\\.x\\) is in ${cache}/7\\.1\\.0 \\(\\d+\\.\\d s\\)\\n`));
    expect(fs.existsSync(path.join(cache, '7.1.0', 'dist', 'index.js'))).toBe(true);

    const listed = await runCli(['prisma-executors', '--json'], { env: cliEnv(cacheHome) });
    expect(JSON.parse(listed.stdout)).toEqual({
      cache,
      executors: [
        expect.objectContaining({ version: BUNDLED_EXECUTOR_VERSION, source: 'bundled', integrity: null }),
        { version: '7.1.0', serves: '7.1.x', source: 'cached', dir: path.join(cache, '7.1.0'), integrity: expect.stringMatching(/^sha512-/) },
      ],
    });
  });

  it('refuses a --fetch that is not a version', async () => {
    const result = await runCli(['prisma-executors', '--fetch', 'latest'], { env: cliEnv(createScratchDir()) });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('pgdev: --fetch takes a Prisma version such as 7.2 or 7.2.0, not "latest"\n');
  });

  it('says when Prisma published no executor for that version', async () => {
    const result = await runCli(['prisma-executors', '--fetch', '7.4'], { env: cliEnv(createScratchDir()) });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'pgdev: no @prisma/query-plan-executor release matches 7.4 on the npm registry; Prisma Client 7.4 can use pgdev over TCP only (pgdev url, with @prisma/adapter-pg)\n',
    );
  });

  it('says when the registry cannot be reached', async () => {
    const result = await runCli(['prisma-executors', '--fetch', '7.1.0'], { env: cliEnv(createScratchDir(), unreachableRegistry) });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^pgdev: cannot fetch @prisma\/query-plan-executor@7\.1\.0 from the npm registry \(.*ECONNREFUSED.*\); check the network or npm_config_registry\n$/);
  });

  it('says when the cache folder cannot be written', async () => {
    const scratch = createScratchDir();
    const file = path.join(scratch, 'not-a-folder');
    fs.writeFileSync(file, '');
    const result = await runCli(['prisma-executors', '--fetch', '7.1'], { env: cliEnv(file) });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`pgdev: cannot write to the cache folder ${path.join(file, 'pgdev', 'prisma-executors')}; fix its permissions or set XDG_CACHE_HOME\n`);
  });
});
