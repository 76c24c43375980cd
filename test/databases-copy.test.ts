/**
 * @module
 * `CREATE DATABASE ... TEMPLATE` copies the template's folder with copyFile (cloned where the file system can); a copy
 * that fails says what failed and what to do, never the command line of a `cp` (issue 22), leaves nothing behind, and
 * the same copy works once the cause is gone. (A full disk is in databases-disk.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { failure, listed, rows } from './support/databases.js';

const dataHome = useTemporaryDataHome('pgdev-databases-copy-');

describe('CREATE DATABASE ... TEMPLATE, copying', { timeout: 180_000 }, () => {
  let server: PgdevServer;
  beforeAll(async () => {
    server = await startServer({ name: 'copies', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a failed copy with what failed and what to do, leaves nothing, and copies once the cause is gone', async () => {
    await server.createDatabase('t');
    await rows(server.databaseUrlFor('t'), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('copied')");
    const folders = path.join(dataHome(), 'pgdev', 'servers', 'copies', 'databases');
    const before = fs.readdirSync(folders).sort();
    const { databases } = JSON.parse(fs.readFileSync(path.join(folders, '..', 'databases.json'), 'utf8')) as { databases: Array<{ id: number; name: string }> };
    const pipe = path.join(folders, String(databases.find((database) => database.name === 't')!.id), 'stray-pipe');
    execFileSync('mkfifo', [pipe]);

    const refused = await failure(rows(server.databaseUrl, 'CREATE DATABASE c TEMPLATE t'));
    expect(refused).toMatchObject({ code: 'XX000', message: `could not copy database "t": its folder holds something other than files and folders (${pipe})` });
    expect(refused.message).not.toMatch(/\bcp\b|Command failed/);
    expect(fs.readdirSync(folders).sort()).toEqual(before);
    expect(await listed(server.databaseUrl)).not.toContain('c');

    fs.rmSync(pipe);
    await rows(server.databaseUrl, 'CREATE DATABASE c TEMPLATE t');
    expect(await rows(server.databaseUrlFor('c'), 'SELECT v FROM kept')).toEqual([{ v: 'copied' }]);
  });
});
