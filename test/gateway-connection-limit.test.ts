/**
 * @module
 * Proves the connection cap: with the default maxConnections (100), 200 connections opened at once are either
 * served or refused with SQLSTATE 53300 ("too many clients"), exactly 100 are served, and once they are closed
 * the server serves a fresh client.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_CONNECTIONS } from '../src/gateway/gateway.js';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { waitFor } from './support/wait.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'connection-limit' });
});

afterAll(async () => {
  await server?.close();
});

/** Opens `count` pg clients at once; returns them all, those that got in, and the errors of those refused. */
async function flood(count: number) {
  const clients = Array.from({ length: count }, () => {
    const c = new pg.Client({ connectionString: server.url, connectionTimeoutMillis: 20_000 });
    c.on('error', () => undefined);
    return c;
  });
  const results = await Promise.allSettled(clients.map((c) => c.connect()));
  const served = clients.filter((_, i) => results[i]!.status === 'fulfilled');
  const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error & { code?: string }] : []));
  return { clients, served, refusals };
}

describe('gateway: connection limit', () => {
  it('a client connected before a flood of 200 keeps working; all over the limit get 53300', async () => {
    const before = new pg.Client(server.url);
    before.on('error', () => undefined);
    await before.connect();
    await before.query('DROP TABLE IF EXISTS flood_kept; CREATE TABLE flood_kept (id int); INSERT INTO flood_kept VALUES (7)');
    const { clients, refusals } = await flood(200);
    try {
      expect(refusals.map((e) => `${e.code}: ${e.message}`)).toEqual(
        Array.from({ length: 101 }, () => '53300: sorry, too many clients already'),
      );
      expect((await before.query('SELECT id FROM flood_kept')).rows).toEqual([{ id: 7 }]);
    } finally {
      await Promise.all([before, ...clients].map((c) => c.end().catch(() => undefined)));
    }
    await waitFor(() => server.gateway.connections === 0, 'every connection to close', 15_000);
  });

  it('200 connections at once: 100 are served, the rest get 53300, and the server serves a fresh client afterwards', async () => {
    expect(DEFAULT_MAX_CONNECTIONS).toBe(100);
    const { clients, served, refusals } = await flood(200);
    try {
      expect(refusals.map((e) => `${e.code}: ${e.message}`)).toEqual(
        Array.from({ length: 100 }, () => '53300: sorry, too many clients already'),
      );
      expect(served).toHaveLength(100);
      expect(server.gateway.connections).toBe(100);
      // Every served connection really works, all at once.
      const answers = await Promise.all(served.map((c, i) => c.query<{ n: number }>('SELECT $1::int AS n', [i])));
      expect(answers.map((a) => a.rows[0]!.n)).toEqual(served.map((_, i) => i));
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
    await waitFor(() => server.gateway.connections === 0, 'every connection to close', 15_000);
    const fresh = new pg.Client(server.url);
    await fresh.connect();
    try {
      expect((await fresh.query("SELECT 'still serving' AS status")).rows).toEqual([{ status: 'still serving' }]);
    } finally {
      await fresh.end();
    }
  });
});
