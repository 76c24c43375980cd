/**
 * @module
 * Never two engines on one data directory (issue 22). A database process busy with a long statement cannot notice
 * on its own thread that its server died; its watcher thread does, and stops it. The process that opens a data
 * directory holds its lock (`databases/<id>.lock`) while it lives, and a new server waits for, then stops, a live
 * holder rather than open the directory beside it. Kills at random moments during a clone's first open and a rename
 * never leave a database that cannot be opened. Real detached servers, `pg` and the CLI; every process is killed by
 * pid in teardown.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { processStartTime } from '../src/state/data-lock.js';
import { cleanupCli, createDataHome, isAlive, processesUsing, readServerJson, runCli, serverPorts, waitFor, type DataHome } from './support/cli.js';

afterEach(cleanupCli);

/** A statement that writes for at least a minute whatever the machine: long enough to be running whenever the test acts. */
const LONG_INSERT = "INSERT INTO big SELECT i FROM generate_series(1, 60000) AS i WHERE pg_sleep(0.001)::text = ''";

type Server = { home: DataHome; name: string; args: string[]; url: (database?: string) => string };

/** `databaseHost`: `process` for a process per database (the default is a thread each, in the server's process). */
async function createServer(name: string, databaseHost?: 'process'): Promise<Server> {
  const home = createDataHome();
  if (databaseHost) home.env.PGDEV_DATABASE_HOST = databaseHost;
  const { ports, args } = await serverPorts();
  const server = { home, name, args, url: (database = 'postgres') => `postgres://postgres:postgres@127.0.0.1:${ports.database}/${database}` };
  await start(server);
  return server;
}

async function start(server: Server): Promise<number> {
  const result = await runCli(['-n', server.name, '-d', ...server.args], { env: server.home.env });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return readServerJson(server.home, server.name)!.pid;
}

async function stop(server: Server): Promise<{ stdout: string; stderr: string }> {
  const result = await runCli(['stop', server.name], { env: server.home.env });
  expect(result.status).toBe(0);
  return result;
}

async function sql<T = Record<string, unknown>>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined); // a server killed under it: the query's promise has the error
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Starts LONG_INSERT on its own connection; resolves once it has been sent and had a moment to begin. */
async function startLongStatement(url: string): Promise<{ outcome: Promise<unknown> }> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  const outcome = client.query(LONG_INSERT).catch((error: unknown) => error);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return { outcome };
}

/** The server's database processes (children of its main process). */
function databaseProcessesOf(server: Server, mainPid: number): number[] {
  return processesUsing(server.home.home, { databaseProcesses: true }).filter((pid) => pid !== mainPid);
}

/** Inserts rows one statement at a time, returning how many were acknowledged. */
async function writeAcknowledged(url: string, from: number, count: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = from; i < from + count; i++) await client.query('INSERT INTO acks VALUES ($1)', [i]);
    return count;
  } finally {
    await client.end();
  }
}

async function countOf(url: string, table: string): Promise<number> {
  return Number((await sql<{ n: string }>(url, `SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

describe('a database process dies with its server', { timeout: 240_000 }, () => {
  it('kill -9 of the main process during a long statement: the database process stops, and rows written after a restart survive', async () => {
    const server = await createServer('killed', 'process');
    await sql(server.url(), 'CREATE TABLE big (i int); CREATE TABLE acks (i int PRIMARY KEY)');
    const acknowledgedBefore = await writeAcknowledged(server.url(), 0, 20);
    const mainPid = readServerJson(server.home, server.name)!.pid;
    const running = await startLongStatement(server.url());
    const databasePids = databaseProcessesOf(server, mainPid);
    expect(databasePids.length).toBeGreaterThan(0);

    process.kill(mainPid, 'SIGKILL');
    // Without its watcher, the busy process would run its statement for about a minute more.
    await waitFor(() => databasePids.every((pid) => !isAlive(pid)), 15_000, `database processes ${databasePids.join(', ')} to stop`);
    expect(await running.outcome).toBeInstanceOf(Error);

    await start(server);
    const acknowledgedAfter = await writeAcknowledged(server.url(), 1_000, 200);
    await stop(server);
    await start(server);
    expect(await countOf(server.url(), 'acks')).toBe(acknowledgedBefore + acknowledgedAfter);
    expect(await countOf(server.url(), 'big')).toBe(0);
    await stop(server);
  });

  it('pgdev stop during a long statement stops the busy database in seconds and says what it cut short', async () => {
    const server = await createServer('stopped');
    await sql(server.url(), 'CREATE TABLE big (i int); CREATE TABLE acks (i int PRIMARY KEY)');
    await sql(server.url(), 'CREATE DATABASE other');
    await sql(server.url('other'), 'CREATE TABLE big (i int)');
    const running = [await startLongStatement(server.url()), await startLongStatement(server.url('other'))];

    const began = Date.now();
    const { stdout, stderr } = await stop(server);
    expect(Date.now() - began).toBeLessThan(9_000); // the CLI kills a server after 10 s: it must not come to that
    expect(stdout).toBe(`${server.name} stopped\n`);
    expect(stderr).not.toMatch(/did not stop in time/);
    expect(stderr).toMatch(/^pgdev: warning: stopped: database "postgres" was running a statement, stopped in the middle of it; its transaction is rolled back$/m);
    expect(stderr).toMatch(/^pgdev: warning: stopped: database "other" was running a statement, stopped in the middle of it; its transaction is rolled back$/m);
    expect(processesUsing(server.home.home, { databaseProcesses: true })).toEqual([]);
    for (const statement of running) expect(await statement.outcome).toBeInstanceOf(Error);

    await start(server);
    const acknowledged = await writeAcknowledged(server.url(), 0, 100);
    await stop(server);
    await start(server);
    expect(await countOf(server.url(), 'acks')).toBe(acknowledged);
    expect(await countOf(server.url('other'), 'big')).toBe(0);
    // A stop that cut nothing short says nothing of it.
    expect((await stop(server)).stderr).toBe('');
  });
});

describe('one engine per data directory', { timeout: 120_000 }, () => {
  /** A stand-in for an earlier server's database process that still holds the default database's directory. */
  function holdDefaultDatabase(server: Server, script: string): number {
    const holder = spawn(process.execPath, ['-e', script], { stdio: 'ignore', env: server.home.env });
    const lock = path.join(server.home.serverDir(server.name), 'databases', '5.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: holder.pid, started: processStartTime(holder.pid!) }));
    return holder.pid!;
  }

  it('a live holder that does not stop is waited for, then stopped, and the server says so in one line', async () => {
    const server = await createServer('held');
    await sql(server.url(), 'CREATE TABLE t (i int); INSERT INTO t VALUES (1)');
    await stop(server);
    const holder = holdDefaultDatabase(server, 'setInterval(() => {}, 1000)');

    await start(server);
    expect(isAlive(holder)).toBe(false);
    const log = fs.readFileSync(path.join(server.home.serverDir(server.name), 'server.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^pgdev: database "postgres": its data directory was still held by an earlier database process \\(pid ${holder}\\), which did not stop within 3 s and was stopped$`, 'm'));
    expect(await countOf(server.url(), 't')).toBe(1);
    await stop(server);
  });

  it('a holder that stops by itself is waited for; a lock whose owner is gone or was reused is taken over silently', async () => {
    const server = await createServer('waits');
    await stop(server);
    // It stops half a second after the new database process has begun to wait for it (its lock file is written).
    const databases = path.join(server.home.serverDir(server.name), 'databases');
    const holder = holdDefaultDatabase(server, `const fs = require('fs');
      const waiting = setInterval(() => {
        if (!fs.readdirSync(${JSON.stringify(databases)}).some((file) => /^5\\.lock\\..*\\.tmp$/.test(file))) return;
        clearInterval(waiting);
        setTimeout(() => {}, 500);
      }, 20);`);
    await start(server);
    const log = () => fs.readFileSync(path.join(server.home.serverDir(server.name), 'server.log'), 'utf8');
    expect(log()).toMatch(new RegExp(`its data directory was still held by an earlier database process \\(pid ${holder}\\), which stopped after \\d+\\.\\d s$`, 'm'));
    await stop(server);

    // The pid of a live process that is not the one recorded (a reused pid): its start time differs.
    const lock = path.join(server.home.serverDir(server.name), 'databases', '5.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, started: '1' }));
    const logged = log().length;
    await start(server);
    expect(isAlive(process.pid)).toBe(true);
    expect(log().slice(logged)).not.toMatch(/held by an earlier/);
    await stop(server);
    expect(fs.existsSync(lock)).toBe(false); // released on a clean stop
  });
});

describe('kills during a clone or a rename never leave a database that cannot open', { timeout: 600_000 }, () => {
  it('kill -9 at random moments after CREATE DATABASE ... TEMPLATE and ALTER DATABASE ... RENAME, 20 times', async () => {
    const server = await createServer('clones');
    await sql(server.url(), 'CREATE DATABASE t');
    await sql(server.url('t'), 'CREATE TABLE rows AS SELECT generate_series(1, 1000) AS i');
    let renamed = 'r0';
    await sql(server.url(), `CREATE DATABASE ${renamed} TEMPLATE t`);
    const clones: string[] = [];
    for (let round = 0; round < 20; round++) {
      const mainPid = readServerJson(server.home, server.name)!.pid;
      if (round % 2 === 0) {
        const clone = `b${round}`;
        await sql(server.url(), `CREATE DATABASE ${clone} TEMPLATE t`);
        clones.push(clone);
      } else {
        const next = `r${round}`;
        await sql(server.url(renamed), 'SELECT 1'); // open: renamed in its engine as well as in the record
        // The rename is the moment: it may or may not have been recorded when the kill lands.
        const renaming = sql(server.url(), `ALTER DATABASE ${renamed} RENAME TO ${next}`).then(() => (renamed = next), () => undefined);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 300));
        process.kill(mainPid, 'SIGKILL');
        await renaming;
      }
      // A clone's first open runs in the background after CREATE answers: the kill lands somewhere in it.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 1_500));
      if (isAlive(mainPid)) process.kill(mainPid, 'SIGKILL');
      await waitFor(() => databaseProcessesOf(server, mainPid).length === 0, 15_000, 'the killed server\'s database processes to stop');
      await start(server);
      // The record names the rename's outcome; the engine must answer to it whichever it is.
      const names = (await sql<{ datname: string }>(server.url(), 'SELECT datname FROM pg_database')).map((row) => row.datname);
      renamed = names.find((name) => /^r\d+$/.test(name)) ?? renamed;
    }
    for (const database of [...clones, renamed]) {
      expect(await countOf(server.url(database), 'rows'), database).toBe(1000);
      expect((await sql<{ name: string }>(server.url(database), 'SELECT current_database() AS name'))[0]!.name).toBe(database);
    }
    await stop(server);
  });
});
