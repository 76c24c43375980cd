/**
 * @module
 * Databases managed over SQL (issue 11), as on Postgres: CREATE DATABASE (plain, with options, from a template,
 * from template0), DROP DATABASE [IF EXISTS] [WITH (FORCE)] and ALTER DATABASE RENAME TO, in the simple protocol
 * (psql, pg) and the extended one (pg's extended query mode, postgres.js); their errors with Postgres' SQLSTATEs
 * and messages (25001, 55006, 57P01 for the clients FORCE ends, 42602, 42P04, 3D000, the IF EXISTS notice); connecting
 * to an unknown name; pg_database and current_database() from any database; the shadow port's own set.
 *
 * One in-memory server for the file. The expectations were checked on PostgreSQL 15 (PGDEV_TEST_REAL_POSTGRES, see
 * support/databases.ts); where pgdev differs by design (a new database starts empty, names over 63 bytes are an
 * error rather than truncated, the default database is never dropped), the test says so.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTemporaryDataHome } from './support/data-home.js';
import { connect, failure, listed, publicTables, psqlArgs, rows, startTarget, withClient, within, type DbTarget } from './support/databases.js';
import { runTool } from './support/tools.js';
import { waitFor } from './support/wait.js';

useTemporaryDataHome('pgdev-databases-sql-');
let target: DbTarget;

beforeAll(async () => {
  target = await startTarget({ name: 'dbsql' });
  // The developer's own data in the default database: no new database may see it.
  await rows(target.url(), "DROP TABLE IF EXISTS t_main; CREATE TABLE t_main (x int); INSERT INTO t_main VALUES (1), (2)");
  // A database the tests share: an existing name, another database to connect from.
  await rows(target.url(), 'CREATE DATABASE s_shared');
});

afterAll(async () => {
  await target?.close();
});

/** A statement in pg's extended protocol (Parse/Bind/Execute), with no parameters. */
function extended(client: pg.Client, text: string) {
  return client.query({ text, queryMode: 'extended' } as pg.QueryConfig & { queryMode: 'extended' });
}

/** psql -c for each command (a hang fails within 10 s). */
async function psql(url: string, ...commands: string[]) {
  return within(runTool('psql', [...psqlArgs(url), ...commands.flatMap((command) => ['-c', command])], '', 15_000), 10_000, `psql ${commands.join('; ')}`);
}

/** The same, unaligned and tuples only (`-At`). */
async function psqlBare(url: string, ...commands: string[]) {
  return within(runTool('psql', [...psqlArgs(url), '-At', ...commands.flatMap((command) => ['-c', command])], '', 15_000), 10_000, `psql ${commands.join('; ')}`);
}

describe('CREATE DATABASE', { timeout: 30_000 }, () => {
  it('in the simple protocol (psql -c): a new, empty database that answers to its name; the default database keeps its data', async () => {
    const created = await psql(target.url(), 'CREATE DATABASE s_plain');
    expect(created.stderr).toBe('');
    expect(created.stdout).toBe('CREATE DATABASE\n');
    expect(created.status).toBe(0);

    const inside = await psqlBare(target.url('s_plain'), 'SELECT current_database()', "SELECT count(*) FROM pg_tables WHERE tablename = 't_main'");
    expect(inside).toMatchObject({ status: 0, stdout: 's_plain\n0\n', stderr: '' });
    expect(await publicTables(target.url('s_plain'))).toEqual([]);
    // The default database is unchanged, and still answers to its own name.
    expect(await rows(target.url(), 'SELECT current_database() AS db, (SELECT count(*)::int FROM t_main) AS n')).toEqual([
      { db: 'postgres', n: 2 },
    ]);
  });

  it('in the simple protocol with pg: accepts OWNER, ENCODING, LOCALE and TEMPLATE template0 (an empty database)', async () => {
    await withClient(target.url(), async (client) => {
      const result = await client.query("CREATE DATABASE s_opts WITH OWNER postgres ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0");
      expect(result.command).toBe('CREATE');
      expect((await client.query('CREATE DATABASE s_opts2 OWNER = postgres TEMPLATE = template0 ENCODING = \'UTF8\'')).command).toBe('CREATE');
    });
    for (const name of ['s_opts', 's_opts2']) {
      expect(await rows(target.url(name), 'SELECT current_database() AS db')).toEqual([{ db: name }]);
      expect(await publicTables(target.url(name))).toEqual([]);
    }
    expect(await rows(target.url('s_opts'), "SELECT pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = current_database()")).toEqual([
      { encoding: 'UTF8' },
    ]);
    await rows(target.url(), 'DROP DATABASE s_opts');
    await rows(target.url(), 'DROP DATABASE s_opts2');
  });

  it('in the extended protocol (pg extended mode, postgres.js): CREATE, ALTER ... RENAME TO and DROP', async () => {
    const { client, notices } = await connect(target.url());
    try {
      expect((await extended(client, 'CREATE DATABASE e_pg')).command).toBe('CREATE');
      expect(await rows(target.url('e_pg'), 'SELECT current_database() AS db')).toEqual([{ db: 'e_pg' }]);
      expect((await extended(client, 'ALTER DATABASE e_pg RENAME TO e_pg_renamed')).command).toBe('ALTER');
      expect((await extended(client, 'DROP DATABASE IF EXISTS e_nope')).command).toBe('DROP');
      expect(notices).toContainEqual({ code: '00000', severity: 'NOTICE', message: 'database "e_nope" does not exist, skipping' });
      expect((await extended(client, 'DROP DATABASE e_pg_renamed WITH (FORCE)')).command).toBe('DROP');
      expect((await failure(extended(client, 'DROP DATABASE e_pg_renamed'))).code).toBe('3D000');
    } finally {
      await client.end();
    }

    const sql = postgres(target.url(), { max: 1, onnotice: () => undefined });
    try {
      expect((await sql`CREATE DATABASE e_pjs TEMPLATE template0`).command).toBe('CREATE DATABASE');
      const inside = postgres(target.url('e_pjs'), { max: 1 });
      try {
        expect([...(await inside`SELECT current_database() AS db`)]).toEqual([{ db: 'e_pjs' }]);
      } finally {
        await inside.end({ timeout: 5 });
      }
      expect((await sql.unsafe('DROP DATABASE e_pjs (FORCE)')).command).toBe('DROP DATABASE');
      expect(await failure(sql.unsafe('DROP DATABASE e_pjs'))).toMatchObject({ code: '3D000', message: 'database "e_pjs" does not exist' });
      // Inside sql.begin (a transaction block), in the extended protocol too.
      const refused = await failure(sql.begin((tx) => tx.unsafe('CREATE DATABASE e_pjs_tx')));
      expect(refused).toMatchObject({ code: '25001', message: 'CREATE DATABASE cannot run inside a transaction block' });
    } finally {
      await sql.end({ timeout: 5 });
    }
    const names = await listed(target.url());
    for (const gone of ['e_pg', 'e_pg_renamed', 'e_pjs', 'e_pjs_tx']) expect(names).not.toContain(gone);
  });

  it('TEMPLATE t copies t as it is at that moment; later changes to either side stay apart', async () => {
    await rows(target.url(), 'CREATE DATABASE tpl_src');
    await rows(
      target.url('tpl_src'),
      "CREATE TABLE seeded (id int PRIMARY KEY, name text); INSERT INTO seeded SELECT g, 'row ' || g FROM generate_series(1, 500) g; CREATE INDEX seeded_name ON seeded (name)",
    );
    await rows(target.url(), 'CREATE DATABASE tpl_copy TEMPLATE tpl_src');
    await withClient(target.url(), async (client) => {
      expect((await extended(client, 'CREATE DATABASE tpl_copy2 WITH TEMPLATE = tpl_src')).command).toBe('CREATE');
    });

    for (const name of ['tpl_copy', 'tpl_copy2']) {
      expect(await rows(target.url(name), "SELECT count(*)::int AS n, max(id) AS max, (SELECT name FROM seeded WHERE id = 7) AS seven FROM seeded")).toEqual([
        { n: 500, max: 500, seven: 'row 7' },
      ]);
      // The index came along.
      expect(await rows(target.url(name), "SELECT indexname FROM pg_indexes WHERE tablename = 'seeded' ORDER BY 1")).toEqual([
        { indexname: 'seeded_name' },
        { indexname: 'seeded_pkey' },
      ]);
    }

    await rows(target.url('tpl_src'), 'DELETE FROM seeded WHERE id > 100');
    await rows(target.url('tpl_copy'), 'INSERT INTO seeded VALUES (501, $1)', ['only in the copy']);
    expect(await rows(target.url('tpl_src'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 100 }]);
    expect(await rows(target.url('tpl_copy'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 501 }]);
    expect(await rows(target.url('tpl_copy2'), 'SELECT count(*)::int AS n FROM seeded')).toEqual([{ n: 500 }]);
    for (const name of ['tpl_src', 'tpl_copy', 'tpl_copy2']) await rows(target.url(), `DROP DATABASE ${name}`);
  });

  it('refuses a name that exists (42P04) and an unknown template (3D000), leaving nothing behind', async () => {
    await withClient(target.url(), async (client) => {
      expect(await failure(client.query('CREATE DATABASE s_shared'))).toMatchObject({ code: '42P04', message: 'database "s_shared" already exists' });
      expect(await failure(extended(client, 'CREATE DATABASE s_shared'))).toMatchObject({ code: '42P04', message: 'database "s_shared" already exists' });
      expect(await failure(client.query('CREATE DATABASE "postgres"'))).toMatchObject({ code: '42P04', message: 'database "postgres" already exists' });
      expect(await failure(client.query('CREATE DATABASE from_nothing TEMPLATE no_such_template'))).toMatchObject({
        code: '3D000',
        message: 'template database "no_such_template" does not exist',
      });
      expect(await failure(extended(client, 'CREATE DATABASE from_nothing TEMPLATE no_such_template'))).toMatchObject({
        code: '3D000',
        message: 'template database "no_such_template" does not exist',
      });
      // The connection is still usable after the errors.
      expect((await extended(client, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
    expect(await listed(target.url())).not.toContain('from_nothing');
    expect((await failure(connect(target.url('from_nothing')))).code).toBe('3D000');
  });

  it('refuses a name over 63 bytes and an empty one (42602 on pgdev); 63 bytes, multi-byte included, work', async () => {
    const long = 'a'.repeat(64);
    const longMultiByte = 'é'.repeat(32); // 64 bytes
    const fits = 'b'.repeat(63);
    await withClient(target.url(), async (client) => {
      if (target.kind === 'pgdev') {
        // Postgres truncates a long identifier to 63 bytes with a NOTICE (42622); pgdev refuses it, since the
        // database would not answer to the name the client asked for.
        for (const name of [long, longMultiByte]) expect((await failure(client.query(`CREATE DATABASE "${name}"`))).code, name).toBe('42602');
      }
      // Postgres: a zero-length delimited identifier is a syntax error (42601); pgdev may also answer 42602.
      expect(['42601', '42602']).toContain((await failure(client.query('CREATE DATABASE ""'))).code);
      expect((await client.query(`CREATE DATABASE "${fits}"`)).command).toBe('CREATE');
    });
    expect(await rows(target.url(fits), 'SELECT current_database() AS db')).toEqual([{ db: fits }]);
    const names = await listed(target.url());
    expect(names).toContain(fits);
    expect(names.filter((name) => name === '' || name.startsWith('aaaa') || name.startsWith('é'))).toEqual([]);
    await rows(target.url(), `DROP DATABASE "${fits}"`);
  });

  it('fails inside a transaction block with 25001 (CREATE and DROP), and the transaction is left aborted', async () => {
    await withClient(target.url(), async (client) => {
      await client.query('BEGIN');
      expect(await failure(client.query('CREATE DATABASE tx_new'))).toMatchObject({ code: '25001', message: 'CREATE DATABASE cannot run inside a transaction block' });
      expect((await failure(client.query('SELECT 1'))).code).toBe('25P02');
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      expect(await failure(extended(client, 'DROP DATABASE s_shared'))).toMatchObject({ code: '25001', message: 'DROP DATABASE cannot run inside a transaction block' });
      await client.query('ROLLBACK');
      // A multi-statement simple query is one implicit transaction block too.
      expect((await failure(client.query('SELECT 1; CREATE DATABASE tx_multi'))).code).toBe('25001');
    });
    const names = await listed(target.url());
    expect(names).toContain('s_shared');
    expect(names).not.toContain('tx_new');
    expect(names).not.toContain('tx_multi');
  });
});

describe('DROP DATABASE and ALTER DATABASE RENAME TO', { timeout: 30_000 }, () => {
  it('drops a database: 3D000 on connecting to it afterwards and on dropping it again; IF EXISTS is a notice', async () => {
    await rows(target.url(), 'CREATE DATABASE d_gone');
    await rows(target.url('d_gone'), 'CREATE TABLE inside (x int)');
    const dropped = await psql(target.url(), 'DROP DATABASE d_gone');
    expect(dropped).toMatchObject({ status: 0, stdout: 'DROP DATABASE\n', stderr: '' });

    const refused = await failure(connect(target.url('d_gone')));
    expect(refused).toMatchObject({ code: '3D000', severity: 'FATAL', message: 'database "d_gone" does not exist' });
    const byPsql = await psql(target.url('d_gone'), 'SELECT 1');
    expect(byPsql.status).toBe(2);
    expect(byPsql.stderr).toContain('FATAL:  database "d_gone" does not exist');

    const again = await psql(target.url(), 'DROP DATABASE d_gone');
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('ERROR:  database "d_gone" does not exist');
    const { client, notices } = await connect(target.url());
    try {
      expect(await failure(client.query('DROP DATABASE d_gone'))).toMatchObject({ code: '3D000', message: 'database "d_gone" does not exist' });
      expect((await client.query('DROP DATABASE IF EXISTS d_gone')).command).toBe('DROP');
      expect(notices).toEqual([{ code: '00000', severity: 'NOTICE', message: 'database "d_gone" does not exist, skipping' }]);
    } finally {
      await client.end();
    }
    // Created again under the same name, it starts empty: nothing of the dropped one comes back.
    await rows(target.url(), 'CREATE DATABASE d_gone');
    expect(await publicTables(target.url('d_gone'))).toEqual([]);
    await rows(target.url(), 'DROP DATABASE d_gone');
  });

  it('refuses to drop or rename a database another client is connected to (55006); FORCE ends that client with 57P01', async () => {
    await rows(target.url(), 'CREATE DATABASE d_busy');
    await rows(target.url('d_busy'), 'CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
    const other = await connect(target.url('d_busy'));
    const otherEnded = new Promise<void>((resolve) => other.client.once('end', () => resolve()));
    try {
      await withClient(target.url(), async (client) => {
        expect(await failure(client.query('DROP DATABASE d_busy'))).toMatchObject({
          code: '55006',
          message: 'database "d_busy" is being accessed by other users',
          detail: 'There is 1 other session using the database.',
        });
        expect(await failure(client.query('ALTER DATABASE d_busy RENAME TO d_busy2'))).toMatchObject({
          code: '55006',
          message: 'database "d_busy" is being accessed by other users',
        });
        // The connected client was not disturbed.
        expect((await other.client.query('SELECT x FROM kept')).rows).toEqual([{ x: 42 }]);

        expect((await client.query('DROP DATABASE d_busy WITH (FORCE)')).command).toBe('DROP');
      });
      await otherEnded;
      expect(other.errors.map((error) => error.code)).toContain('57P01');
      expect(other.errors.find((error) => error.code === '57P01')!.message).toBe('terminating connection due to administrator command');
      expect((await failure(connect(target.url('d_busy')))).code).toBe('3D000');
      expect(await listed(target.url())).not.toContain('d_busy');
    } finally {
      await other.client.end().catch(() => undefined);
    }
  });

  it('FORCE ends a client in the middle of a transaction with 57P01; a client that left lets a plain DROP through', async () => {
    await rows(target.url(), 'CREATE DATABASE d_force');
    const inTransaction = await connect(target.url('d_force'));
    try {
      await inTransaction.client.query('BEGIN');
      await inTransaction.client.query('CREATE TABLE half (x int)');
      await within(rows(target.url(), 'DROP DATABASE d_force WITH (FORCE)'), 10_000, 'DROP DATABASE ... WITH (FORCE)');
      await waitFor(() => inTransaction.errors.some((error) => error.code === '57P01'), 'the client in a transaction to be told 57P01');
      expect((await failure(connect(target.url('d_force')))).code).toBe('3D000');
    } finally {
      await inTransaction.client.end().catch(() => undefined);
    }

    await rows(target.url(), 'CREATE DATABASE d_left');
    const visitor = await connect(target.url('d_left'));
    await visitor.client.query('SELECT 1');
    await visitor.client.end();
    // The server may take a moment to see the disconnect (Postgres too): retry briefly.
    let result: string | undefined;
    for (let attempt = 0; attempt < 50 && result !== 'DROP'; attempt++) {
      result = await rows(target.url(), 'DROP DATABASE d_left').then(
        () => 'DROP',
        (error: { code?: string }) => error.code,
      );
      if (result !== 'DROP') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(result).toBe('DROP');
  });

  it('FORCE does not wait for a running statement: the DROP answers within seconds and that client loses its connection', async () => {
    await rows(target.url(), 'CREATE DATABASE d_running');
    const sleeper = await connect(target.url('d_running'));
    try {
      const running = failure(sleeper.client.query('SELECT pg_sleep(8)'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const started = Date.now();
      // Postgres ends the running statement's backend at once with 57P01. pgdev cannot reach a running statement
      // (README: it stops the database's process after a second, and the client sees its connection end).
      await within(rows(target.url(), 'DROP DATABASE d_running WITH (FORCE)'), 4_000, 'DROP DATABASE ... WITH (FORCE) of a database running pg_sleep(8)');
      const ended = await within(running, 4_000, 'the statement FORCE ended');
      expect(ended.code === '57P01' || /Connection terminated/.test(ended.message), `${ended.code} ${ended.message}`).toBe(true);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(await listed(target.url())).not.toContain('d_running');
    } finally {
      await sleeper.client.end().catch(() => undefined);
    }
  });

  it('never drops the default database (55006), which keeps answering to postgres and template1', async () => {
    await withClient(target.url(), async (client) => {
      expect(await failure(client.query('DROP DATABASE postgres'))).toMatchObject({ code: '55006' });
      // Postgres: "cannot drop a template database" (42809); on pgdev template1 is the default database (55006).
      expect(['55006', '42809']).toContain((await failure(client.query('DROP DATABASE template1'))).code);
      expect(['55006', '42809']).toContain((await failure(client.query('DROP DATABASE template1 WITH (FORCE)'))).code);
    });
    if (target.kind === 'pgdev') {
      // From another database, with nobody else connected: still refused (Postgres would drop `postgres` here).
      await withClient(target.url('s_shared'), async (client) => {
        expect((await failure(client.query('DROP DATABASE postgres WITH (FORCE)'))).code).toBe('55006');
        expect((await failure(client.query('DROP DATABASE template1'))).code).toBe('55006');
      });
    }
    for (const name of ['postgres', 'template1']) {
      expect(await rows(target.url(name), 'SELECT current_database() AS db')).toEqual([{ db: target.kind === 'pgdev' ? 'postgres' : name }]);
    }
    expect(await rows(target.url(), 'SELECT count(*)::int AS n FROM t_main')).toEqual([{ n: 2 }]);
  });

  it('renames a database: its data answers to the new name, the old name is gone, a taken name is 42P04', async () => {
    await rows(target.url(), 'CREATE DATABASE r_old');
    await rows(target.url('r_old'), "CREATE TABLE moved (note text); INSERT INTO moved VALUES ('with the rename')");
    expect((await psql(target.url(), 'ALTER DATABASE r_old RENAME TO r_new')).stdout).toBe('ALTER DATABASE\n');
    expect(await rows(target.url('r_new'), 'SELECT current_database() AS db, note FROM moved')).toEqual([{ db: 'r_new', note: 'with the rename' }]);
    expect((await failure(connect(target.url('r_old')))).code).toBe('3D000');
    await withClient(target.url(), async (client) => {
      expect(await failure(client.query('ALTER DATABASE r_new RENAME TO s_shared'))).toMatchObject({ code: '42P04', message: 'database "s_shared" already exists' });
      expect(await failure(client.query('ALTER DATABASE r_nope RENAME TO r_other'))).toMatchObject({ code: '3D000', message: 'database "r_nope" does not exist' });
    });
    const names = await listed(target.url());
    expect(names).toContain('r_new');
    expect(names).toContain('s_shared');
    expect(names).not.toContain('r_old');
    expect(names).not.toContain('r_other');
    await rows(target.url(), 'DROP DATABASE r_new');
  });
});

describe('names, pg_database and current_database()', { timeout: 30_000 }, () => {
  it('an unknown name at connect is FATAL 3D000 database "x" does not exist (pg, postgres.js, psql)', async () => {
    expect(await failure(connect(target.url('no_such_db')))).toMatchObject({ code: '3D000', severity: 'FATAL', message: 'database "no_such_db" does not exist' });
    const sql = postgres(target.url('no_such_db'), { max: 1, connect_timeout: 10 });
    try {
      expect(await failure(sql`SELECT 1`)).toMatchObject({ code: '3D000', message: 'database "no_such_db" does not exist' });
    } finally {
      await sql.end({ timeout: 1 });
    }
    const run = await psql(target.url('no_such_db'), 'SELECT 1');
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('FATAL:  database "no_such_db" does not exist');
  });

  it('pg_database lists every database of the port from any of them; current_database() is the connected name', async () => {
    await rows(target.url(), 'CREATE DATABASE l_one');
    await rows(target.url(), 'CREATE DATABASE l_two');
    for (const from of [target.defaultDatabase, 'l_one', 'l_two']) {
      const names = await listed(target.url(from));
      for (const name of ['postgres', 'template0', 'template1', 'l_one', 'l_two']) expect(names, `${name} seen from ${from}`).toContain(name);
      expect(new Set(names).size).toBe(names.length);
    }
    // The existence check tools run (createdb, Prisma, Rails) before creating.
    expect(await rows(target.url('l_one'), 'SELECT 1 AS found FROM pg_database WHERE datname = $1', ['l_two'])).toEqual([{ found: 1 }]);
    expect(await rows(target.url('l_one'), 'SELECT 1 AS found FROM pg_database WHERE datname = $1', ['l_three'])).toEqual([]);
    expect(await rows(target.url('l_two'), 'SELECT current_database() AS db')).toEqual([{ db: 'l_two' }]);
    // A drop shows at once from the other database.
    await rows(target.url('l_one'), 'DROP DATABASE l_two');
    expect(await listed(target.url('l_one'))).not.toContain('l_two');
    expect(await listed(target.url())).not.toContain('l_two');
    await rows(target.url(), 'DROP DATABASE l_one');
  });

  it('the shadow port has its own set: a database created on the main port is not there, and the same name there is another database', async () => {
    if (target.kind !== 'pgdev') return; // a real Postgres has one port
    await rows(target.url(), 'CREATE DATABASE main_only');
    await rows(target.url('main_only'), "CREATE TABLE which (port text); INSERT INTO which VALUES ('main')");
    expect(await failure(connect(target.shadowUrl('main_only')))).toMatchObject({ code: '3D000', message: 'database "main_only" does not exist' });
    const shadowNames = await listed(target.shadowUrl());
    expect(shadowNames).toEqual(expect.arrayContaining(['postgres', 'template0', 'template1']));
    expect(shadowNames).not.toContain('main_only');
    expect(await rows(target.shadowUrl('postgres'), 'SELECT current_database() AS db')).toEqual([{ db: 'postgres' }]);
    expect(await publicTables(target.shadowUrl())).not.toContain('t_main');

    await rows(target.shadowUrl(), 'CREATE DATABASE main_only');
    expect(await publicTables(target.shadowUrl('main_only'))).toEqual([]);
    await rows(target.shadowUrl(), 'CREATE DATABASE shadow_only');
    expect(await listed(target.url())).not.toContain('shadow_only');
    await rows(target.shadowUrl(), 'DROP DATABASE main_only');
    expect(await rows(target.url('main_only'), 'SELECT port FROM which')).toEqual([{ port: 'main' }]);
  });
});
