/**
 * @module
 * Databases through the API, HTTP and the CLI (issue 11): `server.createDatabase(name, { template })`,
 * `dropDatabase(name, { force })` and `databaseUrlFor(name)`, with their errors (PgdevError carrying the SQLSTATE);
 * `reset`, `snapshot` and `restore` of one database, leaving the others alone; `POST /sql` with `"database"`
 * (404 for an unknown one); `pgdev ls` and `ls --json` listing each server's databases and sizes; `pgdev rm`
 * removing them all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PgdevError, startServer, type PgdevServer } from '../src/index.js';
import { cleanupCli, createDataHome, readServerJson, runCli, serverPorts } from './support/cli.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { connect, failure, listed, publicTables, rows, within } from './support/databases.js';
import { waitFor } from './support/wait.js';

useTemporaryDataHome('pgdev-databases-api-');

let server: PgdevServer;
let url: (name: string) => string;

beforeAll(async () => {
  server = await startServer({ name: 'dbapi', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
  // `databaseUrl` stays the string `prisma dev` prints; a named database's URL is `databaseUrlFor(name)`.
  url = (name) => server.databaseUrlFor(name);
  await rows(server.databaseUrl, "CREATE TABLE main_table (v text); INSERT INTO main_table VALUES ('main')");
});

afterAll(async () => {
  await server?.close();
});

/** The error an API call rejects with: a PgdevError whose `details.sqlState` is Postgres' SQLSTATE. */
async function apiError(promise: Promise<unknown>): Promise<{ sqlState: unknown; code: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PgdevError);
    const e = error as PgdevError;
    return { sqlState: e.details.sqlState, code: e.code, message: e.message };
  }
  throw new Error('expected the API call to fail');
}

describe('server.createDatabase, dropDatabase, databaseUrlFor', { timeout: 30_000 }, () => {
  it('creates an empty database whose URL has the printed shape, and drops it', async () => {
    await server.createDatabase('api_plain');
    expect(url('api_plain')).toBe(`postgres://postgres:postgres@localhost:${server.ports.database}/api_plain?sslmode=disable`);
    expect(await rows(url('api_plain'), 'SELECT current_database() AS db')).toEqual([{ db: 'api_plain' }]);
    expect(await publicTables(url('api_plain'))).toEqual([]);
    expect(await listed(server.databaseUrl)).toContain('api_plain');

    await server.dropDatabase('api_plain');
    expect(await listed(server.databaseUrl)).not.toContain('api_plain');
    expect((await failure(connect(url('api_plain')))).code).toBe('3D000');
    // The default database was not touched.
    expect(await rows(server.databaseUrl, 'SELECT v FROM main_table')).toEqual([{ v: 'main' }]);
  });

  it('creates from a template: a copy of it as it is now, apart from it afterwards', async () => {
    await server.createDatabase('api_tpl');
    await rows(url('api_tpl'), 'CREATE TABLE seeded (id int PRIMARY KEY); INSERT INTO seeded SELECT generate_series(1, 1000)');
    await Promise.all([server.createDatabase('api_worker_1', { template: 'api_tpl' }), server.createDatabase('api_worker_2', { template: 'api_tpl' })]);
    await rows(url('api_worker_1'), 'DELETE FROM seeded WHERE id > 10');
    expect(await rows(url('api_worker_1'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 10 }]);
    expect(await rows(url('api_worker_2'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 1000 }]);
    expect(await rows(url('api_tpl'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 1000 }]);
    for (const name of ['api_worker_1', 'api_worker_2']) await server.dropDatabase(name);
  });

  it('rejects bad input with a PgdevError carrying the SQLSTATE, leaving nothing half-created', async () => {
    await server.createDatabase('api_dup');
    expect(await apiError(server.createDatabase('api_dup'))).toMatchObject({ sqlState: '42P04', message: expect.stringContaining('"api_dup" already exists') });
    expect((await apiError(server.createDatabase(''))).sqlState).toBe('42602');
    expect((await apiError(server.createDatabase('x'.repeat(64)))).sqlState).toBe('42602');
    expect(await apiError(server.createDatabase('api_from_nothing', { template: 'no_such' }))).toMatchObject({
      sqlState: '3D000',
      message: expect.stringContaining('template database "no_such" does not exist'),
    });
    expect(await apiError(server.dropDatabase('api_never'))).toMatchObject({ sqlState: '3D000', message: expect.stringContaining('"api_never" does not exist') });
    expect((await apiError(server.dropDatabase('postgres'))).sqlState).toBe('55006');
    expect((await apiError(server.dropDatabase('template1'))).sqlState).toBe('55006');
    const names = await listed(server.databaseUrl);
    expect(names.filter((name) => name === '' || name.startsWith('xxx') || name === 'api_from_nothing')).toEqual([]);
    expect(await rows(server.databaseUrl, 'SELECT v FROM main_table')).toEqual([{ v: 'main' }]);
  });

  it('refuses to drop a database in use (55006) unless force, which ends its clients with 57P01', async () => {
    await server.createDatabase('api_busy');
    const user = await connect(url('api_busy'));
    try {
      expect((await apiError(server.dropDatabase('api_busy'))).sqlState).toBe('55006');
      expect((await user.client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await server.dropDatabase('api_busy', { force: true });
      await waitFor(() => user.errors.some((error) => error.code === '57P01'), 'the connected client to be told 57P01');
      expect((await failure(connect(url('api_busy')))).code).toBe('3D000');
    } finally {
      await user.client.end().catch(() => undefined);
    }
  });
});

describe('the limit on databases per port', { timeout: 30_000 }, () => {
  it('refuses a database over the limit with 53400, over SQL and the API, and takes one again after a drop', async () => {
    const limited = await startServer({ name: 'dblimit', persistence: 'memory', maxDatabases: 2, port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    try {
      let created = 0;
      let refused: Awaited<ReturnType<typeof failure>> | undefined;
      while (!refused && created < 10) {
        const name = `lim_${created}`;
        refused = await rows(limited.databaseUrl, `CREATE DATABASE ${name}`).then(
          () => undefined,
          (error: { code?: string; message: string; severity?: string; detail?: string }) => ({ code: error.code, message: error.message, severity: error.severity, detail: error.detail }),
        );
        if (!refused) created++;
      }
      expect(refused).toMatchObject({ code: '53400' });
      expect(created).toBeGreaterThanOrEqual(1);
      expect(created).toBeLessThanOrEqual(2);
      expect(await listed(limited.databaseUrl)).not.toContain(`lim_${created}`);
      expect((await apiError(limited.createDatabase('lim_api'))).sqlState).toBe('53400');
      // The shadow port has its own set, and so its own count.
      await rows(limited.shadowDatabaseUrl, 'CREATE DATABASE shadow_one');
      await rows(limited.databaseUrl, 'DROP DATABASE lim_0');
      await limited.createDatabase('lim_api');
      expect(await rows(limited.databaseUrlFor('lim_api'), 'SELECT current_database() AS db')).toEqual([{ db: 'lim_api' }]);
    } finally {
      await limited.close();
    }
  });
});

describe('reset, snapshot and restore of one database', { timeout: 30_000 }, () => {
  it('reset(database) empties that database only', async () => {
    await server.createDatabase('api_reset');
    await server.createDatabase('api_bystander');
    await rows(url('api_reset'), 'CREATE TABLE doomed (x int); INSERT INTO doomed VALUES (1)');
    await rows(url('api_bystander'), 'CREATE TABLE safe (x int); INSERT INTO safe VALUES (2)');
    await server.reset('api_reset');
    expect(await publicTables(url('api_reset'))).toEqual([]);
    expect(await rows(url('api_reset'), 'SELECT current_database() AS db')).toEqual([{ db: 'api_reset' }]);
    expect(await rows(url('api_bystander'), 'SELECT x FROM safe')).toEqual([{ x: 2 }]);
    expect(await rows(server.databaseUrl, 'SELECT v FROM main_table')).toEqual([{ v: 'main' }]);
    expect((await apiError(server.reset('api_no_such'))).message).toContain('api_no_such');
  });

  it('snapshot(label, database) and restore(label, database) put that database back, data and schema, and nothing else', async () => {
    await server.createDatabase('api_snap');
    await rows(url('api_snap'), "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200) g");
    await server.snapshot('seeded', 'api_snap');

    // Data changes only: restored in place.
    await rows(url('api_snap'), "DELETE FROM items WHERE id > 50; UPDATE items SET name = 'changed'");
    await rows(server.databaseUrl, "INSERT INTO main_table VALUES ('after the snapshot')");
    await server.restore('seeded', 'api_snap');
    expect(await rows(url('api_snap'), "SELECT count(*)::int AS n, count(*) FILTER (WHERE name = 'changed')::int AS changed FROM items")).toEqual([{ n: 200, changed: 0 }]);
    expect(await rows(server.databaseUrl, 'SELECT count(*)::int AS n FROM main_table')).toEqual([{ n: 2 }]);

    // A schema change: restored too.
    await rows(url('api_snap'), 'CREATE TABLE extra (x int); DROP TABLE items');
    await server.restore('seeded', 'api_snap');
    expect(await publicTables(url('api_snap'))).toEqual(['items']);
    expect(await rows(url('api_snap'), 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 200 }]);

    expect((await apiError(server.restore('never-taken', 'api_snap'))).message).toContain('never-taken');
    await rows(server.databaseUrl, "DELETE FROM main_table WHERE v <> 'main'");
  });
});

describe('POST /sql with "database"', { timeout: 30_000 }, () => {
  const sql = (body: unknown) => {
    const apiKey = new URL(server.prismaPostgresUrl).searchParams.get('api_key');
    return fetch(`${server.httpUrl}/sql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  };

  it('runs a query and a batch in the named database; without one, in the default database; an unknown one is 404', async () => {
    await server.createDatabase('api_http');
    await rows(url('api_http'), "CREATE TABLE only_here (v text); INSERT INTO only_here VALUES ('http')");

    const one = await sql({ database: 'api_http', query: 'SELECT current_database() AS db, v FROM only_here WHERE v = $1', params: ['http'] });
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ rows: [{ db: 'api_http', v: 'http' }], rowCount: 1, command: 'SELECT' });

    const batch = await sql({ database: 'api_http', queries: [{ query: "INSERT INTO only_here VALUES ('batch')" }, { query: 'SELECT count(*)::int AS n FROM only_here' }] });
    expect(batch.status).toBe(200);
    expect((await batch.json()).results[1].rows).toEqual([{ n: 2 }]);

    const byDefault = await sql({ query: 'SELECT current_database() AS db, (SELECT count(*)::int FROM main_table) AS n' });
    expect(byDefault.status).toBe(200);
    expect((await byDefault.json()).rows).toEqual([{ db: 'postgres', n: 1 }]);
    for (const name of ['postgres', 'template1']) {
      const named = await sql({ database: name, query: 'SELECT count(*)::int AS n FROM main_table' });
      expect(named.status, name).toBe(200);
      expect((await named.json()).rows, name).toEqual([{ n: 1 }]);
    }

    // A table of another database is not there.
    const elsewhere = await sql({ database: 'api_http', query: 'SELECT * FROM main_table' });
    expect(elsewhere.status).toBe(400);
    expect((await elsewhere.json()).error).toMatchObject({ code: '42P01' });

    // Database commands are for a Postgres connection or the API, not for a one-request HTTP session.
    const create = await sql({ query: 'CREATE DATABASE via_http' });
    expect(create.status).toBe(400);
    expect((await create.json()).error.message).toContain('CREATE DATABASE');
    expect(await listed(server.databaseUrl)).not.toContain('via_http');

    const unknown = await sql({ database: 'api_no_such_db', query: 'SELECT 1' });
    expect(unknown.status).toBe(404);
    const body = await unknown.json();
    expect(body.error.message).toContain('api_no_such_db');
  });
});

describe('the CLI: pgdev ls and rm with databases', { timeout: 90_000 }, () => {
  afterEach(cleanupCli);

  it('ls --json lists each server\'s databases with sizes (also once stopped); rm removes them all', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    // One query on a new connection to the server's default database; a hang fails in 15 s.
    const query = <T = Record<string, unknown>>(port: number, text: string) =>
      within(rows<T>(`postgres://postgres:postgres@127.0.0.1:${port}/template1`, text), 15_000, text);
    const started = await runCli(['-n', 'withdbs', '-d', ...args], { env: home.env });
    expect(started.stderr).toBe('');
    expect(started.status).toBe(0);
    await query(ports.database, 'CREATE DATABASE cli_one');
    await query(ports.database, 'CREATE DATABASE cli_two');
    await within(
      rows(`postgres://postgres:postgres@127.0.0.1:${ports.database}/cli_two`, "CREATE TABLE bulk AS SELECT g AS id, repeat('x', 200) AS filler FROM generate_series(1, 20000) g"),
      15_000,
      'CREATE TABLE bulk',
    );

    const lsJson = async () => {
      const result = await runCli(['ls', '--json'], { env: home.env });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      return JSON.parse(result.stdout) as Array<{ name: string; status: string; sizeBytes: number; databases: Array<{ name: string; sizeBytes: number }> }>;
    };
    const check = async (status: string) => {
      const [listedServer, ...others] = await lsJson();
      expect(others).toEqual([]);
      expect(listedServer).toMatchObject({ name: 'withdbs', status });
      expect(listedServer, 'ls --json has "databases"').toHaveProperty('databases');
      const byName = Object.fromEntries(listedServer!.databases.map((db) => [db.name, db.sizeBytes]));
      expect(Object.keys(byName)).toEqual(expect.arrayContaining(['cli_one', 'cli_two']));
      for (const [name, size] of Object.entries(byName)) {
        expect(Number.isInteger(size), name).toBe(true);
        expect(size, name).toBeGreaterThan(0);
      }
      // cli_two holds ~4 MB more than cli_one.
      expect(byName['cli_two']!).toBeGreaterThan(byName['cli_one']! + 2 * 1024 * 1024);
      // The server's size is its databases' total (at least).
      const total = listedServer!.databases.reduce((sum, db) => sum + db.sizeBytes, 0);
      expect(listedServer!.sizeBytes).toBeGreaterThanOrEqual(total);
      return listedServer!;
    };
    const running = await check('running');

    const table = await runCli(['ls'], { env: home.env });
    expect(table.status).toBe(0);
    const [header, row] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/\bDATABASES\b|\bDBS\b/);
    // The database count is in the row.
    expect(row).toMatch(new RegExp(`^withdbs +running\\b.*\\b${running.databases.length}\\b`));

    await query(ports.database, 'DROP DATABASE cli_one');
    expect((await lsJson())[0]!.databases.map((db) => db.name)).not.toContain('cli_one');
    await query(ports.database, 'CREATE DATABASE cli_one');

    expect(await runCli(['stop', 'withdbs'], { env: home.env })).toMatchObject({ status: 0, stdout: 'withdbs stopped\n' });
    await check('stopped');
    expect(fs.existsSync(path.join(home.serverDir('withdbs'), 'databases.json'))).toBe(true);
    expect(fs.readdirSync(path.join(home.serverDir('withdbs'), 'databases')).length).toBeGreaterThanOrEqual(2);

    // Started again, the databases are there; rm --force removes the server and every database.
    expect(await runCli(['start', 'withdbs'], { env: home.env })).toMatchObject({ status: 0 });
    expect((await query<{ n: number }>(ports.database, "SELECT count(*)::int AS n FROM pg_database WHERE datname IN ('cli_one', 'cli_two')"))[0]!.n).toBe(2);
    const pid = readServerJson(home, 'withdbs')!.pid;
    expect(pid).toBeGreaterThan(0);
    expect(await runCli(['rm', 'withdbs', '--force', '-y'], { env: home.env })).toMatchObject({ status: 0, stdout: 'withdbs removed\n', stderr: '' });
    expect(fs.existsSync(home.serverDir('withdbs'))).toBe(false);
    expect(await lsJson()).toEqual([]);

    // A new server under the same name starts without them.
    expect(await runCli(['-n', 'withdbs', '-d', ...args], { env: home.env })).toMatchObject({ status: 0 });
    expect(await query(ports.database, "SELECT datname FROM pg_database WHERE datname LIKE 'cli_%'")).toEqual([]);
  });
});
