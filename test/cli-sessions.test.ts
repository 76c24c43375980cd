/**
 * @module
 * `pgdev sessions` and the foreground server's long-wait line (issue 12): a running server's connections, who holds
 * the database and who waits for it, from the CLI in another process, as a table and as JSON; and its errors.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupCli, createDataHome, runCli, serverPorts, startForeground, waitFor, type DataHome, type ForegroundServer } from './support/cli.js';

type Session = { database: string; pid: number; applicationName: string; state: string; holdsDatabase: boolean; waitingFor: string | null; query: string };

describe('pgdev sessions', { timeout: 120_000 }, () => {
  let home: DataHome;
  let server: ForegroundServer;
  let port: number;

  beforeAll(async () => {
    home = createDataHome();
    const { ports, args } = await serverPorts();
    port = ports.database;
    server = await startForeground(['-n', 'watched', ...args], { env: home.env });
  });
  afterAll(cleanupCli);

  const client = async (applicationName: string) => {
    const connection = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'template1', application_name: applicationName });
    await connection.connect();
    return connection;
  };
  const sessions = async () => {
    const result = await runCli(['sessions', 'watched', '--json'], { env: home.env });
    expect(result.status).toBe(0);
    return JSON.parse(result.stdout) as Session[];
  };

  it('shows who holds the database, who waits for it, and logs a wait of more than 5 s', async () => {
    const holder = await client('holder');
    const waiter = await client('waiter');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM pg_class');
      const waiting = waiter.query('SELECT 42 AS answer');
      await waitFor(async () => (await sessions()).some((session) => session.waitingFor === 'database'), 10_000, 'the waiter to wait');

      const list = await sessions();
      expect(list.find((session) => session.applicationName === 'holder')).toMatchObject({
        database: 'postgres', state: 'idle in transaction', holdsDatabase: true, waitingFor: null, query: 'SELECT count(*) FROM pg_class',
      });
      expect(list.find((session) => session.applicationName === 'waiter')).toMatchObject({
        state: 'active', holdsDatabase: false, waitingFor: 'database', query: 'SELECT 42 AS answer',
      });

      const table = await runCli(['sessions', 'watched'], { env: home.env });
      expect(table.stdout.split('\n')[0]).toMatch(/^DATABASE\s+PID\s+USER\s+APPLICATION\s+STATE\s+DATABASE USE\s+LAST STATEMENT$/);
      expect(table.stdout).toMatch(/holder\s+idle in transaction\s+holds the database \(\d+\.\d s\)\s+SELECT count\(\*\) FROM pg_class/);
      expect(table.stdout).toMatch(/waiter\s+active\s+waits for the database \(\d+\.\d s\)\s+SELECT 42 AS answer/);

      await waitFor(() => /has waited 5 s/.test(server.stderr), 15_000, 'the long-wait line');
      expect(server.stderr).toMatch(
        /pgdev: connection \d+ has waited 5 s for the postgres database, held by connection \d+ \(holder\), idle in transaction, whose last statement was: SELECT count\(\*\) FROM pg_class/,
      );
      await holder.query('COMMIT');
      expect((await waiting).rows).toEqual([{ answer: 42 }]);
    } finally {
      await holder.end();
      await waiter.end();
    }
  });

  it('says when nobody is connected', async () => {
    await waitFor(async () => (await sessions()).length === 0, 10_000, 'the connections to close');
    const result = await runCli(['sessions', 'watched'], { env: home.env });
    expect(result.stdout).toBe('no connections to "watched"\n');
  });

  it('refuses an unknown server and a stopped one, one line each', async () => {
    const unknown = await runCli(['sessions', 'nosuch'], { env: home.env });
    expect(unknown).toMatchObject({ status: 1, stdout: '', stderr: 'pgdev: no server named "nosuch"; see `pgdev ls`\n' });
    const other = createDataHome();
    const { args } = await serverPorts();
    const stopped = await runCli(['-d', '-n', 'idle', ...args], { env: other.env });
    expect(stopped.status).toBe(0);
    expect((await runCli(['stop', 'idle'], { env: other.env })).status).toBe(0);
    const result = await runCli(['sessions', 'idle'], { env: other.env });
    expect(result).toMatchObject({ status: 1, stdout: '', stderr: 'pgdev: server "idle" is not running; start it with `pgdev start idle`\n' });
  });
});
