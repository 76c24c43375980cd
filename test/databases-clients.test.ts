/**
 * @module
 * Several databases with real clients (issue 11): psql moving between databases with `\c`, and connecting 40 times
 * in a row (no connection lost when the port hands it to its database's process); the `createdb` and `dropdb` tools;
 * two pg Pools working two databases at once; Prisma Client (adapter-pg) on a created database; isolation (tables,
 * sequences, NOTIFY) between databases; created databases and their data kept across a restart of a persistent
 * server (closed with clients connected, told 57P01), an idle database's process closing and reopening, the shadow
 * database opened only when used, and created databases kept by an in-memory server.
 *
 * The client tests share one in-memory server; the restart tests start their own. The client tests were checked on
 * PostgreSQL 15 (PGDEV_TEST_REAL_POSTGRES, see support/databases.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { connect, databaseProcesses, failure, listed, psqlArgs, publicTables, realPostgres, rows, startTarget, withClient, within, type DbTarget } from './support/databases.js';
import { runTool } from './support/tools.js';
import { waitFor } from './support/wait.js';
import { generatePrismaClient, loadPrismaClient } from './support/prisma-client.js';

const dataHome = useTemporaryDataHome('pgdev-databases-clients-');

/** A libpq tool run to its end; a hang fails within 15 s. */
// CREATE DATABASE answers once the new database serves, so a script's CREATEs open their databases one after the
// other: a few seconds each on a busy 2-core machine.
function tool(command: string, args: string[], input = '') {
  return within(runTool(command, args, input, 45_000), 40_000, `${command} ${args.join(' ')}`);
}

describe('real clients on several databases', { timeout: 90_000 }, () => {
  let target: DbTarget;
  const host = () => ['-h', '127.0.0.1', '-p', String(target.port), '-U', 'postgres'];

  beforeAll(async () => {
    target = await startTarget({ name: 'dbclients' });
  });

  afterAll(async () => {
    await target?.close();
  });

  it('psql moves between databases with \\c in one script (ON_ERROR_STOP), each with its own tables', async () => {
    const script = `
CREATE DATABASE c_one;
CREATE DATABASE c_two;
\\c c_one
CREATE TABLE only_one (x int);
INSERT INTO only_one VALUES (1), (2);
SELECT 'in ' || current_database();
\\c c_two
SELECT 'in ' || current_database();
SELECT 'tables ' || count(*) FROM pg_tables WHERE tablename = 'only_one';
CREATE TABLE only_two (y text);
\\c c_one
SELECT 'sum ' || sum(x) FROM only_one;
\\c ${target.defaultDatabase}
SELECT 'back ' || count(*) FROM pg_database WHERE datname IN ('c_one', 'c_two');
`;
    const run = await tool('psql', [...psqlArgs(target.url()), '-q', '-At', '-f', '-'], script);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('in c_one\nin c_two\ntables 0\nsum 3\nback 2\n');
    expect(run.status).toBe(0);
    expect(await publicTables(target.url('c_two'))).toEqual(['only_two']);

    // ON_ERROR_STOP: \c to a database that does not exist stops the script with psql's error.
    const stopped = await tool('psql', [...psqlArgs(target.url()), '-q', '-At', '-f', '-'], "\\c c_none\nSELECT 'not reached';\n");
    expect(stopped.stdout).toBe('');
    expect(stopped.stderr).toContain('FATAL:  database "c_none" does not exist');
    expect(stopped.status).not.toBe(0);
  });

  it('psql connects, queries and quits 40 times in a row, to the default and a created database, each within 5 s', async () => {
    // Each connection is handed from the port to its database's process after the startup message: none may be lost.
    await rows(target.url(), 'CREATE DATABASE c_many');
    const outcomes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const database = i % 2 === 0 ? target.defaultDatabase : 'c_many';
      const run = await within(runTool('psql', [...psqlArgs(target.url(database)), '-At', '-c', `SELECT ${i}`], '', 10_000), 5_000, `psql #${i} to ${database}`).then(
        (result) => (result.status === 0 && result.stdout === `${i}\n` ? 'ok' : `#${i} to ${database}: status ${result.status}, ${result.stdout}${result.stderr}`),
        (error: Error) => error.message,
      );
      outcomes.push(run);
    }
    expect(outcomes.filter((outcome) => outcome !== 'ok')).toEqual([]);
  });

  it('createdb and dropdb create, clone, refuse and drop databases', async () => {
    const created = await tool('createdb', [...host(), 'cli_made']);
    expect(created).toMatchObject({ status: 0, stdout: '', stderr: '' });
    const withOptions = await tool('createdb', [...host(), '-E', 'UTF8', '-T', 'template0', '-O', 'postgres', 'cli_options']);
    expect(withOptions).toMatchObject({ status: 0, stderr: '' });
    expect(await listed(target.url())).toEqual(expect.arrayContaining(['cli_made', 'cli_options']));
    expect(await rows(target.url('cli_made'), 'SELECT current_database() AS db')).toEqual([{ db: 'cli_made' }]);

    const again = await tool('createdb', [...host(), 'cli_made']);
    expect(again.status).toBe(1);
    expect(again.stderr).toBe('createdb: error: database creation failed: ERROR:  database "cli_made" already exists\n');

    // createdb -T: a clone of a seeded database.
    await rows(target.url('cli_made'), "CREATE TABLE seed (id int); INSERT INTO seed SELECT generate_series(1, 25)");
    expect(await tool('createdb', [...host(), '-T', 'cli_made', 'cli_clone'])).toMatchObject({ status: 0, stderr: '' });
    expect(await rows(target.url('cli_clone'), 'SELECT count(*)::int AS n FROM seed')).toEqual([{ n: 25 }]);

    expect(await tool('dropdb', [...host(), 'cli_made'])).toMatchObject({ status: 0, stdout: '', stderr: '' });
    const missing = await tool('dropdb', [...host(), 'cli_made']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('dropdb: error: database removal failed: ERROR:  database "cli_made" does not exist\n');
    expect(await tool('dropdb', [...host(), '--if-exists', 'cli_made'])).toMatchObject({ status: 0, stdout: '' });

    // dropdb refuses a database in use, and --force ends the connection (PostgreSQL 13+ dropdb).
    const user = await connect(target.url('cli_clone'));
    try {
      const busy = await tool('dropdb', [...host(), 'cli_clone']);
      expect(busy.status).toBe(1);
      expect(busy.stderr).toContain('dropdb: error: database removal failed: ERROR:  database "cli_clone" is being accessed by other users');
      expect(await tool('dropdb', [...host(), '--force', 'cli_clone'])).toMatchObject({ status: 0, stderr: '' });
    } finally {
      await user.client.end().catch(() => undefined);
    }
    const names = await listed(target.url());
    expect(names).toContain('cli_options');
    expect(names).not.toContain('cli_made');
    expect(names).not.toContain('cli_clone');
  });

  it('two pg Pools query two databases in parallel, each seeing only its own data', async () => {
    await rows(target.url(), 'CREATE DATABASE pool_a');
    await rows(target.url(), 'CREATE DATABASE pool_b');
    const pools = { pool_a: new pg.Pool({ connectionString: target.url('pool_a'), max: 4 }), pool_b: new pg.Pool({ connectionString: target.url('pool_b'), max: 4 }) };
    for (const pool of Object.values(pools)) pool.on('error', () => undefined);
    try {
      // The same table name in both, with different content.
      await Promise.all(
        Object.entries(pools).map(([name, pool]) =>
          pool.query(`CREATE TABLE ledger (id serial PRIMARY KEY, owner text NOT NULL, amount int NOT NULL); INSERT INTO ledger (owner, amount) VALUES ('${name}', 0)`),
        ),
      );
      // 40 transactions on each pool at once, interleaved.
      const work = Array.from({ length: 80 }, async (_, i) => {
        const [name, pool] = i % 2 === 0 ? (['pool_a', pools.pool_a] as const) : (['pool_b', pools.pool_b] as const);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('INSERT INTO ledger (owner, amount) VALUES ($1, $2)', [name, i]);
          const { rows: seen } = await client.query<{ db: string; owners: string[] }>('SELECT current_database() AS db, array_agg(DISTINCT owner) AS owners FROM ledger');
          await client.query('COMMIT');
          return seen[0]!;
        } finally {
          client.release();
        }
      });
      const seen = await Promise.all(work);
      seen.forEach((row, i) => {
        const name = i % 2 === 0 ? 'pool_a' : 'pool_b';
        expect(row).toEqual({ db: name, owners: [name] });
      });
      const sums = await Promise.all(
        Object.values(pools).map(async (pool) => (await pool.query('SELECT count(*)::int AS n, sum(amount)::int AS total FROM ledger')).rows[0]),
      );
      // pool_a got the even i (0..78), pool_b the odd ones (1..79), plus the first row of each.
      expect(sums).toEqual([
        { n: 41, total: 1560 },
        { n: 41, total: 1600 },
      ]);
    } finally {
      await Promise.all(Object.values(pools).map((pool) => pool.end()));
    }
  });

  it('isolates databases: a table, a sequence and a NOTIFY in one are not seen from another', async () => {
    await rows(target.url(), 'CREATE DATABASE iso_a');
    await rows(target.url(), 'CREATE DATABASE iso_b');
    await rows(target.url('iso_a'), "CREATE TABLE secret (v text); INSERT INTO secret VALUES ('a only'); CREATE SEQUENCE counter; SELECT nextval('counter'), nextval('counter')");
    await withClient(target.url('iso_b'), async (client) => {
      expect(await failure(client.query('SELECT * FROM secret'))).toMatchObject({ code: '42P01', message: 'relation "secret" does not exist' });
      expect((await failure(client.query("SELECT nextval('counter')"))).code).toBe('42P01');
      await client.query('CREATE SEQUENCE counter');
      expect((await client.query("SELECT nextval('counter')::int AS n")).rows).toEqual([{ n: 1 }]);
    });
    expect(await rows(target.url('iso_a'), "SELECT nextval('counter')::int AS n, (SELECT v FROM secret) AS v")).toEqual([{ n: 3, v: 'a only' }]);
    expect(await failure(rows(target.url(), 'SELECT * FROM secret'))).toMatchObject({ code: '42P01' });

    // LISTEN/NOTIFY is per database, as on Postgres.
    const listenerA = await connect(target.url('iso_a'));
    const listenerB = await connect(target.url('iso_b'));
    const heard: string[] = [];
    listenerA.client.on('notification', (note) => heard.push(`a:${note.payload}`));
    listenerB.client.on('notification', (note) => heard.push(`b:${note.payload}`));
    try {
      await listenerA.client.query('LISTEN news');
      await listenerB.client.query('LISTEN news');
      await rows(target.url('iso_b'), "NOTIFY news, 'for b'");
      await rows(target.url('iso_a'), "NOTIFY news, 'for a'");
      const deadline = Date.now() + 3_000;
      while (heard.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 200)); // anything stray would have arrived by now
      expect(heard.sort()).toEqual(['a:for a', 'b:for b']);
    } finally {
      await Promise.all([listenerA.client.end(), listenerB.client.end()]);
    }
  });
});

const SCHEMA = `
generator client {
  provider = "prisma-client"
  output   = "./generated"
}

datasource db {
  provider = "postgresql"
}

model Task {
  id    Int     @id @default(autoincrement())
  title String  @unique
  done  Boolean @default(false)
}
`;

type Task = { id: number; title: string; done: boolean };
type PrismaTasks = {
  task: {
    create(args: { data: { title: string; done?: boolean } }): Promise<Task>;
    findMany(args?: object): Promise<Task[]>;
    count(args?: object): Promise<number>;
    update(args: { where: { title: string }; data: object }): Promise<Task>;
  };
  $transaction<T>(fn: (tx: PrismaTasks) => Promise<T>): Promise<T>;
  $queryRawUnsafe<T>(sql: string, ...values: unknown[]): Promise<T>;
  $disconnect(): Promise<void>;
};

describe('Prisma Client (adapter-pg) on a created database', { timeout: 60_000 }, () => {
  let target: DbTarget;
  let dir: string;

  beforeAll(async () => {
    target = await startTarget({ name: 'dbprisma' });
    dir = await generatePrismaClient(SCHEMA, 'pgdev-databases-prisma-');
  });

  afterAll(async () => {
    await target?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates, reads and updates rows, with a $transaction, in its own database; the default database has none of it', async () => {
    await rows(target.url(), 'CREATE DATABASE prisma_app');
    await rows(target.url('prisma_app'), 'CREATE TABLE "Task" (id serial PRIMARY KEY, title text NOT NULL UNIQUE, done boolean NOT NULL DEFAULT false)');
    const PrismaClient = await loadPrismaClient<PrismaTasks>(dir);
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: target.url('prisma_app'), max: 4 }) });
    try {
      await prisma.task.create({ data: { title: 'write tests' } });
      await prisma.task.create({ data: { title: 'ship', done: false } });
      await prisma.$transaction(async (tx) => {
        await tx.task.update({ where: { title: 'write tests' }, data: { done: true } });
        await tx.task.create({ data: { title: 'celebrate' } });
      });
      await expect(
        prisma.$transaction(async (tx) => {
          await tx.task.create({ data: { title: 'rolled back' } });
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      const counts = await Promise.all(Array.from({ length: 12 }, () => prisma.task.count({ where: { done: true } })));
      expect(counts).toEqual(Array(12).fill(1));
      expect(await prisma.task.findMany({ orderBy: { title: 'asc' }, select: { title: true, done: true } })).toEqual([
        { title: 'celebrate', done: false },
        { title: 'ship', done: false },
        { title: 'write tests', done: true },
      ]);
      expect(await prisma.$queryRawUnsafe('SELECT current_database() AS db')).toEqual([{ db: 'prisma_app' }]);
    } finally {
      await prisma.$disconnect();
    }
    expect(await publicTables(target.url())).not.toContain('Task');
  });
});

describe.skipIf(realPostgres)('created databases across a restart, on disk and in memory', { timeout: 90_000 }, () => {
  const started: PgdevServer[] = [];
  afterAll(async () => {
    // Bounded: a close that hangs fails its own test, not this hook.
    await Promise.all(started.map((server) => within(server.close(), 10_000, 'close').catch(() => undefined)));
  });
  const serverDir = (name: string) => path.join(dataHome(), 'pgdev', 'servers', name);
  const withDatabase = (url: string, database: string) => url.replace(/\/template1\?/, `/${database}?`);

  it('a persistent server keeps its created, cloned and renamed databases and their data across a restart (closed with clients connected, which are told 57P01); a dropped one stays gone; an idle-closed database reopens', async () => {
    const first = await startServer({ name: 'dbrestart', persistence: 'persistent', idleCloseMs: 300, port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    started.push(first);
    await rows(first.databaseUrl, "CREATE TABLE main_data (v text); INSERT INTO main_data VALUES ('default')");
    await rows(first.databaseUrl, 'CREATE DATABASE kept');
    await rows(withDatabase(first.databaseUrl, 'kept'), "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept across a restart')");
    await rows(first.databaseUrl, 'CREATE DATABASE kept_clone TEMPLATE kept');
    await rows(first.databaseUrl, 'CREATE DATABASE to_rename');
    await rows(withDatabase(first.databaseUrl, 'to_rename'), 'CREATE TABLE renamed_marker (x int); INSERT INTO renamed_marker VALUES (9)');
    await rows(first.databaseUrl, 'ALTER DATABASE to_rename RENAME TO renamed');
    await rows(first.databaseUrl, 'CREATE DATABASE dropped');
    await rows(first.databaseUrl, 'DROP DATABASE dropped');
    // Idle for well over idleCloseMs: the created databases' processes exit; kept_clone opens again, with its data.
    const holder = await connect(withDatabase(first.databaseUrl, 'kept_clone'));
    await holder.client.query('SELECT 1');
    expect(first.openDatabases()).toEqual(expect.arrayContaining(['postgres', 'kept_clone']));
    // Connected for longer than idleCloseMs: the database stays open for its client.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(first.openDatabases()).toContain('kept_clone');
    expect((await holder.client.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 1 }]);
    expect(holder.errors).toEqual([]);
    await holder.client.end();
    // Then it closes; the default database stays open.
    await waitFor(() => !first.openDatabases().includes('kept_clone'), 'the idle database to close', 5_000);
    expect(first.openDatabases()).toContain('postgres');
    expect(await rows(withDatabase(first.databaseUrl, 'kept_clone'), 'SELECT body FROM notes')).toEqual([{ body: 'kept across a restart' }]);

    // Clients still connected, to a created database and to the default one, when the server closes.
    const onCreated = await connect(withDatabase(first.databaseUrl, 'kept'));
    const onDefault = await connect(first.databaseUrl);
    try {
      await onCreated.client.query("INSERT INTO notes VALUES ('written by a client still connected at close')");
      await onDefault.client.query('SELECT 1');
      await within(first.close(), 10_000, 'close() with two clients connected');
      await waitFor(() => onCreated.errors.length > 0 && onDefault.errors.length > 0, 'both clients to be told', 5_000);
      expect(onCreated.errors[0]).toMatchObject({ code: '57P01' });
      expect(onDefault.errors[0]).toMatchObject({ code: '57P01' });
    } finally {
      await Promise.all([onCreated.client.end().catch(() => undefined), onDefault.client.end().catch(() => undefined)]);
    }
    expect(fs.existsSync(path.join(serverDir('dbrestart'), 'databases.json'))).toBe(true);

    const second = await startServer({ name: 'dbrestart', persistence: 'persistent', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    started.push(second);
    const names = await listed(second.databaseUrl);
    expect(names).toEqual(expect.arrayContaining(['postgres', 'template0', 'template1', 'kept', 'kept_clone', 'renamed']));
    expect(names).not.toContain('dropped');
    expect(names).not.toContain('to_rename');
    expect(await rows(withDatabase(second.databaseUrl, 'kept'), 'SELECT body FROM notes ORDER BY body')).toEqual([
      { body: 'kept across a restart' },
      { body: 'written by a client still connected at close' },
    ]);
    expect(await rows(withDatabase(second.databaseUrl, 'kept_clone'), 'SELECT body FROM notes')).toEqual([{ body: 'kept across a restart' }]);
    expect(await rows(withDatabase(second.databaseUrl, 'renamed'), 'SELECT current_database() AS db, x FROM renamed_marker')).toEqual([{ db: 'renamed', x: 9 }]);
    expect(await rows(second.databaseUrl, 'SELECT v FROM main_data')).toEqual([{ v: 'default' }]);
    expect((await failure(connect(withDatabase(second.databaseUrl, 'dropped')))).code).toBe('3D000');
    // Still managed as before: drop one after the restart.
    await rows(second.databaseUrl, 'DROP DATABASE kept_clone');
    expect(await listed(second.databaseUrl)).not.toContain('kept_clone');
    await within(second.close(), 15_000, 'close');
  });

  it('the shadow database opens only when used: ready opens the default database alone', async () => {
    const server = await startServer({ name: 'dblazy', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    started.push(server);
    expect(server.openDatabases()).toEqual(['postgres']);
    expect(server.openDatabases('shadow')).toEqual([]);
    expect(await rows(server.databaseUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(server.openDatabases('shadow')).toEqual([]);
    expect(await rows(server.shadowDatabaseUrl, 'SELECT current_database() AS db')).toEqual([{ db: 'postgres' }]);
    expect(server.openDatabases('shadow')).toEqual(['postgres']);
    await within(server.close(), 10_000, 'close');
  });

  it('with databaseHost "process", each open database is a process of its own, and none outlives close()', async () => {
    const before = databaseProcesses();
    const server = await startServer({ name: 'dbprocs', persistence: 'memory', databaseHost: 'process', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    started.push(server);
    const mine = () => databaseProcesses().filter((pid) => !before.includes(pid));
    expect(mine()).toHaveLength(1);
    expect(await rows(server.shadowDatabaseUrl, 'SELECT current_database() AS db')).toEqual([{ db: 'postgres' }]);
    // Its own process now (perhaps with a spare started ahead for the next database).
    expect(mine().length).toBeGreaterThanOrEqual(2);
    await within(server.close(), 10_000, 'close');
    await waitFor(() => mine().length === 0, 'the database processes to exit', 5_000);
  });

  it('an in-memory server keeps created databases while it runs, also after idling past idleCloseMs, and writes nothing to disk', async () => {
    const server = await startServer({
      name: 'dbmemory',
      persistence: 'memory',
      idleCloseMs: 300,
      port: 0,
      databasePort: 0,
      shadowDatabasePort: 0,
      log: () => undefined,
    });
    started.push(server);
    await rows(server.databaseUrl, 'CREATE DATABASE mem_a');
    await rows(withDatabase(server.databaseUrl, 'mem_a'), "CREATE TABLE items (v text); INSERT INTO items VALUES ('in memory')");
    await rows(server.databaseUrl, 'CREATE DATABASE mem_b TEMPLATE mem_a');
    // Idle for well over idleCloseMs: the engines may close, the databases and their data must stay.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await listed(server.databaseUrl)).toEqual(expect.arrayContaining(['mem_a', 'mem_b']));
    expect(await rows(withDatabase(server.databaseUrl, 'mem_a'), 'SELECT v FROM items')).toEqual([{ v: 'in memory' }]);
    await rows(withDatabase(server.databaseUrl, 'mem_b'), "INSERT INTO items VALUES ('second')");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await rows(withDatabase(server.databaseUrl, 'mem_b'), 'SELECT v FROM items ORDER BY v')).toEqual([{ v: 'in memory' }, { v: 'second' }]);
    expect(fs.existsSync(path.join(serverDir('dbmemory'), 'databases'))).toBe(false);
    expect(fs.existsSync(path.join(serverDir('dbmemory'), 'pgdata'))).toBe(false);
    await within(server.close(), 10_000, 'close');
    expect(fs.existsSync(serverDir('dbmemory'))).toBe(false);
  });

});
