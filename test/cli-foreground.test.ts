/**
 * @module
 * `pgdev` in the foreground, end to end (issue 2): the printed URLs and api_key, `pg` and `psql` on both database
 * ports, HTTP health and info, persistence across a SIGTERM stop and restart, names isolated from each other, the
 * shadow database separate and empty at every start, a clean SIGTERM/SIGINT shutdown (exit 0, ports free, lock
 * released) and the lock refusing a second `pgdev -n same`. Real processes, temporary XDG_DATA_HOME, free ports.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canListen, cleanupCli, createDataHome, runCli, serverPorts, startForeground, type DataHome, type Ports,
} from './support/cli.js';

afterEach(cleanupCli);

const VERSION: string = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

function dbUrl(port: number): string {
  return `postgres://postgres:postgres@localhost:${port}/template1?sslmode=disable`;
}

async function query<T = Record<string, unknown>>(port: number, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'postgres', database: 'template1' });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

function expectedUrls(name: string, ports: Ports, secret: string) {
  const databaseUrl = dbUrl(ports.database);
  const shadowDatabaseUrl = dbUrl(ports.shadowDatabase);
  const apiKey = Buffer.from(JSON.stringify({ databaseUrl, name, shadowDatabaseUrl, secret })).toString('base64url');
  return { databaseUrl, shadowDatabaseUrl, prismaPostgresUrl: `prisma+postgres://localhost:${ports.http}/?api_key=${apiKey}` };
}

function secretOf(home: DataHome, name: string): string {
  return JSON.parse(fs.readFileSync(path.join(home.serverDir(name), 'config.json'), 'utf8')).secret;
}

describe('pgdev (foreground)', { timeout: 180_000 }, () => {
  it('prints the ready line and the three URLs; the api_key is base64url JSON with databaseUrl, name, shadowDatabaseUrl, secret', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'urls', ...args], { env: home.env });

    const lines = server.stdout.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^✔ Great Success! Your pgdev server urls is ready and listening on ports ${ports.http}, ${ports.database}, ${ports.shadowDatabase} \\(\\d+ ms; the ports asked for\\)\\.$`),
    );
    expect(lines).toContain(`DATABASE_URL=${dbUrl(ports.database)}`);
    expect(lines).toContain(`SHADOW_DATABASE_URL=${dbUrl(ports.shadowDatabase)}`);

    const match = /^# for Prisma Client's accelerateUrl \(HTTP\) instead: DATABASE_URL=prisma\+postgres:\/\/localhost:(\d+)\/\?api_key=([A-Za-z0-9_-]+)$/m.exec(server.stdout);
    expect(match, server.stdout).not.toBeNull();
    expect(Number(match![1])).toBe(ports.http);
    const key = JSON.parse(Buffer.from(match![2]!, 'base64url').toString('utf8'));
    expect(Object.keys(key)).toEqual(['databaseUrl', 'name', 'shadowDatabaseUrl', 'secret']);
    expect(key.databaseUrl).toBe(dbUrl(ports.database));
    expect(key.shadowDatabaseUrl).toBe(dbUrl(ports.shadowDatabase));
    expect(key.name).toBe('urls');
    expect(key.secret).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(key.secret).toBe(secretOf(home, 'urls'));
    expect(server.urls).toEqual(expectedUrls('urls', ports, key.secret));

    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(server.stdout).toContain('pgdev server urls stopped (terminated).\n');

    // The secret is kept in the server's state: the URL is the same after a restart.
    const again = await startForeground(['-n', 'urls', ...args], { env: home.env });
    expect(again.urls).toEqual(server.urls);
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });

  it('answers `pg` queries on the main and the shadow port', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'pgclient', ...args], { env: home.env });

    expect(await query(ports.database, 'select $1::int + 1 as answer', [41])).toEqual([{ answer: 42 }]);
    expect(await query(ports.shadowDatabase, 'select $1::int + 1 as answer', [99])).toEqual([{ answer: 100 }]);
    // The printed URLs work as connection strings, as given.
    for (const connectionString of [server.urls.databaseUrl, server.urls.shadowDatabaseUrl]) {
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        expect((await client.query('select current_user as who')).rows).toEqual([{ who: 'postgres' }]);
      } finally {
        await client.end();
      }
    }
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('lets psql connect with its default sslmode (prefer) on both ports, and tells it the database port when given the HTTP one', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'psql', ...args], { env: home.env });
    for (const port of [ports.database, ports.shadowDatabase]) {
      const result = await runCli([], {
        env: { ...home.env, PGPASSWORD: 'postgres' },
        command: { file: 'psql', args: ['-h', 'localhost', '-p', String(port), '-U', 'postgres', '-X', '-A', '-t', '-c', 'select 6 * 7'] },
      });
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('42\n');
      expect(result.status).toBe(0);
    }

    // Pointed at the HTTP port by mistake, psql (SSL request first) and pg (startup at once) are told which port to
    // use, in a Postgres error, and the HTTP endpoint goes on serving.
    const told = `this is the HTTP port of pgdev server "psql"; connect Postgres clients to its database port ${ports.database}`;
    const wrongPort = await runCli([], {
      env: { ...home.env, PGPASSWORD: 'postgres' },
      command: { file: 'psql', args: ['-h', 'localhost', '-p', String(ports.http), '-U', 'postgres', '-X', '-c', 'select 1'] },
    });
    expect(wrongPort.stderr).toContain(`FATAL:  ${told}\nHINT:  use ${dbUrl(ports.database)}\n`);
    expect(wrongPort.status).toBe(2);
    const client = new pg.Client({ host: '127.0.0.1', port: ports.http, user: 'postgres' });
    client.on('error', () => undefined);
    expect(await client.connect().then(() => 'connected', (error: unknown) => error)).toMatchObject({ code: '08P01', message: told });
    expect((await fetch(`http://127.0.0.1:${ports.http}/health`)).status).toBe(200);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('serves GET /health (200) and GET /info (name, version, URLs; the api_key only to a request that has it) on the HTTP port', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'http-info', ...args], { env: home.env });

    const health = await fetch(`http://127.0.0.1:${ports.http}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const urls = expectedUrls('http-info', ports, secretOf(home, 'http-info'));
    const apiKey = new URL(urls.prismaPostgresUrl).searchParams.get('api_key')!;
    const info = await fetch(`http://127.0.0.1:${ports.http}/info`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(info.status).toBe(200);
    expect(await info.json()).toEqual({ name: 'http-info', version: VERSION, ...urls, httpUrl: `http://localhost:${ports.http}` });
    // Without the key (or with a wrong one), everything but the prisma+postgres:// URL, whose api_key is the secret.
    for (const headers of [{}, { authorization: 'Bearer nope' }] as Array<Record<string, string>>) {
      const open = await fetch(`http://127.0.0.1:${ports.http}/info`, { headers });
      expect(open.status).toBe(200);
      const { prismaPostgresUrl: _secret, ...rest } = urls;
      expect(await open.json()).toEqual({ name: 'http-info', version: VERSION, ...rest, httpUrl: `http://localhost:${ports.http}` });
    }

    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('keeps committed rows across a SIGTERM stop and a restart of the same name; another name does not see them', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const first = await startForeground(['-n', 'keep', ...args], { env: home.env });
    await query(ports.database, 'create table notes (id int primary key, body text)');
    await query(ports.database, "insert into notes values (1, 'one'), (2, 'two')");
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const second = await startForeground(['-n', 'keep', ...args], { env: home.env });
    expect(await query(ports.database, 'select id, body from notes order by id')).toEqual([
      { id: 1, body: 'one' },
      { id: 2, body: 'two' },
    ]);
    await query(ports.database, "insert into notes values (3, 'three')");
    expect(await second.stop('SIGINT')).toEqual({ code: 0, signal: null });

    // Another name, on the same ports: its own, empty database.
    const other = await startForeground(['-n', 'other', ...args], { env: home.env });
    expect(await query(ports.database, "select to_regclass('public.notes') as t")).toEqual([{ t: null }]);
    await query(ports.database, 'create table notes (id int)');
    expect(await query(ports.database, 'select count(*)::int as n from notes')).toEqual([{ n: 0 }]);
    expect(await other.stop()).toEqual({ code: 0, signal: null });

    const third = await startForeground(['-n', 'keep', ...args], { env: home.env });
    expect(await query(ports.database, 'select count(*)::int as n from notes')).toEqual([{ n: 3 }]);
    expect(await third.stop()).toEqual({ code: 0, signal: null });
  });

  it('keeps the shadow database separate from the main one, and empty after a restart', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const first = await startForeground(['-n', 'shadow', ...args], { env: home.env });
    await query(ports.shadowDatabase, 'create table only_in_shadow (id int)');
    await query(ports.shadowDatabase, 'insert into only_in_shadow values (1)');
    await query(ports.database, 'create table only_in_main (id int)');
    expect(await query(ports.database, "select to_regclass('public.only_in_shadow') as t")).toEqual([{ t: null }]);
    expect(await query(ports.shadowDatabase, "select to_regclass('public.only_in_main') as t")).toEqual([{ t: null }]);
    expect(await query(ports.shadowDatabase, 'select count(*)::int as n from only_in_shadow')).toEqual([{ n: 1 }]);
    expect(await first.stop()).toEqual({ code: 0, signal: null });

    const second = await startForeground(['-n', 'shadow', ...args], { env: home.env });
    expect(await query(ports.shadowDatabase, "select to_regclass('public.only_in_shadow') as t")).toEqual([{ t: null }]);
    expect(
      await query(ports.shadowDatabase, "select count(*)::int as n from pg_tables where schemaname not in ('pg_catalog', 'information_schema')"),
    ).toEqual([{ n: 0 }]);
    expect(await query(ports.database, "select to_regclass('public.only_in_main')::text as t")).toEqual([{ t: 'only_in_main' }]);
    expect(await second.stop()).toEqual({ code: 0, signal: null });
  });

  it('shuts down on SIGTERM with exit 0: ports free again, lock released, server.json removed', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'term', ...args], { env: home.env });
    const dir = home.serverDir('term');
    expect(fs.existsSync(path.join(dir, 'server.lock'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'server.json'), 'utf8'))).toMatchObject({ name: 'term', pid: server.pid, ports });
    for (const port of Object.values(ports)) expect(await canListen(port)).toBe(false);

    // A client connected at shutdown time does not keep the server alive.
    const client = new pg.Client({ connectionString: server.urls.databaseUrl });
    client.on('error', () => undefined);
    await client.connect();

    expect(await server.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await client.end().catch(() => undefined);
    expect(server.stderr).toBe('');
    for (const port of Object.values(ports)) expect(await canListen(port), `port ${port}`).toBe(true);
    expect(fs.existsSync(path.join(dir, 'server.lock'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'server.json'))).toBe(false);

    // The lock is really free: the same name starts again at once.
    const again = await startForeground(['-n', 'term', ...args], { env: home.env });
    expect(await again.stop()).toEqual({ code: 0, signal: null });
  });

  it('refuses a second `pgdev -n same` while it runs: exit 1, one line naming "already running" and the ports', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const server = await startForeground(['-n', 'same', ...args], { env: home.env });

    const second = await runCli(['-n', 'same', ...args], { env: home.env });
    expect(second.stderr).toBe(
      `pgdev: server "same" is already running (pid ${server.pid}, ports ${ports.http}, ${ports.database}, ${ports.shadowDatabase}); stop it with \`pgdev stop same\`\n`,
    );
    expect(second.stdout).toBe('');
    expect(second.status).toBe(1);

    // Without port flags too: the lock, not the ports, decides.
    const third = await runCli(['-n', 'same'], { env: home.env });
    expect(third.stderr).toMatch(/^pgdev: server "same" is already running \(pid \d+, ports \d+, \d+, \d+\); stop it with `pgdev stop same`\n$/);
    expect(third.status).toBe(1);

    // The first server is untouched.
    expect(await query(ports.database, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});
