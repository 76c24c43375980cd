/**
 * @module
 * Roles (issue 12): a connection runs as the role it connected as (`current_user`, `session_user`, row-level
 * security), whatever the other connections are; `postgres` always exists; an unknown role or one without LOGIN is
 * refused with 28000 and a hint; any password is accepted unless the role has one, which is then checked with SCRAM
 * (a wrong one is 28P01).
 * Checked with pg and psql.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { runTool } from './support/tools.js';

let server: TestGateway;
let admin: pg.Client;

beforeAll(async () => {
  server = await startTestGateway({ label: 'roles' });
  admin = await server.connect();
  await admin.query(`
    CREATE ROLE alice LOGIN;
    CREATE ROLE bob LOGIN;
    CREATE ROLE carol LOGIN PASSWORD 'carol-secret';
    CREATE ROLE readers NOLOGIN;
    CREATE TABLE docs (owner text, body text);
    INSERT INTO docs VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
    ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_docs ON docs USING (owner = current_user);
    GRANT SELECT ON docs TO PUBLIC`);
});

afterAll(async () => {
  await admin?.end();
  await server?.close();
});

function urlFor(user: string, password = 'anything'): string {
  return `postgres://${user}:${password}@127.0.0.1:${server.port}/postgres?sslmode=disable`;
}

async function connectAs(user: string, password?: string): Promise<pg.Client> {
  const client = new pg.Client(urlFor(user, password));
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

const refusal = (user: string, password?: string) =>
  connectAs(user, password).then(
    async (client) => {
      await client.end();
      return undefined;
    },
    (error: pg.DatabaseError) => error,
  );

describe('gateway: roles', () => {
  it('each connection is its own role, and row-level security follows it as connections take turns', async () => {
    const alice = await connectAs('alice');
    const bob = await connectAs('bob');
    try {
      const who = 'SELECT current_user AS current, session_user AS session, current_setting($1) AS superuser';
      expect((await alice.query(who, ['is_superuser'])).rows).toEqual([{ current: 'alice', session: 'alice', superuser: 'off' }]);
      expect((await bob.query(who, ['is_superuser'])).rows).toEqual([{ current: 'bob', session: 'bob', superuser: 'off' }]);
      expect((await admin.query(who, ['is_superuser'])).rows).toEqual([{ current: 'postgres', session: 'postgres', superuser: 'on' }]);
      for (let round = 0; round < 2; round++) {
        expect((await alice.query('SELECT body FROM docs ORDER BY body')).rows).toEqual([{ body: 'a1' }, { body: 'a2' }]);
        expect((await bob.query('SELECT body FROM docs ORDER BY body')).rows).toEqual([{ body: 'b1' }]);
      }
      expect((await admin.query('SELECT count(*)::int AS n FROM docs')).rows).toEqual([{ n: 3 }]);
      expect(await alice.query('DELETE FROM docs').catch((error: pg.DatabaseError) => error)).toMatchObject({
        code: '42501',
        message: 'permission denied for table docs',
      });
    } finally {
      await Promise.all([alice.end(), bob.end()]);
    }
  });

  it('a role creates where it is allowed to, as on Postgres 15 and later (not in public of a database it does not own), and COPY', async () => {
    const alice = await connectAs('alice');
    try {
      expect(await alice.query('CREATE TABLE public.intruder (v int)').catch((error: pg.DatabaseError) => error)).toMatchObject({
        code: '42501', message: 'permission denied for schema public',
      });
      await admin.query('GRANT CREATE ON SCHEMA public TO alice; GRANT CREATE ON DATABASE postgres TO alice');
      await alice.query('CREATE TABLE alice_own (v int); INSERT INTO alice_own VALUES (1)');
      await alice.query('CREATE SCHEMA alice_schema; DROP SCHEMA alice_schema');
      const copy = await runTool('psql', [urlFor('alice'), '-v', 'ON_ERROR_STOP=1', '-c', '\\copy alice_own from stdin'], '2\n3\n\\.\n');
      expect(copy).toMatchObject({ status: 0, stdout: 'COPY 2\n' });
      expect((await alice.query('SELECT v FROM alice_own ORDER BY v')).rows).toEqual([{ v: 1 }, { v: 2 }, { v: 3 }]);
      expect((await admin.query('SELECT tableowner FROM pg_tables WHERE tablename = $1', ['alice_own'])).rows).toEqual([{ tableowner: 'alice' }]);
    } finally {
      await admin.query('DROP TABLE IF EXISTS alice_own');
      await alice.end();
    }
  });

  it('temporary tables of connections with different roles stay apart', async () => {
    const alice = await connectAs('alice');
    const bob = await connectAs('bob');
    try {
      await alice.query('CREATE TEMP TABLE scratch (v text); INSERT INTO scratch VALUES ($$alice$$)');
      await bob.query('CREATE TEMP TABLE scratch (v text); INSERT INTO scratch VALUES ($$bob$$)');
      expect((await alice.query('SELECT v FROM scratch')).rows).toEqual([{ v: 'alice' }]);
      expect((await bob.query('SELECT v FROM scratch')).rows).toEqual([{ v: 'bob' }]);
    } finally {
      await Promise.all([alice.end(), bob.end()]);
    }
  });

  it('an unknown role is refused with 28000 and a hint; so is a role without LOGIN; postgres always connects', async () => {
    expect(await refusal('nobody')).toMatchObject({
      code: '28000',
      severity: 'FATAL',
      message: 'role "nobody" does not exist',
      hint: 'connect as postgres and run CREATE ROLE "nobody" LOGIN;',
    });
    expect(await refusal('readers')).toMatchObject({ code: '28000', message: 'role "readers" is not permitted to log in' });
    expect(await refusal('postgres', 'any password at all')).toBeUndefined();

    const psql = await runTool('psql', [urlFor('nobody'), '-X', '-c', 'SELECT 1']);
    expect(psql.status).toBe(2);
    expect(psql.stderr).toMatch(/FATAL: {2}role "nobody" does not exist\nHINT: {2}connect as postgres and run CREATE ROLE "nobody" LOGIN;/);
  });

  it('a role with a password must give it (SCRAM); pg and psql', async () => {
    expect(await refusal('carol', 'wrong')).toMatchObject({ code: '28P01', message: 'password authentication failed for user "carol"' });
    const wrongPsql = await runTool('psql', [urlFor('carol', 'wrong'), '-X', '-c', 'SELECT 1']);
    expect(wrongPsql.stderr).toMatch(/FATAL: {2}password authentication failed for user "carol"/);
    const carol = await connectAs('carol', 'carol-secret');
    try {
      expect((await carol.query('SELECT current_user AS who')).rows).toEqual([{ who: 'carol' }]);
    } finally {
      await carol.end();
    }
    const psql = await runTool('psql', [urlFor('carol', 'carol-secret'), '-X', '-A', '-t', '-c', 'SELECT session_user']);
    expect(psql).toEqual({ status: 0, stdout: 'carol\n', stderr: '' });
  });
});
