/**
 * @module
 * A foreground server started through npm (`npm run db`) or npx stops cleanly when its wrapper is signalled
 * (issue 21): npm passes SIGTERM on to the `sh -c` it runs scripts and bins in, and the shell dies without passing it
 * on, so pgdev must notice that its parent is gone. Real npm and npx, in a throwaway project whose
 * `node_modules/.bin/pgdev` is this checkout's CLI; the server's pid is read from its `server.json`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BIN, canListen, cleanupCli, createDataHome, createScratchDir, isAlive, readServerJson, runCli, serverPorts, waitFor,
} from './support/cli.js';

afterEach(cleanupCli);

/** A project with pgdev installed (as `npm install` links a bin) and a `db` script, as the README suggests. */
function projectWithPgdev(serverArgs: string[]): string {
  const project = createScratchDir();
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, scripts: { db: `pgdev ${serverArgs.join(' ')}` } }));
  fs.mkdirSync(path.join(project, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(BIN, path.join(project, 'node_modules', '.bin', 'pgdev'));
  return project;
}

describe('a foreground server under npm or npx', { timeout: 180_000 }, () => {
  for (const wrapper of [['npm', 'run', 'db'], ['npx', 'pgdev']] as const) {
    it(`stops when \`${wrapper.join(' ')}\` gets SIGTERM: ports and name free again`, async () => {
      const home = createDataHome();
      const { ports, args } = await serverPorts();
      const serverArgs = ['-n', 'wrapped', ...args];
      const project = projectWithPgdev(serverArgs);
      const command = wrapper[0] === 'npm' ? [...wrapper] : [...wrapper, ...serverArgs];
      // Its own process group, so that the signal reaches the wrapper alone, as from a process manager.
      const child = spawn(command[0]!, command.slice(1), { cwd: project, env: home.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let stdout = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr!.resume();
      try {
        await waitFor(() => /Great Success!/.test(stdout) && readServerJson(home, 'wrapped') !== undefined, 90_000, 'the server to be ready');
        const serverPid = readServerJson(home, 'wrapped')!.pid;
        expect(serverPid).not.toBe(child.pid); // pgdev runs under the wrapper, not as it

        child.kill('SIGTERM');
        await waitFor(() => !isAlive(serverPid), 30_000, `pgdev (pid ${serverPid}) to exit after its wrapper was signalled`);
        expect(stdout).toContain('pgdev server wrapped stopped (its parent process exited).');
        expect(await canListen(ports.database)).toBe(true);
        const ls = await runCli(['ls', '--json'], { env: home.env });
        expect(JSON.parse(ls.stdout)[0]).toMatchObject({ name: 'wrapped', status: 'stopped' });
      } finally {
        if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
      }
    });
  }
});
