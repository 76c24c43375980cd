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
import setup, { migrationFiles } from '../src/vitest/global-setup.js';
import { restore, workerDatabase, type PgdevDatabasesOptions } from '../src/vitest/index.js';
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

function projectWith(options: PgdevDatabasesOptions): TestProject {
  return {
    config: { root },
    getProvidedContext: () => ({ pgdevDatabasesOptions: options }),
    provide: () => undefined,
  } as unknown as TestProject;
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

describe('pgdev/vitest in a test file', () => {
  it('says what to add when the plugin is missing', async () => {
    const message = 'pgdev/vitest: no worker database; add pgdevDatabases() to the plugins of vitest.config';
    expect(() => workerDatabase()).toThrow(message);
    await expect(restore()).rejects.toThrow(message);
  });
});
