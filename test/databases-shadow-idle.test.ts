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
import { rows, within } from './support/databases.js';
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
      const server = await startServer({
        name: `shadow-${persistence}`, persistence, idleCloseMs: 1_000, port: 0, databasePort: 0, shadowDatabasePort: 0, log: (line) => logged.push(line),
      });
      started.push(server);
      expect(server.openDatabases()).toEqual(['postgres']);

      await rows(server.shadowDatabaseUrl, 'CREATE TABLE _prisma_migrations (id text)');
      expect(server.openDatabases('shadow')).toEqual(['postgres']);

      await waitFor(() => server.openDatabases('shadow').length === 0, 'the idle shadow database to close', 20_000);
      expect(logged.filter((line) => line.includes('closed after'))).toEqual(['pgdev: shadow database "postgres" closed after 1 s without connections']);
      expect(server.openDatabases(), 'the default database stays open').toEqual(['postgres']);

      expect(await rows(server.shadowDatabaseUrl, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = '_prisma_migrations'")).toEqual([{ n: 0 }]);
      expect(await rows(server.databaseUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      await within(server.close(), 10_000, 'close');
    });
  }
});
