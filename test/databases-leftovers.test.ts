/**
 * @module
 * What a killed `CREATE DATABASE ... TEMPLATE` or `DROP DATABASE` leaves under a server's `databases/` (issue 22):
 * `<id>.copying` folders and `<id>` folders that `databases.json` does not list. A server removes them when it starts,
 * never a listed database's folder or the default's, nor anything else it finds there. An unlisted `<id>` was not
 * only wasted space: the next database created got that id, and opened the leftover's data as its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { publicTables, rows } from './support/databases.js';

const dataHome = useTemporaryDataHome('pgdev-databases-leftovers-');

describe('leftover database folders', { timeout: 180_000 }, () => {
  let server: PgdevServer | undefined;
  afterAll(async () => {
    await server?.close();
  });

  const start = () => startServer({ name: 'leftovers', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });

  it('are removed at start, and the listed databases, the default one and unknown files are kept', async () => {
    server = await start();
    await rows(server.databaseUrl, "CREATE TABLE home (v text); INSERT INTO home VALUES ('default')");
    await server.createDatabase('source');
    await rows(server.databaseUrlFor('source'), "CREATE TABLE secret (v text); INSERT INTO secret VALUES ('source')");
    await server.close();
    server = undefined;

    const root = path.join(dataHome(), 'pgdev', 'servers', 'leftovers');
    const folders = path.join(root, 'databases');
    const { nextId, databases } = JSON.parse(fs.readFileSync(path.join(root, 'databases.json'), 'utf8')) as { nextId: number; databases: Array<{ id: number; name: string }> };
    const sourceId = databases.find((database) => database.name === 'source')!.id;
    // A clone renamed into place but never recorded (killed before databases.json was written): it has the id the
    // next database gets. A copy cut short, for a new id and beside a listed one. A file pgdev does not name.
    fs.cpSync(path.join(folders, String(sourceId)), path.join(folders, String(nextId)), { recursive: true });
    fs.mkdirSync(path.join(folders, `${nextId + 1}.copying`, 'base'), { recursive: true });
    fs.writeFileSync(path.join(folders, `${nextId + 1}.copying`, 'base', 'half'), 'x');
    fs.mkdirSync(path.join(folders, `${sourceId}.copying`));
    fs.writeFileSync(path.join(folders, 'notes.txt'), 'mine');
    // A dropped database whose folder removal was cut short: unlisted, with an id below nextId.
    fs.mkdirSync(path.join(folders, '16000', 'base'), { recursive: true });
    // Locks of a killed database process (data-lock.ts): of the dropped one, and one half taken.
    fs.writeFileSync(path.join(folders, '16000.lock'), '{}');
    fs.writeFileSync(path.join(folders, `${sourceId}.lock.123.tmp`), '{}');

    server = await start();
    // 5.lock: the default database's, held by its process while the server runs.
    expect(fs.readdirSync(folders).sort()).toEqual(['5', '5.lock', String(sourceId), 'notes.txt'].sort());
    await server.createDatabase('fresh');
    expect(await publicTables(server.databaseUrlFor('fresh'))).toEqual([]);
    expect(await rows(server.databaseUrlFor('source'), 'SELECT v FROM secret')).toEqual([{ v: 'source' }]);
    expect(await rows(server.databaseUrl, 'SELECT v FROM home')).toEqual([{ v: 'default' }]);
  });
});
