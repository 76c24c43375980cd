/**
 * @module
 * `pgdev prisma-executors [--fetch <version>] [--json]`: the Prisma query plan executors on this machine (the
 * bundled one and those fetched into the cache), each serving Prisma Client of its own minor version over HTTP;
 * `--fetch 7.2` fetches one ahead of time, for CI caches and laptops that will be offline.
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, PgdevError } from '../errors.js';
import { executorCacheDir, fetchExecutor, listExecutors, minorOf, type ExecutorInfo } from '../http/executors.js';
import { table } from './output.js';

/** `7.2`, `7.2.x` or `7.2.0` (a release of that minor, or that very version). */
function parseWanted(value: string): string {
  const match = value.match(/^(\d+\.\d+)(?:\.x)?$/) ?? value.match(/^\d+\.\d+\.\d+$/);
  if (!match) {
    throw new PgdevError(ErrorCode.InvalidVersion, `--fetch takes a Prisma version such as 7.2 or 7.2.0, not "${value}"`);
  }
  return match[1] ?? match[0];
}

function describe(executor: ExecutorInfo) {
  return { version: executor.version, serves: `${minorOf(executor.version)}.x`, source: executor.source, dir: executor.dir, integrity: executor.integrity ?? null };
}

export async function prismaExecutors(options: { fetch?: string; json?: boolean }): Promise<void> {
  if (options.fetch !== undefined) {
    const wanted = parseWanted(options.fetch);
    const started = performance.now();
    const executor = await fetchExecutor(wanted);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (!options.json) process.stdout.write(`@prisma/query-plan-executor ${executor.version} (Prisma Client ${minorOf(executor.version)}.x) is in ${executor.dir} (${seconds} s)\n`);
  }
  const executors = listExecutors().map(describe);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ cache: executorCacheDir(), executors }, null, 2)}\n`);
    return;
  }
  const rows = executors.map((executor) => [executor.version, executor.serves, executor.source, executor.dir]);
  process.stdout.write(table(['VERSION', 'SERVES PRISMA CLIENT', 'SOURCE', 'FOLDER'], rows));
  process.stdout.write(`other 7.x versions are fetched from the npm registry on their first request, into ${executorCacheDir()}\n`);
}
