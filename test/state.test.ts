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
import { describeServer } from '../src/daemon/registry.js';
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
