/**
 * @module
 * Ports a server remembers (issue 13): `pgdev start` and a bare `pgdev -n NAME` keep the ports of the last run, and
 * a taken one is an error naming the port, what holds it (another pgdev server by name) and what to do; nothing
 * moves silently. A start that fails leaves no server behind in `ls`, and one port given for two roles says so.
 * Real processes, temporary XDG_DATA_HOME, free ports.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupCli, createDataHome, occupyPort, portText, readServerJson, runCli, serverPorts, type DataHome } from './support/cli.js';

afterEach(cleanupCli);

async function lsJson(home: DataHome): Promise<Array<Record<string, any>>> {
  const result = await runCli(['ls', '--json'], { env: home.env });
  expect(result).toMatchObject({ status: 0, stderr: '' });
  return JSON.parse(result.stdout);
}

describe('remembered ports', { timeout: 180_000 }, () => {
  it('start and a bare `pgdev -n` keep them: a taken one fails naming the port, its holder and what to do', async () => {
    const home = createDataHome();
    const a = await serverPorts();
    expect(await runCli(['-n', 'a', '-d', ...a.args], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    expect(await runCli(['stop', 'a'], { env: home.env })).toMatchObject({ status: 0, stdout: 'a stopped\n' });

    // Another server takes a's database port. Started through npx, its output says `npx pgdev`.
    const b = await serverPorts();
    const npx = { ...home.env, npm_config_user_agent: 'npm/11.0.0 node/v20.0.0 linux x64 workspaces/false', npm_command: 'exec' };
    const startedB = await runCli(['-n', 'b', '-d', '-p', String(b.ports.http), '-P', String(a.ports.database), '--shadow-db-port', String(b.ports.shadowDatabase)], { env: npx });
    expect(startedB).toMatchObject({ status: 0, stderr: '' });
    expect(startedB.stdout.trimEnd().split('\n').at(-1)).toBe('Stop it with: npx pgdev stop b');

    const taken = (command: string) =>
      `pgdev: port ${a.ports.database}, the database port server "a" had last time, is in use by pgdev server "b"; ` +
      `stop it with \`${command} stop b\`, or move "a" with \`${command} -n a --db-port <port>\` (and update its URL in .env)\n`;
    for (const args of [['start', 'a'], ['-n', 'a', '-d']]) {
      const result = await runCli(args, { env: home.env });
      expect(result.stderr, args.join(' ')).toBe(taken('pgdev'));
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.status, args.join(' ')).toBe(1);
    }
    expect((await runCli(['start', 'a'], { env: npx })).stderr).toBe(taken('npx pgdev'));
    const [listedA] = await lsJson(home);
    expect(listedA).toMatchObject({ name: 'a', status: 'stopped', ports: a.ports }); // still the remembered ports

    // Held by something that is not a pgdev server: said as much.
    expect(await runCli(['stop', 'b'], { env: home.env })).toMatchObject({ status: 0, stdout: 'b stopped\n' });
    const busy = await occupyPort(a.ports.http);
    try {
      const result = await runCli(['start', 'a'], { env: home.env });
      expect(result.stderr).toBe(
        `pgdev: port ${a.ports.http}, the HTTP port server "a" had last time, is in use; free it, or move "a" with \`pgdev -n a --port <port>\` (and update its URL in .env)\n`,
      );
      expect(result.status).toBe(1);
    } finally {
      await busy.release();
    }

    // Once free, the same ports again.
    const started = await runCli(['start', 'a'], { env: home.env });
    expect(started).toMatchObject({ status: 0, stderr: '', stdout: `a started on ${portText(a.ports)} (pid ${readServerJson(home, 'a')!.pid})\n` });
  }, 240_000);
});

describe('a failed start', { timeout: 180_000 }, () => {
  it('of a new server leaves nothing in ls (foreground and -d); of an existing one keeps it', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const busy = await occupyPort(ports.database);
    try {
      for (const detach of [[], ['-d']]) {
        const result = await runCli(['-n', 'ghost', ...detach, ...args], { env: home.env });
        expect(result.stderr).toBe(`pgdev: port ${ports.database} is in use; pass --db-port with a free port\n`);
        expect(result.status).toBe(1);
        expect(await lsJson(home)).toEqual([]);
        expect(fs.existsSync(home.serverDir('ghost'))).toBe(false);
      }
    } finally {
      await busy.release();
    }
    // An existing (stopped) server that fails to start is still listed, with its data.
    expect(await runCli(['-n', 'kept', '-d', ...args], { env: home.env })).toMatchObject({ status: 0, stderr: '' });
    expect(await runCli(['stop', 'kept'], { env: home.env })).toMatchObject({ status: 0 });
    const again = await occupyPort(ports.database);
    try {
      expect(await runCli(['start', 'kept'], { env: home.env })).toMatchObject({ status: 1 });
    } finally {
      await again.release();
    }
    expect((await lsJson(home)).map((server) => [server.name, server.status])).toEqual([['kept', 'stopped']]);
  });

  it('says that one port was given twice, and creates nothing', async () => {
    const home = createDataHome();
    const { ports } = await serverPorts();
    const p = String(ports.http);
    for (const [args, names] of [
      [['-p', p, '-P', p], '--port and --db-port'],
      [['-P', p, '--shadow-db-port', p], '--db-port and --shadow-db-port'],
    ] as const) {
      const result = await runCli(['-n', 'twice', '-d', ...args], { env: home.env });
      expect(result.stderr).toBe(`pgdev: port ${p} was given twice (${names}); give each its own port\n`);
      expect(result.status).toBe(1);
    }
    expect(await lsJson(home)).toEqual([]);
  });
});
