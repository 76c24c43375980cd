/**
 * @module
 * The on-disk state format: fixtures of each version load, a crashed server's leftovers are recognised as stopped
 * and recovered by the next start, and a newer format is refused with a clear message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pgdevCommand } from '../src/command-name.js';
import { describeServer } from '../src/daemon/client/registry.js';
import pg from 'pg';
import { Engine } from '../src/engine/engine.js';
import { startServer } from '../src/index.js';
import { STATE_VERSION, readVersioned } from '../src/state/files.js';

const FIXTURES = path.resolve(import.meta.dirname, '../state/fixtures');
let home: string;
let previous: string | undefined;

beforeEach(() => {
  previous = process.env.XDG_DATA_HOME;
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-state-'));
  process.env.XDG_DATA_HOME = home;
});

afterEach(() => {
  process.env.XDG_DATA_HOME = previous;
  fs.rmSync(home, { recursive: true, force: true });
});

describe('state fixtures', () => {
  it(`has a fixture for the current version ${STATE_VERSION}`, () => {
    expect(fs.existsSync(path.join(FIXTURES, `v${STATE_VERSION}`, 'servers'))).toBe(true);
  });

  it('treats a v1 server.json whose pid is dead as stopped, and restarts it with its secret', async () => {
    fs.cpSync(path.join(FIXTURES, 'v1'), path.join(home, 'pgdev'), { recursive: true });
    const listing = await describeServer('demo');
    expect(listing).toMatchObject({ name: 'demo', status: 'stopped', pid: null, ports: { http: 51213, database: 51214, shadowDatabase: 51215 } });

    const server = await startServer({ name: 'demo', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    try {
      const apiKey = new URL(server.prismaPostgresUrl.replace('prisma+postgres', 'http')).searchParams.get('api_key')!;
      expect(JSON.parse(Buffer.from(apiKey, 'base64url').toString())).toMatchObject({ name: 'demo', secret: 'fixture-secret-0123456789abcdef' });
      expect((await describeServer('demo')).status).toBe('running');
    } finally {
      await server.close();
    }
    expect(fs.existsSync(path.join(home, 'pgdev/servers/demo/server.json'))).toBe(false);
  });

  it('upgrades a v1 folder: its pgdata/ becomes the default database (data kept), and config.json says version 2', async () => {
    fs.cpSync(path.join(FIXTURES, 'v1'), path.join(home, 'pgdev'), { recursive: true });
    const folder = path.join(home, 'pgdev/servers/demo');
    // A v1 data directory with a row in it, made by the engine as a v1 pgdev did.
    const v1 = await Engine.open({ label: 'v1', dataDir: path.join(folder, 'pgdata') });
    await v1.exclusive((lease) => lease.run("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('from v1')"));
    await v1.close();

    const server = await startServer({ name: 'demo', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    try {
      expect(fs.existsSync(path.join(folder, 'pgdata'))).toBe(false);
      expect(fs.existsSync(path.join(folder, 'databases/5/PG_VERSION'))).toBe(true);
      expect(JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')).version).toBe(2);
      const client = new pg.Client(server.databaseUrl);
      await client.connect();
      try {
        expect((await client.query('SELECT note FROM kept')).rows).toEqual([{ note: 'from v1' }]);
      } finally {
        await client.end();
      }
    } finally {
      await server.close();
    }
  });

  it('reads a v2 folder: its databases are listed, and one cloned before the last stop opens under its own name', async () => {
    fs.cpSync(path.join(FIXTURES, 'v2'), path.join(home, 'pgdev'), { recursive: true });
    const listing = await describeServer('demo');
    expect(listing.databases.map((database) => database.name)).toEqual(['postgres', 'app_test_1', 'app_template']);
    const server = await startServer({ name: 'demo', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    try {
      const client = new pg.Client(server.databaseUrlFor('app_test_1'));
      await client.connect();
      try {
        const { rows } = await client.query('SELECT current_database() AS name, (SELECT array_agg(datname::text ORDER BY datname) FROM pg_database) AS listed');
        expect(rows).toEqual([{ name: 'app_test_1', listed: ['app_template', 'app_test_1', 'postgres', 'template0', 'template1'] }]);
      } finally {
        await client.end();
      }
      // The rename the engine needed is recorded: the next open uses the database's own name.
      const records = JSON.parse(fs.readFileSync(path.join(home, 'pgdev/servers/demo/databases.json'), 'utf8')).databases;
      expect(records.find((record: { name: string }) => record.name === 'app_test_1').engineName).toBe('app_test_1');
    } finally {
      await server.close();
    }
  });

  it('refuses a state file from a newer pgdev', () => {
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ version: STATE_VERSION + 1 }));
    expect(() => readVersioned(file)).toThrow(`has state version ${STATE_VERSION + 1}, newer than this pgdev understands (${STATE_VERSION}); upgrade pgdev`);
  });

  it('names a corrupt state file', () => {
    const file = path.join(home, 'config.json');
    fs.writeFileSync(file, '{ not json');
    // The command is named the way this process was run (`npx pgdev` under `npm test`, see src/command-name.ts).
    expect(() => readVersioned(file)).toThrow(`${file} is not valid JSON; delete it or run \`${pgdevCommand()} rm\``);
  });
});
