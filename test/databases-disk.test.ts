/**
 * @module
 * A disk that fills while `CREATE DATABASE ... TEMPLATE` copies: the command fails with 53100, and nothing of the new
 * database is left (no name, no folder), and the server goes on. The disk is a small tmpfs mounted for the test
 * (the CI machine runs tests as root, as this one does); where mounting is not allowed the test says so and fails,
 * rather than passing without a full disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTmpfsDataHome } from './support/tmpfs.js';

let server: PgdevServer | undefined;
/** The tmpfs (XDG_DATA_HOME while the tests run). */
const mountPoint = () => process.env.XDG_DATA_HOME!;
const mountable = useTmpfsDataHome('databases-disk.test.ts', 160, async () => {
  await server?.close();
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
      const ballast = path.join(mountPoint(), 'ballast');
      const { bavail, bsize } = fs.statfsSync(mountPoint());
      fs.writeFileSync(ballast, Buffer.alloc(bavail * bsize - 4 * 1024 * 1024));

      const failure = await admin.query('CREATE DATABASE big_copy TEMPLATE big').then(() => undefined, (error: pg.DatabaseError) => error);
      expect(failure).toMatchObject({ code: '53100', message: 'could not copy database "big": no space left on device' });

      const { rows } = await admin.query('SELECT datname FROM pg_database ORDER BY datname');
      expect(rows.map((row) => row.datname)).toEqual(['big', 'postgres', 'template0', 'template1']);
      const folders = fs.readdirSync(path.join(mountPoint(), 'pgdev/servers/full/databases'));
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
