/**
 * @module
 * A disk that fills under writes (issue 22): the write that meets the full disk fails with 53100, and once space is
 * freed the next one answers, and every committed change is there. On a full disk a WAL write fails, which Postgres
 * treats as a PANIC (the backend exits, the server restarts from the WAL): PGlite answers the PANIC and then spins on
 * its next call, which held every later statement for ever. The disk is a small tmpfs mounted for the test; where
 * this user cannot mount one the test is skipped, and says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTmpfsDataHome } from './support/tmpfs.js';
import { rows, within } from './support/databases.js';

let server: PgdevServer | undefined;
/** The tmpfs (XDG_DATA_HOME while the tests run). */
const mountPoint = () => process.env.XDG_DATA_HOME!;
const mountable = useTmpfsDataHome('databases-disk-full.test.ts', 100, async () => {
  await server?.close();
});

describe.runIf(mountable)('a disk that fills under writes', { timeout: 180_000 }, () => {
  it('fails the write that meets it with 53100, and answers the next one once space is freed, with every committed change', async () => {
    server = await startServer({ name: 'full', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    // Updates of one row stay in its page (HOT), so what they cannot write on a full disk is their WAL, whose segment
    // is sparse (see copySparse in template.ts): the PANIC path, every time.
    await rows(server.databaseUrl, 'CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)');
    const ballast = path.join(mountPoint(), 'ballast');
    const { bavail, bsize } = fs.statfsSync(mountPoint());
    fs.writeFileSync(ballast, Buffer.alloc(bavail * bsize));

    const writer = new pg.Client(server.databaseUrl);
    writer.on('error', () => undefined); // the connection that meets a PANIC is closed, as on Postgres
    await writer.connect();
    let committed = 0;
    let failure: (Error & { code?: string; severity?: string }) | undefined;
    for (let i = 0; i < 100_000 && !failure; i++) {
      await within(writer.query('UPDATE counter SET n = n + 1'), 30_000, `UPDATE #${i}`).then(
        () => committed++,
        (error: Error) => (failure = error),
      );
    }
    expect(failure).toMatchObject({ code: '53100', severity: 'PANIC' });
    expect(failure!.message).toMatch(/^could not write to log file .*: No space left on device$/);

    fs.rmSync(ballast);
    // The writer stays connected (a pool would): another connection's write must not wait behind it. As after a PANIC
    // on Postgres, the writer's own connection is closed, and a new one may wait for the database to restart.
    try {
      await within(rows(server.databaseUrl, 'UPDATE counter SET n = n + 1'), 60_000, 'the UPDATE after space was freed');
      expect(await rows(server.databaseUrl, 'SELECT n FROM counter')).toEqual([{ n: committed + 1 }]);
      await expect(within(writer.query('SELECT 1'), 10_000, 'the writer after its PANIC')).rejects.toThrow(/Connection terminated|not queryable/);
    } finally {
      await within(writer.end(), 5_000, 'ending the writer').catch(() => undefined);
    }
  });
});
