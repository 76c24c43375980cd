/**
 * @module
 * The aborted-transaction hand-back (issue 12): a connection whose transaction failed no longer holds the database,
 * so another connection proceeds at once, while the failed connection is answered as Postgres answers it until the
 * block ends: 25P02 for every statement, `ROLLBACK` for ROLLBACK and COMMIT, in the simple and extended protocols
 * (pg, postgres.js, psql and raw messages). A transaction with savepoints keeps the database, so that ROLLBACK TO
 * SAVEPOINT still works.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { runTool } from './support/tools.js';
import { WireClient, bind, dataRow, errorFields, execute, parse, simpleQuery, sync } from './support/wire.js';

let server: TestGateway;

beforeAll(async () => {
  // A long idle-in-transaction timeout: a connection that still held the database would hold it through every test.
  server = await startTestGateway({ label: 'aborted', idleInTransactionTimeoutMs: 600_000 });
  const setup = await server.connect();
  await setup.query('CREATE TABLE aborted_items (id int PRIMARY KEY, label text)');
  await setup.end();
});

afterAll(async () => {
  await server?.close();
});

/** `promise`, or a failure naming `what` if it takes longer than a connection waiting for the database would. */
function promptly<T>(promise: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} waited for the database`)), 10_000)),
  ]);
}

const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: pg.DatabaseError) => error);
const IN_FAILED = 'current transaction is aborted, commands ignored until end of transaction block';

describe('gateway: a failed transaction does not hold the database', () => {
  it('pg: another connection proceeds at once; the failed one gets 25P02 until COMMIT, which answers ROLLBACK', async () => {
    const failed = await server.connect();
    const other = await server.connect();
    try {
      await failed.query('BEGIN');
      await failed.query("INSERT INTO aborted_items VALUES (1, 'from the failed transaction')");
      expect(await failure(failed.query('SELECT 1/0'))).toMatchObject({ code: '22012', message: 'division by zero' });

      await promptly(other.query("INSERT INTO aborted_items VALUES (2, 'from the other connection')"), 'the other connection');
      expect((await other.query('SELECT id FROM aborted_items ORDER BY id')).rows).toEqual([{ id: 2 }]);

      expect(await failure(failed.query('SELECT 1'))).toMatchObject({ code: '25P02', message: IN_FAILED });
      expect(await failure(failed.query('SELECT $1::int', [1]))).toMatchObject({ code: '25P02', message: IN_FAILED });
      const commit = await failed.query('COMMIT');
      expect(commit.command).toBe('ROLLBACK');
      expect((await failed.query('SELECT id FROM aborted_items ORDER BY id')).rows).toEqual([{ id: 2 }]);
    } finally {
      await other.query('DELETE FROM aborted_items');
      await Promise.all([failed.end(), other.end()]);
    }
  });

  it('raw messages: 25P02 and ReadyForQuery E in both protocols; ROLLBACK; a query string that ends the block and goes on', async () => {
    const wire = await WireClient.connect(server.port);
    const other = await server.connect();
    const summary = (messages: Array<{ type: string; body: Buffer }>) =>
      messages.map((m) => (m.type === 'E' ? `E:${errorFields(m.body).C}` : m.type === 'C' ? `C:${m.body.toString('utf8', 0, m.body.length - 1)}` : m.type === 'Z' ? `Z:${m.body.toString('latin1')}` : m.type));
    try {
      await wire.request(simpleQuery('BEGIN'));
      expect(summary(await wire.request(simpleQuery('SELECT 1/0')))).toEqual(['E:22012', 'Z:E']);
      await promptly(other.query('SELECT 1'), 'the other connection');

      expect(summary(await wire.request(simpleQuery('SELECT 1')))).toEqual(['E:25P02', 'Z:E']);
      expect(summary(await wire.request(parse('', 'SELECT 2'), bind('', ''), execute(''), sync()))).toEqual(['E:25P02', 'Z:E']);
      expect(summary(await wire.request(simpleQuery('ROLLBACK')))).toEqual(['C:ROLLBACK', 'Z:I']);

      await wire.request(simpleQuery('BEGIN'));
      await wire.request(simpleQuery('SELECT 1/0'));
      await promptly(other.query('SELECT 1'), 'the other connection');
      const ended = await wire.request(simpleQuery('ROLLBACK; SELECT 42'));
      expect(summary(ended)).toEqual(['C:ROLLBACK', 'T', 'D', 'C:SELECT 1', 'Z:I']);
      expect(dataRow(ended.find((m) => m.type === 'D')!.body)).toEqual(['42']);

      await wire.request(simpleQuery('BEGIN'));
      await wire.request(simpleQuery('SELECT 1/0'));
      await promptly(other.query('SELECT 1'), 'the other connection');
      expect(summary(await wire.request(parse('', 'ROLLBACK'), bind('', ''), execute(''), sync()))).toEqual(['1', '2', 'C:ROLLBACK', 'Z:I']);
    } finally {
      wire.end();
      await other.end();
    }
  });

  it('settings and temporary tables made in the failed transaction are undone for that connection alone', async () => {
    const failed = await server.connect();
    const other = await server.connect();
    try {
      const initial = (await other.query('SHOW TimeZone')).rows[0].TimeZone as string;
      await failed.query('BEGIN');
      await failed.query("SET TimeZone = 'Asia/Tokyo'");
      await failed.query('CREATE TEMP TABLE aborted_temp (x int)');
      await failure(failed.query('SELECT 1/0'));
      expect((await promptly(other.query('SHOW TimeZone'), 'the other connection')).rows[0].TimeZone).toBe(initial);
      await failed.query('ROLLBACK');
      expect((await failed.query('SHOW TimeZone')).rows[0].TimeZone).toBe(initial);
      expect(await failure(failed.query('SELECT * FROM aborted_temp'))).toMatchObject({ code: '42P01' });
    } finally {
      await Promise.all([failed.end(), other.end()]);
    }
  });

  it('postgres.js: sql.begin rolls back a failed transaction; a savepoint keeps the transaction usable after ROLLBACK TO', async () => {
    const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
    try {
      const failed = await sql.begin(async (tx) => {
        await tx`INSERT INTO aborted_items VALUES (10, 'rolled back')`;
        await tx`SELECT 1/0`;
      }).catch((error: { code: string }) => error);
      expect(failed).toMatchObject({ code: '22012' });

      // Twice: the second time postgres.js runs its prepared SAVEPOINT again with Bind alone.
      for (const base of [10, 20]) {
        await sql.begin(async (tx) => {
          await tx`INSERT INTO aborted_items VALUES (${base + 1}, 'kept')`;
          const inner = await tx.savepoint(async (sp) => {
            await sp`INSERT INTO aborted_items VALUES (${base + 2}, 'rolled back to the savepoint')`;
            await sp`SELECT 1/0`;
          }).catch((error: { code: string }) => error);
          expect(inner).toMatchObject({ code: '22012' });
          await tx`INSERT INTO aborted_items VALUES (${base + 3}, 'after the savepoint')`;
        });
      }
      expect(await sql`SELECT id FROM aborted_items ORDER BY id`).toEqual([{ id: 11 }, { id: 13 }, { id: 21 }, { id: 23 }]);
    } finally {
      await sql`DELETE FROM aborted_items`;
      await sql.end({ timeout: 1 });
    }
  });

  it('psql without ON_ERROR_STOP: the errors Postgres prints, and ROLLBACK for COMMIT', async () => {
    const commands = ['BEGIN', "INSERT INTO aborted_items VALUES (20, 'no')", 'SELECT 1/0', 'SELECT 2', 'COMMIT', 'SELECT count(*) FROM aborted_items'];
    const run = await runTool('psql', [server.url, '-X', '-A', '-t', ...commands.flatMap((command) => ['-c', command])]);
    expect(run.stdout).toBe('BEGIN\nINSERT 0 1\nROLLBACK\n0\n');
    expect(run.stderr).toBe(`ERROR:  division by zero\nERROR:  ${IN_FAILED}\n`);
  });
});
