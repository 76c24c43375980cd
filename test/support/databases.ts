/**
 * @module
 * Helpers for the tests of several databases per server (issue 11): a server to test against, clients that never
 * crash the test process on a server-side disconnect, and the SQLSTATE, message and severity of a failure.
 *
 * The tests run against pgdev (`startServer` with free ports). Set `PGDEV_TEST_REAL_POSTGRES=host:port` (a real
 * PostgreSQL 15 with trust authentication for `postgres`) to run the SQL-level tests against it instead, to check
 * that what they expect is what Postgres does; the few places where pgdev differs by design branch on
 * {@link DbTarget.kind}.
 */
import fs from 'node:fs';
import pg from 'pg';
import { startServer, type PgdevServer, type StartServerOptions } from '../../src/index.js';

export type DbTarget = {
  readonly kind: 'pgdev' | 'postgres';
  /** The pgdev server (undefined against a real Postgres). */
  readonly server: PgdevServer | undefined;
  readonly port: number;
  /** The default database's name in the URL pgdev prints (`template1`), or `postgres` against a real Postgres. */
  readonly defaultDatabase: string;
  /** A URL to `database` on the main port. */
  url(database?: string): string;
  /** A URL to `database` on the shadow port (pgdev only). */
  shadowUrl(database?: string): string;
  close(): Promise<void>;
};

export const realPostgres = process.env.PGDEV_TEST_REAL_POSTGRES;

/** Databases a real Postgres keeps; the others are dropped before a test file runs against it. */
const SYSTEM_DATABASES = new Set(['postgres', 'template0', 'template1']);

/** A pgdev server on free ports (or the real Postgres of PGDEV_TEST_REAL_POSTGRES, emptied of its extra databases). */
export async function startTarget(options: StartServerOptions = {}): Promise<DbTarget> {
  if (realPostgres) {
    const [host, port] = realPostgres.split(':');
    const url = (database = 'postgres') => `postgres://postgres:postgres@${host}:${port}/${encodeURIComponent(database)}`;
    await withClient(url(), async (client) => {
      const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database');
      for (const { datname } of rows) if (!SYSTEM_DATABASES.has(datname)) await client.query(`DROP DATABASE "${datname}" WITH (FORCE)`);
    });
    return {
      kind: 'postgres',
      server: undefined,
      port: Number(port),
      defaultDatabase: 'postgres',
      url,
      shadowUrl: () => {
        throw new Error('a real Postgres has no shadow port');
      },
      close: async () => undefined,
    };
  }
  const server = await startServer({ port: 0, databasePort: 0, shadowDatabasePort: 0, persistence: 'memory', log: () => undefined, ...options });
  const withDatabase = (base: string, database: string) => {
    const url = new URL(base);
    url.pathname = `/${encodeURIComponent(database)}`;
    return url.toString();
  };
  return {
    kind: 'pgdev',
    server,
    port: server.ports.database,
    defaultDatabase: 'template1',
    url: (database) => (database === undefined ? server.databaseUrl : withDatabase(server.databaseUrl, database)),
    shadowUrl: (database) => (database === undefined ? server.shadowDatabaseUrl : withDatabase(server.shadowDatabaseUrl, database)),
    // Bounded, so that a close that hangs fails the file's hook quickly instead of at the hook timeout.
    close: () => within(server.close(), 15_000, `closing server ${server.name}`),
  };
}

export type Failure = { code: string | undefined; message: string; severity: string | undefined; detail: string | undefined };

/** The SQLSTATE, message, severity and detail of a rejection; fails if the promise resolves. */
export async function failure(promise: Promise<unknown>): Promise<Failure> {
  try {
    await promise;
  } catch (error) {
    const e = error as Error & { code?: string; severity?: string; detail?: string };
    return { code: e.code, message: e.message, severity: e.severity, detail: e.detail };
  }
  throw new Error('expected an error, but it succeeded');
}

/** A pg client whose server-side errors (57P01 and the like) are recorded rather than thrown. */
export type TrackedClient = { client: pg.Client; errors: Array<Error & { code?: string }>; notices: Array<{ code: string | undefined; message: string; severity: string | undefined }> };

export async function connect(url: string): Promise<TrackedClient> {
  const client = new pg.Client({ connectionString: url });
  const errors: TrackedClient['errors'] = [];
  const notices: TrackedClient['notices'] = [];
  client.on('error', (error) => errors.push(error));
  client.on('notice', (notice) => notices.push({ code: notice.code, message: notice.message ?? '', severity: notice.severity }));
  await client.connect();
  return { client, errors, notices };
}

export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const { client } = await connect(url);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** One query on a fresh connection; the rows. */
export async function rows<T = Record<string, unknown>>(url: string, sql: string, values?: unknown[]): Promise<T[]> {
  return withClient(url, async (client) => (await client.query(sql, values)).rows as T[]);
}

/** The databases `pg_database` lists on a connection to `url`, sorted. */
export async function listed(url: string): Promise<string[]> {
  return (await rows<{ datname: string }>(url, 'SELECT datname FROM pg_database ORDER BY datname')).map((row) => row.datname);
}

/** The public tables of the database at `url`. */
export async function publicTables(url: string): Promise<string[]> {
  return (await rows<{ name: string }>(url, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).map((row) => row.name);
}

/** psql's arguments for a URL: no ~/.psqlrc, stop at the first error. */
export function psqlArgs(url: string): string[] {
  return ['-X', '-v', 'ON_ERROR_STOP=1', '-d', url];
}

/** Settles within `ms` or fails: a hang is a failure, not a timeout of the whole file. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Pids of this process's children running a database (`daemon/host/main.bundle.js`): one per open database. Linux only. */
export function databaseProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('host/main.bundle')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

