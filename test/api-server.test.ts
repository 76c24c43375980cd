/**
 * @module
 * The programmatic API from the package root: startServer (persistent and in-memory, free ports), the URL shapes,
 * the lock on a running name (E_LOCKED with the running server's URLs, in this process and against the CLI),
 * getServer for running, unknown and stopped names, invalid names, and two in-memory servers that never share data.
 * Every server runs under a temporary XDG_DATA_HOME and is closed by the test that started it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, PgdevError, getServer, isPgdevError, startServer, type PgdevServer, type StartServerOptions } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { freePorts } from './support/cli.js';
import { waitFor } from './support/wait.js';
import { dataRow, parseMessages, simpleQuery, startupPacket } from './support/wire.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pgdevBin = path.join(repoRoot, 'bin', 'pgdev.js');

const dataHome = useTemporaryDataHome('pgdev-api-server-');
const started: PgdevServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

const serverDir = (name: string) => path.join(dataHome(), 'pgdev', 'servers', name);

async function start(options: StartServerOptions): Promise<PgdevServer> {
  const server = await startServer({ port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined, ...options });
  started.push(server);
  return server;
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [pgdevBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, XDG_DATA_HOME: dataHome() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pgdev ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('startServer', () => {
  it('starts an in-memory server on free ports whose three endpoints answer, and leaves nothing on disk', async () => {
    const server = await start({ name: 'mem', persistence: 'memory' });
    expect(server.name).toBe('mem');
    expect(server.persistence).toBe('memory');
    const { http, database, shadowDatabase } = server.ports;
    for (const port of [http, database, shadowDatabase]) expect(port).toBeGreaterThan(0);
    expect(new Set([http, database, shadowDatabase]).size).toBe(3);

    // URLs in the shapes `prisma dev` (and the CLI) prints.
    expect(server.databaseUrl).toBe(`postgres://postgres:postgres@localhost:${database}/template1?sslmode=disable`);
    expect(server.shadowDatabaseUrl).toBe(`postgres://postgres:postgres@localhost:${shadowDatabase}/template1?sslmode=disable`);
    expect(server.httpUrl).toBe(`http://localhost:${http}`);
    const prismaUrl = new URL(server.prismaPostgresUrl);
    expect(prismaUrl.protocol).toBe('prisma+postgres:');
    expect(prismaUrl.host).toBe(`localhost:${http}`);
    const apiKey = JSON.parse(Buffer.from(prismaUrl.searchParams.get('api_key')!, 'base64url').toString('utf8'));
    expect(apiKey).toMatchObject({ name: 'mem', databaseUrl: server.databaseUrl, shadowDatabaseUrl: server.shadowDatabaseUrl });

    // All three endpoints answer once startServer resolves.
    const response = await fetch(server.httpUrl);
    await response.arrayBuffer();
    expect(response.status).toBeGreaterThan(0);
    expect(await withClient(server.databaseUrl, async (c) => (await c.query('SELECT 1 + 1 AS two')).rows[0].two)).toBe(2);
    expect(await withClient(server.shadowDatabaseUrl, async (c) => (await c.query('SELECT 2 + 2 AS four')).rows[0].four)).toBe(4);

    await withClient(server.databaseUrl, (c) => c.query('CREATE TABLE kept_in_memory (id int); INSERT INTO kept_in_memory VALUES (1)'));
    expect(fs.existsSync(path.join(serverDir('mem'), 'databases'))).toBe(false);

    await server.close();
    expect(await server.closed).toBe('stopped');
    await server.close(); // idempotent
    expect(fs.existsSync(path.join(serverDir('mem'), 'databases'))).toBe(false);
    expect(fs.existsSync(serverDir('mem'))).toBe(false);
  });

  it('starts a persistent server whose data survives a restart under the same name', async () => {
    const first = await start({ name: 'disk', persistence: 'persistent' });
    expect(first.persistence).toBe('persistent');
    await withClient(first.databaseUrl, (c) => c.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')"));
    await first.close();
    expect(fs.existsSync(path.join(serverDir('disk'), 'databases', '5', 'PG_VERSION'))).toBe(true);

    const second = await start({ name: 'disk', persistence: 'persistent' });
    const rows = await withClient(second.databaseUrl, async (c) => (await c.query('SELECT body FROM notes')).rows);
    expect(rows).toEqual([{ body: 'kept' }]);
  });

  it('honours fixed ports', async () => {
    const [http, database, shadowDatabase] = await freePorts(3);
    const server = await start({ name: 'fixed', persistence: 'memory', port: http, databasePort: database, shadowDatabasePort: shadowDatabase });
    expect(server.ports).toEqual({ http, database, shadowDatabase });
    expect(server.databaseUrl).toContain(`:${database}/`);
    // In memory, nothing is left for `pgdev ls` once closed, whatever the ports.
    await server.close();
    expect(fs.existsSync(serverDir('fixed'))).toBe(false);
    expect(JSON.parse((await runCli(['ls', '--json'])).stdout).map((listed: { name: string }) => listed.name)).not.toContain('fixed');
  });

  it('names its own options in a busy-port error (databasePort, not the CLI flag), and one port given twice', async () => {
    const [http, database, shadowDatabase] = await freePorts(3);
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(database, '127.0.0.1', resolve));
    try {
      const busy = await rejection(start({ name: 'busy', persistence: 'memory', port: http, databasePort: database, shadowDatabasePort: shadowDatabase }));
      expect(isPgdevError(busy, ErrorCode.PortInUse)).toBe(true);
      expect((busy as PgdevError).message).toBe(`port ${database} is in use; set databasePort to a free port (or 0 for any free port)`);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    const twice = await rejection(start({ name: 'twice', persistence: 'memory', port: http, databasePort: http, shadowDatabasePort: shadowDatabase }));
    expect(isPgdevError(twice, ErrorCode.InvalidPort)).toBe(true);
    expect((twice as PgdevError).message).toBe(`port ${http} was given twice (port and databasePort); give each its own port`);
    expect(fs.existsSync(serverDir('busy')) || fs.existsSync(serverDir('twice'))).toBe(false);
  });

  it('serves a client that connects while the database is still opening, once it is open', async () => {
    const [http, database, shadowDatabase] = await freePorts(3);
    let ready = false;
    const starting = start({ name: 'early', port: http, databasePort: database, shadowDatabasePort: shadowDatabase });
    void starting.then(() => (ready = true));
    // Connect as soon as the port listens, while the new database is still being created and opened.
    let socket: net.Socket | undefined;
    for (let attempt = 0; !socket && attempt < 2_000; attempt++) {
      socket = await new Promise<net.Socket | undefined>((resolve) => {
        const probe = net.connect(database!, '127.0.0.1');
        probe.once('connect', () => resolve(probe)).once('error', () => setTimeout(resolve, 1));
      });
    }
    expect(socket).toBeDefined();
    // The port answered before the new database was even all copied (PG_VERSION comes last).
    expect(fs.existsSync(path.join(serverDir('early'), 'databases', '5', 'PG_VERSION'))).toBe(false);
    expect(ready).toBe(false);
    let received = Buffer.alloc(0);
    socket!.on('data', (chunk) => (received = Buffer.concat([received, chunk])));
    socket!.write(Buffer.concat([startupPacket(), simpleQuery('SELECT 40 + 2')]));
    await starting;
    await waitFor(() => parseMessages(received).filter((m) => m.type === 'Z').length === 2, 'the answer to the early query');
    const row = parseMessages(received).find((m) => m.type === 'D')!;
    expect(dataRow(row.body)).toEqual(['42']);
    socket!.end();
  });

  it('rejects a name that is already running with E_LOCKED carrying the running server URLs', async () => {
    const server = await start({ name: 'taken', persistence: 'memory' });
    const error = await rejection(start({ name: 'taken', persistence: 'memory' }));
    expect(error).toBeInstanceOf(PgdevError);
    expect(isPgdevError(error, ErrorCode.Locked)).toBe(true);
    const { details } = error as PgdevError;
    expect(details.databaseUrl).toBe(server.databaseUrl);
    expect(details.shadowDatabaseUrl).toBe(server.shadowDatabaseUrl);
    expect(details.prismaPostgresUrl).toBe(server.prismaPostgresUrl);
    expect(details.httpUrl).toBe(server.httpUrl);
    // The failed attempt did not disturb the running server.
    expect(await withClient(server.databaseUrl, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one)).toBe(1);
    expect(getServer('taken')?.databaseUrl).toBe(server.databaseUrl);
  });

  it('rejects an invalid name with E_INVALID_NAME', async () => {
    for (const name of ['', '../escape', 'has space', '-leading', 'a/b', 'x'.repeat(64)]) {
      const error = await rejection(startServer({ name, persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0 }));
      expect(isPgdevError(error, ErrorCode.InvalidName), `name ${JSON.stringify(name)}`).toBe(true);
    }
  });
});

describe('getServer', () => {
  it('returns the URLs of a server running in this process, and null once it stopped', async () => {
    const server = await start({ name: 'lookup', persistence: 'memory' });
    expect(getServer('lookup')).toEqual({
      name: 'lookup',
      databaseUrl: server.databaseUrl,
      shadowDatabaseUrl: server.shadowDatabaseUrl,
      prismaPostgresUrl: server.prismaPostgresUrl,
      httpUrl: server.httpUrl,
    });
    await server.close();
    expect(getServer('lookup')).toBeNull();
  });

  it('returns null for a name that never existed, and for a stopped persistent server', async () => {
    expect(getServer('never-started')).toBeNull();
    const server = await start({ name: 'stopped-disk', persistence: 'persistent' });
    await server.close();
    expect(fs.existsSync(serverDir('stopped-disk'))).toBe(true);
    expect(getServer('stopped-disk')).toBeNull();
  });

  it('finds a server started by the CLI in another process, which the API then cannot start again', async () => {
    const [http, database, shadowDatabase] = await freePorts(3);
    const name = 'from-cli';
    const up = await runCli(['-n', name, '-d', '-p', String(http), '-P', String(database), '--shadow-db-port', String(shadowDatabase)]);
    try {
      expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
      const found = getServer(name);
      expect(found).not.toBeNull();
      expect(found).toMatchObject({
        name,
        databaseUrl: `postgres://postgres:postgres@localhost:${database}/template1?sslmode=disable`,
        shadowDatabaseUrl: `postgres://postgres:postgres@localhost:${shadowDatabase}/template1?sslmode=disable`,
        httpUrl: `http://localhost:${http}`,
      });
      expect(found!.prismaPostgresUrl).toMatch(new RegExp(`^prisma\\+postgres://localhost:${http}/\\?api_key=`));
      expect(up.stdout).toContain(found!.databaseUrl);
      expect(await withClient(found!.databaseUrl, async (c) => (await c.query('SELECT 40 + 2 AS n')).rows[0].n)).toBe(42);

      const error = await rejection(start({ name, persistence: 'memory' }));
      expect(isPgdevError(error, ErrorCode.Locked)).toBe(true);
      expect((error as PgdevError).details.databaseUrl).toBe(found!.databaseUrl);
    } finally {
      const down = await runCli(['stop', name]);
      expect(down.code, `${down.stdout}\n${down.stderr}`).toBe(0);
    }
    expect(getServer(name)).toBeNull();
  });
});

describe('parallel workers', () => {
  it('two in-memory servers on free ports never see each other rows in a table of the same name', async () => {
    const [a, b] = await Promise.all([
      start({ name: 'worker-1', persistence: 'memory' }),
      start({ name: 'worker-2', persistence: 'memory' }),
    ]);
    expect(a.databaseUrl).not.toBe(b.databaseUrl);
    const write = (server: PgdevServer, worker: string) =>
      withClient(server.databaseUrl, async (c) => {
        await c.query('CREATE TABLE results (worker text, n int)');
        for (let n = 0; n < 20; n++) await c.query('INSERT INTO results VALUES ($1, $2)', [worker, n]);
      });
    await Promise.all([write(a, 'one'), write(b, 'two')]);
    const read = (server: PgdevServer) =>
      withClient(server.databaseUrl, async (c) => (await c.query('SELECT worker, count(*)::int AS n FROM results GROUP BY worker')).rows);
    expect(await read(a)).toEqual([{ worker: 'one', n: 20 }]);
    expect(await read(b)).toEqual([{ worker: 'two', n: 20 }]);
  });
});
