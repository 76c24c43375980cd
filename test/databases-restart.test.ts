/**
 * @module
 * A client connecting while a database process restarts (issue 22): after `kill -9` of the process, a connection
 * made at once waits for the database to open again (the default database comes back by itself, a created one opens
 * on that connection) and sees the committed data, where it used to get `XX000 Channel closed`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { databaseProcesses, rows, within } from './support/databases.js';
import { waitFor } from './support/wait.js';

useTemporaryDataHome('pgdev-databases-restart-');

describe('a database process killed under its clients', { timeout: 180_000 }, () => {
  let server: PgdevServer;

  beforeAll(async () => {
    // Processes of their own, to be killed (a thread ends with its server's process).
    server = await startServer({ name: 'restart', databaseHost: 'process', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    await rows(server.databaseUrl, 'CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2)');
  });
  afterAll(async () => {
    await server?.close();
  });

  /** The one database process running now (the default database's, before any other is opened). */
  const onlyProcess = () => {
    const pids = databaseProcesses();
    expect(pids).toHaveLength(1);
    return pids[0]!;
  };

  it('makes a client that connects at once wait for the default database to come back', async () => {
    for (let round = 0; round < 3; round++) {
      const pid = onlyProcess();
      process.kill(pid, 'SIGKILL');
      // No wait at all in the first round; then a little, to meet the restart at other moments.
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, round * 40));
      const answer = await within(rows(server.databaseUrl, 'SELECT count(*)::int AS n FROM kept'), 60_000, `a connection after kill -9 (round ${round})`);
      expect(answer).toEqual([{ n: 2 }]);
      await waitFor(() => databaseProcesses().length === 1 && !databaseProcesses().includes(pid), `the old process ${pid} to be gone`, 30_000);
    }
  });

  it('opens a created database again for a client that connects just after its process was killed', async () => {
    const defaultPid = onlyProcess();
    await server.createDatabase('other');
    await rows(server.databaseUrlFor('other'), "CREATE TABLE t (v text); INSERT INTO t VALUES ('there')");
    // The created database's process, and the spare kept warm once created databases are in use: both killed.
    const killed = databaseProcesses().filter((pid) => pid !== defaultPid);
    expect(killed.length).toBeGreaterThanOrEqual(1);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const answer = await within(rows(server.databaseUrlFor('other'), 'SELECT v FROM t'), 60_000, 'a connection to "other" after kill -9');
    expect(answer).toEqual([{ v: 'there' }]);
    expect(await rows(server.databaseUrl, 'SELECT count(*)::int AS n FROM kept')).toEqual([{ n: 2 }]);
  });
});
