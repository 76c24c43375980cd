/**
 * @module
 * Managing servers from any terminal (issue 4): `pgdev start`, `stop`, `rm` and `ls`, by name and by glob
 * (`'proj-*'`, `'test-?'`), with their errors, the TTY and non-TTY paths of `rm`, and `ls` as a table and as JSON.
 * Real processes, temporary XDG_DATA_HOME, free ports; every process is killed by pid in teardown.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canListen, cleanupCli, createDataHome, hasScript, isAlive, isGone, portText, readServerJson, runCli, runCliInTty, serverPorts,
  query, waitFor, type DataHome, type Ports,
} from './support/cli.js';

afterEach(cleanupCli);

async function allFree(ports: Ports): Promise<boolean> {
  return (await Promise.all(Object.values(ports).map(canListen))).every(Boolean);
}

type Started = { name: string; ports: Ports; pid: number };

/** Starts the named servers with `-d` at once, each on its own free ports. */
async function startServers(home: DataHome, names: string[]): Promise<Record<string, Started>> {
  const servers: Record<string, Started> = {};
  await Promise.all(
    names.map(async (name) => {
      const { ports, args } = await serverPorts();
      const result = await runCli(['-n', name, '-d', ...args], { env: home.env });
      expect(result.stderr, `starting ${name}`).toBe('');
      expect(result.status, `starting ${name}`).toBe(0);
      servers[name] = { name, ports, pid: readServerJson(home, name)!.pid };
    }),
  );
  return servers;
}

async function lsJson(home: DataHome): Promise<Array<Record<string, any>>> {
  const result = await runCli(['ls', '--json'], { env: home.env });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout);
}

async function statuses(home: DataHome): Promise<Record<string, string>> {
  return Object.fromEntries((await lsJson(home)).map((server) => [server.name, server.status]));
}

describe('pgdev stop and start', { timeout: 180_000 }, () => {
  it('start keeps the --idle-close a server was created with, and takes one of its own, kept from then on', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    expect(await runCli(['-n', 'idler', '-d', '--idle-close', '1', ...args], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    const idleCloseMs = () => JSON.parse(fs.readFileSync(`${home.serverDir('idler')}/config.json`, 'utf8')).idleCloseMs;
    /** A created database, used once: the server's log says when its process closed. */
    const closesAfter = async (database: string): Promise<string> => {
      await query(ports.database, `CREATE DATABASE ${database}`);
      const log = `${home.serverDir('idler')}/server.log`;
      const line = new RegExp(`database "${database}" closed after (\\d+) s without connections`);
      await waitFor(() => line.test(fs.readFileSync(log, 'utf8')), 30_000, `${database} to close when idle`);
      return line.exec(fs.readFileSync(log, 'utf8'))![1]!;
    };
    expect(await closesAfter('first')).toBe('1');

    expect(await runCli(['stop', 'idler'], { env: home.env })).toMatchObject({ status: 0 });
    expect(await runCli(['start', 'idler'], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    expect(idleCloseMs()).toBe(1000);
    expect(await closesAfter('second')).toBe('1');

    expect(await runCli(['stop', 'idler'], { env: home.env })).toMatchObject({ status: 0 });
    expect(await runCli(['start', 'idler', '--idle-close', '2'], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    expect(idleCloseMs()).toBe(2000);
    expect(await closesAfter('third')).toBe('2');
    expect(await runCli(['stop', 'idler'], { env: home.env })).toMatchObject({ status: 0 });
    expect(await runCli(['start', 'idler'], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    expect(idleCloseMs()).toBe(2000);
    // Each close is logged once (issue 21 saw the line twice).
    const closes = fs.readFileSync(`${home.serverDir('idler')}/server.log`, 'utf8').split('\n').filter((line) => line.includes('without connections'));
    expect(closes).toEqual([
      'pgdev: database "first" closed after 1 s without connections',
      'pgdev: database "second" closed after 1 s without connections',
      'pgdev: database "third" closed after 2 s without connections',
    ]);
  });

  // One set of four servers for both commands: stopped by glob and by name, then started again by name and by glob.
  it('stop by glob and by name returns with the ports free; start brings stopped servers back on their remembered ports, running ones reported and left alone', async () => {
    const home = createDataHome();
    const s = await startServers(home, ['proj-a', 'proj-b', 'test-1', 'test-22']);
    await query(s['proj-b']!.ports.database, 'create table kept (id int); insert into kept values (7)');

    const byGlob = await runCli(['stop', 'proj-*'], { env: home.env });
    expect(byGlob).toMatchObject({ status: 0, stdout: 'proj-a stopped\nproj-b stopped\n', stderr: '' });
    for (const name of ['proj-a', 'proj-b']) {
      expect(isAlive(s[name]!.pid), name).toBe(false);
      expect(await allFree(s[name]!.ports), name).toBe(true);
    }
    expect(await statuses(home)).toEqual({ 'proj-a': 'stopped', 'proj-b': 'stopped', 'test-1': 'running', 'test-22': 'running' });

    const byName = await runCli(['stop', 'test-1', 'test-22'], { env: home.env });
    expect(byName).toMatchObject({ status: 0, stdout: 'test-1 stopped\ntest-22 stopped\n', stderr: '' });
    for (const name of ['test-1', 'test-22']) {
      expect(isAlive(s[name]!.pid), name).toBe(false);
      expect(await allFree(s[name]!.ports), name).toBe(true);
    }

    const again = await runCli(['stop', 'proj-a'], { env: home.env });
    expect(again).toMatchObject({ status: 0, stdout: 'proj-a is not running\n', stderr: '' });

    // An unknown name among known ones starts nothing.
    const mixed = await runCli(['start', 'proj-b', 'nope'], { env: home.env });
    expect(mixed.stderr).toBe('pgdev: no server named "nope"; see `pgdev ls`, or create it with `pgdev -n nope -d`\n');
    expect(mixed.status).toBe(1);
    expect(Object.values(await statuses(home))).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);

    const startByName = await runCli(['start', 'proj-b'], { env: home.env });
    const pidB = readServerJson(home, 'proj-b')!.pid;
    expect(startByName).toMatchObject({ status: 0, stdout: `proj-b started on ${portText(s['proj-b']!.ports)} (pid ${pidB})\n`, stderr: '' });
    expect(await query(s['proj-b']!.ports.database, 'select id from kept')).toEqual([{ id: 7 }]);

    // A glob over a stopped and a running server: one started, the other reported and left alone.
    const startByGlob = await runCli(['start', 'proj-*'], { env: home.env });
    const pidA = readServerJson(home, 'proj-a')!.pid;
    expect(startByGlob).toMatchObject({
      status: 0,
      stdout: `proj-a started on ${portText(s['proj-a']!.ports)} (pid ${pidA})\nproj-b is already running on ${portText(s['proj-b']!.ports)} (pid ${pidB})\n`,
      stderr: '',
    });
    expect(readServerJson(home, 'proj-b')!.pid).toBe(pidB);
    expect(isAlive(pidB)).toBe(true);

    const question = await runCli(['start', 'test-?'], { env: home.env });
    const pid1 = readServerJson(home, 'test-1')!.pid;
    expect(question).toMatchObject({ status: 0, stdout: `test-1 started on ${portText(s['test-1']!.ports)} (pid ${pid1})\n`, stderr: '' });
    expect(await statuses(home)).toEqual({ 'proj-a': 'running', 'proj-b': 'running', 'test-1': 'running', 'test-22': 'stopped' });
    for (const name of ['proj-a', 'proj-b', 'test-1']) expect(await query(s[name]!.ports.database, 'select 1 as one'), name).toEqual([{ one: 1 }]);

    expect(await runCli(['stop', '*'], { env: home.env })).toMatchObject({
      status: 0,
      stdout: 'proj-a stopped\nproj-b stopped\ntest-1 stopped\ntest-22 is not running\n',
    });
  }, 240_000);

  it('errors for an unknown name and for a glob that matches nothing (stop, start, rm)', async () => {
    const home = createDataHome();
    for (const command of ['stop', 'start', 'rm']) {
      const unknown = await runCli([command, 'nope'], { env: home.env });
      // Only `start` suggests creating the server: stopping or removing one that does not exist needs nothing done.
      const create = command === 'start' ? ', or create it with `pgdev -n nope -d`' : '';
      expect(unknown.stderr, command).toBe(`pgdev: no server named "nope"; see \`pgdev ls\`${create}\n`);
      expect(unknown.stdout, command).toBe('');
      expect(unknown.status, command).toBe(1);

      const glob = await runCli([command, 'zz-*'], { env: home.env });
      expect(glob.stderr, command).toBe('pgdev: no server matches "zz-*"; see `pgdev ls`\n');
      expect(glob.stdout, command).toBe('');
      expect(glob.status, command).toBe(1);
    }
  });
});

describe('pgdev rm', { timeout: 180_000 }, () => {
  it('refuses a running server without --force; --force -y stops it, then deletes everything', async () => {
    const home = createDataHome();
    const s = await startServers(home, ['busy']);

    const refused = await runCli(['rm', 'busy', '-y'], { env: home.env });
    expect(refused.stderr).toBe('pgdev: refusing to remove running server busy; stop it first or pass --force\n');
    expect(refused.stdout).toBe('');
    expect(refused.status).toBe(1);
    expect(isAlive(s['busy']!.pid)).toBe(true);
    expect(await query(s['busy']!.ports.database, 'select 1 as one')).toEqual([{ one: 1 }]);

    const forced = await runCli(['rm', 'busy', '--force', '-y'], { env: home.env });
    expect(forced).toMatchObject({ status: 0, stdout: 'busy removed\n', stderr: '' });
    expect(isAlive(s['busy']!.pid)).toBe(false);
    expect(fs.existsSync(home.serverDir('busy'))).toBe(false);
    expect(await allFree(s['busy']!.ports)).toBe(true);
    expect(await lsJson(home)).toEqual([]);
  });

  it('without a TTY and without -y refuses with a message naming -y; -y deletes (by name and by glob)', async () => {
    const home = createDataHome();
    await startServers(home, ['keep-me', 'tmp-1', 'tmp-2']);
    expect(await runCli(['stop', '*'], { env: home.env })).toMatchObject({ status: 0, stderr: '' });

    for (const args of [['rm', 'keep-me'], ['rm', 'keep-me', '--force']]) {
      const refused = await runCli(args, { env: home.env });
      expect(refused.stderr, args.join(' ')).toBe('pgdev: refusing to delete data without confirmation; pass -y to confirm (no terminal to ask)\n');
      expect(refused.stdout).toBe('');
      expect(refused.status).toBe(1);
      expect(fs.existsSync(home.serverDir('keep-me'))).toBe(true);
    }

    expect(await runCli(['rm', 'tmp-*', '-y'], { env: home.env })).toMatchObject({ status: 0, stdout: 'tmp-1 removed\ntmp-2 removed\n', stderr: '' });
    expect(await statuses(home)).toEqual({ 'keep-me': 'stopped' });

    expect(await runCli(['rm', '--yes', 'keep-me'], { env: home.env })).toMatchObject({ status: 0, stdout: 'keep-me removed\n', stderr: '' });
    expect(fs.existsSync(home.serverDir('keep-me'))).toBe(false);
    expect(await lsJson(home)).toEqual([]);
  }, 180_000);

  it.skipIf(!hasScript())('on a TTY asks for confirmation listing what it deletes: "n" keeps, "y" deletes (and --force stops first)', async () => {
    const home = createDataHome();
    const s = await startServers(home, ['asked', 'live']);
    expect(await runCli(['stop', 'asked'], { env: home.env })).toMatchObject({ status: 0, stdout: 'asked stopped\n' });

    const no = await runCliInTty(['rm', 'asked'], { env: home.env, input: 'n\n' });
    expect(no.stdout).toMatch(/This deletes the data of:\r?\n {2}asked \([\d.]+ (KiB|MiB)\)\r?\nContinue\? \[y\/N\] /);
    expect(no.stdout).toContain('pgdev: nothing removed');
    expect(no.status).toBe(1);
    expect(fs.existsSync(home.serverDir('asked'))).toBe(true);

    const yes = await runCliInTty(['rm', 'asked'], { env: home.env, input: 'y\n' });
    expect(yes.stdout).toMatch(/Continue\? \[y\/N\] /);
    expect(yes.stdout).toMatch(/asked removed\r?\n/);
    expect(yes.status).toBe(0);
    expect(fs.existsSync(home.serverDir('asked'))).toBe(false);

    const running = await runCliInTty(['rm', 'live', '--force'], { env: home.env, input: 'y\n' });
    expect(running.stdout).toMatch(/ {2}live \([\d.]+ (KiB|MiB), running: will be stopped\)\r?\n/);
    expect(running.stdout).toMatch(/live removed\r?\n/);
    expect(running.status).toBe(0);
    expect(isAlive(s['live']!.pid)).toBe(false);
    expect(fs.existsSync(home.serverDir('live'))).toBe(false);
    expect(await allFree(s['live']!.ports)).toBe(true);
  }, 180_000);
});

/** Starts a server through the API in a process of its own (a test process), and kills it as a crash would. */
async function crashedApiServer(home: DataHome, name: string, persistence: 'memory' | 'persistent'): Promise<void> {
  const child = spawn(process.execPath, [new URL('./fixtures/memory-server.mjs', import.meta.url).pathname, name, persistence], { env: home.env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  await waitFor(() => stdout.includes('\n') || child.exitCode !== null, 60_000, `the ${persistence} server ${name} to be ready`);
  expect(readServerJson(home, name)).toMatchObject({ pid: child.pid });
  child.kill('SIGKILL');
  // Gone, not just a zombie: a killed process's main thread turns zombie first, and until its database threads have
  // ended too, pgdev rightly counts it as running (its files and ports are still open).
  await waitFor(() => isGone(child.pid!), 10_000, 'the test process to be gone');
}

describe('pgdev ls', { timeout: 180_000 }, () => {
  it('leaves out an in-memory server whose process died, and removes its folder; a persistent one is listed as stopped', async () => {
    const home = createDataHome();
    await crashedApiServer(home, 'crashed-memory', 'memory');
    await crashedApiServer(home, 'crashed-disk', 'persistent');
    expect(fs.existsSync(home.serverDir('crashed-memory'))).toBe(true);

    const json = JSON.parse((await runCli(['ls', '--json'], { env: home.env })).stdout);
    expect(json.map((server: { name: string }) => server.name)).toEqual(['crashed-disk']);
    expect(json[0]).toMatchObject({ status: 'stopped', pid: null, persistence: 'persistent' });
    expect(fs.existsSync(home.serverDir('crashed-memory'))).toBe(false);
    expect(await runCli(['stop', 'crashed-memory'], { env: home.env })).toMatchObject({
      status: 1,
      stderr: 'pgdev: no server named "crashed-memory"; see `pgdev ls`\n',
    });
  });


  it('with no servers says so, and --json is []', async () => {
    const home = createDataHome();
    expect(await runCli(['ls'], { env: home.env })).toMatchObject({
      status: 0,
      stdout: 'no servers yet; start one with `pgdev` (or `pgdev -n NAME`)\n',
      stderr: '',
    });
    expect(await runCli(['ls', '--json'], { env: home.env })).toMatchObject({ status: 0, stdout: '[]\n', stderr: '' });
  });

  it('lists name, status, pid, ports, size and last start, as a table and as --json', async () => {
    const home = createDataHome();
    const s = await startServers(home, ['alpha', 'beta']);
    const betaStartedAt = readServerJson(home, 'beta')!.startedAt;
    expect(await runCli(['stop', 'beta'], { env: home.env })).toMatchObject({ status: 0, stdout: 'beta stopped\n' });
    const alphaRecord = readServerJson(home, 'alpha')!;

    const json = await lsJson(home);
    expect(json.map((server) => Object.keys(server).sort())).toEqual([
      ['databases', 'lastStart', 'name', 'persistence', 'pid', 'ports', 'sizeBytes', 'status'],
      ['databases', 'lastStart', 'name', 'persistence', 'pid', 'ports', 'sizeBytes', 'status'],
    ]);
    const [alpha, beta] = json;
    expect(alpha).toMatchObject({ name: 'alpha', status: 'running', pid: s['alpha']!.pid, ports: s['alpha']!.ports, lastStart: alphaRecord.startedAt });
    // A stopped server's last start is when it started, not when it stopped; what is on disk is persistent.
    expect(beta).toMatchObject({ name: 'beta', status: 'stopped', pid: null, ports: s['beta']!.ports, lastStart: betaStartedAt, persistence: 'persistent' });
    expect(alpha).toMatchObject({ persistence: 'persistent' });
    for (const server of json) {
      expect(server.sizeBytes, server.name).toBeGreaterThan(1024 * 1024); // a real PGlite data directory
      // The default database alone, its size within the server's (the folder holds the state files too).
      expect(server.databases.map((database: { name: string }) => database.name), server.name).toEqual(['postgres']);
      expect(server.databases[0].sizeBytes, server.name).toBeGreaterThan(1024 * 1024);
      expect(server.databases[0].sizeBytes, server.name).toBeLessThanOrEqual(server.sizeBytes);
      expect(Number.isInteger(server.sizeBytes)).toBe(true);
      expect(new Date(server.lastStart).toISOString(), server.name).toBe(server.lastStart);
    }

    const table = await runCli(['ls'], { env: home.env });
    expect(table.stderr).toBe('');
    expect(table.status).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^NAME +STATUS +PID +PORTS \(http, db, shadow\) +DATABASES +SIZE +LAST START$/);
    const p = (ports: Ports) => `${ports.http}, ${ports.database}, ${ports.shadowDatabase}`;
    expect(lines[1]).toMatch(new RegExp(`^alpha +running +${s['alpha']!.pid} +${p(s['alpha']!.ports)} +1 +[\\d.]+ MiB +${alpha!.lastStart.replaceAll('.', '\\.')}$`));
    expect(lines[2]).toMatch(new RegExp(`^beta +stopped +- +${p(s['beta']!.ports)} +1 +[\\d.]+ MiB +${beta!.lastStart.replaceAll('.', '\\.')}$`));
    // Columns line up: every row's STATUS starts where the header's does.
    const column = lines[0]!.indexOf('STATUS');
    for (const line of lines.slice(1)) expect(line.slice(column, column + 7)).toMatch(/^(running|stopped)/);
  }, 120_000);
});
