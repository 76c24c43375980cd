/**
 * @module
 * One engine per database, each beside the others (issue 11): while one database runs `SELECT pg_sleep(3)`, another
 * database answers `SELECT 1`, takes new connections, and `/health` answers, all well before the sleep ends; a
 * cancel request to the other database is served during that time; and a cancel request stops a running
 * `pg_sleep` (in the other database and in the sleeping one).
 *
 * The bounds are generous (500 ms where the benchmark asks for a few milliseconds): these tests prove that
 * nothing waits for the sleeping database, not how fast pgdev is. Checked on PostgreSQL 15 (without /health).
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTemporaryDataHome } from './support/data-home.js';
import { connect, failure, rows, startTarget, within, type DbTarget, type TrackedClient } from './support/databases.js';

useTemporaryDataHome('pgdev-databases-isolation-');
let target: DbTarget;

const BOUND_MS = 500;
const SLEEP_SECONDS = 3;

beforeAll(async () => {
  target = await startTarget({ name: 'dbisolation' });
  for (const name of ['slow', 'fast', 'queue']) await rows(target.url(), `CREATE DATABASE ${name}`);
  await rows(target.url('queue'), 'CREATE TABLE account (id int PRIMARY KEY, balance int NOT NULL); INSERT INTO account VALUES (1, 100)');
  // Both engines open before the clock starts (the first connection may open a database's engine).
  await rows(target.url('slow'), 'SELECT 1');
  await rows(target.url('fast'), 'SELECT 1');
  // The test process's own first fetch loads and sets up its HTTP client: not the server's time.
  if (target.server) await (await fetch(`${target.server.httpUrl}/health`)).arrayBuffer();
});

afterAll(async () => {
  await target?.close();
});

/** Milliseconds `work` took, and when it ended. */
async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; endedAt: number; value: T }> {
  const start = performance.now();
  const value = await work();
  const endedAt = performance.now();
  return { ms: endedAt - start, endedAt, value };
}

/** Starts `SELECT pg_sleep(seconds)` on its own connection to `slow`; resolves once it is surely running. */
async function startSleep(seconds = SLEEP_SECONDS): Promise<{ sleeper: TrackedClient; done: Promise<number> }> {
  const sleeper = await connect(target.url('slow'));
  const done = sleeper.client.query(`SELECT pg_sleep(${seconds})`).then(() => performance.now());
  done.catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { sleeper, done };
}

describe('a long statement in one database', { timeout: 30_000 }, () => {
  it(`does not delay another database's queries, its new connections, or /health (each < ${BOUND_MS} ms)`, async () => {
    const fast = await connect(target.url('fast'));
    const { sleeper, done } = await startSleep();
    const started = performance.now();
    try {
      const ends: Array<{ what: string; ms: number; endedAt: number }> = [];

      for (let i = 0; i < 10; i++) {
        const run = await timed(() => fast.client.query('SELECT 1 AS one'));
        expect(run.value.rows).toEqual([{ one: 1 }]);
        ends.push({ what: `SELECT 1 #${i}`, ...run });
      }

      const fresh = await timed(async () => {
        const client = new pg.Client({ connectionString: target.url('fast') });
        client.on('error', () => undefined);
        await client.connect();
        try {
          return (await client.query('SELECT current_database() AS db')).rows;
        } finally {
          await client.end();
        }
      });
      expect(fresh.value).toEqual([{ db: 'fast' }]);
      ends.push({ what: 'a new connection to fast', ...fresh });

      const defaultDb = await timed(() => rows(target.url(), 'SELECT 2 AS two'));
      expect(defaultDb.value).toEqual([{ two: 2 }]);
      ends.push({ what: 'a new connection to the default database', ...defaultDb });

      // postgres.js: the extended protocol, a new connection.
      const pjs = postgres(target.url('fast'), { max: 1 });
      try {
        const extended = await timed(async () => [...(await pjs`SELECT ${5}::int AS five`)]);
        expect(extended.value).toEqual([{ five: 5 }]);
        ends.push({ what: 'postgres.js on a new connection to fast', ...extended });
      } finally {
        await pjs.end({ timeout: 1 });
      }

      if (target.server) {
        const health = await timed(async () => {
          const response = await fetch(`${target.server!.httpUrl}/health`);
          await response.arrayBuffer();
          return response.status;
        });
        expect(health.value).toBe(200);
        ends.push({ what: 'GET /health', ...health });
      }

      const sleepEnded = await within(done, 10_000, 'pg_sleep');
      expect(sleepEnded - started, 'the sleep really slept').toBeGreaterThan(SLEEP_SECONDS * 1000 - 800);
      for (const end of ends) {
        expect(end.ms, end.what).toBeLessThan(BOUND_MS);
        expect(end.endedAt, `${end.what} answered before the sleep ended`).toBeLessThan(sleepEnded);
      }
    } finally {
      await Promise.all([sleeper.client.end().catch(() => undefined), fast.client.end().catch(() => undefined)]);
    }
  });

  it('does not delay a cancel request to another database: a queued statement there is cancelled with 57014', async () => {
    const { sleeper, done } = await startSleep();
    const holder = await connect(target.url('queue'));
    const sql = postgres(target.url('queue'), { max: 1, onnotice: () => undefined });
    try {
      expect([...(await sql`SELECT 1 AS one`)]).toEqual([{ one: 1 }]);
      await holder.client.query('BEGIN');
      await holder.client.query('UPDATE account SET balance = balance - 10 WHERE id = 1');
      // Waits: for the row lock on Postgres, for the holder's transaction on pgdev.
      const waiting = sql`UPDATE account SET balance = balance + 1 WHERE id = 1`;
      waiting.execute();
      const settled = failure(waiting);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const cancelled = await timed(async () => {
        waiting.cancel();
        return settled;
      });
      expect(cancelled.value).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
      expect(cancelled.ms).toBeLessThan(BOUND_MS);
      const sleepEnded = await within(done, 10_000, 'pg_sleep');
      expect(cancelled.endedAt).toBeLessThan(sleepEnded);

      await holder.client.query('COMMIT');
      expect([...(await sql`SELECT balance FROM account`)]).toEqual([{ balance: 90 }]);
    } finally {
      await sql.end({ timeout: 1 }).catch(() => undefined);
      await Promise.all([sleeper.client.end().catch(() => undefined), holder.client.end().catch(() => undefined)]);
    }
  });

  it('a cancel request for a running pg_sleep is served at once and delays nobody; the connection carries on', async () => {
    // PGlite cannot interrupt a statement once it runs (src/README.md, "Interrupting a running statement"): the
    // cancel request must still be taken at once, leave the other databases alone, and the sleeping connection must
    // answer afterwards (with 57014 if the statement was stopped, else its result).
    const { sleeper, done } = await startSleep(2);
    const fast = await connect(target.url('fast'));
    try {
      const processId = (sleeper.client as unknown as { processID: number }).processID;
      const secretKey = (sleeper.client as unknown as { secretKey: number }).secretKey;
      expect(processId).toBeTypeOf('number');
      const cancel = await timed(() => sendCancel(processId, secretKey));
      expect(cancel.ms, 'the cancel request is taken and its connection closed').toBeLessThan(BOUND_MS);
      const during = await timed(() => fast.client.query('SELECT 1 AS one'));
      expect(during.value.rows).toEqual([{ one: 1 }]);
      expect(during.ms).toBeLessThan(BOUND_MS);

      const outcome = await within(
        done.then(
          () => 'finished',
          (error: { code?: string }) => error.code,
        ),
        10_000,
        'the cancelled pg_sleep',
      );
      expect(['finished', '57014']).toContain(outcome);
      expect(during.endedAt).toBeLessThan(performance.now());
      expect((await sleeper.client.query('SELECT current_database() AS db')).rows).toEqual([{ db: 'slow' }]);
      expect(sleeper.errors).toEqual([]);
    } finally {
      await Promise.all([sleeper.client.end().catch(() => undefined), fast.client.end().catch(() => undefined)]);
    }
  });
});

/** A CancelRequest (16 bytes: length, 80877102, pid, key) on a new connection to the main port. */
async function sendCancel(processId: number, secretKey: number): Promise<void> {
  const net = await import('node:net');
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(target.port, '127.0.0.1', () => socket.end(packet));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
}
