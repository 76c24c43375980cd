/**
 * @module
 * pgdev's programmatic API: start and stop servers from code (test suites), and find running ones by name.
 * @example
 * ```ts
 * import { startServer } from 'pgdev';
 * const server = await startServer({ name: 'tests', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0 });
 * process.env.DATABASE_URL = server.databaseUrl;
 * await server.close();
 * ```
 */
import { readRunning } from './daemon/client/registry.js';
import type { ServerUrls } from './state/files.js';

export { startServer } from './daemon/server/server.js';
export type { PgdevServer, StartServerOptions } from './daemon/server/server.js';
export type { Persistence } from './engine/engine.js';
export { ErrorCode, PgdevError, isPgdevError } from './errors.js';
export type { ServerUrls, Ports } from './state/files.js';

export type RunningServer = ServerUrls & { readonly name: string };

/** The URLs of the server `name` if it runs now (started by the CLI or another process), else `null`. */
export function getServer(name = 'default'): RunningServer | null {
  const record = readRunning(name);
  return record ? { name: record.name, ...record.urls } : null;
}
