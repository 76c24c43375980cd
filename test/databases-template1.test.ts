/**
 * @module
 * What `template1` is (issue 21, the README's Databases section): the default database's second name, not a
 * database or a template of its own. Through it, `current_database()` answers `postgres` and tables are those of
 * `postgres`; `pg_database` keeps `template0` and `template1` rows, whose folders a database no longer carries (the
 * template drops them, issue 21), so their size is NULL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { rows, within } from './support/databases.js';

useTemporaryDataHome('pgdev-template1-');

describe('template1', { timeout: 60_000 }, () => {
  let server: PgdevServer;
  beforeAll(async () => {
    server = await startServer({ name: 'template1', persistence: 'persistent', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
  });
  afterAll(async () => {
    await within(server?.close() ?? Promise.resolve(), 10_000, 'close');
  });

  it('is the default database under another name: current_database() answers postgres, and the tables are the same', async () => {
    expect(server.databaseUrl).toContain('/template1?');
    expect(await rows(server.databaseUrl, 'SELECT current_database() AS db')).toEqual([{ db: 'postgres' }]);
    await rows(server.databaseUrl, "CREATE TABLE made_through_template1 (v text); INSERT INTO made_through_template1 VALUES ('same')");
    expect(await rows(server.databaseUrlFor('postgres'), 'SELECT v FROM made_through_template1')).toEqual([{ v: 'same' }]);
  });

  it('pg_database lists template0 and template1, with no size; the database itself has one', async () => {
    const listed = await rows<{ datname: string; size: string | null }>(server.databaseUrl, 'SELECT datname, pg_database_size(oid)::text AS size FROM pg_database ORDER BY datname');
    expect(listed).toEqual([
      { datname: 'postgres', size: expect.stringMatching(/^\d+$/) },
      { datname: 'template0', size: null },
      { datname: 'template1', size: null },
    ]);
  });
});
