/**
 * @module
 * Commands that race a server's start-up (issue 4): `stop` and `rm --force` aimed at a server that is still starting
 * wait for it and then stop it, leaving no process and (for rm) no folder behind. Also the foreground session's keys
 * on a terminal (issue 2): `h` prints the HTTP URL, `t` the TCP URLs, `q` quits cleanly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanupCli, createDataHome, hasScript, isAlive, parseUrls, runCli, serverPorts, waitFor, type DataHome,
} from './support/cli.js';

afterEach(cleanupCli);

/** Starts `pgdev -n name -d` without waiting, and resolves once the server holds its lock but is not ready yet. */
async function startingServer(home: DataHome, name: string) {
  const { args } = await serverPorts();
  const detach = runCli(['-n', name, '-d', ...args], { env: home.env });
  const ownerFile = path.join(home.serverDir(name), 'server.lock.pid');
  const ownerPid = () => (fs.existsSync(ownerFile) ? Number(fs.readFileSync(ownerFile, 'utf8')) : 0);
  await waitFor(() => ownerPid() > 0, 30_000, 'the server to take its lock');
  const pid = ownerPid();
  return { detach, pid };
}

describe('commands racing a start-up', () => {
  it('stop of a server that is still starting waits for it and stops it', async () => {
    const home = createDataHome();
    const { detach, pid } = await startingServer(home, 'racy');
    expect(fs.existsSync(path.join(home.serverDir('racy'), 'server.json'))).toBe(false);

    const stop = await runCli(['stop', 'racy'], { env: home.env });
    expect(stop.stderr).toBe('');
    expect(stop.stdout).toBe('racy stopped\n');
    expect(isAlive(pid)).toBe(false);
    expect((await detach).status).toBe(0);
    const list = JSON.parse((await runCli(['ls', '--json'], { env: home.env })).stdout) as Array<{ name: string; status: string }>;
    expect(list).toMatchObject([{ name: 'racy', status: 'stopped' }]);
  });

  it('rm --force of a server that is still starting stops it, then deletes the whole folder', async () => {
    const home = createDataHome();
    const { detach, pid } = await startingServer(home, 'doomed');

    const rm = await runCli(['rm', 'doomed', '--force', '-y'], { env: home.env });
    expect(rm.stderr).toBe('');
    expect(rm.stdout).toBe('doomed removed\n');
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(home.serverDir('doomed'))).toBe(false);
    await detach;
    expect(fs.existsSync(home.serverDir('doomed'))).toBe(false);
  });
});

describe.skipIf(!hasScript())('the foreground session on a terminal', () => {
  it('h prints the HTTP URL, t the TCP URLs, q quits with exit code 0', async () => {
    const home = createDataHome();
    const { args } = await serverPorts();
    // `script` gives pgdev a terminal; each key is pressed once the output shows the previous one was handled.
    const quoted = [process.execPath, path.resolve('bin/pgdev.js'), '-n', 'keys', ...args].map((arg) => `'${arg}'`).join(' ');
    const child = spawn('script', ['-qec', quoted, '/dev/null'], { env: home.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const press = async (key: string, until: (afterBox: string) => boolean) => {
      child.stdin.write(key);
      await waitFor(() => until(stdout.replaceAll('\r', '').split('╰').at(-1)!), 30_000, `the answer to key ${key}`);
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    await waitFor(() => stdout.includes('╰'), 60_000, 'the key box');
    await press('h', (afterBox) => afterBox.includes('prisma+postgres://'));
    await press('t', (afterBox) => afterBox.includes('SHADOW_DATABASE_URL='));
    child.stdin.write('q');
    const result = { status: await exited };
    const out = stdout.replaceAll('\r', '');
    const urls = parseUrls(out);
    expect(out).toContain('[q]uit  [h]ttp url  [t]cp urls');
    // The key box is square: its three lines are as wide as each other.
    const box = out.split('\n').filter((line) => /^[╭│╰]/.test(line));
    expect(box).toHaveLength(3);
    expect(new Set(box.map((line) => line.length)).size, box.join('\n')).toBe(1);
    const afterBox = out.slice(out.indexOf('╰'));
    expect(afterBox).toContain(`\nDATABASE_URL=${urls.prismaPostgresUrl}\n`);
    expect(afterBox).toContain(`DATABASE_URL=${urls.databaseUrl}\nSHADOW_DATABASE_URL=${urls.shadowDatabaseUrl}\n`);
    expect(out).toContain('pgdev server keys stopped (quit).');
    expect(result.status).toBe(0);
  });
});
