/**
 * @module
 * Proves what happens to a connection's work when it is cancelled or goes away: a CancelRequest drops that
 * connection's queued query with SQLSTATE 57014 while the others carry on, and a client that disconnects in the
 * middle of a transaction has it rolled back at once, its row locks released, so a waiting client proceeds and
 * sees none of its uncommitted rows.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { waitFor } from './support/wait.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'cancel' });
});

afterAll(async () => {
  await server?.close();
});

function client(): pg.Client {
  const c = new pg.Client(server.url);
  c.on('error', () => undefined);
  return c;
}

describe('gateway: cancel and disconnect', () => {
  it('a cancel request drops the queued query with 57014; the transaction holder commits and others carry on', async () => {
    const a = client();
    const other = client();
    const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
    try {
      await Promise.all([a.connect(), other.connect()]);
      await a.query('DROP TABLE IF EXISTS cancel_t; CREATE TABLE cancel_t (id int)');
      // Open B's connection now, so that its own start-up queries are not what gets cancelled.
      expect([...(await sql`SELECT 1 AS one`)]).toEqual([{ one: 1 }]);

      await a.query('BEGIN');
      await a.query('INSERT INTO cancel_t VALUES (1)');
      const queued = sql`SELECT count(*)::int AS n FROM cancel_t`;
      queued.execute();
      const settled = queued.then(
        (rows) => ({ ok: true as const, rows: [...rows] }),
        (error: { code?: string; message: string }) => ({ ok: false as const, code: error.code, message: error.message }),
      );
      // Let B's query reach the gateway and queue behind A's transaction.
      await new Promise((resolve) => setTimeout(resolve, 200));
      queued.cancel();
      expect(await settled).toEqual({ ok: false, code: '57014', message: 'canceling statement due to user request' });

      await a.query('INSERT INTO cancel_t VALUES (2)');
      await a.query('COMMIT');
      expect((await a.query('SELECT id FROM cancel_t ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 2 }]);
      // B's connection is still usable and sees the committed rows; another client too.
      expect([...(await sql`SELECT count(*)::int AS n FROM cancel_t`)]).toEqual([{ n: 2 }]);
      expect((await other.query('SELECT count(*)::int AS n FROM cancel_t')).rows).toEqual([{ n: 2 }]);
    } finally {
      await sql.end({ timeout: 5 });
      await Promise.all([a, other].map((x) => x.end().catch(() => undefined)));
    }
  });

  it('a client killed mid-transaction is rolled back at once: its row lock is released and nothing it did survives', async () => {
    const setup = client();
    const a = client();
    const b = client();
    const c = client();
    try {
      await setup.connect();
      await setup.query('DROP TABLE IF EXISTS disc_rows, disc_lock');
      await setup.query('CREATE TABLE disc_rows (id int); CREATE TABLE disc_lock (id int PRIMARY KEY, v int NOT NULL)');
      await setup.query('INSERT INTO disc_lock VALUES (1, 10)');
      await setup.end();

      await Promise.all([a.connect(), b.connect()]);
      await a.query('BEGIN');
      await a.query('INSERT INTO disc_rows SELECT generate_series(1, 5)');
      await a.query('SELECT v FROM disc_lock WHERE id = 1 FOR UPDATE');
      await a.query('UPDATE disc_lock SET v = 999 WHERE id = 1');

      // B waits: it wants the row A has locked.
      const waiting = b.query('UPDATE disc_lock SET v = v + 1 WHERE id = 1 RETURNING v, (SELECT count(*)::int FROM disc_rows) AS rows');
      await new Promise((resolve) => setTimeout(resolve, 200));
      (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();

      const result = await waiting;
      expect(result.rows).toEqual([{ v: 11, rows: 0 }]);

      await c.connect();
      expect((await c.query('SELECT count(*)::int AS n FROM disc_rows')).rows).toEqual([{ n: 0 }]);
      expect((await c.query('SELECT v FROM disc_lock')).rows).toEqual([{ v: 11 }]);
      // The dead connection's session is gone from the server.
      await waitFor(() => server.gateway.connections === 2, 'A to be torn down');
    } finally {
      await Promise.all([setup, a, b, c].map((x) => x.end().catch(() => undefined)));
    }
  });
});
