/**
 * Fetching, caching and finding query plan executors, against a stand-in npm registry (real pacote, real tarballs
 * and integrity hashes, no network).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPgdevError } from '../errors.js';
import { unreachableRegistry, useStandInRegistry, type StandInRegistry } from '../../test/support/npm-registry.js';
import {
  BUNDLED_EXECUTOR_VERSION,
  EXECUTOR_PACKAGE,
  executorCacheDir,
  executorMinorFor,
  fetchExecutor,
  findExecutor,
  listExecutors,
  loadExecutorModule,
  minorOf,
} from './executors.js';

let registry: StandInRegistry;
let cacheHome: string;

beforeAll(async () => {
  registry = await useStandInRegistry(EXECUTOR_PACKAGE, [
    { version: '7.1.0', source: 'exports.fake = "7.1.0";' },
    { version: '7.1.2', source: 'exports.fake = "7.1.2";' },
    { version: '7.3.0', source: 'exports.fake = "tampered";', wrongIntegrity: true },
  ]);
  cacheHome = registry.cacheHome;
});

afterAll(() => registry?.restore());

async function fetchError(version: string) {
  const error = await fetchExecutor(version).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isPgdevError(error)) throw new Error(`expected a PgdevError, got ${String(error)}`);
  return error;
}

describe('executor versions', () => {
  it('maps a client version to the minor whose executor runs its plans', () => {
    expect(executorMinorFor('7.2.0')).toBe('7.2');
    expect(executorMinorFor('7.10.3')).toBe('7.10');
    expect(executorMinorFor('7.11.0-dev.4')).toBe('7.11');
    expect(executorMinorFor('0.0.0')).toBe(minorOf(BUNDLED_EXECUTOR_VERSION));
    expect(executorMinorFor(undefined)).toBeUndefined();
    expect(executorMinorFor('latest')).toBeUndefined();
    expect(executorMinorFor('7')).toBeUndefined();
  });

  it('finds the bundled executor for its own minor without a cache', () => {
    expect(findExecutor(minorOf(BUNDLED_EXECUTOR_VERSION)!)).toMatchObject({ version: BUNDLED_EXECUTOR_VERSION, source: 'bundled' });
    expect(findExecutor('7.1')).toBeUndefined();
    expect(listExecutors()).toEqual([expect.objectContaining({ version: BUNDLED_EXECUTOR_VERSION, source: 'bundled' })]);
    expect(executorCacheDir()).toBe(path.join(cacheHome, 'pgdev', 'prisma-executors'));
  });
});

describe('fetchExecutor', () => {
  it('fetches the newest release of a minor into the cache, checked against the registry integrity, and loads it from there', async () => {
    const executor = await fetchExecutor('7.1');
    expect(executor).toMatchObject({ version: '7.1.2', source: 'cached', dir: path.join(executorCacheDir(), '7.1.2') });
    expect(executor.integrity).toMatch(/^sha512-/);
    expect(registry.downloads).toBe(1);
    expect(findExecutor('7.1')).toEqual(executor);
    expect(listExecutors().map((found) => found.version)).toEqual([BUNDLED_EXECUTOR_VERSION, '7.1.2']);
    expect(((await loadExecutorModule(executor)) as unknown as { fake: string }).fake).toBe('7.1.2');

    // Asking again finds it in the cache: no second download.
    expect(await fetchExecutor('7.1')).toEqual(executor);
    expect(registry.downloads).toBe(1);
  });

  it('fetches an exact version too', async () => {
    expect(await fetchExecutor('7.1.0')).toMatchObject({ version: '7.1.0', source: 'cached' });
    expect(findExecutor('7.1')?.version).toBe('7.1.2');
  });

  it('refuses a tarball whose integrity does not match the registry, and leaves nothing in the cache', async () => {
    const error = await fetchError('7.3');
    expect(error.code).toBe('E_EXECUTOR_FETCH');
    expect((error.cause as { code?: string }).code).toBe('EINTEGRITY');
    expect(findExecutor('7.3')).toBeUndefined();
    expect(fs.readdirSync(executorCacheDir()).filter((name) => !name.startsWith('.npm'))).toEqual(['7.1.0', '7.1.2']);
  });

  it('says when Prisma published no executor for a version', async () => {
    const error = await fetchError('7.4');
    expect(error.details.failure).toBe('not-published');
    expect(error.message).toBe(
      `no ${EXECUTOR_PACKAGE} release matches 7.4 on the npm registry; Prisma Client 7.4 can use pgdev over TCP only (pgdev url, with @prisma/adapter-pg)`,
    );
  });

  it('says when the registry cannot be reached', async () => {
    process.env.npm_config_registry = unreachableRegistry;
    try {
      const error = await fetchError('7.5');
      expect(error.details.failure).toBe('unreachable');
      expect(error.message).toMatch(/^cannot fetch @prisma\/query-plan-executor@~7\.5\.0 from the npm registry \(.*ECONNREFUSED.*\); check the network or npm_config_registry$/);
    } finally {
      process.env.npm_config_registry = registry.url;
    }
  });

  it('ignores a cache folder without its completion marker', async () => {
    fs.mkdirSync(path.join(executorCacheDir(), '7.6.0', 'dist'), { recursive: true });
    fs.writeFileSync(path.join(executorCacheDir(), '7.6.0', 'package.json'), '{}');
    expect(findExecutor('7.6')).toBeUndefined();
    expect(listExecutors().map((found) => found.version)).not.toContain('7.6.0');
  });
});
