/**
 * @module
 * Proves that every gateway connection is its own Postgres backend, through real clients (pg, postgres.js, psql and
 * child processes): its own process id (BackendKeyData, `pg_backend_pid()`, NOTIFY), advisory locks with Postgres'
 * rules (re-entrant, shared/exclusive, transaction and session scope, released at disconnect), blocking lock calls
 * that wait in the gateway while others keep running and end with Postgres' SQLSTATEs (lock_timeout, statement_timeout,
 * deadlock, cancel), `pg_locks` and `pg_stat_activity` showing every connection, and `pg_cancel_backend` /
 * `pg_terminate_backend` aimed at one connection.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { startTool, type ToolRun } from './support/tools.js';
import { waitFor } from './support/wait.js';

const MIGRATE_LOCK = fileURLToPath(new URL('./fixtures/migrate-lock.mjs', import.meta.url));
/** The key Prisma Migrate locks (and the reproduction). */
const PRISMA_KEY = 72707369;

let server: TestGateway;
const opened: Array<{ end(): Promise<unknown> }> = [];
const children = new Set<ChildProcess>();

beforeAll(async () => {
  server = await startTestGateway({ label: 'backends' });
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(opened.splice(0).map((c) => c.end().catch(() => undefined)));
  // Whatever a test did, once its connections are gone no advisory lock (held or awaited) may be left.
  await waitFor(() => server.gateway.connections === 0, 'every connection of the test to close');
  const check = new pg.Client(server.url);
  await check.connect();
  try {
    expect((await check.query("SELECT pid, objid, granted FROM pg_locks WHERE locktype = 'advisory'")).rows).toEqual([]);
  } finally {
    await check.end();
  }
  await waitFor(() => server.gateway.connections === 0, 'the check connection to close');
});

afterAll(async () => {
  await server?.close();
});

/** A pg client with the notices it received and its BackendKeyData process id (which pg keeps but does not type). */
type Client = pg.Client & { notices: string[]; processID: number };

async function connect(config: Omit<pg.ClientConfig, 'connectionString'> & { url?: string } = {}): Promise<Client> {
  const { url = server.url, ...rest } = config;
  const client = new pg.Client({ connectionString: url, ...rest }) as Client;
  client.notices = [];
  client.on('error', () => undefined);
  client.on('notice', (notice) => client.notices.push(`${notice.severity}: ${notice.message}`));
  opened.push(client);
  await client.connect();
  return client;
}

async function backendPid(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<Array<{ pid: number }>>`SELECT pg_backend_pid() AS pid`;
  return row!.pid;
}

function sqlClient(): postgres.Sql {
  const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
  opened.push({ end: () => sql.end({ timeout: 5 }) });
  return sql;
}

async function value<T = unknown>(client: pg.Client, text: string, params: unknown[] = []): Promise<T> {
  const result = await client.query({ text, values: params, rowMode: 'array' });
  return result.rows[0]?.[0] as T;
}

type Failure = { code: string | undefined; message: string; detail?: string | undefined };

/** The error a promise rejects with; fails the test if it resolves. */
async function failure(promise: Promise<unknown>): Promise<Failure> {
  try {
    const result = await promise;
    throw new Error(`expected an error, got ${JSON.stringify((result as { rows?: unknown })?.rows ?? result)}`);
  } catch (error) {
    const { code, message, detail } = error as Failure;
    if (code === undefined) throw error;
    return detail ? { code, message, detail } : { code, message };
  }
}

/** Marks a promise awaited later as handled, so that a test failing before then reports no unhandled rejection. */
function pending<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

type LockRow = { pid: number; classid: number; objid: number; objsubid: number; mode: string; granted: boolean };

async function advisoryLocks(observer: pg.Client): Promise<LockRow[]> {
  const { rows } = await observer.query<LockRow>(
    "SELECT pid, classid::int8::float8 AS classid, objid::int8::float8 AS objid, objsubid::int AS objsubid, mode, granted FROM pg_locks WHERE locktype = 'advisory' ORDER BY granted DESC, pid, objid, mode",
  );
  return rows;
}

/** Polls pg_locks (from `observer`) until `pid` waits for an advisory lock. */
async function waitsForLock(observer: pg.Client, pid: number): Promise<void> {
  await until(async () => (await advisoryLocks(observer)).some((row) => row.pid === pid && !row.granted), `process ${pid} to wait for an advisory lock`);
}

async function tryLock(client: pg.Client, key: number): Promise<boolean> {
  const got = await value<boolean>(client, 'SELECT pg_try_advisory_lock($1)', [key]);
  if (got) await client.query('SELECT pg_advisory_unlock($1)', [key]);
  return got;
}

/** Runs a program without blocking the event loop (the gateway lives in this process); no PG* variables leak in. */
function start(command: string, args: string[], timeoutMs = 30_000): { child: ChildProcess; done: Promise<ToolRun> } {
  const started = startTool(command, args, '', timeoutMs);
  children.add(started.child);
  void started.done.finally(() => children.delete(started.child)).catch(() => undefined);
  return started;
}

function run(command: string, args: string[]): Promise<ToolRun> {
  return start(command, args).done;
}

function psqlArgs(commands: string[]): string[] {
  return [server.url, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((command) => ['-c', command])];
}

function psql(...commands: string[]): Promise<ToolRun> {
  return run('psql', psqlArgs(commands));
}

describe('gateway: every connection is its own backend', () => {
  describe('process ids', () => {
    it('BackendKeyData, pg_backend_pid() (also inside functions) and NOTIFY carry one pid per connection', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      const pids = [a.processID, b.processID, c.processID];
      expect(new Set(pids).size).toBe(3);
      for (const [i, client] of [a, b, c].entries()) {
        expect(await value(client, 'SELECT pg_backend_pid()')).toBe(pids[i]);
      }

      await a.query(`CREATE OR REPLACE FUNCTION backends_pid_plpgsql() RETURNS int LANGUAGE plpgsql AS $$
        DECLARE mine int; BEGIN SELECT pg_backend_pid() INTO mine; RETURN mine; END $$`);
      await a.query('CREATE OR REPLACE FUNCTION backends_pid_sql() RETURNS int LANGUAGE sql AS $$ SELECT pg_backend_pid() $$');
      for (const [i, client] of [a, b, c].entries()) {
        const { rows } = await client.query('SELECT backends_pid_plpgsql() AS plpgsql, backends_pid_sql() AS sql, (SELECT count(*)::int FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS listed');
        expect(rows).toEqual([{ plpgsql: pids[i], sql: pids[i], listed: 1 }]);
      }

      const received: Array<{ processId: number; payload: string | undefined }> = [];
      b.on('notification', (n) => received.push({ processId: n.processId, payload: n.payload }));
      await b.query('LISTEN backends_pid');
      await c.query("NOTIFY backends_pid, 'from c'");
      await a.query("SELECT pg_notify('backends_pid', 'from a')");
      await waitFor(() => received.length === 2, 'both notifications');
      expect(received).toEqual([{ processId: pids[2], payload: 'from c' }, { processId: pids[0], payload: 'from a' }]);
    });

    it('postgres.js (extended protocol, prepared statements) sees its own pid, different from pg connections', async () => {
      const a = await connect();
      const sql = sqlClient();
      const first = await backendPid(sql);
      expect(await backendPid(sql)).toBe(first);
      expect(first).not.toBe(a.processID);
      const { rows } = await a.query('SELECT pid FROM pg_stat_activity WHERE pid = $1', [first]);
      expect(rows).toEqual([{ pid: first }]);
    });
  });

  describe('advisory locks', () => {
    it("the issue's reproduction: held by A, B's try is false, C times out after lock_timeout with 55P03, nothing left after", async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query(`SELECT pg_advisory_lock(${PRISMA_KEY})`);
      expect(await value(b, `SELECT pg_try_advisory_lock(${PRISMA_KEY})`)).toBe(false);
      expect(await advisoryLocks(b)).toEqual([
        { pid: a.processID, classid: 0, objid: PRISMA_KEY, objsubid: 1, mode: 'ExclusiveLock', granted: true },
      ]);

      await c.query("SET lock_timeout = '1s'");
      const started = Date.now();
      expect(await failure(c.query(`SELECT pg_advisory_lock(${PRISMA_KEY})`))).toEqual({
        code: '55P03', message: 'canceling statement due to lock timeout',
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      // C's connection carries on, and the lock is still A's alone.
      expect(await value(c, 'SELECT 1')).toBe(1);
      expect((await advisoryLocks(b)).map((row) => [row.pid, row.granted])).toEqual([[a.processID, true]]);

      await Promise.all([a.end(), b.end(), c.end()]);
      await waitFor(() => server.gateway.connections === 0, 'A, B and C to close');
      const after = await connect();
      expect(await advisoryLocks(after)).toEqual([]);
    });

    it('session locks are re-entrant: held until unlocked as often as locked, also when locked in one statement several times', async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(101)');
      await a.query('SELECT pg_advisory_lock(101)');
      expect(await value(a, 'SELECT pg_try_advisory_lock(101)')).toBe(true);
      expect(await value(a, 'SELECT pg_advisory_unlock(101)')).toBe(true);
      expect(await value(a, 'SELECT pg_advisory_unlock(101)')).toBe(true);
      expect(await tryLock(b, 101)).toBe(false);
      expect(await value(a, 'SELECT pg_advisory_unlock(101)')).toBe(true);
      expect(await tryLock(b, 101)).toBe(true);

      expect(a.notices).toEqual([]);
      expect(await value(a, 'SELECT pg_advisory_unlock(101)')).toBe(false);
      expect(a.notices).toEqual(["WARNING: you don't own a lock of type ExclusiveLock"]);

      expect((await a.query('SELECT pg_advisory_lock(102) FROM generate_series(1, 3)')).rowCount).toBe(3);
      expect((await a.query('SELECT pg_advisory_unlock(102) AS ok FROM generate_series(1, 4)')).rows.map((row) => row.ok)).toEqual([true, true, true, false]);
      expect(await tryLock(b, 102)).toBe(true);
    });

    it('shared locks coexist, an exclusive one waits for every shared holder; unlocking the wrong mode warns', async () => {
      const [a, b, c, observer] = [await connect(), await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock_shared(201)');
      expect(await value(b, 'SELECT pg_try_advisory_lock_shared(201)')).toBe(true);
      await b.query('SELECT pg_advisory_lock_shared(201)'); // blocking call, granted at once (counted twice now)
      expect(await value(c, 'SELECT pg_try_advisory_lock(201)')).toBe(false);
      expect(await value(a, 'SELECT pg_advisory_unlock(201)')).toBe(false);
      expect(a.notices).toEqual(["WARNING: you don't own a lock of type ExclusiveLock"]);
      expect(await value(c, 'SELECT pg_advisory_unlock_shared(201)')).toBe(false);
      expect(c.notices).toEqual(["WARNING: you don't own a lock of type ShareLock"]);

      const exclusive = pending(c.query('SELECT pg_advisory_lock(201)'));
      await waitsForLock(observer, c.processID);
      expect(await advisoryLocks(observer)).toEqual([
        { pid: a.processID, classid: 0, objid: 201, objsubid: 1, mode: 'ShareLock', granted: true },
        { pid: b.processID, classid: 0, objid: 201, objsubid: 1, mode: 'ShareLock', granted: true },
        { pid: c.processID, classid: 0, objid: 201, objsubid: 1, mode: 'ExclusiveLock', granted: false },
      ]);
      expect(await value(a, 'SELECT pg_advisory_unlock_shared(201)')).toBe(true);
      expect(await value(b, 'SELECT pg_advisory_unlock_shared(201)')).toBe(true);
      // B locked it shared twice: C still waits.
      expect((await advisoryLocks(observer)).filter((row) => !row.granted).map((row) => row.pid)).toEqual([c.processID]);
      expect(await value(b, 'SELECT pg_advisory_unlock_shared(201)')).toBe(true);
      await exclusive;
      expect(await advisoryLocks(observer)).toEqual([
        { pid: c.processID, classid: 0, objid: 201, objsubid: 1, mode: 'ExclusiveLock', granted: true },
      ]);
      expect(await value(a, 'SELECT pg_try_advisory_lock_shared(201)')).toBe(false);
    });

    it('(int, int) keys and negative bigint keys are their own locks and show in pg_locks as Postgres shows them', async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1, 2), pg_advisory_lock_shared(-3, 4), pg_advisory_lock(-1)');
      expect(await value(b, 'SELECT pg_try_advisory_lock(1, 2)')).toBe(false);
      expect(await value(b, 'SELECT pg_try_advisory_lock_shared(-3, 4)')).toBe(true);
      expect(await value(b, 'SELECT pg_advisory_unlock_shared(-3, 4)')).toBe(true);
      expect(await value(b, 'SELECT pg_try_advisory_lock(-1)')).toBe(false);
      // Other keys: (2, 1), and the bigint 4294967298 whose halves are (1, 2), are not the same lock.
      expect(await tryLock(b, 4294967298)).toBe(true);
      expect(await value(b, 'SELECT pg_try_advisory_lock(2, 1) AND pg_advisory_unlock(2, 1)')).toBe(true);
      const rows = await advisoryLocks(b);
      expect(rows).toEqual(expect.arrayContaining([
        { pid: a.processID, classid: 1, objid: 2, objsubid: 2, mode: 'ExclusiveLock', granted: true },
        { pid: a.processID, classid: 4294967293, objid: 4, objsubid: 2, mode: 'ShareLock', granted: true },
        { pid: a.processID, classid: 4294967295, objid: 4294967295, objsubid: 1, mode: 'ExclusiveLock', granted: true },
      ]));
      expect(rows).toHaveLength(3);
      expect(await value(a, 'SELECT pg_advisory_unlock_shared(-3, 4) AND pg_advisory_unlock(-1)')).toBe(true);

      // A blocking call on an (int, int) key waits for it like any other.
      const waiting = pending(b.query('SELECT pg_advisory_lock(1, 2)'));
      await waitsForLock(a, b.processID);
      expect(await value(a, 'SELECT pg_advisory_unlock(1, 2)')).toBe(true);
      await waiting;
      expect(await advisoryLocks(a)).toEqual([{ pid: b.processID, classid: 1, objid: 2, objsubid: 2, mode: 'ExclusiveLock', granted: true }]);
      expect(await value(b, 'SELECT pg_advisory_unlock(1, 2)')).toBe(true);

      // The transaction-level variants with (int, int) keys.
      await a.query('BEGIN');
      await a.query('SELECT pg_advisory_xact_lock(5, 6), pg_advisory_xact_lock_shared(5, 7), pg_try_advisory_xact_lock(5, 8), pg_try_advisory_xact_lock_shared(5, 9)');
      expect((await advisoryLocks(a)).map((row) => [row.classid, row.objid, row.objsubid, row.mode])).toEqual([
        [5, 6, 2, 'ExclusiveLock'], [5, 7, 2, 'ShareLock'], [5, 8, 2, 'ExclusiveLock'], [5, 9, 2, 'ShareLock'],
      ]);
      await a.query('COMMIT');
      expect(await advisoryLocks(b)).toEqual([]);
    });

    it('transaction locks go at COMMIT, ROLLBACK and the end of an autocommit statement; session locks outlive a ROLLBACK', async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_xact_lock(301)');
      expect(await tryLock(b, 301)).toBe(true);
      expect(await value(a, 'SELECT pg_try_advisory_xact_lock(302)')).toBe(true);
      expect(await tryLock(b, 302)).toBe(true);

      await a.query('BEGIN');
      await a.query('SELECT pg_advisory_xact_lock(303), pg_advisory_xact_lock_shared(304), pg_try_advisory_xact_lock(305), pg_try_advisory_xact_lock_shared(310)');
      await a.query('SELECT pg_advisory_lock(306)');
      expect((await advisoryLocks(a)).map((row) => [row.objid, row.mode])).toEqual([
        [303, 'ExclusiveLock'], [304, 'ShareLock'], [305, 'ExclusiveLock'], [306, 'ExclusiveLock'], [310, 'ShareLock'],
      ]);
      // pg_advisory_unlock does not release a transaction lock.
      expect(await value(a, 'SELECT pg_advisory_unlock(303)')).toBe(false);
      expect(a.notices).toEqual(["WARNING: you don't own a lock of type ExclusiveLock"]);
      await a.query('COMMIT');
      expect(await tryLock(b, 303)).toBe(true);
      expect(await tryLock(b, 305)).toBe(true);
      expect(await tryLock(b, 306)).toBe(false);

      await a.query('BEGIN');
      await a.query('SELECT pg_advisory_xact_lock(307), pg_advisory_lock(308)');
      expect((await failure(a.query('SELECT 1/0'))).code).toBe('22012');
      await a.query('ROLLBACK');
      expect(await tryLock(b, 307)).toBe(true);
      // A session lock taken in a transaction that rolled back is still held, as in Postgres.
      expect(await tryLock(b, 308)).toBe(false);

      // pg_advisory_unlock_all releases the session locks, not a transaction's.
      await a.query('BEGIN');
      await a.query('SELECT pg_advisory_xact_lock(309)');
      await a.query('SELECT pg_advisory_unlock_all()');
      expect((await advisoryLocks(a)).map((row) => row.objid)).toEqual([309]);
      await a.query('COMMIT');
      expect(await advisoryLocks(b)).toEqual([]);
    });

    it('session locks are released when the connection ends, cleanly or by a dropped socket', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(401), pg_advisory_lock_shared(402)');
      await b.query('SELECT pg_advisory_lock(403)');
      expect(await tryLock(c, 401)).toBe(false);
      expect(await tryLock(c, 403)).toBe(false);
      await a.end();
      await waitFor(() => server.gateway.connections === 2, 'A to close');
      expect(await tryLock(c, 401)).toBe(true);
      expect(await tryLock(c, 402)).toBe(true);
      (b as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await waitFor(() => server.gateway.connections === 1, 'B to be torn down');
      expect(await tryLock(c, 403)).toBe(true);
      expect(await advisoryLocks(c)).toEqual([]);
    });
  });

  describe('waiting for an advisory lock', () => {
    it('a blocking call waits without holding the database: others run, the holder unlocks, the waiter gets the lock', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(501)');
      const waiting = pending(b.query("SELECT pg_advisory_lock(501), 'got it' AS answer"));
      let settled = false;
      void waiting.then(() => (settled = true), () => (settled = true));
      await waitsForLock(c, b.processID);
      // The database is free meanwhile: C writes and reads.
      await c.query('CREATE TABLE IF NOT EXISTS backends_free (id int)');
      await c.query('INSERT INTO backends_free VALUES (1)');
      expect(await value(c, 'SELECT count(*)::int FROM backends_free')).toBe(1);
      const { rows: [activity] } = await c.query('SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE pid = $1', [b.processID]);
      expect(activity).toEqual({ state: 'active', wait_event_type: 'Lock', wait_event: 'advisory', query: "SELECT pg_advisory_lock(501), 'got it' AS answer" });
      expect(settled).toBe(false);

      expect(await value(a, 'SELECT pg_advisory_unlock(501)')).toBe(true);
      expect((await waiting).rows).toEqual([{ pg_advisory_lock: '', answer: 'got it' }]);
      expect(await advisoryLocks(c)).toEqual([{ pid: b.processID, classid: 0, objid: 501, objsubid: 1, mode: 'ExclusiveLock', granted: true }]);
      expect(await value(c, "SELECT count(*)::int FROM pg_stat_activity WHERE wait_event_type IS NOT NULL")).toBe(0);
      await c.query('DROP TABLE backends_free');
    });

    it('the waiter gets the lock when the holder disconnects; a waiter that disconnects leaves no trace in pg_locks', async () => {
      const [a, b, c, observer] = [await connect(), await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(551)');
      const waiting = pending(b.query('SELECT 1 AS got FROM (SELECT pg_advisory_lock(551)) AS locked'));
      const gone = pending(c.query('SELECT pg_advisory_lock_shared(551)'));
      await waitsForLock(observer, b.processID);
      await waitsForLock(observer, c.processID);
      (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await gone.catch(() => undefined);
      await until(async () => (await advisoryLocks(observer)).length === 2, "C's wait to go");
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[a.processID, true], [b.processID, false]]);
      await a.end();
      expect((await waiting).rows).toEqual([{ got: 1 }]);
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[b.processID, true]]);
    });

    it('a statement run again after its wait has its effects once: autocommit writes and multi-statement query strings', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('CREATE TABLE IF NOT EXISTS backends_once (id int)');
      await a.query('SELECT pg_advisory_lock(561)');
      const single = pending(b.query('INSERT INTO backends_once SELECT 1 FROM (SELECT pg_advisory_xact_lock(561)) AS locked'));
      await waitsForLock(observer, b.processID);
      await a.query('SELECT pg_advisory_unlock(561)');
      await single;
      await a.query('SELECT pg_advisory_lock(561)');
      const several = pending(b.query('INSERT INTO backends_once VALUES (2); SELECT pg_advisory_xact_lock(561); INSERT INTO backends_once VALUES (3)'));
      await waitsForLock(observer, b.processID);
      expect(await value(observer, 'SELECT count(*)::int FROM backends_once')).toBe(1);
      await a.query('SELECT pg_advisory_unlock(561)');
      await several;
      expect((await observer.query('SELECT id FROM backends_once ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
      await observer.query('DROP TABLE backends_once');
    });

    // A query string that ends a transaction cannot be run again after a wait (what it committed would be done
    // twice), so its lock call does not wait: 55P03 at once, and only what it committed before stays.
    it('a query string that commits before its lock call fails at once with 55P03 and repeats nothing', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('CREATE TABLE IF NOT EXISTS backends_twice (id int)');
      await a.query('SELECT pg_advisory_lock(571)');
      try {
        const error = await failure(b.query('INSERT INTO backends_twice VALUES (1); COMMIT; INSERT INTO backends_twice VALUES (2); SELECT pg_advisory_xact_lock(571); INSERT INTO backends_twice VALUES (3)'));
        expect(error).toMatchObject({ code: '55P03', message: 'could not obtain lock on advisory lock 571' });
        await a.query('SELECT pg_advisory_unlock(571)');
        expect((await observer.query('SELECT id FROM backends_twice ORDER BY id')).rows).toEqual([{ id: 1 }]);
      } finally {
        await observer.query('DROP TABLE backends_twice');
      }
    });

    it('pg parameterised queries wait and are retried: unnamed, and named the first time (parsed in the batch) and the next', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      const lock = { name: 'backends_lock', text: 'SELECT pg_advisory_lock($1::bigint), pg_backend_pid() AS pid', values: [581] };
      for (let round = 0; round < 2; round++) {
        await a.query('SELECT pg_advisory_lock(581)');
        const waiting = pending(b.query(lock));
        await waitsForLock(observer, b.processID);
        await a.query('SELECT pg_advisory_unlock(581)');
        expect((await waiting).rows).toEqual([{ pg_advisory_lock: '', pid: b.processID }]);
        expect(await value(b, 'SELECT pg_advisory_unlock(581)')).toBe(true);
      }
      await a.query('SELECT pg_advisory_lock(582)');
      const unnamed = pending(b.query('SELECT pg_advisory_lock($1), $2::text AS tag', [582, 'unnamed']));
      await waitsForLock(observer, b.processID);
      await a.query('SELECT pg_advisory_unlock(582)');
      expect((await unnamed).rows).toEqual([{ pg_advisory_lock: '', tag: 'unnamed' }]);
    });

    it('lock_timeout from the start-up options applies to a wait', async () => {
      const [a, b] = [await connect(), await connect({ options: '-c lock_timeout=300' })];
      await a.query('SELECT pg_advisory_lock(591)');
      const started = Date.now();
      expect(await failure(b.query('SELECT pg_advisory_lock(591)'))).toEqual({ code: '55P03', message: 'canceling statement due to lock timeout' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    });

    it('statement_timeout ends a wait with 57014', async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(601)');
      await b.query("SET statement_timeout = '300ms'");
      const started = Date.now();
      expect(await failure(b.query('SELECT pg_advisory_lock(601)'))).toEqual({ code: '57014', message: 'canceling statement due to statement timeout' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      await b.query('RESET statement_timeout');
      expect(await tryLock(b, 601)).toBe(false);
    });

    it('a deadlock between two waiters fails one with 40P01; the other gets its lock once the loser lets go', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(701)');
      await b.query('SELECT pg_advisory_lock(702)');
      const aWaits = pending(a.query('SELECT pg_advisory_lock(702)'));
      await waitsForLock(observer, a.processID);
      expect(await failure(b.query('SELECT pg_advisory_lock(701)'))).toEqual({ code: '40P01', message: 'deadlock detected' });
      // The loser keeps its session lock, as in Postgres; A still waits until B unlocks.
      expect((await advisoryLocks(observer)).filter((row) => !row.granted).map((row) => row.pid)).toEqual([a.processID]);
      expect(await value(b, 'SELECT pg_advisory_unlock(702)')).toBe(true);
      await aWaits;
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.objid, row.granted])).toEqual([
        [a.processID, 701, true], [a.processID, 702, true],
      ]);
    });

    it('a deadlock through three connections is detected too', async () => {
      const [a, b, c, observer] = [await connect(), await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(711)');
      await b.query('SELECT pg_advisory_lock(712)');
      await c.query('SELECT pg_advisory_lock(713)');
      const aWaits = pending(a.query('SELECT pg_advisory_lock(712)'));
      const bWaits = pending(b.query('SELECT pg_advisory_lock(713)'));
      await waitsForLock(observer, a.processID);
      await waitsForLock(observer, b.processID);
      expect(await failure(c.query('SELECT pg_advisory_lock(711)'))).toEqual({ code: '40P01', message: 'deadlock detected' });
      await c.query('SELECT pg_advisory_unlock_all()');
      await bWaits;
      await b.query('SELECT pg_advisory_unlock_all()');
      await aWaits;
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.objid])).toEqual([[a.processID, 711], [a.processID, 712]]);
    });

    it('pg_cancel_backend ends a wait with 57014 and leaves the connection usable', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(801)');
      const waiting = pending(b.query('SELECT pg_advisory_lock(801)'));
      await waitsForLock(c, b.processID);
      expect(await value(c, 'SELECT pg_cancel_backend($1)', [b.processID])).toBe(true);
      expect(await failure(waiting)).toEqual({ code: '57014', message: 'canceling statement due to user request' });
      expect(await advisoryLocks(c)).toEqual([{ pid: a.processID, classid: 0, objid: 801, objsubid: 1, mode: 'ExclusiveLock', granted: true }]);
      expect(await value(b, 'SELECT pg_try_advisory_lock(801)')).toBe(false);
      // Cancelling an idle connection does nothing to it.
      expect(await value(c, 'SELECT pg_cancel_backend($1)', [b.processID])).toBe(true);
      expect(await value(b, 'SELECT 1')).toBe(1);
    });

    it('inside a transaction that ran only BEGIN and SET the wait works (replayed); after other statements it fails at once with 55P03', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await b.query('CREATE TABLE IF NOT EXISTS backends_tx (id int)');
      await a.query('SELECT pg_advisory_lock(901)');

      await b.query('BEGIN');
      await b.query("SET LOCAL lock_timeout = '20s'");
      await b.query("SET application_name = 'replayed'");
      const waiting = pending(b.query('SELECT pg_advisory_xact_lock(901)'));
      await waitsForLock(observer, b.processID);
      const { rows: [activity] } = await observer.query('SELECT state, wait_event, xact_start IS NOT NULL AS in_xact FROM pg_stat_activity WHERE pid = $1', [b.processID]);
      expect(activity).toEqual({ state: 'active', wait_event: 'advisory', in_xact: true });
      await a.query('SELECT pg_advisory_unlock(901)');
      await waiting;
      // The transaction's settings were replayed, and it goes on.
      expect((await b.query("SELECT current_setting('lock_timeout') AS lt, current_setting('application_name') AS app")).rows).toEqual([{ lt: '20s', app: 'replayed' }]);
      await b.query('INSERT INTO backends_tx VALUES (1)');
      await b.query('COMMIT');
      expect(await tryLock(a, 901)).toBe(true);
      expect(await value(b, 'SELECT count(*)::int FROM backends_tx')).toBe(1);
      await b.query('SELECT pg_advisory_unlock_all()');

      await a.query('SELECT pg_advisory_lock(902)');
      await b.query('BEGIN');
      await b.query('INSERT INTO backends_tx VALUES (2)');
      const started = Date.now();
      const refused = await failure(b.query('SELECT pg_advisory_lock(902)'));
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(refused.code).toBe('55P03');
      expect(refused.message).toBe('could not obtain lock on advisory lock 902');
      expect(refused.detail).toContain(`process ${a.processID} holds it`);
      expect(refused.detail).toContain('outside a transaction block, or in one that has run nothing but BEGIN and SET so far');
      await b.query('ROLLBACK');
      expect(await value(b, 'SELECT count(*)::int FROM backends_tx')).toBe(1);
      await b.query('DROP TABLE backends_tx');
    });

    it('a wait inside a transaction that is cancelled or times out leaves the transaction aborted (25P02) until ROLLBACK', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(941)');
      const aborted = { code: '25P02', message: 'current transaction is aborted, commands ignored until end of transaction block' };

      await b.query('BEGIN');
      const waiting = pending(b.query('SELECT pg_advisory_xact_lock(941)'));
      await waitsForLock(observer, b.processID);
      expect(await value(observer, 'SELECT pg_cancel_backend($1)', [b.processID])).toBe(true);
      expect(await failure(waiting)).toEqual({ code: '57014', message: 'canceling statement due to user request' });
      expect(await failure(b.query('SELECT 1'))).toEqual(aborted);
      await b.query('ROLLBACK');

      await b.query('BEGIN');
      await b.query("SET LOCAL lock_timeout = '200ms'");
      expect(await failure(b.query('SELECT pg_advisory_xact_lock_shared(941)'))).toEqual({ code: '55P03', message: 'canceling statement due to lock timeout' });
      expect(await failure(b.query('SELECT 1'))).toEqual(aborted);
      await b.query('ROLLBACK');
      expect(await value(b, 'SHOW lock_timeout')).toBe('0');
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[a.processID, true]]);
    });

    it('a SET LOCAL replayed after a wait still ends with its transaction, as a SET ends with a ROLLBACK', async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(951)');
      await b.query('BEGIN');
      await b.query("SET LOCAL lock_timeout = '20s'");
      const waiting = pending(b.query('SELECT pg_advisory_xact_lock(951)'));
      await waitsForLock(observer, b.processID);
      await a.query('SELECT pg_advisory_unlock(951)');
      await waiting;
      expect(await value(b, 'SHOW lock_timeout')).toBe('20s');
      await b.query('COMMIT');
      expect(await value(b, 'SHOW lock_timeout')).toBe('0');

      await a.query('SELECT pg_advisory_lock(952)');
      await b.query('BEGIN');
      await b.query("SET application_name = 'rolled back'");
      const again = pending(b.query('SELECT pg_advisory_xact_lock(952)'));
      await waitsForLock(observer, b.processID);
      await a.query('SELECT pg_advisory_unlock(952)');
      await again;
      await b.query('ROLLBACK');
      expect(await value(b, 'SHOW application_name')).toBe('');
    });

    // The private error that makes a lock call wait is query_canceled, which EXCEPTION WHEN OTHERS does not catch.
    it("an EXCEPTION handler around a lock call that waits does not see pgdev's private wait error", async () => {
      const [a, b, observer] = [await connect(), await connect(), await connect()];
      await a.query('CREATE TABLE IF NOT EXISTS backends_caught (state text, message text)');
      await a.query(`CREATE OR REPLACE FUNCTION backends_lock_or_log(k bigint) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN
          BEGIN PERFORM pg_advisory_lock(k);
          EXCEPTION WHEN OTHERS THEN INSERT INTO backends_caught VALUES (SQLSTATE, SQLERRM); RETURN 'caught ' || SQLSTATE;
          END;
          RETURN 'locked';
        END $$`);
      await a.query('SELECT pg_advisory_lock(991)');
      try {
        const waiting = pending(b.query('SELECT backends_lock_or_log(991) AS outcome'));
        await waitsForLock(observer, b.processID);
        await a.query('SELECT pg_advisory_unlock(991)');
        expect((await waiting).rows).toEqual([{ outcome: 'locked' }]);
        expect((await observer.query('SELECT * FROM backends_caught')).rows).toEqual([]);
      } finally {
        await observer.query('DROP TABLE backends_caught');
      }
    });

    it('several waiters for one lock get it one after the other', async () => {
      const [a, b, c, observer] = [await connect(), await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(961)');
      const waiters = [b, c].map((client) => pending(client.query('SELECT pg_advisory_lock(961)').then(() => client.processID)));
      await waitsForLock(observer, b.processID);
      await waitsForLock(observer, c.processID);
      await a.query('SELECT pg_advisory_unlock(961)');
      const first = await Promise.race(waiters);
      const [second] = [b, c].filter((client) => client.processID !== first);
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[first, true], [second!.processID, false]]);
      await ([b, c].find((client) => client.processID === first)!).query('SELECT pg_advisory_unlock(961)');
      expect(await Promise.all(waiters)).toEqual([b.processID, c.processID]);
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[second!.processID, true]]);
    });

    it('shared waiters behind an exclusive holder are granted together; pg_locks gives waiters a waitstart', async () => {
      const [a, b, c, observer] = [await connect(), await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(971)');
      const waiters = [b, c].map((client) => pending(client.query('SELECT pg_advisory_lock_shared(971)')));
      await waitsForLock(observer, b.processID);
      await waitsForLock(observer, c.processID);
      const { rows } = await observer.query("SELECT pid, granted, waitstart IS NOT NULL AS waits, waitstart <= now() AS past FROM pg_locks WHERE locktype = 'advisory' ORDER BY granted DESC, pid");
      expect(rows).toEqual([
        { pid: a.processID, granted: true, waits: false, past: null },
        { pid: b.processID, granted: false, waits: true, past: true },
        { pid: c.processID, granted: false, waits: true, past: true },
      ]);
      await a.query('SELECT pg_advisory_unlock(971)');
      await Promise.all(waiters);
      expect(await advisoryLocks(observer)).toEqual([b, c].map((client) => ({ pid: client.processID, classid: 0, objid: 971, objsubid: 1, mode: 'ShareLock', granted: true })));
    });

    it('advisory locks inside a PL/pgSQL function: a blocking one waits and is retried, a try one answers false', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query(`CREATE OR REPLACE FUNCTION backends_locked_pid(k bigint) RETURNS int LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(k); RETURN pg_backend_pid(); END $$`);
      await a.query(`CREATE OR REPLACE FUNCTION backends_try(k bigint) RETURNS text LANGUAGE plpgsql AS $$
        BEGIN IF pg_try_advisory_lock(k) THEN RETURN 'mine'; END IF; RETURN 'taken'; END $$`);
      expect(await value(a, 'SELECT backends_try(1001)')).toBe('mine');
      expect(await value(b, 'SELECT backends_try(1001)')).toBe('taken');

      const waiting = pending(b.query('SELECT backends_locked_pid(1001) AS pid'));
      await waitsForLock(c, b.processID);
      await a.query('SELECT pg_advisory_unlock(1001)');
      expect((await waiting).rows).toEqual([{ pid: b.processID }]);
      // The function's transaction lock ended with B's statement.
      expect(await tryLock(c, 1001)).toBe(true);
    });
  });

  describe('pg_stat_activity and pg_terminate_backend', () => {
    it('pg_stat_activity lists every connection with its user, application, address, times, state and query', async () => {
      const setup = await connect();
      await setup.query('DROP ROLE IF EXISTS ann; CREATE ROLE ann LOGIN');
      await setup.end();
      const url = server.url.replace('postgres:postgres@', 'ann:secret@');
      const a = await connect({ url, application_name: 'alpha' });
      await a.query('SELECT 40 + 2');
      const b = await connect({ application_name: 'beta' });
      const c = await connect();
      const { rows } = await c.query(`SELECT pid, usename, application_name, host(client_addr) AS addr, client_port > 0 AS port,
          backend_start <= now() AS started, xact_start, query_start IS NOT NULL AS queried, state, wait_event_type, query, backend_type
        FROM pg_stat_activity ORDER BY backend_start, pid`);
      expect(rows).toEqual([
        { pid: a.processID, usename: 'ann', application_name: 'alpha', addr: '127.0.0.1', port: true, started: true, xact_start: null, queried: true, state: 'idle', wait_event_type: null, query: 'SELECT 40 + 2', backend_type: 'client backend' },
        expect.objectContaining({ pid: b.processID, usename: 'postgres', application_name: 'beta', state: 'idle', xact_start: null }),
        expect.objectContaining({ pid: c.processID, application_name: '', state: 'active', query: expect.stringContaining('FROM pg_stat_activity') }),
      ]);
      const { rows: [times] } = await c.query('SELECT (SELECT backend_start FROM pg_stat_activity WHERE pid = $1) < (SELECT backend_start FROM pg_stat_activity WHERE pid = $2) AS ordered', [a.processID, b.processID]);
      expect(times).toEqual({ ordered: true });
    });

    it('pg_stat_activity shows an application_name changed by SET', async () => {
      const [b, c] = [await connect({ application_name: 'beta' }), await connect()];
      await b.query("SET application_name = 'beta renamed'");
      expect(await value(b, 'SHOW application_name')).toBe('beta renamed');
      expect(await value(c, 'SELECT application_name FROM pg_stat_activity WHERE pid = $1', [b.processID])).toBe('beta renamed');
    });

    it("while A's transaction holds the database, A sees itself active in a transaction and B waiting on 'Lock'/'database'", async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('BEGIN');
      const queued = pending(b.query('SELECT 7 AS seven'));
      await until(async () => (await value<number>(a, "SELECT count(*)::int FROM pg_stat_activity WHERE wait_event = 'database'")) === 1, 'B to wait for the database');
      const { rows } = await a.query(`SELECT pid, state, xact_start IS NOT NULL AS in_xact, xact_start <= query_start AS xact_first, wait_event_type, wait_event, query
        FROM pg_stat_activity WHERE pid IN ($1, $2) ORDER BY pid = $1 DESC`, [a.processID, b.processID]);
      expect(rows).toEqual([
        { pid: a.processID, state: 'active', in_xact: true, xact_first: true, wait_event_type: null, wait_event: null, query: expect.stringContaining('FROM pg_stat_activity') },
        { pid: b.processID, state: 'active', in_xact: true, xact_first: true, wait_event_type: 'Lock', wait_event: 'database', query: 'SELECT 7 AS seven' },
      ]);
      await a.query('COMMIT');
      expect((await queued).rows).toEqual([{ seven: 7 }]);
    });

    it("pg_cancel_backend ends a wait for another connection's transaction with 57014", async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('BEGIN');
      const queued = pending(b.query('SELECT 7 AS seven'));
      await until(async () => (await value<number>(a, "SELECT count(*)::int FROM pg_stat_activity WHERE wait_event = 'database'")) === 1, 'B to wait for the database');
      expect(await value(a, 'SELECT pg_cancel_backend($1)', [b.processID])).toBe(true);
      expect(await failure(queued)).toEqual({ code: '57014', message: 'canceling statement due to user request' });
      await a.query('COMMIT');
      expect(await value(b, 'SELECT 8')).toBe(8);
    });

    it('pg_terminate_backend ends an idle connection with FATAL 57P01 and releases its locks', async () => {
      const [a, b] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1101)');
      const fatal = new Promise<Failure>((resolve) => a.once('error', (error) => resolve(error as unknown as Failure)));
      expect(await value(b, 'SELECT pg_terminate_backend($1)', [a.processID])).toBe(true);
      const error = await fatal;
      expect({ code: error.code, message: error.message }).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
      await waitFor(() => server.gateway.connections === 1, 'A to be terminated');
      expect(await value(b, 'SELECT count(*)::int FROM pg_stat_activity WHERE pid = $1', [a.processID])).toBe(0);
      expect(await tryLock(b, 1101)).toBe(true);
    });

    it('pg_terminate_backend ends a waiting connection with 57P01: its wait and its locks go', async () => {
      const [a, b, c] = [await connect(), await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1201)');
      await b.query('SELECT pg_advisory_lock(1202)');
      const waiting = pending(b.query('SELECT pg_advisory_lock(1201)'));
      await waitsForLock(c, b.processID);
      expect(await value(c, 'SELECT pg_terminate_backend($1)', [b.processID])).toBe(true);
      expect(await failure(waiting)).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
      await waitFor(() => server.gateway.connections === 2, 'B to be terminated');
      expect(await advisoryLocks(c)).toEqual([{ pid: a.processID, classid: 0, objid: 1201, objsubid: 1, mode: 'ExclusiveLock', granted: true }]);
      expect(await tryLock(c, 1202)).toBe(true);
    });

    it('a connection that cancels its own statement gets 57014; one that terminates itself gets FATAL 57P01, as on Postgres', async () => {
      const a = await connect();
      expect(await failure(a.query('SELECT pg_cancel_backend(pg_backend_pid())'))).toEqual({ code: '57014', message: 'canceling statement due to user request' });
      expect(await value(a, 'SELECT 1')).toBe(1);
      const closed = new Promise<void>((resolve) => a.once('end', () => resolve()));
      const terminated = failure(a.query('SELECT pg_terminate_backend(pg_backend_pid())'));
      const next = a.query('SELECT 2').then(() => 'answered', (error: Error) => error.message);
      expect(await terminated).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
      expect(await next).toBe('Connection terminated unexpectedly');
      await closed;
    });

    it('an unknown pid: pg_cancel_backend and pg_terminate_backend answer false with a WARNING', async () => {
      const a = await connect();
      expect((await a.query('SELECT pg_cancel_backend(999999) AS cancelled, pg_terminate_backend(999998) AS terminated')).rows).toEqual([
        { cancelled: false, terminated: false },
      ]);
      expect(a.notices).toEqual([
        'WARNING: PID 999999 is not a PostgreSQL backend process',
        'WARNING: PID 999998 is not a PostgreSQL backend process',
      ]);
    });
  });

  describe('postgres.js and psql', () => {
    it('postgres.js: prepared lock calls wait and are retried, pipelined queries follow, and its own cancel ends a wait', async () => {
      const [a, observer] = [await connect(), await connect()];
      const sql = sqlClient();
      const pid = await backendPid(sql);
      await a.query('SELECT pg_advisory_lock(1301)');
      // The same prepared statement twice: once granted at once, once after a wait.
      expect([...(await sql`SELECT pg_try_advisory_lock(${1302}) AS got`)]).toEqual([{ got: true }]);
      const waiting = pending(Promise.all([sql`SELECT pg_advisory_lock(${1301}::bigint) AS locked`, sql`SELECT ${'after'}::text AS next`]));
      await waitsForLock(observer, pid);
      await a.query('SELECT pg_advisory_unlock(1301)');
      const [locked, next] = await waiting;
      expect([...locked]).toEqual([{ locked: '' }]);
      expect([...next]).toEqual([{ next: 'after' }]);
      expect([...(await sql`SELECT pg_advisory_unlock(${1301}::bigint) AS a, pg_advisory_unlock(${1302}::bigint) AS b`)]).toEqual([{ a: true, b: true }]);

      await a.query('SELECT pg_advisory_lock(1303)');
      const cancelled = sql`SELECT pg_advisory_lock(${1303}::bigint)`;
      const outcome = cancelled.then(() => null, (error: Failure) => ({ code: error.code, message: error.message }));
      await waitsForLock(observer, pid);
      cancelled.cancel();
      expect(await outcome).toEqual({ code: '57014', message: 'canceling statement due to user request' });
      expect([...(await sql`SELECT pg_try_advisory_lock(${1303}::bigint) AS got`)]).toEqual([{ got: false }]);
      // A transaction lock through the extended protocol ends with its (autocommit) statement.
      expect([...(await sql`SELECT pg_try_advisory_xact_lock(${1304}::bigint) AS got`)]).toEqual([{ got: true }]);
      expect(await tryLock(observer, 1304)).toBe(true);
    });

    // A prepared statement run again (Bind/Execute only, as postgres.js and pg's named statements do) shows its text.
    it('postgres.js: pg_stat_activity shows the text of a prepared statement run again', async () => {
      const [a, observer] = [await connect(), await connect()];
      const sql = sqlClient();
      const pid = await backendPid(sql);
      await sql`SELECT pg_advisory_lock(${1311}::bigint)`;
      await sql`SELECT pg_advisory_unlock(${1311}::bigint)`;
      await sql`SELECT 2 AS two`;
      await a.query('SELECT pg_advisory_lock(1311)');
      const waiting = pending(sql`SELECT pg_advisory_lock(${1311}::bigint)`.execute());
      await waitsForLock(observer, pid);
      const query = await value(observer, 'SELECT query FROM pg_stat_activity WHERE pid = $1', [pid]);
      await a.query('SELECT pg_advisory_unlock(1311)');
      await waiting;
      expect(query).toBe('SELECT pg_advisory_lock($1::bigint)');
    });

    it('postgres.js: a transaction lock taken inside sql.begin waits, is held to the commit, and the transaction commits', async () => {
      const [a, observer] = [await connect(), await connect()];
      await a.query('CREATE TABLE IF NOT EXISTS backends_begin (id int)');
      const sql = sqlClient();
      const pid = await backendPid(sql);
      await a.query('SELECT pg_advisory_lock(1401)');
      let inside = 0;
      const transaction = pending(sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${1401}::bigint)`;
        inside += 1;
        await tx`INSERT INTO backends_begin VALUES (${inside})`;
        return [...(await tx`SELECT pg_try_advisory_xact_lock(${1402}::bigint) AS got`)];
      }));
      await waitsForLock(observer, pid);
      expect(inside).toBe(0);
      await a.query('SELECT pg_advisory_unlock(1401)');
      expect(await transaction).toEqual([{ got: true }]);
      expect(inside).toBe(1);
      expect(await value(a, 'SELECT array_agg(id)::text FROM backends_begin')).toBe('{1}');
      expect(await tryLock(a, 1401)).toBe(true);
      expect(await tryLock(a, 1402)).toBe(true);
      await a.query('DROP TABLE backends_begin');
    });

    it('psql: a lock call waits (listed as psql in pg_stat_activity) and goes on once released; lock_timeout ends it with an error', async () => {
      const [a, observer] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1501)');
      const waiting = psql('SELECT pg_advisory_lock(1501)', "SELECT 'got ' || pg_backend_pid()");
      await until(async () => (await advisoryLocks(observer)).some((row) => !row.granted), 'psql to wait');
      const { rows: [psqlRow] } = await observer.query("SELECT pid, application_name, wait_event FROM pg_stat_activity WHERE wait_event_type = 'Lock'");
      expect(psqlRow).toMatchObject({ application_name: 'psql', wait_event: 'advisory' });
      await a.query('SELECT pg_advisory_unlock(1501)');
      const done = await waiting;
      expect(done.stderr).toBe('');
      expect(done.stdout).toBe(`\ngot ${psqlRow.pid}\n`);

      await a.query('SELECT pg_advisory_lock(1502)');
      const started = Date.now();
      const timedOut = await psql("SET lock_timeout = '300ms'", 'SELECT pg_advisory_lock(1502)');
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(timedOut.status).toBe(1);
      expect(timedOut.stderr).toContain('ERROR:  canceling statement due to lock timeout');
      expect(await tryLock(observer, 1502)).toBe(false);
    });

    // The lock call tells the wait the lock_timeout in force, so a SET earlier in the same string applies.
    it('psql: lock_timeout SET earlier in the same query string ends the wait', async () => {
      const [a, observer] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1503)');
      const started = Date.now();
      const timedOut = await start('psql', psqlArgs(["SET lock_timeout = '300ms'; SELECT pg_advisory_lock(1503)"]), 3_000).done;
      expect(timedOut.stderr).toContain('ERROR:  canceling statement due to lock timeout');
      expect(timedOut.status).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(await tryLock(observer, 1503)).toBe(false);
    });

    it("psql: Ctrl-C (psql's cancel request) ends a wait with 57014", async () => {
      const [a, observer] = [await connect(), await connect()];
      await a.query('SELECT pg_advisory_lock(1601)');
      const interrupted = start('psql', psqlArgs(['SELECT pg_advisory_lock(1601)']));
      await until(async () => (await advisoryLocks(observer)).some((row) => !row.granted), 'psql to wait');
      interrupted.child.kill('SIGINT');
      const result = await interrupted.done;
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('ERROR:  canceling statement due to user request');
      expect((await advisoryLocks(observer)).map((row) => [row.pid, row.granted])).toEqual([[a.processID, true]]);
    });
  });

  it('a wait inside a transaction is not idle in transaction (no idle timeout); closing the server ends a wait with 57P01', async () => {
    const own = await startTestGateway({ label: 'backends-idle', idleInTransactionTimeoutMs: 300 });
    const clients = [new pg.Client(own.url), new pg.Client(own.url), new pg.Client(own.url)];
    const [a, b, c] = clients as [pg.Client, pg.Client, pg.Client];
    try {
      for (const client of clients) {
        client.on('error', () => undefined);
        await client.connect();
      }
      await a.query('SELECT pg_advisory_lock(1701)');
      await b.query('BEGIN');
      const waiting = pending(b.query('SELECT pg_advisory_xact_lock(1701)'));
      await until(async () => (await a.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rowCount === 1, 'B to wait');
      // Well past the idle-in-transaction timeout, with C using the database meanwhile: B's transaction goes on.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await value(c, 'SELECT 1')).toBe(1);
      await a.query('SELECT pg_advisory_unlock(1701)');
      await waiting;
      await b.query('COMMIT');

      await a.query('SELECT pg_advisory_lock(1702)');
      const cut = pending(b.query('SELECT pg_advisory_lock(1702)'));
      await until(async () => (await a.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rowCount === 1, 'B to wait');
      await own.close();
      expect(await failure(cut)).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
    } finally {
      await own.close();
      await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    }
  });

  it("Prisma Migrate's lock pattern: two processes at once, five rounds, each migration applied exactly once", async () => {
    const setup = await connect();
    await setup.query('DROP TABLE IF EXISTS _migrations');
    await setup.query('CREATE TABLE _migrations (name text NOT NULL, applied_by int NOT NULL)');
    for (let round = 1; round <= 5; round++) {
      const migration = `m${round}`;
      const runs = await Promise.all([0, 1].map(() => run(process.execPath, [MIGRATE_LOCK, server.url, migration])));
      for (const result of runs) expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
      const reports = runs.map((result) => JSON.parse(result.stdout) as { applied: boolean; unlocked: boolean; pid: number });
      expect(reports.map((report) => report.unlocked)).toEqual([true, true]);
      expect(reports.filter((report) => report.applied)).toHaveLength(1);
      expect(reports[0]!.pid).not.toBe(reports[1]!.pid);
      const applier = reports.find((report) => report.applied)!.pid;
      expect((await setup.query('SELECT applied_by FROM _migrations WHERE name = $1', [migration])).rows).toEqual([{ applied_by: applier }]);
    }
    expect((await setup.query('SELECT name, count(*)::int AS n FROM _migrations GROUP BY name ORDER BY name')).rows).toEqual(
      [1, 2, 3, 4, 5].map((round) => ({ name: `m${round}`, n: 1 })),
    );
    await setup.query('DROP TABLE _migrations');
  });
});
