/**
 * @module
 * Interrupts reach a running statement (issue 19), through a real server: a cancel request, `statement_timeout` and
 * Postgres' idle timeouts stop a statement that is sleeping or busy on the CPU, with Postgres' SQLSTATEs and texts,
 * while the database's engine (the server's main thread delivers them) and its other connections carry on. A sleeping
 * statement costs no CPU. Clients: postgres.js (its query.cancel() sends a CancelRequest) and pg.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Writable } from 'node:stream';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { failure, rows } from './support/databases.js';

useTemporaryDataHome('pgdev-interrupts-');

/** pg-copy-streams' COPY FROM STDIN (the package has no types). */
const { from: copyFrom } = createRequire(import.meta.url)('pg-copy-streams') as { from(sql: string): Writable & pg.Submittable };

const CPU_BOUND = 'SELECT count(*) FROM generate_series(1, 300000000)';

let server: PgdevServer;
beforeAll(async () => {
  server = await startServer({ name: 'interrupts', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

/** A CancelRequest, as a client sends it on a new connection. */
function sendCancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(packet));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}

async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await work;
  return { value, ms: Date.now() - started };
}

describe('interrupts reach a running statement', { timeout: 120_000 }, () => {
  it('statement_timeout ends a sleeping and a CPU-bound statement with 57014; the connection and the others go on', async () => {
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    try {
      await client.query("SET statement_timeout = '300ms'");
      for (const statement of ['SELECT pg_sleep(30)', CPU_BOUND]) {
        const { value, ms } = await timed(failure(client.query(statement)));
        expect(value).toMatchObject({ code: '57014', message: 'canceling statement due to statement timeout' });
        expect(ms, statement).toBeLessThan(10_000); // 30 s or minutes without it
      }
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
    expect(await rows(server.databaseUrl, 'SELECT 2 AS two')).toEqual([{ two: 2 }]);
  });

  it('a cancel request ends a sleeping and a CPU-bound statement with 57014, leaves its transaction failed, and the process keeps its sessions', async () => {
    const sql = postgres(server.databaseUrl, { max: 1, onnotice: () => undefined });
    const other = new pg.Client({ connectionString: server.databaseUrl });
    await other.connect();
    try {
      await other.query('CREATE TEMP TABLE kept (v int); INSERT INTO kept VALUES (7)');
      for (const statement of ['SELECT pg_sleep(30)', CPU_BOUND]) {
        const running = sql.unsafe(statement);
        const outcome = running.then(() => undefined, (error: Error & { code?: string }) => error);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const { value, ms } = await timed((async () => {
          await running.cancel();
          return outcome;
        })());
        expect(value).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
        expect(ms, statement).toBeLessThan(10_000);
      }
      // Inside a transaction, the interrupted statement leaves it failed (25P02) until ROLLBACK, as on Postgres. With
      // pg, the CancelRequest is sent by hand (its pid and secret key are the client's BackendKeyData).
      const inTransaction = new pg.Client({ connectionString: server.databaseUrl });
      await inTransaction.connect();
      try {
        await inTransaction.query('BEGIN');
        const outcome = failure(inTransaction.query('SELECT pg_sleep(30)'));
        await new Promise((resolve) => setTimeout(resolve, 500));
        const keys = inTransaction as unknown as { processID: number; secretKey: number };
        await sendCancelRequest(server.ports.database, keys.processID, keys.secretKey);
        expect(await outcome).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
        expect(await failure(inTransaction.query('SELECT 1'))).toMatchObject({ code: '25P02' });
        await inTransaction.query('ROLLBACK');
        // A cancel with a wrong key is ignored, as on Postgres.
        const slept = inTransaction.query('SELECT pg_sleep(1)');
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sendCancelRequest(server.ports.database, keys.processID, keys.secretKey ^ 1);
        expect((await slept).rows).toEqual([{ pg_sleep: '' }]);
      } finally {
        await inTransaction.end();
      }
      // The other connection kept its session: its temporary table is there (the engine was not replaced).
      expect((await other.query('SELECT v FROM kept')).rows).toEqual([{ v: 7 }]);
    } finally {
      await sql.end();
      await other.end();
    }
  });

  it('a sleeping statement costs next to no CPU: pg_sleep(3) under half a CPU-second (it spun for 2.8)', async () => {
    // The server runs in this process, its databases in threads: this process's CPU is the server's (and the client's).
    const before = process.cpuUsage();
    await rows(server.databaseUrl, 'SELECT pg_sleep(3)');
    const used = process.cpuUsage(before);
    expect((used.user + used.system) / 1e6).toBeLessThan(0.5);
  });

  it('a cancel sent as the first of two pipelined statements ends cancels the second, as on Postgres (postgres.js "Cancel piped query")', async () => {
    const sql = postgres(server.databaseUrl, { max: 1, onnotice: () => undefined });
    try {
      for (let round = 0; round < 3; round++) {
        await sql`SELECT 1`;
        const first = sql`SELECT pg_sleep(0.5) AS first`.execute();
        const second = sql`SELECT pg_sleep(2) AS second`;
        // postgres.js sends the CancelRequest once the first statement's answer is in, as the second becomes current.
        setTimeout(() => void second.cancel(), 200);
        const { value, ms } = await timed(second.then(() => undefined, (error: Error & { code?: string }) => error));
        expect(value).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
        expect(ms).toBeLessThan(1_500);
        expect(await first).toEqual([{ first: '' }]);
      }
    } finally {
      await sql.end();
    }
  });

  it('a cancel request during COPY FROM STDIN ends it with 57014 and loads nothing; the connection carries on', async () => {
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    try {
      await client.query('CREATE TABLE copied (v int)');
      const stream = client.query(copyFrom('COPY copied FROM STDIN'));
      const outcome = new Promise<Error & { code?: string }>((resolve) => {
        stream.on('error', resolve);
        stream.on('finish', () => resolve(new Error('the COPY finished')));
      });
      stream.write('1\n2\n3\n');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const keys = client as unknown as { processID: number; secretKey: number };
      await sendCancelRequest(server.ports.database, keys.processID, keys.secretKey);
      expect(await outcome).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
      expect((await client.query('SELECT count(*)::int AS n FROM copied')).rows).toEqual([{ n: 0 }]);
      // The next COPY on the same connection works.
      const again = client.query(copyFrom('COPY copied FROM STDIN'));
      await new Promise<void>((resolve, reject) => again.on('finish', resolve).on('error', reject).end('4\n5\n'));
      expect((await client.query('SELECT count(*)::int AS n FROM copied')).rows).toEqual([{ n: 2 }]);
    } finally {
      await client.end();
    }
  });

  it("Postgres' idle_in_transaction_session_timeout ends that connection with 25P03; the database serves on", async () => {
    const client = new pg.Client({ connectionString: server.databaseUrl });
    const ended = new Promise<Error & { code?: string }>((resolve) => client.on('error', resolve));
    await client.connect();
    await client.query("SET idle_in_transaction_session_timeout = '300ms'");
    await client.query('BEGIN');
    const error = await Promise.race([ended, new Promise<undefined>((resolve) => setTimeout(resolve, 15_000))]);
    expect(error).toMatchObject({ code: '25P03', message: 'terminating connection due to idle-in-transaction timeout' });
    await client.end().catch(() => undefined);
    expect(await rows(server.databaseUrl, 'SELECT 3 AS three')).toEqual([{ three: 3 }]);
  });
});
