/**
 * @module
 * Proves that the gateway schedules client connections as separate Postgres sessions: whole transactions and whole
 * extended-protocol batches run without being interleaved with other clients' work (`pg` pool read-modify-write
 * on one counter, many concurrent parameterized queries), named prepared statements are private to a connection
 * and deallocated when it closes, and postgres.js (named statements, pipelining, `sql.begin`) works over a pool.
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { waitFor } from './support/wait.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'concurrency' });
});

afterAll(async () => {
  await server?.close();
});

describe('gateway: concurrency', () => {
  it('a pg Pool of 10 running 200 concurrent read-modify-write transactions on one counter ends at exactly 200', async () => {
    const pool = new pg.Pool({ connectionString: server.url, max: 10 });
    try {
      await pool.query('DROP TABLE IF EXISTS counter; CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0)');
      const increment = async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const { rows } = await client.query<{ n: number }>('SELECT n FROM counter');
          // Yield to the event loop so that, were transactions interleaved, another one would read the same n.
          await new Promise((resolve) => setImmediate(resolve));
          await client.query('UPDATE counter SET n = $1', [rows[0]!.n + 1]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      };
      await Promise.all(Array.from({ length: 200 }, increment));
      expect(pool.totalCount).toBe(10);
      const { rows } = await pool.query<{ n: number }>('SELECT n FROM counter');
      expect(rows).toEqual([{ n: 200 }]);
    } finally {
      await pool.end();
    }
  });

  it('extended-protocol batches from concurrent clients never interleave: every parameterized query gets its own result', async () => {
    const clients = Array.from({ length: 6 }, () => new pg.Client(server.url));
    await Promise.all(clients.map((client) => client.connect()));
    try {
      // The clients run side by side; each sends its queries one after another (pg does not pipeline).
      let checked = 0;
      const runClient = async (client: pg.Client, c: number) => {
        for (let round = 0; round < 40; round++) {
          const n = c * 1000 + round;
          const { rows } = await client.query<{ n: number; label: string; doubled: number }>(
            'SELECT $1::int AS n, $2::text AS label, $1::int * 2 AS doubled FROM generate_series(1, $3::int)',
            [n, `client${c}-round${round}`, (round % 3) + 1],
          );
          expect(rows).toEqual(Array.from({ length: (round % 3) + 1 }, () => ({ n, label: `client${c}-round${round}`, doubled: n * 2 })));
          checked++;
        }
      };
      const results = await Promise.allSettled(clients.map(runClient));
      const failures = results.filter((result) => result.status === 'rejected');
      expect(failures).toEqual([]);
      expect(checked).toBe(240);
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  it('named prepared statements are private per connection and deallocated when the connection closes', async () => {
    await waitFor(() => server.gateway.connections === 0, 'earlier connections to close');
    const a = new pg.Client(server.url);
    const b = new pg.Client(server.url);
    const c = new pg.Client(server.url);
    for (const client of [a, b, c]) client.on('error', () => undefined);
    try {
      await Promise.all([a.connect(), b.connect()]);
      const fromA = () => a.query({ name: 's1', text: "SELECT 'a' AS who, $1::int + 1 AS v", values: [1] });
      const fromB = () => b.query({ name: 's1', text: "SELECT 'b' AS who, $1::int * 10 AS v, 'extra' AS x", values: [7] });
      // First use prepares s1 on each connection; later uses re-execute each connection's own s1.
      for (let i = 0; i < 5; i++) {
        const [ra, rb] = await Promise.all([fromA(), fromB()]);
        expect(ra.rows).toEqual([{ who: 'a', v: 2 }]);
        expect(rb.rows).toEqual([{ who: 'b', v: 70, x: 'extra' }]);
      }
      await a.end();
      // B still has its own s1 after A left.
      const again = await b.query({ name: 's1', text: "SELECT 'b' AS who, $1::int * 10 AS v, 'extra' AS x", values: [3] });
      expect(again.rows).toEqual([{ who: 'b', v: 30, x: 'extra' }]);
      await b.end();

      await waitFor(() => server.gateway.connections === 0, 'A and B to be torn down');
      await c.connect();
      // Nothing of A's or B's statements is left behind in the engine.
      const left = await c.query<{ count: string }>('SELECT count(*) FROM pg_prepared_statements');
      expect(left.rows).toEqual([{ count: '0' }]);
      const r = await c.query({ name: 's1', text: "SELECT 'c' AS who, $1::text AS v", values: ['x'] });
      expect(r.rows).toEqual([{ who: 'c', v: 'x' }]);
    } finally {
      await Promise.all([a, b, c].map((client) => client.end().catch(() => undefined)));
    }
  });

  it('postgres.js: 50 concurrent queries (named statements, pipelining) over max: 5 and sql.begin transactions', async () => {
    const sql = postgres(server.url, { max: 5, onnotice: () => undefined });
    try {
      await sql`DROP TABLE IF EXISTS pjs_items`;
      await sql`CREATE TABLE pjs_items (id int PRIMARY KEY, label text NOT NULL)`;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => sql<Array<{ i: number; label: string; sq: number }>>`
          SELECT ${i}::int AS i, ${`item-${i}`}::text AS label, ${i}::int * ${i}::int AS sq
        `),
      );
      results.forEach((rows, i) => expect([...rows]).toEqual([{ i, label: `item-${i}`, sq: i * i }]));

      // The same statements again: postgres.js now re-executes its named prepared statements.
      const again = await Promise.all(
        Array.from({ length: 50 }, (_, i) => sql<Array<{ i: number }>>`SELECT ${i + 100}::int AS i, ${'x'}::text AS label, ${0}::int AS sq`),
      );
      again.forEach((rows, i) => expect(rows[0]!.i).toBe(i + 100));

      const inserted = await sql.begin(async (tx) => {
        await tx`INSERT INTO pjs_items ${tx([{ id: 1, label: 'one' }, { id: 2, label: 'two' }])}`;
        const [row] = await tx<Array<{ count: number }>>`SELECT count(*)::int AS count FROM pjs_items`;
        return row!.count;
      });
      expect(inserted).toBe(2);

      await expect(
        sql.begin(async (tx) => {
          await tx`INSERT INTO pjs_items VALUES (3, 'three')`;
          throw new Error('abort this transaction');
        }),
      ).rejects.toThrow('abort this transaction');

      const rows = await sql<Array<{ id: number; label: string }>>`SELECT id, label FROM pjs_items ORDER BY id`;
      expect([...rows]).toEqual([{ id: 1, label: 'one' }, { id: 2, label: 'two' }]);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});
