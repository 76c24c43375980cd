/**
 * @module
 * server.reset(), server.snapshot(label) and server.restore(label): reset empties the database while the server keeps
 * its ports, connected clients get a clean error (SQLSTATE 57P01) instead of a hang and new clients work; a restore
 * gives back exactly the snapshotted content (10 tables x 1,000 rows), on an in-memory and a persistent server;
 * an unknown label is E_NOT_FOUND. Also prints how long a restore takes next to re-running the migrations and seed
 * (10 tables, 10,000 rows); timings are printed, never asserted.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, getServer, isPgdevError, startServer, type PgdevServer, type StartServerOptions } from '../src/index.js';
import { waitFor } from './support/wait.js';
import { useTemporaryDataHome } from './support/data-home.js';

useTemporaryDataHome('pgdev-api-reset-');
const started: PgdevServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

async function start(options: StartServerOptions): Promise<PgdevServer> {
  const server = await startServer({ port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined, ...options });
  started.push(server);
  return server;
}

type Tracked = { client: pg.Client; errors: Array<Error & { code?: string }> };

async function connect(url: string): Promise<Tracked> {
  const client = new pg.Client({ connectionString: url });
  const errors: Tracked['errors'] = [];
  client.on('error', (error) => errors.push(error));
  await client.connect();
  return { client, errors };
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const { client } = await connect(url);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Settles within `ms` or fails the test: a hang is a failure, not a timeout of the whole suite. */
function settleWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  return Promise.race([
    promise.then((value) => ({ status: 'fulfilled', value }) as const, (reason) => ({ status: 'rejected', reason }) as const),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms)),
  ]);
}

const TABLES = 10;

/** The "migration": 10 tables with a primary key, a foreign-key-free schema, an index each. */
function migrationSql(): string {
  return Array.from({ length: TABLES }, (_, t) => `
    CREATE TABLE table_${t} (
      id integer PRIMARY KEY,
      name text NOT NULL,
      amount numeric(12, 2) NOT NULL,
      tags text[] NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT '2024-01-01T00:00:00Z'
    );
    CREATE INDEX table_${t}_name ON table_${t} (name);`).join('\n');
}

/** The seed: `rowsPerTable` rows in each table, sent as one multi-row INSERT per table, as a seed script would. */
async function seed(client: pg.Client, rowsPerTable: number): Promise<void> {
  for (let t = 0; t < TABLES; t++) {
    const values: string[] = [];
    const params: unknown[] = [];
    for (let id = 1; id <= rowsPerTable; id++) {
      values.push(`($${params.length + 1}, $${params.length + 2}, $${params.length + 3}, $${params.length + 4})`);
      params.push(id, `row ${t}-${id}`, ((id * 37 + t) % 10_000) / 100, [`t${t}`, `r${id % 7}`]);
    }
    await client.query(`INSERT INTO table_${t} (id, name, amount, tags) VALUES ${values.join(', ')}`, params);
  }
}

/** Every public table's full content, row by row, as text: equal digests mean equal content. */
async function contents(client: pg.Client): Promise<Record<string, { rows: number; digest: string }>> {
  const { rows: tables } = await client.query<{ name: string }>(
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  const result: Record<string, { rows: number; digest: string }> = {};
  for (const { name } of tables) {
    const { rows } = await client.query<{ rows: number; digest: string }>(
      `SELECT count(*)::int AS rows, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS digest FROM "${name}" t`,
    );
    result[name] = rows[0]!;
  }
  return result;
}

async function publicTables(url: string): Promise<string[]> {
  return withClient(url, async (c) =>
    (await c.query<{ name: string }>("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.name),
  );
}

describe('reset', () => {
  it('empties the database while the server keeps running; idle clients carry on, one in a transaction is told; new clients work', async () => {
    const server = await start({ name: 'reset', persistence: 'memory' });
    await withClient(server.databaseUrl, (c) => c.query("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2); CREATE SCHEMA extra"));

    // An idle connection with a setting, a prepared statement that does not depend on the data, and a LISTEN.
    const idle = await connect(server.databaseUrl);
    await idle.client.query("SET application_name = 'kept'");
    await idle.client.query({ name: 'two', text: 'SELECT 1 + 1 AS two' });
    await idle.client.query('LISTEN after_reset');
    const notifications: string[] = [];
    idle.client.on('notification', (note) => notifications.push(`${note.channel}:${note.payload}`));
    // A pool without an 'error' listener: a disconnect would take this test process down.
    const pool = new pg.Pool({ connectionString: server.databaseUrl, max: 2 });
    expect((await pool.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
    // A connection with a temporary table loses it: it is told, like one inside a transaction.
    const withTemp = await connect(server.databaseUrl);
    await withTemp.client.query('CREATE TEMP TABLE scratch (id int)');
    // Last, a connection left inside an open transaction: it holds the engine (other connections would queue), and
    // reset must disconnect it rather than wait for it.
    const inTransaction = await connect(server.databaseUrl);
    await inTransaction.client.query('BEGIN');
    await inTransaction.client.query('INSERT INTO items VALUES (3)');

    const portsBefore = { ...server.ports };
    const reset = await settleWithin(server.reset(), 20_000, 'reset() with a connection inside a transaction');
    expect(reset.status).toBe('fulfilled');

    // The server still runs on the same ports, and is still found by name.
    expect(server.ports).toEqual(portsBefore);
    expect(getServer('reset')?.databaseUrl).toBe(server.databaseUrl);

    // The clients that lost something were told (FATAL 57P01, with the reason) and their next query fails quickly.
    await waitFor(() => inTransaction.errors.length > 0 && withTemp.errors.length > 0, 'clients to see the reset', 5_000);
    for (const { client, errors } of [inTransaction, withTemp]) {
      expect(errors[0]).toMatchObject({ code: '57P01', message: 'terminating connection because the database was reset' });
      const outcome = await settleWithin(client.query('SELECT 1'), 5_000, 'a query on a reset connection');
      expect(outcome.status).toBe('rejected');
      await settleWithin(client.end(), 5_000, 'ending a reset connection');
    }

    // The idle connection carries on, on the empty database, with its setting, statement and LISTEN.
    expect((await idle.client.query("SELECT to_regclass('public.items') AS items")).rows).toEqual([{ items: null }]);
    expect((await idle.client.query('SHOW application_name')).rows).toEqual([{ application_name: 'kept' }]);
    expect((await idle.client.query({ name: 'two', text: 'SELECT 1 + 1 AS two' })).rows).toEqual([{ two: 2 }]);
    await withClient(server.databaseUrl, (c) => c.query("NOTIFY after_reset, 'hello'"));
    await waitFor(() => notifications.length > 0, 'the notification after the reset', 5_000);
    expect(notifications).toEqual(['after_reset:hello']);
    expect(idle.errors).toEqual([]);
    await idle.client.end();

    // So does the pool, which had no 'error' listener.
    const afterReset = await settleWithin(pool.query("SELECT to_regclass('public.items') AS items"), 5_000, 'a pool query after reset');
    expect(afterReset).toEqual(expect.objectContaining({ status: 'fulfilled' }));
    expect((afterReset as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].items).toBeNull();
    await pool.end();

    // A new client sees an empty database: no tables, no schemas of ours.
    expect(await publicTables(server.databaseUrl)).toEqual([]);
    const schemas = await withClient(server.databaseUrl, async (c) => (await c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'extra'")).rowCount);
    expect(schemas).toBe(0);
    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE items (id int); INSERT INTO items VALUES (42)'));
    expect(await withClient(server.databaseUrl, async (c) => (await c.query('SELECT id FROM items')).rows)).toEqual([{ id: 42 }]);
  });

  it('empties a persistent database too, on disk', async () => {
    const server = await start({ name: 'reset-disk', persistence: 'persistent' });
    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE on_disk (id int)'));
    await server.reset();
    expect(await publicTables(server.databaseUrl)).toEqual([]);
    await server.close();
    const again = await start({ name: 'reset-disk', persistence: 'persistent' });
    expect(await publicTables(again.databaseUrl)).toEqual([]);
  });
});

describe('snapshot and restore', () => {
  it('restores exactly the snapshotted content (10 tables x 1,000 rows), as often as asked', async () => {
    const server = await start({ name: 'snap', persistence: 'memory' });
    const before = await withClient(server.databaseUrl, async (c) => {
      await c.query(migrationSql());
      await seed(c, 1_000);
      return contents(c);
    });
    expect(Object.keys(before)).toHaveLength(TABLES);
    for (const table of Object.values(before)) expect(table.rows).toBe(1_000);
    await server.snapshot('seeded');

    const modify = (c: pg.Client) => c.query(`
      DELETE FROM table_0 WHERE id % 2 = 0;
      UPDATE table_1 SET name = 'changed', amount = amount + 1;
      INSERT INTO table_2 (id, name, amount) VALUES (100001, 'new', 1);
      DROP TABLE table_3;
      CREATE TABLE added_after_snapshot (id int);
      TRUNCATE table_9;`);

    for (let round = 0; round < 2; round++) {
      const watcher = await connect(server.databaseUrl);
      const changed = await withClient(server.databaseUrl, async (c) => {
        await modify(c);
        return contents(c);
      });
      expect(changed).not.toEqual(before);

      await server.restore('seeded');
      // An idle connection outlives a restore that reopened the full copy (the schema changed), and sees it.
      expect(await contents(watcher.client)).toEqual(before);
      expect(watcher.errors).toEqual([]);
      await watcher.client.end();

      expect(await withClient(server.databaseUrl, contents)).toEqual(before);
    }

    // A second snapshot does not disturb the first.
    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE only_in_second (id int)'));
    await server.snapshot('second');
    await server.restore('seeded');
    expect(await withClient(server.databaseUrl, contents)).toEqual(before);
    await server.restore('second');
    expect(Object.keys(await withClient(server.databaseUrl, contents))).toContain('only_in_second');
  });

  it('restores data-only changes in place: connected clients keep their sessions, sequences go back too', async () => {
    const server = await start({ name: 'snap-data', persistence: 'memory' });
    const before = await withClient(server.databaseUrl, async (c) => {
      await c.query(migrationSql());
      await c.query('CREATE TABLE parent (id serial PRIMARY KEY); CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent)');
      await c.query('INSERT INTO parent DEFAULT VALUES; INSERT INTO child (parent_id) VALUES (1)');
      await seed(c, 1_000);
      return contents(c);
    });
    await server.snapshot('seeded');

    const watcher = await connect(server.databaseUrl);
    await watcher.client.query("SET application_name = 'kept'");
    await watcher.client.query({ name: 'count_parent', text: 'SELECT count(*)::int AS n FROM parent' });
    await watcher.client.query(`
      DELETE FROM table_0 WHERE id % 2 = 0;
      UPDATE table_1 SET name = 'changed';
      TRUNCATE table_9;
      BEGIN; DELETE FROM table_4 WHERE id = 1; INSERT INTO table_4 (id, name, amount) VALUES (1, 'same count', 0); COMMIT;
      BEGIN; UPDATE table_5 SET name = 'rolled back'; ROLLBACK;
      DELETE FROM child; INSERT INTO parent DEFAULT VALUES; INSERT INTO parent DEFAULT VALUES;`);
    expect(await withClient(server.databaseUrl, contents)).not.toEqual(before);

    await server.restore('seeded');
    expect(await withClient(server.databaseUrl, contents)).toEqual(before);
    // The connected client was not disconnected: its settings and prepared statement are still there.
    expect(watcher.errors).toEqual([]);
    expect((await watcher.client.query('SHOW application_name')).rows).toEqual([{ application_name: 'kept' }]);
    expect((await watcher.client.query({ name: 'count_parent', text: 'SELECT count(*)::int AS n FROM parent' })).rows).toEqual([{ n: 1 }]);
    // Sequences are back where they were: the next parent id is 2 again.
    expect((await watcher.client.query('INSERT INTO parent DEFAULT VALUES RETURNING id')).rows).toEqual([{ id: 2 }]);
    await watcher.client.end();
  });

  it('restores a persistent server, and the restored content is what is on disk afterwards', async () => {
    const server = await start({ name: 'snap-disk', persistence: 'persistent' });
    const before = await withClient(server.databaseUrl, async (c) => {
      await c.query(migrationSql());
      await seed(c, 100);
      return contents(c);
    });
    await server.snapshot('seeded');
    await withClient(server.databaseUrl, (c) => c.query('DROP TABLE table_5; DELETE FROM table_6'));
    await server.restore('seeded');
    expect(await withClient(server.databaseUrl, contents)).toEqual(before);
    await server.close();

    const again = await start({ name: 'snap-disk', persistence: 'persistent' });
    expect(await withClient(again.databaseUrl, contents)).toEqual(before);
  });

  it('rejects an unknown label with E_NOT_FOUND and leaves the database alone', async () => {
    const server = await start({ name: 'snap-missing', persistence: 'memory' });
    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE stays (id int); INSERT INTO stays VALUES (7)'));
    const client = await connect(server.databaseUrl);
    let error: unknown;
    try {
      await server.restore('no-such-label');
    } catch (caught) {
      error = caught;
    }
    expect(isPgdevError(error, ErrorCode.NotFound)).toBe(true);
    // Nothing was swapped: the open connection still works and sees the data.
    expect((await client.client.query('SELECT id FROM stays')).rows).toEqual([{ id: 7 }]);
    expect(client.errors).toEqual([]);
    await client.client.end();
  });
});

describe('restore after a mix of changes', () => {
  // How long restore takes against re-running migrations is measured by the benchmark (BENCH_ONLY=restore npm run
  // bench), not here: this checks only that the content comes back whatever was changed in between.
  it('restores 10 tables / 10,000 rows after data changes and after a schema change, and snapshots again', async () => {
    const server = await start({ name: 'mixed', persistence: 'memory' });
    await withClient(server.databaseUrl, async (c) => {
      await c.query(migrationSql());
      await seed(c, 1_000);
    });
    const expected = await withClient(server.databaseUrl, contents);
    await server.snapshot('seeded');
    await server.reset();
    expect(await publicTables(server.databaseUrl)).toEqual([]);
    await server.restore('seeded');
    expect(await withClient(server.databaseUrl, contents)).toEqual(expected);
    // What a test does between two restores: change data...
    await withClient(server.databaseUrl, (c) => c.query("TRUNCATE table_0, table_1; UPDATE table_2 SET name = 'x'"));
    await server.restore('seeded');
    expect(await withClient(server.databaseUrl, contents)).toEqual(expected);
    // ...or change the schema, which makes restore reopen the full copy.
    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE scratch (id int)'));
    await server.restore('seeded');
    await server.snapshot('again');
    expect(await withClient(server.databaseUrl, contents)).toEqual(expected);
  });
});
