/**
 * @module
 * `pgdev/vitest`: a database of its own for every vitest worker, cloned from a template database that is built once
 * per run from the project's migrations and seed. One line in `vitest.config.ts`:
 *
 * @example
 * ```ts
 * import { defineConfig } from 'vitest/config';
 * import { pgdevDatabases } from 'pgdev/vitest';
 *
 * export default defineConfig({
 *   plugins: [pgdevDatabases({ migrations: 'migrations', seed: 'seed.sql' })],
 * });
 * ```
 *
 * and in a test file, `process.env.DATABASE_URL` (or {@link workerDatabase}`().url`) is the worker's database;
 * {@link restore} puts it back to its state right after cloning.
 *
 * The plugin adds a global setup (`global-setup.ts`: finds or starts the server, builds the template, serves the
 * workers' requests, drops everything at the end) and a setup file (`setup-file.ts`: clones the template before each
 * test file). This module itself loads nothing of pgdev's server, so test files can import it cheaply.
 */
import { fileURLToPath } from 'node:url';

export type PgdevDatabasesOptions = {
  /**
   * A folder of SQL migrations, relative to the vitest root: its `*.sql` files, or the `migration.sql` of each of
   * its subfolders (Prisma Migrate's layout), run in name order on the template.
   */
  readonly migrations?: string;
  /** A command that migrates the database in `DATABASE_URL`, such as `npx prisma migrate deploy`; after `migrations`. */
  readonly migrateCommand?: string;
  /** A SQL file run on the template after the migrations, relative to the vitest root. */
  readonly seed?: string;
  /** A command that seeds the database in `DATABASE_URL`, such as `node seed.mjs`; after `seed`. */
  readonly seedCommand?: string;
  /**
   * The server to use: a postgres:// URL (any Postgres 13 or later: the run creates and drops databases there), or
   * the name of a running pgdev server. Default: `DATABASE_URL` if set, else a private in-memory pgdev server.
   */
  readonly server?: string;
  /** The names of the databases made: `<prefix>_template`, `<prefix>_1`, `<prefix>_2`, ... Default `pgdev_vitest`. */
  readonly prefix?: string;
};

/** What the global setup hands to the workers (vitest's `provide`/`inject`). */
export type WorkerContext = {
  /** A URL of the server, its path replaced by each worker's database. */
  readonly serverUrl: string;
  readonly prefix: string;
  /** The global setup's loopback endpoint for clones and restores: `http://127.0.0.1:<port>#<token>`. */
  readonly endpoint: string;
};

declare module 'vitest' {
  export interface ProvidedContext {
    pgdevDatabasesOptions: PgdevDatabasesOptions;
    pgdevWorkerContext: WorkerContext;
  }
}

const GLOBAL_SETUP = fileURLToPath(new URL('./global-setup.js', import.meta.url));
const SETUP_FILE = fileURLToPath(new URL('./setup-file.js', import.meta.url));

/** The environment variables through which the setup file tells the test file (and this module) its database. */
export const WORKER_ENV = { database: 'PGDEV_VITEST_DATABASE', url: 'PGDEV_VITEST_DATABASE_URL', endpoint: 'PGDEV_VITEST_ENDPOINT' } as const;

/**
 * A vite plugin that gives every vitest worker a database of its own; vitest merges its `globalSetup`, `setupFiles`
 * and `provide` with the project's own.
 */
export function pgdevDatabases(options: PgdevDatabasesOptions = {}) {
  return {
    name: 'pgdev-databases',
    config: () => ({
      test: {
        globalSetup: [GLOBAL_SETUP],
        setupFiles: [SETUP_FILE],
        provide: { pgdevDatabasesOptions: options },
      },
    }),
  };
}

export type WorkerDatabase = { readonly name: string; readonly url: string };

/** This worker's database, cloned from the template before the test file ran. */
export function workerDatabase(): WorkerDatabase {
  const name = process.env[WORKER_ENV.database];
  const url = process.env[WORKER_ENV.url];
  if (!name || !url) throw new Error('pgdev/vitest: no worker database; add pgdevDatabases() to the plugins of vitest.config');
  return { name, url };
}

/**
 * Puts this worker's database back as it was at the test file's first `restore()`: call it in `beforeEach`, and every
 * test starts from the clone plus what `beforeAll` hooks added. On the private pgdev server the first call takes a
 * snapshot, and later ones reload only the tables whose rows changed, with connections kept open. On another server
 * (a URL or a named pgdev server) it clones the template again, which ends the database's connections (give a
 * `pg.Pool` an `'error'` listener) and goes back to the template itself.
 */
export async function restore(): Promise<void> {
  const { name } = workerDatabase();
  const endpoint = process.env[WORKER_ENV.endpoint];
  if (!endpoint) throw new Error('pgdev/vitest: no worker database; add pgdevDatabases() to the plugins of vitest.config');
  await callEndpoint(endpoint, 'restore', name);
}

/** Asks the global setup's endpoint (`<url>#<token>`) to act on a database; rejects with its error message. */
export async function callEndpoint(endpoint: string, action: 'clone' | 'restore', database: string): Promise<void> {
  const [url, token] = endpoint.split('#') as [string, string];
  const response = await fetch(`${url}/${action}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ database }),
  });
  if (!response.ok) throw new Error(`pgdev/vitest: ${action} of database "${database}" failed: ${await response.text()}`);
}
