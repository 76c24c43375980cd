/**
 * @module
 * Runs every example in examples/ end to end the way its README says (from the repository root, against the built
 * package in dist/), each under a temporary XDG_DATA_HOME, and checks what it prints.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let dataHome: string;

beforeAll(() => {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dataHome = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-examples-'));
});

afterAll(() => {
  fs.rmSync(dataHome, { recursive: true, force: true });
});

type Result = { code: number | null; output: string };

/** Runs `command args` from the repository root; kills it and fails after `timeoutMs`. */
function run(command: string, args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, XDG_DATA_HOME: dataHome, NO_COLOR: '1', FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The server folders left under the temporary data home: in-memory servers leave none. */
/** Runs `use` with a detached pgdev server of its own (its URL, and the environment that reaches it), then stops it. */
async function withRunningServer(name: string, use: (databaseUrl: string, env: Record<string, string>) => Promise<void>): Promise<void> {
  const env = { XDG_DATA_HOME: fs.mkdtempSync(path.join(dataHome, 'cli-')) };
  const up = await run(process.execPath, ['bin/pgdev.js', '-n', name, '-d', '-p', '0', '-P', '0', '--shadow-db-port', '0'], 60_000, env);
  try {
    expect(up.code, up.output).toBe(0);
    const url = await run(process.execPath, ['bin/pgdev.js', 'url', name], 60_000, env);
    expect(url.code, url.output).toBe(0);
    await use(url.output.trim(), env);
  } finally {
    const down = await run(process.execPath, ['bin/pgdev.js', 'stop', name], 60_000, env);
    expect(down.code, down.output).toBe(0);
  }
}

/** The databases of the server at `url` whose name is LIKE `pattern`. */
async function databasesLike(url: string, pattern: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname', [pattern])).rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

function leftoverServers(): string[] {
  const servers = path.join(dataHome, 'pgdev', 'servers');
  return fs.existsSync(servers) ? fs.readdirSync(servers) : [];
}

describe('examples', () => {
  it('pg-script starts a server, queries it with pg and closes it', async () => {
    const { code, output } = await run(process.execPath, ['examples/pg-script/run.mjs']);
    expect(code, output).toBe(0);
    expect(output).toContain('started pgdev server "default" for this script');
    expect(output).toMatch(/DATABASE_URL=postgres:\/\/postgres:postgres@localhost:\d+\/template1\?sslmode=disable/);
    expect(output).toContain('apple: 1.20\ncherry: 4.75\n');
    expect(output).toMatch(/PostgreSQL \d+/);
    expect(output).toContain('closed pgdev server "default"');
    expect(leftoverServers()).toEqual([]);
  });

  it('pg-script uses the running server when getServer finds one', async () => {
    const name = 'examples-running';
    // A data home of its own: this CLI server is persistent and keeps its folder after it stops.
    const env = { XDG_DATA_HOME: fs.mkdtempSync(path.join(dataHome, 'cli-')) };
    const up = await run(process.execPath, ['bin/pgdev.js', '-n', name, '-d', '-p', '0', '-P', '0', '--shadow-db-port', '0'], 60_000, env);
    try {
      expect(up.code, up.output).toBe(0);
      const { code, output } = await run(process.execPath, ['examples/pg-script/run.mjs'], 60_000, { ...env, PGDEV_NAME: name });
      expect(code, output).toBe(0);
      expect(output).toContain(`using the running pgdev server "${name}"`);
      expect(output).toContain('cherry: 4.75');
      expect(output).not.toContain('closed pgdev server');
    } finally {
      const down = await run(process.execPath, ['bin/pgdev.js', 'stop', name], 60_000, env);
      expect(down.code, down.output).toBe(0);
    }
  });

  it('vitest runs its own config: globalSetup server, inject, a schema per file', async () => {
    const { code, output } = await run(process.execPath, [
      path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', 'examples/vitest', '--reporter', 'verbose',
    ]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/tests\/todos\.test\.ts/);
    expect(output).toMatch(/tests\/notes\.test\.ts/);
    expect(output).toMatch(/Test Files\s+2 passed \(2\)/);
    expect(output).toMatch(/Tests\s+4 passed \(4\)/);
    expect(leftoverServers()).toEqual([]);
  });

  it('vitest-per-worker clones a seeded template per worker, on its own pgdev and on one in DATABASE_URL', async () => {
    const vitest = [path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', 'examples/vitest-per-worker', '--reporter', 'verbose'];
    // expect.soft: a failure in the first run still lets the second run and report.
    const expectRun = (code: number | null, output: string) => {
      expect.soft(code, output).toBe(0);
      if (code !== 0) return; // the output is in the message above
      expect.soft(output).toContain('template app_template: 1 migration(s) and the seed applied');
      for (const file of ['customers', 'orders', 'products']) expect.soft(output).toMatch(new RegExp(`tests/${file}\\.test\\.ts`));
      expect.soft(output).toMatch(/Test Files\s+3 passed \(3\)/);
      expect.soft(output).toMatch(/Tests\s+10 passed \(10\)/);
      // Three files on three workers at once (VITEST_POOL_ID 1 to 3 are the slots in use at the same time).
      expect.soft(output).toContain('dropped 3 worker database(s) (app_test_1, app_test_2, app_test_3) and app_template');
    };

    // 1. As the README's first command: the globalSetup starts an in-memory pgdev (DATABASE_URL empty: not inherited).
    const own = await run(process.execPath, vitest, 120_000, { DATABASE_URL: '' });
    expect.soft(own.output).toMatch(/started pgdev server vitest-per-worker-\d+ on port \d+/);
    expectRun(own.code, own.output);
    expect.soft(leftoverServers()).toEqual([]);

    // 2. As the second: a pgdev server that runs already, in DATABASE_URL; the run leaves no database behind in it.
    await withRunningServer('examples-per-worker', async (databaseUrl, env) => {
      expect(databaseUrl).toMatch(/^postgres:\/\/postgres:postgres@localhost:\d+\/template1\?sslmode=disable$/);
      const { code, output } = await run(process.execPath, vitest, 120_000, { ...env, DATABASE_URL: databaseUrl });
      expect.soft(output).toMatch(/using the server in DATABASE_URL \(localhost:\d+\)/);
      expectRun(code, output);
      expect(await databasesLike(databaseUrl, 'app\\_%')).toEqual([]);
    });
  }, 300_000);

  it('vitest-integration: pgdev/vitest gives each worker its own clone, restore() between tests, on a private server and on one in DATABASE_URL', async () => {
    const vitest = [path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', 'examples/vitest-integration', '--reporter', 'verbose'];
    const expectRun = (code: number | null, output: string, server: RegExp) => {
      expect.soft(code, output).toBe(0);
      if (code !== 0) return; // the output is in the message above
      expect.soft(output).toMatch(new RegExp(`pgdev/vitest: template pgdev_vitest_template built on ${server.source} in \\d+ ms \\(2 migration file\\(s\\), seed\\.sql\\)`));
      expect.soft(output).toMatch(/Test Files\s+3 passed \(3\)/);
      expect.soft(output).toMatch(/Tests\s+9 passed \(9\)/);
      // Two workers (maxWorkers: 2), each in its own database, named after its slot.
      expect.soft(output).toMatch(/worker 1, database pgdev_vitest_1\n/);
      expect.soft(output).toMatch(/worker 2, database pgdev_vitest_2\n/);
      expect.soft(output).toContain('starts again from the seed after restore(): the previous test left nothing');
    };

    // 1. With no server given: a private in-memory pgdev, gone after the run.
    const own = await run(process.execPath, vitest, 180_000, { DATABASE_URL: '' });
    expectRun(own.code, own.output, /a private pgdev server \(vitest-\d+\)/);
    expect.soft(leftoverServers()).toEqual([]);

    // 2. A server that runs already, in DATABASE_URL: restore() clones again; the run leaves no database behind.
    await withRunningServer('examples-integration', async (databaseUrl, env) => {
      const { code, output } = await run(process.execPath, vitest, 180_000, { ...env, DATABASE_URL: databaseUrl });
      expectRun(code, output, /the server at localhost:\d+/);
      expect(await databasesLike(databaseUrl, 'pgdev\\_vitest%')).toEqual([]);
    });
  }, 400_000);

  it('prisma generates the client, migrates with SQL, seeds and queries through adapter-pg', async () => {
    fs.rmSync(path.join(repoRoot, 'examples', 'prisma', 'generated'), { recursive: true, force: true });
    const { code, output } = await run(process.execPath, ['examples/prisma/run.mjs'], 180_000);
    expect(code, output).toBe(0);
    expect(output).toMatch(/pgdev server prisma-example-\d+ is up: postgres:\/\/postgres:postgres@localhost:\d+\/template1/);
    expect(output).toContain('applied migration 0001_init.sql');
    expect(output).toContain('seeded 2 users and 3 posts');
    expect(output).toContain('Ada <ada@example.com>: Notes on the Analytical Engine');
    expect(output).toContain('Grace <grace@example.com>: Compilers');
    expect(output).toContain('drafts: Draft: Bernoulli numbers (Ada)');
    expect(output).toContain('published 1 draft(s); 3 posts are public now');
    expect(output).toContain('posts per author: Ada=2, Grace Hopper=1');
    expect(output).toContain('pgdev server closed');
    expect(leftoverServers()).toEqual([]);
  }, 200_000);
});
