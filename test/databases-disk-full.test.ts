/**
 * @module
 * A disk that fills under writes (issue 22): the write that meets the full disk fails with 53100, and once space is
 * freed the next one answers, and every committed change is there. On a full disk a WAL write fails, which Postgres
 * treats as a PANIC (the backend exits, the server restarts from the WAL): PGlite answers the PANIC and then spins on
 * its next call, which held every later statement for ever. The disk is a small tmpfs mounted for the test; where
 * this user cannot mount one the test is skipped, and says so.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { rows, within } from './support/databases.js';

/** Whether this process may mount a tmpfs (root, or a container that allows it). */
function canMount(): boolean {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    console.warn('databases-disk-full.test.ts: skipped, this user cannot mount a tmpfs to fill (run as root, or in a container that allows mount)');
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}
const mountable = canMount();

let mountPoint: string;
let previousHome: string | undefined;
let server: PgdevServer | undefined;

beforeAll(() => {
  if (!mountable) return;
  mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-disk-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=100m', 'tmpfs', mountPoint]);
  previousHome = process.env.XDG_DATA_HOME;
  process.env.XDG_DATA_HOME = mountPoint;
});

afterAll(async () => {
  if (!mountable) return;
  await server?.close();
  process.env.XDG_DATA_HOME = previousHome;
  execFileSync('umount', [mountPoint]);
  fs.rmSync(mountPoint, { recursive: true, force: true });
});

describe.runIf(mountable)('a disk that fills under writes', { timeout: 180_000 }, () => {
  it('fails the write that meets it with 53100, and answers the next one once space is freed, with every committed change', async () => {
    server = await startServer({ name: 'full', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    // Updates of one row stay in its page (HOT), so what they cannot write on a full disk is their WAL, whose segment
    // is sparse (see copyWithZeroTail in template.ts): the PANIC path, every time.
    await rows(server.databaseUrl, 'CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)');
    const ballast = path.join(mountPoint, 'ballast');
    const { bavail, bsize } = fs.statfsSync(mountPoint);
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
