/**
 * @module
 * Prisma's query plan executors, one per Prisma minor version. A Prisma Client compiles each query into a plan whose
 * format may change in any minor release, so a plan must run in the executor of the client's own `major.minor`.
 * pgdev bundles one executor (its dependency `@prisma/query-plan-executor`); the executor of any other minor is
 * fetched once from the npm registry with `pacote` (npm's own fetcher, which checks the tarball against the
 * registry's integrity hash) into pgdev's cache folder, and loaded from there from then on.
 *
 * The executor package bundles all of its code (its manifest lists no dependencies, only devDependencies), so an
 * extracted tarball loads as is: no install step, no dependency resolution.
 *
 * Cache layout: `<cache>/prisma-executors/<version>/` holds the extracted package and a `pgdev-fetched.json`
 * (version, integrity, tarball URL, time). A fetch extracts into a temporary folder and renames it into place, so a
 * folder under its final name is always complete, and two processes fetching at once do no harm.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import envPaths from 'env-paths';
import { ErrorCode, PgdevError } from '../errors.js';
import { packageVersion } from '../package-version.js';

export const EXECUTOR_PACKAGE = '@prisma/query-plan-executor';

/** The version of the executor pgdev bundles. */
export const BUNDLED_EXECUTOR_VERSION: string = packageVersion(EXECUTOR_PACKAGE);

/** What an executor package exports, as far as pgdev uses it (the same in every 7.x release). */
export type ExecutorModule = typeof import('@prisma/query-plan-executor');

export type ExecutorInfo = {
  readonly version: string;
  readonly source: 'bundled' | 'cached';
  /** The package folder (with package.json and dist/). */
  readonly dir: string;
  /** The registry's integrity hash the tarball was checked against (cached executors only). */
  readonly integrity?: string;
};

const MARKER = 'pgdev-fetched.json';

/** `7.2` for `7.2.0`, `7.10.3` or `7.10.0-dev.4`; undefined for anything that is not a version. */
export function minorOf(version: string | undefined): string | undefined {
  return version?.match(/^(\d+)\.(\d+)\.\d+/)?.slice(1, 3).join('.');
}

/**
 * The `major.minor` whose executor runs the plans of Prisma Client `clientVersion`, or undefined for a missing or
 * malformed version. Prisma's own dev builds (`0.0.0`) are served by the bundled executor.
 */
export function executorMinorFor(clientVersion: string | undefined): string | undefined {
  if (clientVersion === '0.0.0') return minorOf(BUNDLED_EXECUTOR_VERSION);
  return minorOf(clientVersion);
}

/** Where fetched executors live; honours XDG_CACHE_HOME (read afresh each call, so tests can point it elsewhere). */
export function executorCacheDir(): string {
  return path.join(envPaths('pgdev', { suffix: '' }).cache, 'prisma-executors');
}

function bundledExecutor(): ExecutorInfo {
  const entry = createRequire(import.meta.url).resolve(EXECUTOR_PACKAGE);
  return { version: BUNDLED_EXECUTOR_VERSION, source: 'bundled', dir: path.dirname(path.dirname(entry)) };
}

function compareVersions(a: string, b: string): number {
  const parts = (version: string) => version.split(/[.-]/).slice(0, 3).map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The executors fetched into the cache, complete ones only, newest first. */
function cachedExecutors(): ExecutorInfo[] {
  const root = executorCacheDir();
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return [];
  }
  const found: ExecutorInfo[] = [];
  for (const name of names) {
    const dir = path.join(root, name);
    try {
      const marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as { version: string; integrity: string };
      if (marker.version === name) found.push({ version: name, source: 'cached', dir, integrity: marker.integrity });
    } catch {
      // not a complete executor folder (a temporary one, or something else): ignore it
    }
  }
  return found.sort((a, b) => compareVersions(b.version, a.version));
}

/** The bundled executor and every cached one, newest first. */
export function listExecutors(): ExecutorInfo[] {
  return [bundledExecutor(), ...cachedExecutors()].sort((a, b) => compareVersions(b.version, a.version));
}

/** The executor on this machine for `minor` (`7.2`), without asking the registry: the bundled one, else the newest cached. */
export function findExecutor(minor: string): ExecutorInfo | undefined {
  if (minorOf(BUNDLED_EXECUTOR_VERSION) === minor) return bundledExecutor();
  return cachedExecutors().find((executor) => minorOf(executor.version) === minor);
}

/** Why a fetch failed: the registry has no such version, the registry could not be reached, or the cache cannot be written. */
export type FetchFailure = 'not-published' | 'unreachable' | 'cache-unwritable';

function fetchFailureOf(error: unknown): FetchFailure {
  const code = (error as { code?: string } | undefined)?.code;
  return code === 'ETARGET' || code === 'E404' ? 'not-published' : 'unreachable';
}

/**
 * Fetches the newest executor release of `minor` (`7.2`, or a full version `7.2.0`) from the npm registry into the
 * cache and returns it; returns the cached one if it is there already. Rejects with a `PgdevError` whose `cause` is
 * pacote's error (code `ETARGET` when no such release exists, `EINTEGRITY` when the tarball does not match).
 */
export async function fetchExecutor(versionOrMinor: string): Promise<ExecutorInfo> {
  const spec = /^\d+\.\d+$/.test(versionOrMinor) ? `~${versionOrMinor}.0` : versionOrMinor;
  const root = executorCacheDir();
  try {
    fs.mkdirSync(root, { recursive: true });
    fs.accessSync(root, fs.constants.W_OK);
  } catch (error) {
    throw new PgdevError(ErrorCode.ExecutorFetch, `cannot write to the cache folder ${root}; fix its permissions or set XDG_CACHE_HOME`, {
      cause: error,
      details: { failure: 'cache-unwritable', cache: root },
    });
  }
  const { default: pacote } = await import('pacote');
  const options = {
    cache: path.join(root, '.npm-cache'),
    registry: process.env.npm_config_registry || undefined,
    timeout: 60_000,
    fullMetadata: false,
  };
  try {
    const manifest = await pacote.manifest(`${EXECUTOR_PACKAGE}@${spec}`, options);
    const dir = path.join(root, manifest.version);
    const cached = cachedExecutors().find((executor) => executor.version === manifest.version);
    if (cached) return cached;
    const temporary = fs.mkdtempSync(path.join(root, `.fetching-${manifest.version}-`));
    try {
      // The integrity comes from the registry's metadata; pacote refuses a tarball that does not match it.
      const fetched = await pacote.extract(manifest._resolved, temporary, { ...options, integrity: manifest._integrity });
      const marker = { version: manifest.version, integrity: fetched.integrity, resolved: fetched.resolved, fetchedAt: new Date().toISOString() };
      fs.writeFileSync(path.join(temporary, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
      try {
        fs.renameSync(temporary, dir);
      } catch (error) {
        // Another process put the same version in place first: use that one.
        if (!fs.existsSync(path.join(dir, MARKER))) throw error;
      }
    } finally {
      fs.rmSync(temporary, { recursive: true, force: true });
    }
    return { version: manifest.version, source: 'cached', dir, integrity: manifest._integrity };
  } catch (error) {
    const failure = fetchFailureOf(error);
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new PgdevError(
      ErrorCode.ExecutorFetch,
      failure === 'not-published'
        ? `no ${EXECUTOR_PACKAGE} release matches ${versionOrMinor} on the npm registry; Prisma Client ${versionOrMinor} can use pgdev over TCP only (pgdev url, with @prisma/adapter-pg)`
        : `cannot fetch ${EXECUTOR_PACKAGE}@${spec} from the npm registry (${reason}); check the network or npm_config_registry`,
      { cause: error, details: { failure } },
    );
  }
}

/** Loads an executor's code (about half a second for its 5 MB bundle). */
export async function loadExecutorModule(executor: ExecutorInfo): Promise<ExecutorModule> {
  if (executor.source === 'bundled') return import('@prisma/query-plan-executor');
  // The package is CommonJS and lists `main`: require it by folder, as Node resolves any installed package.
  return createRequire(import.meta.url)(executor.dir) as ExecutorModule;
}
