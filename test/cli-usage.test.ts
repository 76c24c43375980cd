/**
 * @module
 * What a newcomer types (issue 13): `pgdev dev` as with `prisma dev`, `pgdev help <command>`, unknown commands
 * (named, with the closest command or the list), and every usage error in pgdev's one form: one `pgdev: ...` line
 * on stderr, nothing on stdout, exit status 1. Real processes, temporary XDG_DATA_HOME.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupCli, createDataHome, readServerJson, runCli, serverPorts } from './support/cli.js';

afterEach(cleanupCli);

async function fails(args: string[], stderr: string): Promise<void> {
  const result = await runCli(args, { env: createDataHome().env });
  expect(result.stderr, args.join(' ')).toBe(`${stderr}\n`);
  expect(result.stdout, args.join(' ')).toBe('');
  expect(result.status, args.join(' ')).toBe(1);
}

describe('commands', { timeout: 120_000 }, () => {
  it('`pgdev dev` is bare `pgdev`: it starts the server, and `--help` is the same', async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    const started = await runCli(['dev', '-n', 'viadev', '-d', ...args], { env: home.env });
    expect(started).toMatchObject({ status: 0, stderr: '' });
    expect(readServerJson(home, 'viadev')!.ports).toEqual(ports);
    const help = await runCli(['--help'], { env: home.env });
    expect(await runCli(['dev', '--help'], { env: home.env })).toMatchObject({ status: 0, stdout: help.stdout });
    expect(help.stdout).toContain('`pgdev dev` is the same as `pgdev`');
  });

  it('`pgdev help <command>` prints that command\'s help, with --debug described', async () => {
    const home = createDataHome();
    for (const command of ['ls', 'start', 'stop', 'rm', 'url']) {
      const help = await runCli(['help', command], { env: home.env });
      expect(help.status, command).toBe(0);
      expect(help.stdout, command).toBe((await runCli([command, '--help'], { env: home.env })).stdout);
      expect(help.stdout, command).toMatch(new RegExp(`^Usage: pgdev ${command} `));
      expect(help.stdout.replace(/\s+/g, ' '), command).toContain('--debug log protocol and lifecycle events, and print stack traces with errors');
    }
    expect((await runCli(['help'], { env: home.env })).stdout).toMatch(/^Usage: pgdev \[dev\] \[options\]/);
  });

  it('an unknown command is named, with the closest command or the list', async () => {
    await fails(['status'], 'pgdev: unknown command "status"; did you mean `pgdev ls`? (see `pgdev --help`)');
    await fails(['list'], 'pgdev: unknown command "list"; did you mean `pgdev ls`? (see `pgdev --help`)');
    await fails(['stpo', 'x'], 'pgdev: unknown command "stpo"; did you mean `pgdev stop`? (see `pgdev --help`)');
    await fails(['frobnicate'], 'pgdev: unknown command "frobnicate"; the commands are ls, start, stop, rm, url, sessions, dump, load, prisma-executors, help, and `pgdev` alone starts a server (see `pgdev --help`)');
    await fails(['sesions'], 'pgdev: unknown command "sesions"; did you mean `pgdev sessions`? (see `pgdev --help`)');
    await fails(['help', 'lst'], 'pgdev: unknown command "lst"; did you mean `pgdev ls`? (see `pgdev --help`)');
    await fails(['-n', 'x', 'dev', 'ls'], 'pgdev: "ls" must come before the options: `pgdev ls ...` (see `pgdev --help`)');
  });
});

describe('usage errors are one line, exit 1', { timeout: 120_000 }, () => {
  it('for the top-level options', async () => {
    await fails(['--frobnicate'], "pgdev: unknown option '--frobnicate' (see `pgdev --help`)");
    await fails(['--prot', '5'], "pgdev: unknown option '--prot'; did you mean --port? (see `pgdev --help`)");
    await fails(['-P', 'abc'], "pgdev: option '-P, --db-port <port>' argument 'abc' is invalid. --db-port takes a port number from 0 to 65535 (see `pgdev --help`)");
    // Issue 21: the option is the subject of its message, and an option in the wrong case is suggested.
    await fails(['--idle-close', 'soon'], "pgdev: option '--idle-close <seconds>' argument 'soon' is invalid. --idle-close takes a number of seconds, such as 30 (0 or more) (see `pgdev --help`)");
    await fails(['--idle-in-transaction-timeout', '-1'], "pgdev: option '--idle-in-transaction-timeout <seconds>' argument '-1' is invalid. --idle-in-transaction-timeout takes a number of seconds, such as 30 (0 or more) (see `pgdev --help`)");
    await fails(['--DEBUG'], "pgdev: unknown option '--DEBUG'; did you mean --debug? (see `pgdev --help`)");
    await fails(['--HTTP'], "pgdev: unknown option '--HTTP'; did you mean `pgdev url --http`? (see `pgdev --help`)");
  });

  it('for the subcommands', async () => {
    await fails(['ls', '--frobnicate'], "pgdev: unknown option '--frobnicate' (see `pgdev ls --help`)");
    await fails(['stop'], "pgdev: missing required argument 'names' (see `pgdev stop --help`)");
    await fails(['url', '--shadow', '--http'], "pgdev: option '--shadow' cannot be used with option '--http' (see `pgdev url --help`)");
    await fails(['url', '--http', '--json'], "pgdev: option '--http' cannot be used with option '--json' (see `pgdev url --help`)");
    await fails(['url', '--HTTP'], "pgdev: unknown option '--HTTP'; did you mean --http? (see `pgdev url --help`)");
    await fails(['stop', 'x', '--timeout', 'ten'], "pgdev: option '--timeout <seconds>' argument 'ten' is invalid. --timeout takes a number of seconds, such as 30 (0 or more) (see `pgdev stop --help`)");
    await fails(['start', 'x', '--idle-close', ''], "pgdev: option '--idle-close <seconds>' argument '' is invalid. --idle-close takes a number of seconds, such as 30 (0 or more) (see `pgdev start --help`)");
  });
});
