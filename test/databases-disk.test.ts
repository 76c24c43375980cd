/**
 * @module
 * A disk that fills while `CREATE DATABASE ... TEMPLATE` copies: the command fails with 53100, and nothing of the new
 * database is left (no name, no folder), and the server goes on. The disk is a small tmpfs mounted for the test
 * (the CI machine runs tests as root, as this one does); where mounting is not allowed the test says so and fails,
 * rather than passing without a full disk.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';

/** Whether this process may mount a tmpfs (root, or a container that allows it). */
function canMount(): boolean {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    console.warn('databases-disk.test.ts: skipped, this user cannot mount a tmpfs to fill');
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
  mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-full-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160m', 'tmpfs', mountPoint]);
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

describe.runIf(mountable)('a disk that fills while cloning', () => {
  it('fails CREATE DATABASE ... TEMPLATE with 53100 and leaves no half-created database', async () => {
    server = await startServer({ name: 'full', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    const admin = new pg.Client(server.databaseUrl);
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE big');
      const big = new pg.Client(server.databaseUrlFor('big'));
      await big.connect();
      await big.query("CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 20) AS text FROM generate_series(1, 5000) g");
      await big.end();
      // The disk is filled but for 4 MiB: room for the databases to go on, not for a copy of `big`.
      const ballast = path.join(mountPoint, 'ballast');
      const { bavail, bsize } = fs.statfsSync(mountPoint);
      fs.writeFileSync(ballast, Buffer.alloc(bavail * bsize - 4 * 1024 * 1024));

      const failure = await admin.query('CREATE DATABASE big_copy TEMPLATE big').then(() => undefined, (error: pg.DatabaseError) => error);
      expect(failure).toMatchObject({ code: '53100', message: 'could not copy database "big": no space left on device' });

      const { rows } = await admin.query('SELECT datname FROM pg_database ORDER BY datname');
      expect(rows.map((row) => row.datname)).toEqual(['big', 'postgres', 'template0', 'template1']);
      const folders = fs.readdirSync(path.join(mountPoint, 'pgdev/servers/full/databases'));
      expect(folders.filter((folder) => folder.includes('copying'))).toEqual([]);
      const connect = new pg.Client(server.databaseUrlFor('big_copy'));
      await expect(connect.connect()).rejects.toMatchObject({ code: '3D000', message: 'database "big_copy" does not exist' });

      // With the space back, the same copy works, and the template is unharmed.
      fs.rmSync(ballast);
      await admin.query('CREATE DATABASE big_copy TEMPLATE big');
      const check = new pg.Client(server.databaseUrlFor('big_copy'));
      await check.connect();
      expect((await check.query('SELECT count(*)::int AS n FROM filler')).rows).toEqual([{ n: 5000 }]);
      await check.end();
    } finally {
      await admin.end();
    }
  });
});
