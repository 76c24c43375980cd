/**
 * @module
 * Detached servers (issue 4): `pgdev -d` returns once ready and the server outlives the command; a `-d` that cannot
 * start says why (not a timeout); `kill -9` of a detached server is recovered (`ls` says stopped, `start` works
 * without clean-up, committed data intact); two `pgdev -n x -d` at once run exactly one server; `pgdev url`.
 * Real processes, temporary XDG_DATA_HOME, free ports; every process is killed by pid in teardown.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BIN, canListen, cleanupCli, createDataHome, isAlive, isGone, occupyPort, portText, processesUsing, readServerJson, runCli, serverPorts,
  query, waitFor, type DataHome, type Ports,
} from './support/cli.js';

afterEach(cleanupCli);

function dbUrl(port: number): string {
  return `postgres://postgres:postgres@localhost:${port}/template1?sslmode=disable`;
}

async function startDetached(home: DataHome, name: string, args: string[]) {
  const result = await runCli(['-n', name, '-d', ...args], { env: home.env });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const record = readServerJson(home, name);
  expect(record).toBeDefined();
  return { result, pid: record!.pid };
}

async function lsJson(home: DataHome): Promise<Array<Record<string, unknown>>> {
  const result = await runCli(['ls', '--json'], { env: home.env });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout);
}

async function allFree(ports: Ports): Promise<boolean> {
  return (await Promise.all(Object.values(ports).map(canListen))).every(Boolean);
}

describe('pgdev -d', { timeout: 180_000 }, () => {
  it('returns once ready, prints the URLs, exits 0, and the server keeps running after the command', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const { result, pid } = await startDetached(home, 'bg', args);

    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^✔ pgdev server bg is running in the background on ${portText(ports)} \\(pid ${pid}, ready in \\d+ ms\\)\\.$`));
    expect(lines).toContain(`DATABASE_URL=${dbUrl(ports.database)}`);
    expect(lines).toContain(`SHADOW_DATABASE_URL=${dbUrl(ports.shadowDatabase)}`);
    expect(result.stdout).toMatch(new RegExp(`^# for Prisma Client's accelerateUrl \\(HTTP\\) instead: DATABASE_URL=prisma\\+postgres://localhost:${ports.http}/\\?api_key=[A-Za-z0-9_-]+$`, 'm'));
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('Stop it with: pgdev stop bg');

    // Ready means ready: all three ports answer right away, from a process that is not the command's.
    expect(isAlive(pid)).toBe(true);
    expect(await query(ports.database, 'select 1 as one')).toEqual([{ one: 1 }]);
    expect(await query(ports.shadowDatabase, 'select 2 as two')).toEqual([{ two: 2 }]);
    const health = await fetch(`http://127.0.0.1:${ports.http}/health`);
    expect(health.status).toBe(200);
    expect(fs.readFileSync(path.join(home.serverDir('bg'), 'server.log'), 'utf8')).toContain('✔ Great Success!');

    // Still alive a moment later (not tied to the command that started it).
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(isAlive(pid)).toBe(true);

    const stop = await runCli(['stop', 'bg'], { env: home.env });
    expect(stop).toMatchObject({ status: 0, stdout: 'bg stopped\n', stderr: '' });
    expect(isAlive(pid)).toBe(false);
    expect(await allFree(ports)).toBe(true);
  });

  it('fails with the reason (busy port), exit non-zero, no server left running', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const busy = await occupyPort(ports.database);
    try {
      const started = Date.now();
      const result = await runCli(['-n', 'nope', '-d', ...args], { env: home.env });
      expect(result.stderr).toBe(`pgdev: port ${ports.database} is in use; pass --db-port with a free port\n`);
      expect(result.stdout).toBe('');
      expect(result.status).toBe(1);
      expect(Date.now() - started).toBeLessThan(20_000);
      await waitFor(() => processesUsing(home.home, { databaseProcesses: true }).length === 0, 5_000, 'the failed server to exit');
      expect((await lsJson(home)).map((server) => server.status)).not.toContain('running');
    } finally {
      await busy.release();
    }
  });

  it('recovers from kill -9: ls shows stopped, start works without clean-up, committed data intact', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const { pid } = await startDetached(home, 'crashy', args);
    await query(ports.database, 'create table t (id int primary key, v text)');
    await query(ports.database, "insert into t select g, 'row ' || g from generate_series(1, 100) g");
    await query(ports.database, "begin; insert into t values (1000, 'uncommitted')"); // the connection ends: rolled back

    process.kill(pid, 'SIGKILL');
    // Wait until it is reaped too (pid 1 may take a while to collect the zombie; the test after this one covers a
    // server that stays a zombie).
    await waitFor(() => isGone(pid), 60_000, 'the killed server to be reaped');
    // Its database processes see their server go (the IPC channel closes) and exit by themselves.
    await waitFor(() => processesUsing(home.home, { databaseProcesses: true }).length === 0, 10_000, 'the database processes to exit');
    const dir = home.serverDir('crashy');
    expect(fs.existsSync(path.join(dir, 'server.json'))).toBe(true); // left behind by the crash
    expect(fs.existsSync(path.join(dir, 'server.lock'))).toBe(true);

    const listing = await lsJson(home);
    expect(listing).toHaveLength(1);
    expect(listing[0]).toMatchObject({ name: 'crashy', status: 'stopped', pid: null, ports });

    const urlResult = await runCli(['url', 'crashy'], { env: home.env });
    expect(urlResult.stderr).toBe('pgdev: server "crashy" is not running; start it with `pgdev start crashy`\n');
    expect(urlResult.status).toBe(1);

    const start = await runCli(['start', 'crashy'], { env: home.env });
    const record = readServerJson(home, 'crashy');
    expect(record?.pid).not.toBe(pid);
    expect(start.stderr).toBe('');
    expect(start.stdout).toBe(`crashy started on ${portText(ports)} (pid ${record!.pid})\n`);
    expect(start.status).toBe(0);

    expect(await query(ports.database, "select count(*)::int as n, max(id) as max, min(v) as first from t")).toEqual([
      { n: 100, max: 100, first: 'row 1' },
    ]);
    expect((await lsJson(home))[0]).toMatchObject({ name: 'crashy', status: 'running', pid: record!.pid, ports });

    const stop = await runCli(['stop', 'crashy'], { env: home.env });
    expect(stop).toMatchObject({ status: 0, stdout: 'crashy stopped\n', stderr: '' });
  });

  it('treats a kill -9ed server that is still a zombie (its parent has not reaped it) as stopped', async () => {
    // The server's parent is a shell that exec's `sleep`, which never reaps it: after kill -9 the server stays a
    // zombie, holding no port and no lock, exactly as on a machine whose init reaps orphans late.
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const quoted = [process.execPath, BIN, '-n', 'zombie', ...args].map((arg) => `'${arg}'`).join(' ');
    const parent = spawn('sh', ['-c', `${quoted} >/dev/null 2>&1 & exec sleep 600`], { env: home.env, stdio: 'ignore' });
    try {
      await waitFor(() => readServerJson(home, 'zombie') !== undefined, 60_000, 'the server to be ready');
      await waitFor(async () => !(await canListen(ports.database)), 30_000, 'the database port to listen');
      const pid = readServerJson(home, 'zombie')!.pid;
      await query(ports.database, 'create table t (id int); insert into t values (42)');
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !isAlive(pid), 10_000, 'the killed server to die');
      expect(isGone(pid)).toBe(false); // a zombie: still in the process table
      await waitFor(() => allFree(ports), 10_000, "the dead server's ports to be free");

      expect((await lsJson(home))[0]).toMatchObject({ name: 'zombie', status: 'stopped', pid: null });
      const start = await runCli(['start', 'zombie'], { env: home.env });
      const record = readServerJson(home, 'zombie');
      expect(start.stderr).toBe('');
      expect(start.stdout).toBe(`zombie started on ${portText(ports)} (pid ${record?.pid})\n`);
      expect(start.status).toBe(0);
      expect(await query(ports.database, 'select id from t')).toEqual([{ id: 42 }]);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('double start race: two `pgdev -n x -d` at once run exactly one server; the other exits 1 saying already running', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const [a, b] = await Promise.all([
      runCli(['-n', 'race', '-d', ...args], { env: home.env }),
      runCli(['-n', 'race', '-d', ...args], { env: home.env }),
    ]);
    const results = [a, b].sort((x, y) => (x.status ?? 99) - (y.status ?? 99));
    const [winner, loser] = results as [typeof a, typeof a];
    expect(winner.status).toBe(0);
    expect(winner.stderr).toBe('');
    expect(winner.stdout).toContain('✔ pgdev server race is running in the background');
    expect(loser.status).toBe(1);
    expect(loser.stdout).toBe('');
    expect(loser.stderr).toMatch(/^pgdev: server "race" is already running( \(pid \d+, ports \d+, \d+, \d+\))?; stop it with `pgdev stop race`\n$/);

    const record = readServerJson(home, 'race');
    await waitFor(() => processesUsing(home.home).length <= 1, 5_000, 'the losing server process to exit');
    expect(processesUsing(home.home)).toEqual([record!.pid]);
    expect(await query(ports.database, 'select 1 as one')).toEqual([{ one: 1 }]);

    const stop = await runCli(['stop', 'race'], { env: home.env });
    expect(stop).toMatchObject({ status: 0, stdout: 'race stopped\n' });
    expect(await allFree(ports)).toBe(true);
    expect(processesUsing(home.home, { databaseProcesses: true })).toEqual([]); // its database processes went with it
  });

  it('double start race: two `pgdev start x` at once run exactly one server; the other says already running', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    await startDetached(home, 'race2', args);
    expect(await runCli(['stop', 'race2'], { env: home.env })).toMatchObject({ status: 0, stdout: 'race2 stopped\n' });

    const results = await Promise.all([runCli(['start', 'race2'], { env: home.env }), runCli(['start', 'race2'], { env: home.env })]);
    const record = readServerJson(home, 'race2');
    expect(record).toBeDefined();
    const started = `race2 started on ${portText(ports)} (pid ${record!.pid})\n`;
    const outcomes = results.map((result) => {
      if (result.status === 0 && result.stdout === started && result.stderr === '') return 'started';
      // The loser either saw the running server (reported, exit 0) or lost the lock (error, exit 1).
      if (result.status === 0 && result.stdout === `race2 is already running on ${portText(ports)} (pid ${record!.pid})\n`) return 'already';
      if (
        result.status === 1 &&
        /^pgdev: server "race2" is already running( \(pid \d+, ports \d+, \d+, \d+\))?; stop it with `pgdev stop race2`\n$/.test(result.stderr)
      ) {
        return 'already';
      }
      return JSON.stringify(result);
    });
    expect(outcomes.sort()).toEqual(['already', 'started']);
    await waitFor(() => processesUsing(home.home).length <= 1, 5_000, 'the losing server process to exit');
    expect(processesUsing(home.home)).toEqual([record!.pid]);
    expect(await query(ports.database, 'select 1 as one')).toEqual([{ one: 1 }]);
  });

  it('stop forces a server that does not shut down in time, with a warning; it starts again afterwards', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const { pid } = await startDetached(home, 'stuck', args);
    await query(ports.database, 'create table t (id int); insert into t values (1)');
    process.kill(pid, 'SIGSTOP'); // SIGTERM stays pending: the graceful stop cannot finish
    const stop = await runCli(['stop', 'stuck', '--timeout', '1'], { env: home.env });
    expect(stop.stderr).toBe('pgdev: warning: stuck did not stop in time and was killed; its last transactions may be lost\n');
    expect(stop.stdout).toBe('stuck stopped\n');
    expect(stop.status).toBe(0);
    expect(isAlive(pid)).toBe(false);
    expect(await allFree(ports)).toBe(true);

    const start = await runCli(['start', 'stuck'], { env: home.env });
    expect(start.stderr).toBe('');
    expect(start.status).toBe(0);
    expect(await query(ports.database, 'select count(*)::int as n from t')).toEqual([{ n: 1 }]);
  });
});

describe('pgdev url', { timeout: 180_000 }, () => {
  it('prints the database URL, --shadow, --http and --json of a running server, of "default" without a name, and errors for a stopped or unknown one', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const { result } = await startDetached(home, 'web', args);
    const prismaPostgresUrl = /(prisma\+postgres:\/\/\S+)$/m.exec(result.stdout)![1]!;

    expect(await runCli(['url', 'web'], { env: home.env })).toMatchObject({ status: 0, stdout: `${dbUrl(ports.database)}\n`, stderr: '' });
    expect(await runCli(['url', 'web', '--shadow'], { env: home.env })).toMatchObject({
      status: 0,
      stdout: `${dbUrl(ports.shadowDatabase)}\n`,
      stderr: '',
    });
    expect(await runCli(['url', 'web', '--http'], { env: home.env })).toMatchObject({ status: 0, stdout: `${prismaPostgresUrl}\n`, stderr: '' });
    const json = await runCli(['url', 'web', '--json'], { env: home.env });
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      name: 'web',
      databaseUrl: dbUrl(ports.database),
      shadowDatabaseUrl: dbUrl(ports.shadowDatabase),
      prismaPostgresUrl,
      httpUrl: `http://localhost:${ports.http}`,
    });

    // Without a name: the server named "default", once there is one.
    const noDefault = await runCli(['url'], { env: home.env });
    expect(noDefault.stderr).toBe('pgdev: no server named "default"; create it with `pgdev -n default`\n');
    expect(noDefault.status).toBe(1);
    const other = await serverPorts();
    await startDetached(home, 'default', other.args);
    expect(await runCli(['url'], { env: home.env })).toMatchObject({ status: 0, stdout: `${dbUrl(other.ports.database)}\n`, stderr: '' });

    // A stopped server (web, stopped now, rather than a third server), and an unknown one.
    expect(await runCli(['stop', 'web'], { env: home.env })).toMatchObject({ status: 0, stdout: 'web stopped\n' });
    const stopped = await runCli(['url', 'web'], { env: home.env });
    expect(stopped.stderr).toBe('pgdev: server "web" is not running; start it with `pgdev start web`\n');
    expect(stopped.stdout).toBe('');
    expect(stopped.status).toBe(1);

    const unknown = await runCli(['url', 'ghost', '--json'], { env: home.env });
    expect(unknown.stderr).toBe('pgdev: no server named "ghost"; create it with `pgdev -n ghost`\n');
    expect(unknown.stdout).toBe('');
    expect(unknown.status).toBe(1);
  });

  it('--database names a database (an unknown one is refused, listing the others); --tls verifies the certificate, so node-postgres connects over TLS where sslmode=require fails', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const { result } = await startDetached(home, 'secure', args);
    // Where the URLs are printed, Node users are told how to get a TLS URL that works.
    expect(result.stdout).toContain("\n# TLS from Node (pg, Prisma's adapter-pg), where sslmode=require fails on the self-signed certificate: pgdev url secure --tls\n");
    await query(ports.database, 'CREATE DATABASE app_test');

    const named = await runCli(['url', 'secure', '--database', 'app_test'], { env: home.env });
    expect(named).toMatchObject({ status: 0, stdout: `postgres://postgres:postgres@localhost:${ports.database}/app_test?sslmode=disable\n`, stderr: '' });
    expect(await runCli(['url', 'secure', '--database', 'postgres'], { env: home.env })).toMatchObject({
      status: 0, stdout: `postgres://postgres:postgres@localhost:${ports.database}/postgres?sslmode=disable\n`,
    });
    expect(await runCli(['url', 'secure', '--shadow', '--database', 'scratch'], { env: home.env })).toMatchObject({
      status: 0, stdout: `postgres://postgres:postgres@localhost:${ports.shadowDatabase}/scratch?sslmode=disable\n`,
    });
    expect(await runCli(['url', 'secure', '--database', 'app_tset'], { env: home.env })).toMatchObject({
      status: 1,
      stdout: '',
      stderr: 'pgdev: server "secure" has no database "app_tset" (it has postgres, also called template1, app_test); create it first: CREATE DATABASE app_tset\n',
    });
    expect(await runCli(['url', 'secure', '--http', '--tls'], { env: home.env })).toMatchObject({
      status: 1, stderr: "pgdev: option '--tls' cannot be used with option '--http' (see `pgdev url --help`)\n",
    });

    const tls = await runCli(['url', 'secure', '--tls', '--database', 'app_test'], { env: home.env });
    const certFile = path.join(home.serverDir('secure'), 'tls-cert.pem');
    expect(tls).toMatchObject({ status: 0, stdout: `postgres://postgres:postgres@localhost:${ports.database}/app_test?sslmode=verify-full&sslrootcert=${certFile}\n`, stderr: '' });
    expect(fs.readFileSync(certFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const client = new pg.Client({ connectionString: tls.stdout.trim() });
    await client.connect();
    try {
      expect(client.connection.stream).toBeInstanceOf(TLSSocket);
      expect((client.connection.stream as TLSSocket).authorized).toBe(true);
      expect((await client.query('SELECT current_database() AS db')).rows).toEqual([{ db: 'app_test' }]);
    } finally {
      await client.end();
    }
    // What the issue met: node-postgres takes require as verify-full, and the certificate is self-signed.
    const plainRequire = new pg.Client({ connectionString: `postgres://postgres:postgres@localhost:${ports.database}/app_test?sslmode=require` });
    await expect(plainRequire.connect()).rejects.toThrow(/self-signed certificate/);
    await plainRequire.end().catch(() => undefined);
    // The README's other way: require as libpq reads it, encrypted and not verified.
    const compat = new pg.Client({ connectionString: `postgres://postgres:postgres@localhost:${ports.database}/app_test?uselibpqcompat=true&sslmode=require` });
    await compat.connect();
    try {
      expect(compat.connection.stream).toBeInstanceOf(TLSSocket);
      expect((await compat.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await compat.end();
    }
  });
});
