/**
 * @module
 * Proves the idle-in-transaction timeout: a connection that sits idle inside a transaction while another client waits
 * for the engine is ended with SQLSTATE 25P03 after the configured time, its work rolled back, and the waiting client
 * proceeds; a connection idle in a transaction that holds no one back is left alone.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'idle-timeout', idleInTransactionTimeoutMs: 500 });
});

afterAll(async () => {
  await server?.close();
});

function client(): pg.Client {
  return new pg.Client(server.url);
}

describe('gateway: idle-in-transaction timeout', () => {
  it('a connection idle in a transaction while another waits is ended with 25P03, and the waiting client proceeds', async () => {
    const setup = client();
    const a = client();
    const b = client();
    const aError = new Promise<Error & { code?: string; severity?: string }>((resolve) => a.on('error', resolve));
    b.on('error', () => undefined);
    setup.on('error', () => undefined);
    try {
      await setup.connect();
      await setup.query('DROP TABLE IF EXISTS idle_t; CREATE TABLE idle_t (id int)');
      await setup.end();
      await Promise.all([a.connect(), b.connect()]);

      await a.query('BEGIN');
      await a.query('INSERT INTO idle_t VALUES (1)');
      const started = Date.now();
      const waiting = b.query('SELECT count(*)::int AS n FROM idle_t');

      const error = await aError;
      expect(error.code).toBe('25P03');
      expect(error.severity).toBe('FATAL');
      expect(error.message).toBe('terminating connection due to idle-in-transaction timeout');
      expect((await waiting).rows).toEqual([{ n: 0 }]);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      await expect(a.query('SELECT 1')).rejects.toThrow();
      expect((await b.query('SELECT count(*)::int AS n FROM idle_t')).rows).toEqual([{ n: 0 }]);
    } finally {
      await Promise.all([setup, a, b].map((x) => x.end().catch(() => undefined)));
    }
  });

  it('a connection idle in a transaction that holds no one back is not ended', async () => {
    const a = client();
    const errors: Error[] = [];
    a.on('error', (error) => errors.push(error));
    try {
      await a.connect();
      await a.query('DROP TABLE IF EXISTS idle_alone; CREATE TABLE idle_alone (id int)');
      await a.query('BEGIN');
      await a.query('INSERT INTO idle_alone VALUES (1)');
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      await a.query('COMMIT');
      expect(errors).toEqual([]);
      expect((await a.query('SELECT count(*)::int AS n FROM idle_alone')).rows).toEqual([{ n: 1 }]);
    } finally {
      await a.end().catch(() => undefined);
    }
  });
});
