/**
 * @module
 * Gaps that drivers' own test suites found (issue 12), each with a real client: `SET LOCAL` and settings changed
 * inside a transaction end with it, a LISTEN that postgres.js runs again by re-executing its prepared statement
 * still delivers after an UNLISTEN, and two-phase commit works across connections (pg and psql).
 */
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { runTool } from './support/tools.js';
import { WireClient, simpleQuery } from './support/wire.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'gaps' });
});

afterAll(async () => {
  await server?.close();
});

/** psql with the given commands, unaligned rows only. */
const psql = (commands: string[]) => runTool('psql', [server.url, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((command) => ['-c', command])]);

const timeZone = async (client: pg.Client) => (await client.query<{ TimeZone: string }>('SHOW TimeZone')).rows[0]!.TimeZone;

describe('gateway: settings changed inside a transaction', () => {
  it('SET LOCAL lasts until COMMIT, and is reported to the client when it starts and when it ends', async () => {
    const wire = await WireClient.connect(server.port);
    const reported = (messages: Array<{ type: string; body: Buffer }>) =>
      messages.filter((m) => m.type === 'S').map((m) => m.body.toString('utf8').split('\0').slice(0, 2).join('='));
    try {
      const before = (await wire.request(simpleQuery('SHOW TimeZone'))).find((m) => m.type === 'D')!.body.toString('utf8', 6);
      await wire.request(simpleQuery('BEGIN'));
      expect(reported(await wire.request(simpleQuery("SET LOCAL TimeZone = 'Asia/Tokyo'")))).toEqual(['TimeZone=Asia/Tokyo']);
      for (let i = 0; i < 3; i++) expect(reported(await wire.request(simpleQuery('SELECT 1')))).toEqual([]);
      expect(reported(await wire.request(simpleQuery('COMMIT')))).toEqual([`TimeZone=${before}`]);
      const after = (await wire.request(simpleQuery('SHOW TimeZone'))).find((m) => m.type === 'D')!.body.toString('utf8', 6);
      expect(after).toBe(before);
    } finally {
      wire.end();
    }
  });

  it('a SET in a rolled-back transaction is undone, one in a committed transaction stays; another connection sees neither', async () => {
    const a = await server.connect();
    const b = await server.connect();
    try {
      const initial = await timeZone(b);
      await a.query('BEGIN');
      await a.query("SET TimeZone = 'Europe/Paris'");
      await a.query("SET LOCAL search_path = pg_catalog");
      for (let i = 0; i < 5; i++) await a.query('SELECT $1::int', [i]);
      expect(await timeZone(a)).toBe('Europe/Paris');
      await a.query('ROLLBACK');
      expect(await timeZone(a)).toBe(initial);

      await a.query('BEGIN');
      await a.query("SET TimeZone = 'Europe/Paris'");
      await a.query("SET LOCAL TimeZone = 'Asia/Tokyo'");
      await a.query('SELECT 1');
      expect(await timeZone(a)).toBe('Asia/Tokyo');
      await a.query('COMMIT');
      expect(await timeZone(a)).toBe('Europe/Paris');
      expect((await a.query('SHOW search_path')).rows[0].search_path).toBe('public');
      expect(await timeZone(b)).toBe(initial);
      expect(await timeZone(a)).toBe('Europe/Paris');
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});

describe('gateway: LISTEN run again from a prepared statement', () => {
  it('postgres.js: listen, unlisten, listen again on one connection; the notifications arrive again', async () => {
    const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
    const notifier = await server.connect();
    const received: string[] = [];
    let wake: (() => void) | undefined;
    const next = () => new Promise<void>((resolve, reject) => {
      wake = resolve;
      setTimeout(() => reject(new Error(`no notification within 5 s; received ${JSON.stringify(received)}`)), 5_000);
    });
    const onNotify = (payload: string) => {
      received.push(payload);
      wake?.();
    };
    try {
      const first = await sql.listen('gaps_channel', onNotify);
      let arrived = next();
      await notifier.query("NOTIFY gaps_channel, 'one'");
      await arrived;
      await first.unlisten();
      await sql.listen('gaps_channel', onNotify);
      arrived = next();
      await notifier.query("NOTIFY gaps_channel, 'two'");
      await arrived;
      expect(received).toEqual(['one', 'two']);
    } finally {
      await sql.end({ timeout: 1 });
      await notifier.end();
    }
  });
});

describe('gateway: two-phase commit', () => {
  it('PREPARE TRANSACTION on one connection; COMMIT PREPARED and ROLLBACK PREPARED from others (pg, psql)', async () => {
    const a = await server.connect();
    const b = await server.connect();
    try {
      await a.query('CREATE TABLE twopc (id int PRIMARY KEY)');
      await a.query('BEGIN');
      await a.query('INSERT INTO twopc VALUES (1)');
      await a.query("PREPARE TRANSACTION 'gaps_commit'");
      await a.query('BEGIN');
      await a.query('INSERT INTO twopc VALUES (2)');
      await a.query("PREPARE TRANSACTION 'gaps_rollback'");
      // Prepared, the transactions belong to no connection: the one that prepared them can go on with other work.
      expect((await a.query('SELECT count(*)::int AS n FROM twopc')).rows).toEqual([{ n: 0 }]);
      expect((await b.query('SELECT gid FROM pg_prepared_xacts ORDER BY gid')).rows).toEqual([
        { gid: 'gaps_commit' },
        { gid: 'gaps_rollback' },
      ]);

      await b.query("COMMIT PREPARED 'gaps_commit'");
      const rolledBack = await psql(["ROLLBACK PREPARED 'gaps_rollback'", 'SELECT count(*) FROM pg_prepared_xacts']);
      expect(rolledBack).toEqual({ status: 0, stdout: 'ROLLBACK PREPARED\n0\n', stderr: '' });
      expect((await a.query('SELECT id FROM twopc ORDER BY id')).rows).toEqual([{ id: 1 }]);

      const missing = await b.query("COMMIT PREPARED 'gaps_commit'").catch((error: pg.DatabaseError) => error);
      expect(missing).toMatchObject({ code: '42704', message: 'prepared transaction with identifier "gaps_commit" does not exist' });
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});
