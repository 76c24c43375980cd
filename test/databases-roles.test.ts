/**
 * @module
 * Roles are the server's (issue 20), as Postgres keeps them in shared catalogs: a role, its attributes, password and
 * memberships made in any database of a port hold in every database of it, created before or after, open or closed,
 * and across a restart; `pg_roles` reads the same from each; a change that fails leaves every database as it was.
 * `CREATE DATABASE ... OWNER` and `ALTER DATABASE ... OWNER TO` are honoured (and no role may create in a database it
 * does not own any more); a wrong password is 28P01; `SET ROLE` and `SET SESSION AUTHORIZATION` stay with their
 * connection. Checked with psql and pg.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { connect, failure, rows, within, withClient } from './support/databases.js';
import { runTool } from './support/tools.js';
import { waitFor } from './support/wait.js';

useTemporaryDataHome('pgdev-roles-');

const servers: PgdevServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => within(server.close(), 15_000, 'close').catch(() => undefined)));
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<PgdevServer> {
  const server = await startServer({ port: 0, databasePort: 0, shadowDatabasePort: 0, persistence: 'memory', log: () => undefined, ...options });
  servers.push(server);
  return server;
}

/** A URL to `database` as `user` (with `password`, default any). */
function urlFor(server: PgdevServer, database: string, user = 'postgres', password = 'anything'): string {
  const url = new URL(server.databaseUrlFor(database));
  url.username = user;
  url.password = password;
  return url.toString();
}

/** Roles and memberships as every database must show them: oids included. */
const ROLES_QUERY = `SELECT r.oid::int, r.rolname, r.rolsuper, r.rolcanlogin, r.rolcreatedb, r.rolconnlimit, r.rolconfig,
    r.rolpassword IS NOT NULL AS has_password,
    ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1)::text[] AS member_of
  FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY r.oid`;

async function rolesIn(server: PgdevServer, database: string): Promise<unknown[]> {
  return rows(urlFor(server, database), ROLES_QUERY);
}

async function whoAmI(url: string): Promise<unknown> {
  return (await rows(url, 'SELECT current_user AS "user", current_database() AS database'))[0];
}

describe('roles are the server\'s', { timeout: 120_000 }, () => {
  let server: PgdevServer;
  beforeAll(async () => {
    server = await start();
    await rows(server.databaseUrl, 'CREATE DATABASE older');
  });

  it('the bootstrap: CREATE ROLE app LOGIN in postgres, CREATE DATABASE appdb, then psql -U app -d appdb (and a database made before the role)', async () => {
    const psql = (url: string, sql: string) => runTool('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-A', '-t', '-d', url, '-c', sql]);
    expect(await psql(urlFor(server, 'postgres'), 'CREATE ROLE app LOGIN')).toMatchObject({ status: 0, stderr: '' });
    expect(await psql(urlFor(server, 'postgres'), 'CREATE DATABASE appdb')).toMatchObject({ status: 0, stderr: '' });
    const url = new URL(server.databaseUrlFor('appdb'));
    const appRun = await runTool('psql', ['-X', '-A', '-t', '-h', url.hostname, '-p', url.port, '-U', 'app', '-d', 'appdb', '-c', 'SELECT current_user, current_database()']);
    expect(appRun).toEqual({ status: 0, stdout: 'app|appdb\n', stderr: '' });
    expect(await whoAmI(urlFor(server, 'older', 'app'))).toEqual({ user: 'app', database: 'older' });
  });

  it('attributes, passwords, memberships and role settings made in any database hold in all, and pg_roles reads the same everywhere', async () => {
    await rows(urlFor(server, 'older'), "CREATE ROLE staff NOLOGIN; CREATE ROLE dora LOGIN PASSWORD 'dora-1' CONNECTION LIMIT 7 IN ROLE staff");
    await rows(urlFor(server, 'appdb'), "ALTER ROLE dora CREATEDB; ALTER ROLE dora SET work_mem = '8MB'; CREATE ROLE auditors; GRANT auditors TO dora");
    await rows(urlFor(server, 'postgres'), "ALTER ROLE dora PASSWORD 'dora-2'; REVOKE staff FROM dora");
    const expected = await rolesIn(server, 'postgres');
    expect(expected).toContainEqual(expect.objectContaining({
      rolname: 'dora', rolcanlogin: true, rolcreatedb: true, rolconnlimit: 7, rolconfig: ['work_mem=8MB'], has_password: true, member_of: ['auditors', 'pg_read_server_files'],
    }));
    for (const database of ['older', 'appdb']) expect(await rolesIn(server, database)).toEqual(expected);
    // A database created now starts with them too.
    await rows(server.databaseUrl, 'CREATE DATABASE newer');
    expect(await rolesIn(server, 'newer')).toEqual(expected);
    // The password changed in postgres is the one every database asks for.
    expect(await whoAmI(urlFor(server, 'older', 'dora', 'dora-2'))).toEqual({ user: 'dora', database: 'older' });
    expect(await failure(whoAmI(urlFor(server, 'newer', 'dora', 'dora-1')))).toMatchObject({
      code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "dora"',
    });
    expect((await rows(urlFor(server, 'newer', 'dora', 'dora-2'), "SELECT current_setting('work_mem') AS work_mem"))[0]).toEqual({ work_mem: '8MB' });
  });

  it('a wrong password is 28P01 as on Postgres, for pg and psql', async () => {
    await rows(urlFor(server, 'appdb'), "CREATE ROLE carol LOGIN PASSWORD 'carol-secret'");
    expect(await failure(whoAmI(urlFor(server, 'older', 'carol', 'wrong')))).toMatchObject({
      code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "carol"',
    });
    const run = await runTool('psql', ['-X', '-c', 'SELECT 1', `${urlFor(server, 'postgres', 'carol', 'wrong')}`]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/FATAL: {2}password authentication failed for user "carol"/);
    expect(await whoAmI(urlFor(server, 'older', 'carol', 'carol-secret'))).toEqual({ user: 'carol', database: 'older' });
  });

  it('a role statement that fails changes nothing anywhere: an error, a rollback', async () => {
    const before = await rolesIn(server, 'postgres');
    expect(await failure(rows(urlFor(server, 'older'), 'CREATE ROLE app'))).toMatchObject({ code: '42710', message: 'role "app" already exists' });
    await withClient(urlFor(server, 'appdb'), async (client) => {
      await client.query('BEGIN');
      await client.query('CREATE ROLE rolled_back LOGIN');
      await client.query('ALTER ROLE app CREATEROLE');
      await client.query('ROLLBACK');
    });
    for (const database of ['postgres', 'older', 'appdb']) expect(await rolesIn(server, database)).toEqual(before);
  });

  it('DROP ROLE of a role that owns objects in another database is refused (2BP01) and undone; once they are gone it is dropped everywhere', async () => {
    await rows(urlFor(server, 'postgres'), 'CREATE ROLE owner_elsewhere LOGIN');
    await rows(urlFor(server, 'older'), 'CREATE TABLE owned (v int); ALTER TABLE owned OWNER TO owner_elsewhere');
    const before = await rolesIn(server, 'postgres');
    expect(await failure(rows(urlFor(server, 'appdb'), 'DROP ROLE owner_elsewhere'))).toMatchObject({
      code: '2BP01',
      message: 'role "owner_elsewhere" cannot be dropped because some objects depend on it',
      detail: '1 object in database older',
    });
    for (const database of ['postgres', 'older', 'appdb']) expect(await rolesIn(server, database)).toEqual(before);
    expect(await whoAmI(urlFor(server, 'appdb', 'owner_elsewhere'))).toEqual({ user: 'owner_elsewhere', database: 'appdb' });

    await rows(urlFor(server, 'older'), 'DROP TABLE owned');
    await rows(urlFor(server, 'appdb'), 'DROP ROLE owner_elsewhere');
    for (const database of ['postgres', 'older', 'appdb']) {
      expect(await rows(urlFor(server, database), "SELECT rolname FROM pg_roles WHERE rolname = 'owner_elsewhere'")).toEqual([]);
    }
  });

  it('a change made in a database whose engine had not yet taken another database\'s change is refused with 40001 and undone', async () => {
    const holder = await connect(urlFor(server, 'older'));
    try {
      await holder.client.query('BEGIN');
      await holder.client.query('CREATE ROLE made_in_transaction');
      // Meanwhile another database changes roles: older's engine is held by the transaction, so it cannot take it yet.
      await rows(urlFor(server, 'appdb'), 'CREATE ROLE made_meanwhile');
      expect(await failure(holder.client.query('COMMIT'))).toMatchObject({
        code: '40001', message: 'could not change roles: another database changed them at the same time',
      });
    } finally {
      await holder.client.end();
    }
    for (const database of ['postgres', 'older', 'appdb']) {
      expect(await rows(urlFor(server, database), "SELECT rolname FROM pg_roles WHERE rolname LIKE 'made_%' ORDER BY 1")).toEqual([{ rolname: 'made_meanwhile' }]);
    }
  });

  it('DROP ROLE waits at most 5 s for a database held by a transaction, then says so (55006)', async () => {
    await rows(urlFor(server, 'postgres'), 'CREATE ROLE short_lived');
    const holder = await connect(urlFor(server, 'older'));
    try {
      await holder.client.query('BEGIN');
      await holder.client.query('SELECT 1');
      expect(await failure(rows(urlFor(server, 'appdb'), 'DROP ROLE short_lived'))).toMatchObject({
        code: '55006', message: 'could not check database "older" for objects of the roles being dropped: it is busy',
      });
    } finally {
      await holder.client.end();
    }
    expect(await rows(urlFor(server, 'older'), "SELECT rolname FROM pg_roles WHERE rolname = 'short_lived'")).toEqual([{ rolname: 'short_lived' }]);
  });

  it('CREATE DATABASE ... OWNER and ALTER DATABASE ... OWNER TO are honoured: the owner creates in it; nobody creates in a database it does not own', async () => {
    await rows(server.databaseUrl, 'CREATE ROLE shop_owner LOGIN; CREATE ROLE outsider LOGIN');
    await rows(server.databaseUrl, 'CREATE DATABASE shop OWNER shop_owner');
    await rows(server.databaseUrl, 'CREATE DATABASE later_owned');
    await rows(server.databaseUrl, 'ALTER DATABASE later_owned OWNER TO shop_owner');
    for (const database of ['shop', 'later_owned']) {
      await rows(urlFor(server, database, 'shop_owner'), 'CREATE TABLE items (id int); CREATE SCHEMA private; CREATE TABLE private.notes (v text)');
      expect(await rows(urlFor(server, database), "SELECT tableowner FROM pg_tables WHERE tablename = 'items'")).toEqual([{ tableowner: 'shop_owner' }]);
      expect(await failure(rows(urlFor(server, database, 'outsider'), 'CREATE TABLE intruder (v int)'))).toMatchObject({ code: '42501', message: 'permission denied for schema public' });
    }
    for (const database of ['postgres', 'shop', 'older']) {
      expect(await rows(urlFor(server, database), "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname IN ('shop', 'later_owned', 'postgres') ORDER BY 1")).toEqual([
        { datname: 'later_owned', owner: 'shop_owner' }, { datname: 'postgres', owner: 'postgres' }, { datname: 'shop', owner: 'shop_owner' },
      ]);
    }
    expect(await failure(rows(urlFor(server, 'postgres', 'shop_owner'), 'CREATE TABLE intruder (v int)'))).toMatchObject({ code: '42501', message: 'permission denied for schema public' });
    expect(await failure(rows(server.databaseUrl, 'CREATE DATABASE nobodys OWNER nobody'))).toMatchObject({ code: '42704', message: 'role "nobody" does not exist' });
    expect(await failure(rows(server.databaseUrl, 'ALTER DATABASE shop OWNER TO nobody'))).toMatchObject({ code: '42704', message: 'role "nobody" does not exist' });
    expect(await failure(rows(server.databaseUrl, 'DROP ROLE shop_owner'))).toMatchObject({ code: '2BP01', detail: expect.stringContaining('owner of database shop') });
  });

  it('SET ROLE and SET SESSION AUTHORIZATION stay with the connection that sent them, as connections take turns', async () => {
    await rows(server.databaseUrl, 'CREATE ROLE player LOGIN; CREATE ROLE coach NOLOGIN; GRANT coach TO player');
    const who = "SELECT current_user AS current, session_user AS session, current_setting('role') AS role";
    const [admin, player, other] = await Promise.all([connect(urlFor(server, 'older')), connect(urlFor(server, 'older', 'player')), connect(urlFor(server, 'older'))]);
    try {
      await admin.client.query('SET SESSION AUTHORIZATION player');
      await player.client.query('SET ROLE coach');
      for (let round = 0; round < 2; round++) {
        expect((await other.client.query(who)).rows).toEqual([{ current: 'postgres', session: 'postgres', role: 'none' }]);
        expect((await admin.client.query(who)).rows).toEqual([{ current: 'player', session: 'player', role: 'none' }]);
        expect((await player.client.query(who)).rows).toEqual([{ current: 'coach', session: 'player', role: 'coach' }]);
      }
      // RESET SESSION AUTHORIZATION keeps the role on PGlite (see the README): SET it back instead.
      await admin.client.query('SET SESSION AUTHORIZATION postgres');
      await player.client.query('RESET ROLE');
      expect((await player.client.query(who)).rows).toEqual([{ current: 'player', session: 'player', role: 'none' }]);
      expect((await admin.client.query(who)).rows).toEqual([{ current: 'postgres', session: 'postgres', role: 'none' }]);
      // SET LOCAL ROLE ends with its transaction.
      await other.client.query('BEGIN; SET LOCAL ROLE coach');
      expect((await other.client.query('SELECT current_user AS current')).rows).toEqual([{ current: 'coach' }]);
      await other.client.query('COMMIT');
      expect((await player.client.query('SELECT current_user AS current')).rows).toEqual([{ current: 'player' }]);
      expect((await other.client.query('SELECT current_user AS current')).rows).toEqual([{ current: 'postgres' }]);
    } finally {
      await Promise.all([admin.client.end(), player.client.end(), other.client.end()]);
    }
  });
});

describe('roles of a persistent server', { timeout: 120_000 }, () => {
  it('a closed database catches up when it opens, and the roles are kept across a restart', async () => {
    const first = await start({ name: 'roles-disk', persistence: 'persistent', idleCloseMs: 300 });
    await rows(first.databaseUrl, 'CREATE DATABASE sleeper');
    await rows(urlFor(first, 'sleeper'), 'SELECT 1');
    // Idle past idleCloseMs, sleeper closes (the default database stays open).
    await waitFor(() => !first.openDatabases().includes('sleeper'), 'sleeper to close', 10_000);
    await rows(first.databaseUrl, "CREATE ROLE woken LOGIN PASSWORD 'w'");
    expect(await whoAmI(urlFor(first, 'sleeper', 'woken', 'w'))).toEqual({ user: 'woken', database: 'sleeper' });
    await first.close();

    const second = await start({ name: 'roles-disk', persistence: 'persistent' });
    expect(await whoAmI(urlFor(second, 'postgres', 'woken', 'w'))).toEqual({ user: 'woken', database: 'postgres' });
    expect(await whoAmI(urlFor(second, 'sleeper', 'woken', 'w'))).toEqual({ user: 'woken', database: 'sleeper' });
    await rows(urlFor(second, 'sleeper'), 'DROP ROLE woken');
    expect(await failure(whoAmI(urlFor(second, 'postgres', 'woken', 'w')))).toMatchObject({ code: '28000', message: 'role "woken" does not exist' });
  });
});
