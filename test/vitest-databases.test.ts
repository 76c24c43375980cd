/**
 * @module
 * `pgdev/vitest`'s global setup and worker helpers, called directly (the whole plugin runs in
 * test/examples.test.ts): each mistake in the options is one line saying what to fix, found before any server
 * starts, and a failing migration or command stops the private server it started.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import setup, { migrationFiles } from '../src/vitest/global-setup.js';
import { callEndpoint, restore, workerDatabase, type PgdevDatabasesOptions, type WorkerContext } from '../src/vitest/index.js';
import { useTemporaryDataHome } from './support/data-home.js';

const dataHome = useTemporaryDataHome('pgdev-vitest-databases-');
let root: string;
const savedDatabaseUrl = process.env.DATABASE_URL;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-vitest-project-'));
  fs.mkdirSync(path.join(root, 'migrations'));
  fs.writeFileSync(path.join(root, 'migrations', '0001_ok.sql'), 'CREATE TABLE t (id int);');
  fs.writeFileSync(path.join(root, 'migrations', '0002_broken.sql'), 'CREATE TABLE t (id int);');
  delete process.env.DATABASE_URL; // the private server, whatever the environment running these tests says
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  if (savedDatabaseUrl !== undefined) process.env.DATABASE_URL = savedDatabaseUrl;
});

const provided: { pgdevWorkerContext?: WorkerContext } = {};

function projectWith(options: PgdevDatabasesOptions): TestProject {
  return {
    config: { root },
    getProvidedContext: () => ({ pgdevDatabasesOptions: options }),
    provide: (key: 'pgdevWorkerContext', value: WorkerContext) => (provided[key] = value),
  } as unknown as TestProject;
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** The servers left under the temporary data home: a private server leaves none once closed. */
function leftoverServers(): string[] {
  const servers = path.join(dataHome(), 'pgdev', 'servers');
  return fs.existsSync(servers) ? fs.readdirSync(servers) : [];
}

describe('pgdev/vitest options', () => {
  it('refuses a prefix that is not a plain SQL name', async () => {
    await expect(setup(projectWith({ prefix: 'My-Tests' }))).rejects.toThrow(
      'pgdev/vitest: prefix "My-Tests" is not a plain lower-case SQL name (a-z, 0-9, _; at most 41 characters)',
    );
  });

  it('names a missing migrations folder and a missing seed file', async () => {
    await expect(setup(projectWith({ migrations: 'db/migrations' }))).rejects.toThrow(
      `pgdev/vitest: the migrations folder ${path.join(root, 'db/migrations')} does not exist; fix the migrations option`,
    );
    await expect(setup(projectWith({ seed: 'seed.sql' }))).rejects.toThrow(
      `pgdev/vitest: the seed file ${path.join(root, 'seed.sql')} does not exist; fix the seed option`,
    );
    expect(leftoverServers()).toEqual([]);
  });

  it('names a pgdev server that is not running, and how to start it', async () => {
    await expect(setup(projectWith({ server: 'shared-tests' }))).rejects.toThrow(
      'pgdev/vitest: no pgdev server "shared-tests" is running; start it with `npx pgdev -d -n shared-tests`, or leave out the server option',
    );
  });

  it('reads SQL files, or the migration.sql of each folder (Prisma Migrate), in name order', () => {
    const prisma = fs.mkdtempSync(path.join(root, 'prisma-'));
    for (const name of ['20260102_b', '20260101_a']) {
      fs.mkdirSync(path.join(prisma, name));
      fs.writeFileSync(path.join(prisma, name, 'migration.sql'), '');
    }
    fs.writeFileSync(path.join(prisma, 'migration_lock.toml'), '');
    expect(migrationFiles(prisma)).toEqual([path.join(prisma, '20260101_a', 'migration.sql'), path.join(prisma, '20260102_b', 'migration.sql')]);
  });
});

describe('pgdev/vitest template', () => {
  it('names the migration that failed, with the database error, and stops its private server', async () => {
    await expect(setup(projectWith({ migrations: 'migrations' }))).rejects.toThrow(
      'pgdev/vitest: migrations/0002_broken.sql: relation "t" already exists; nothing of the run was kept',
    );
    expect(leftoverServers()).toEqual([]);
  }, 120_000);

  it('names a migrate command that failed, with its exit status', async () => {
    await expect(setup(projectWith({ migrateCommand: 'exit 3' }))).rejects.toThrow(
      'pgdev/vitest: `exit 3` failed (exit status 3); its output is above',
    );
    expect(leftoverServers()).toEqual([]);
  }, 120_000);
});

describe('pgdev/vitest on a private server', () => {
  it('runs the migrate command on the template, clones it per worker, restores a clone to its first restore()', async () => {
    // A stand-in for `prisma migrate deploy`: a command that migrates whatever DATABASE_URL names.
    const migrate = `node -e "const pg = require('pg'); const c = new pg.Client(process.env.DATABASE_URL); c.connect().then(() => c.query('CREATE TABLE notes (body text)')).then(() => c.end())"`;
    fs.writeFileSync(path.join(root, 'seed.sql'), "INSERT INTO notes VALUES ('seeded');");
    fs.symlinkSync(path.resolve('node_modules'), path.join(root, 'node_modules'));
    const stop = await setup(projectWith({ migrateCommand: migrate, seed: 'seed.sql', prefix: 'flow' }));
    try {
      const context = provided.pgdevWorkerContext!;
      expect(context.prefix).toBe('flow');
      const url = (database: string) => Object.assign(new URL(context.serverUrl), { pathname: `/${database}` }).toString();
      await callEndpoint(context.endpoint, 'clone', 'flow_1');
      await callEndpoint(context.endpoint, 'clone', 'flow_2');
      await query(url('flow_1'), "INSERT INTO notes VALUES ('one')");
      expect(await query(url('flow_1'), 'SELECT body FROM notes ORDER BY body')).toEqual([{ body: 'one' }, { body: 'seeded' }]);
      expect(await query(url('flow_2'), 'SELECT body FROM notes')).toEqual([{ body: 'seeded' }]);

      await callEndpoint(context.endpoint, 'restore', 'flow_1'); // the first: a snapshot of the database as it is
      await query(url('flow_1'), "DELETE FROM notes; INSERT INTO notes VALUES ('two')");
      await callEndpoint(context.endpoint, 'restore', 'flow_1');
      expect(await query(url('flow_1'), 'SELECT body FROM notes ORDER BY body')).toEqual([{ body: 'one' }, { body: 'seeded' }]);

      await expect(callEndpoint(context.endpoint, 'clone', 'postgres')).rejects.toThrow(
        'pgdev/vitest: clone of database "postgres" failed: not a request of a pgdev/vitest worker',
      );
    } finally {
      await stop();
    }
    expect(leftoverServers()).toEqual([]);
  }, 180_000);
});

describe('pgdev/vitest in a test file', () => {
  it('says what to add when the plugin is missing', async () => {
    const message = 'pgdev/vitest: no worker database; add pgdevDatabases() to the plugins of vitest.config';
    expect(() => workerDatabase()).toThrow(message);
    await expect(restore()).rejects.toThrow(message);
  });
});
