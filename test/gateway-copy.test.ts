/**
 * @module
 * Proves that real libpq tools work through the gateway: `psql` connects with its default sslmode (the SSLRequest is
 * answered), COPY FROM STDIN and COPY TO STDOUT move data exactly, a COPY inside a rolled-back transaction leaves no
 * rows, COPY FROM STDIN in the extended protocol is refused with a message that says what to do (and fails the
 * transaction it is part of, as an error does on Postgres), and `pgbench -i -s 1` followed by `pgbench -c 8 -T 5` runs with zero failed transactions.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { runTool as run, type ToolRun as Run } from './support/tools.js';
import { WireClient, bind, errorFields, execute, parse, simpleQuery, sync } from './support/wire.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'copy' });
});

afterAll(async () => {
  await server?.close();
});

function psql(url: string, commands: string[], input = ''): Promise<Run> {
  const quiet = ['SET client_min_messages TO warning', ...commands];
  return run('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...quiet.flatMap((command) => ['-c', command])], input);
}

describe('gateway: COPY, psql and pgbench', () => {
  it('psql with its default sslmode connects (the SSLRequest is answered)', async () => {
    const url = `postgres://postgres:postgres@127.0.0.1:${server.port}/postgres`;
    const result = await run('psql', [url, '-X', '-A', '-t', '-c', "SELECT 'hello ' || 40 + 2"]);
    expect(result).toEqual({ status: 0, stdout: 'hello 42\n', stderr: '' });
  });

  it('COPY FROM STDIN and COPY TO STDOUT through psql move the data exactly', async () => {
    const setup = await psql(server.url, ['DROP TABLE IF EXISTS copy_items', 'CREATE TABLE copy_items (id int PRIMARY KEY, name text, note text)']);
    expect(setup).toMatchObject({ status: 0, stderr: '' });

    const rows = Array.from({ length: 1000 }, (_, i) => `${i + 1}\tname ${i + 1}\t${i % 7 === 0 ? '\\N' : `tab\\there ${i}`}`);
    const copyIn = await run('psql', [server.url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'COPY copy_items FROM STDIN'], `${rows.join('\n')}\n\\.\n`);
    expect(copyIn).toEqual({ status: 0, stdout: 'COPY 1000\n', stderr: '' });

    const copyOut = await psql(server.url, ['COPY (SELECT * FROM copy_items ORDER BY id) TO STDOUT']);
    expect(copyOut.stderr).toBe('');
    expect(copyOut.status).toBe(0);
    expect(copyOut.stdout).toBe(`${rows.join('\n')}\n`);

    const csv = await psql(server.url, ["COPY (SELECT id, note FROM copy_items WHERE id IN (1, 2) ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)"]);
    expect(csv).toEqual({ status: 0, stdout: 'id,note\n1,\n2,tab\there 1\n', stderr: '' });

    const client = new pg.Client(server.url);
    await client.connect();
    try {
      const { rows: check } = await client.query('SELECT count(*)::int AS n, count(note)::int AS notes, max(id) AS top FROM copy_items');
      expect(check).toEqual([{ n: 1000, notes: 1000 - 143, top: 1000 }]);
    } finally {
      await client.end();
    }
  });

  it('a COPY FROM STDIN inside a transaction that is rolled back leaves no rows', async () => {
    const setup = await psql(server.url, ['DROP TABLE IF EXISTS copy_rollback', 'CREATE TABLE copy_rollback (id int)']);
    expect(setup).toMatchObject({ status: 0, stderr: '' });
    const result = await run(
      'psql',
      [server.url, '-X', '-v', 'ON_ERROR_STOP=1', '-c', 'BEGIN', '-c', 'COPY copy_rollback FROM STDIN', '-c', 'SELECT count(*) AS inside FROM copy_rollback', '-c', 'ROLLBACK'],
      '1\n2\n3\n\\.\n',
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('COPY 3');
    expect(result.stdout).toMatch(/inside\s*\n-+\s*\n\s*3\s*\n/);
    expect(result.stdout).toContain('ROLLBACK');

    const after = await run('psql', [server.url, '-X', '-A', '-t', '-c', 'SELECT count(*) FROM copy_rollback']);
    expect(after).toEqual({ status: 0, stdout: '0\n', stderr: '' });
  });

  it('pgbench -i -s 1 then pgbench -c 8 -T 5 runs with zero failed transactions', async () => {
    const init = await run('pgbench', ['-i', '-s', '1', server.url], '', 120_000);
    expect(init.stderr).toContain('done in');
    expect(init.status).toBe(0);

    const check = await run('psql', [server.url, '-X', '-A', '-t', '-c', 'SELECT (SELECT count(*) FROM pgbench_accounts) || \',\' || (SELECT count(*) FROM pgbench_branches) || \',\' || (SELECT count(*) FROM pgbench_tellers)']);
    expect(check).toEqual({ status: 0, stdout: '100000,1,10\n', stderr: '' });

    const bench = await run('pgbench', ['-c', '8', '-T', '5', server.url], '', 120_000);
    expect(bench.status, bench.stderr).toBe(0);
    expect(bench.stdout).toContain('number of clients: 8');
    expect(bench.stdout).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(bench.stdout)?.[1]);
    expect(processed).toBeGreaterThan(0);

    // Every processed TPC-B transaction appended exactly one history row and moved money consistently.
    const totals = await run('psql', [server.url, '-X', '-A', '-t', '-c',
      "SELECT (SELECT count(*) FROM pgbench_history) || ',' || ((SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(bbalance) FROM pgbench_branches))::text"]);
    expect(totals).toEqual({ status: 0, stdout: `${processed},true\n`, stderr: '' });
  });

  it('COPY FROM STDIN in the extended protocol: 0A000 saying to send it as a query of its own; a transaction it is in fails', async () => {
    const client = await WireClient.connect(server.port);
    try {
      await client.request(simpleQuery('CREATE TABLE IF NOT EXISTS copy_extended (x int)'));
      const copy = [parse('', 'COPY copy_extended FROM STDIN'), bind('', ''), execute(''), sync()];
      const alone = await client.request(...copy);
      const error = alone.find((m) => m.type === 'E');
      expect(error && errorFields(error.body)).toMatchObject({
        C: '0A000', M: 'COPY FROM STDIN is supported only in the simple query protocol: send it as a query of its own',
      });
      expect(alone.at(-1)!.body[0]).toBe('I'.charCodeAt(0));

      await client.request(simpleQuery('BEGIN'));
      const inTransaction = await client.request(...copy);
      expect(inTransaction.some((m) => m.type === 'E')).toBe(true);
      expect(String.fromCharCode(inTransaction.at(-1)!.body[0]!)).toBe('E');
      expect(String.fromCharCode((await client.request(simpleQuery('ROLLBACK'))).at(-1)!.body[0]!)).toBe('I');
    } finally {
      client.end();
    }
  });
});
