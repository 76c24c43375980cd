/**
 * @module
 * The errors a user can hit when starting `pgdev` (issue 2): a busy port (named, with the flag to change it), an
 * invalid name and an unwritable data directory. Each is exactly one line on stderr, `pgdev: ...`, and exit 1, and
 * none leaves a server behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  canListen, cleanupCli, createDataHome, createScratchDir, baseEnv, occupyPort, processesUsing, runCli, serverPorts,
} from './support/cli.js';

afterEach(cleanupCli);

describe('pgdev start errors', { timeout: 180_000 }, () => {
  for (const [flag, key] of [
    ['--db-port', 'database'],
    ['--shadow-db-port', 'shadowDatabase'],
    ['--port', 'http'],
  ] as const) {
    it(`a busy ${flag} is one line naming the port and ${flag}, exit 1`, async () => {
      const home = createDataHome();
      const { ports } = await serverPorts();
      const busy = await occupyPort(ports[key]);
      try {
        const result = await runCli(
          ['-n', 'busy', '--port', String(ports.http), '--db-port', String(ports.database), '--shadow-db-port', String(ports.shadowDatabase)],
          { env: home.env },
        );
        expect(result.stderr).toBe(`pgdev: port ${ports[key]} is in use; pass ${flag} with a free port\n`);
        expect(result.stdout).toBe('');
        expect(result.status).toBe(1);
        expect(processesUsing(home.home, { databaseProcesses: true })).toEqual([]);
      } finally {
        await busy.release();
      }
      // The other two ports were not left bound.
      for (const port of Object.values(ports)) expect(await canListen(port)).toBe(true);
    });
  }

  for (const name of ['bad name', 'semi;colon', '../escape', '-dash-first', 'x'.repeat(64)]) {
    it(`an invalid name (${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…` : name)}) is one line, exit 1, nothing created`, async () => {
      const home = createDataHome();
      const { args } = await serverPorts();
      const result = await runCli([`--name=${name}`, ...args], { env: home.env });
      expect(result.stderr).toBe(
        `pgdev: invalid server name "${name}"; use letters, digits, "-", "_" and "." (at most 63, not starting with a symbol)\n`,
      );
      expect(result.stdout).toBe('');
      expect(result.status).toBe(1);
      expect(fs.existsSync(path.join(home.home, 'pgdev'))).toBe(false);
    });
  }

  it('an unwritable data directory (XDG_DATA_HOME under a regular file) is one line, exit 1', async () => {
    const scratch = createScratchDir();
    const file = path.join(scratch, 'a-file');
    fs.writeFileSync(file, 'not a directory\n');
    const dataHome = path.join(file, 'x');
    const { args } = await serverPorts();
    const result = await runCli(['-n', 'nowhere', ...args], { env: baseEnv({ XDG_DATA_HOME: dataHome }) });
    expect(result.stderr).toBe(
      `pgdev: cannot write to the data directory ${path.join(dataHome, 'pgdev', 'servers', 'nowhere')}; fix its permissions or set XDG_DATA_HOME\n`,
    );
    expect(result.stdout).toBe('');
    expect(result.status).toBe(1);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a directory\n');
  });

  it('an unwritable data directory with -d is the same one line, exit 1', async () => {
    const scratch = createScratchDir();
    const file = path.join(scratch, 'a-file');
    fs.writeFileSync(file, '');
    const dataHome = path.join(file, 'x');
    const { args } = await serverPorts();
    const result = await runCli(['-n', 'nowhere', '-d', ...args], { env: baseEnv({ XDG_DATA_HOME: dataHome }) });
    expect(result.stderr).toBe(
      `pgdev: cannot write to the data directory ${path.join(dataHome, 'pgdev', 'servers', 'nowhere')}; fix its permissions or set XDG_DATA_HOME\n`,
    );
    expect(result.status).toBe(1);
    expect(processesUsing(scratch, { databaseProcesses: true })).toEqual([]);
  });
});
