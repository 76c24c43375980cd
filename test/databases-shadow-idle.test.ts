/**
 * @module
 * The shadow database closes when idle (issue 21): it is scratch space for `prisma migrate dev`, and an in-memory
 * database process left open after one migration held about 330 MiB for good. After `idleCloseMs` without
 * connections its process exits, with one log line; the next connection gets a new, empty shadow database. The
 * default database of the main port stays open.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { databaseProcesses, rows, within } from './support/databases.js';
import { waitFor } from './support/wait.js';

useTemporaryDataHome('pgdev-shadow-idle-');

describe('the shadow database', { timeout: 60_000 }, () => {
  const started: PgdevServer[] = [];
  afterAll(async () => {
    await Promise.all(started.map((server) => within(server.close(), 10_000, 'close').catch(() => undefined)));
  });

  for (const persistence of ['memory', 'persistent'] as const) {
    it(`of a ${persistence} server closes after idleCloseMs without connections, and comes back empty`, async () => {
      const logged: string[] = [];
      const before = databaseProcesses();
      const server = await startServer({
        name: `shadow-${persistence}`, persistence, idleCloseMs: 1_000, port: 0, databasePort: 0, shadowDatabasePort: 0, log: (line) => logged.push(line),
      });
      started.push(server);
      const mine = () => databaseProcesses().filter((pid) => !before.includes(pid));
      const [main] = mine();
      expect(main).toBeDefined();

      await rows(server.shadowDatabaseUrl, 'CREATE TABLE _prisma_migrations (id text)');
      const shadow = mine().filter((pid) => pid !== main);
      expect(shadow, 'the shadow database has a process of its own').toHaveLength(1);

      await waitFor(() => !databaseProcesses().includes(shadow[0]!), 'the idle shadow database process to exit', 20_000);
      expect(logged.filter((line) => line.includes('closed after'))).toEqual(['pgdev: shadow database "postgres" closed after 1 s without connections']);
      expect(mine(), 'the default database stays open').toContain(main);

      expect(await rows(server.shadowDatabaseUrl, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = '_prisma_migrations'")).toEqual([{ n: 0 }]);
      expect(await rows(server.databaseUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await within(server.close(), 10_000, 'close');
    });
  }
});
