/**
 * @module
 * Helpers for the end-to-end tests of the `pgdev` command line: real processes, a temporary XDG_DATA_HOME per
 * test, explicit free ports, and a teardown that kills (by pid) every process a test started, including detached
 * servers, then deletes the temporary folders. Call {@link cleanupCli} from `afterEach`.
 *
 * The CLI under test is `bin/pgdev.js`, which runs `dist/cli/main.bundle.js`, bundled from `src/` by the test run's
 * global setup (`bundle-from-src.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(REPO, 'bin', 'pgdev.js');

export type Ports = { http: number; database: number; shadowDatabase: number };

export type CliResult = {
  /** Exit code, or null if killed by a signal (for example after the timeout). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
};

export type DataHome = {
  /** The temporary XDG_DATA_HOME. */
  readonly home: string;
  /** An environment for the CLI with that XDG_DATA_HOME (and nothing of the user's pgdev state). */
  readonly env: NodeJS.ProcessEnv;
  /** `$XDG_DATA_HOME/pgdev/servers/<name>` */
  serverDir(name: string): string;
};

const homes = new Set<string>();
const children = new Set<ChildProcess>();

/**
 * The environment every CLI process gets: the test runner's, without anything that would change pgdev or libpq
 * (npm's variables would make pgdev suggest `npx pgdev ...` when the tests run under `npm test`).
 */
export function baseEnv(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key.startsWith('PG') || key.startsWith('npm_') || key === 'XDG_DATA_HOME' || key === 'DATABASE_URL') delete env[key];
  }
  return { ...env, ...overrides };
}

/** A fresh temporary XDG_DATA_HOME (fs.mkdtempSync), removed by {@link cleanupCli}. */
export function createDataHome(): DataHome {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-cli-test-'));
  homes.add(home);
  return {
    home,
    env: baseEnv({ XDG_DATA_HOME: home }),
    serverDir: (name) => path.join(home, 'pgdev', 'servers', name),
  };
}

/**
 * A temporary folder that is registered for clean-up like a data home (its processes are found and killed), but
 * the caller chooses XDG_DATA_HOME itself, for example a path under a regular file.
 */
export function createScratchDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-cli-test-'));
  homes.add(dir);
  return dir;
}

/** Runs `node bin/pgdev.js ...args` to completion (asynchronously, so several can run at once). */
export function runCli(
  args: string[],
  options: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; command?: { file: string; args: string[] } },
): Promise<CliResult> {
  const { file, args: argv } = options.command ?? { file: process.execPath, args: [BIN, ...args] };
  const child = spawn(file, argv, { cwd: REPO, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(options.input ?? '');
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 90_000);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      children.delete(child);
      reject(error);
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs `pgdev ...args` inside `script`, so that it has a terminal (stdin and stdout are a pty). */
export function runCliInTty(args: string[], options: { env: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<CliResult> {
  const quoted = [process.execPath, BIN, ...args].map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ');
  return runCli([], { ...options, command: { file: 'script', args: ['-qec', quoted, '/dev/null'] } });
}

export function hasScript(): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, 'script')));
}

export type ServerUrlsPrinted = { databaseUrl: string; shadowDatabaseUrl: string; prismaPostgresUrl: string };

/** The three URL lines `pgdev` prints (DATABASE_URL=, SHADOW_DATABASE_URL=, the prisma+postgres:// line). */
export function parseUrls(stdout: string): ServerUrlsPrinted {
  const databaseUrl = /^DATABASE_URL=(\S+)$/m.exec(stdout)?.[1];
  const shadowDatabaseUrl = /^SHADOW_DATABASE_URL=(\S+)$/m.exec(stdout)?.[1];
  const prismaPostgresUrl = /(prisma\+postgres:\/\/\S+)$/m.exec(stdout)?.[1];
  if (!databaseUrl || !shadowDatabaseUrl || !prismaPostgresUrl) throw new Error(`no URLs in output:\n${stdout}`);
  return { databaseUrl, shadowDatabaseUrl, prismaPostgresUrl };
}

export type ForegroundServer = {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything printed on stdout until now. */
  readonly stdout: string;
  readonly stderr: string;
  readonly urls: ServerUrlsPrinted;
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

/** Starts `pgdev ...args` in the foreground and resolves once it has printed its ready line and URLs. */
export async function startForeground(args: string[], options: { env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<ForegroundServer> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanupListeners();
      reject(new Error(`pgdev ${args.join(' ')} was not ready in time\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 90_000);
    const onData = () => {
      if (/Great Success!/.test(stdout) && /^.*prisma\+postgres:\/\/\S+\n/m.test(stdout)) {
        cleanupListeners();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanupListeners();
      reject(new Error(`pgdev ${args.join(' ')} exited (${code ?? signal}) before it was ready\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    const cleanupListeners = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
  return {
    child,
    pid: child.pid!,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    urls: parseUrls(stdout),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * `n` distinct free loopback ports, picked at random below the kernel's ephemeral range (32768 and up): ports from
 * that range can be taken at any moment as the local port of some other test's client connection, which made tests
 * that stop a server and expect its ports back (or restart it on them) flaky. Each port is held until all are found.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    while (servers.length < n) {
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      const server = net.createServer();
      const listening = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(true));
      });
      if (listening) servers.push(server);
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** Three free ports for one server, and the matching `-p/-P/--shadow-db-port` arguments. */
export async function serverPorts(): Promise<{ ports: Ports; args: string[] }> {
  const [http, database, shadowDatabase] = await freePorts(3);
  const ports = { http: http!, database: database!, shadowDatabase: shadowDatabase! };
  return { ports, args: ['-p', String(http), '-P', String(database), '--shadow-db-port', String(shadowDatabase)] };
}

/** How pgdev prints a server's ports (`ports A-C` when consecutive, else `ports A, B, C`). */
export function portText(ports: Ports): string {
  const { http, database, shadowDatabase } = ports;
  return database === http + 1 && shadowDatabase === database + 1 ? `ports ${http}-${shadowDatabase}` : `ports ${http}, ${database}, ${shadowDatabase}`;
}

/** Whether a TCP port can be listened on at 127.0.0.1 right now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** Holds a loopback port busy until the returned function is called. */
export async function occupyPort(port = 0): Promise<{ port: number; release: () => Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve());
  });
  return { port: (server.address() as net.AddressInfo).port, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Whether `pid` is a live process (a zombie waiting to be reaped counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Whether `pid` is gone entirely (not even a zombie left for its parent to reap). */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Reads a server's `server.json`, if present. */
export function readServerJson(home: DataHome, name: string): { pid: number; ports: Ports; startedAt: string; urls: Record<string, string> } | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(home.serverDir(name), 'server.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Pids of live processes started with XDG_DATA_HOME inside `dir`: the CLI processes and every server they spawned
 * (detached servers inherit the environment). Linux only (/proc); elsewhere, the pids in the state files.
 */
export function processesUsing(dir: string, options: { databaseProcesses?: boolean } = {}): number[] {
  const pids = new Set<number>();
  const needle = `XDG_DATA_HOME=${dir}`;
  if (fs.existsSync('/proc')) {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === process.pid) continue;
      let environ: string;
      try {
        environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      } catch {
        continue;
      }
      const variables = environ.split('\0');
      // A server's database processes (one per open database) are part of it: counted only when asked for.
      if (!options.databaseProcesses && variables.some((variable) => variable.startsWith('PGDEV_DATABASE_PROCESS='))) continue;
      for (const variable of variables) {
        if (variable === needle || variable.startsWith(`${needle}/`)) pids.add(pid);
      }
    }
  }
  // The pids recorded by servers themselves (server.json, the lock's owner file), as a fallback.
  const servers = path.join(dir, 'pgdev', 'servers');
  if (fs.existsSync(servers)) {
    for (const name of fs.readdirSync(servers)) {
      for (const file of ['server.json', 'server.lock.pid']) {
        try {
          const text = fs.readFileSync(path.join(servers, name, file), 'utf8');
          const pid = file === 'server.json' ? Number(JSON.parse(text).pid) : Number(text.trim());
          if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isOurs(pid)) pids.add(pid);
        } catch {
          // missing or half-written: nothing to kill
        }
      }
    }
  }
  return [...pids].filter(isAlive);
}

/** Whether `pid` is a pgdev process (so a recycled pid is never killed). */
function isOurs(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pgdev.js');
  } catch {
    return !fs.existsSync('/proc') && isAlive(pid);
  }
}

/** Kills, by pid, every process a test started (children and the detached servers), then removes the data homes. */
export async function cleanupCli(): Promise<void> {
  const pids = new Set<number>();
  for (const child of children) if (child.pid && child.exitCode === null && child.signalCode === null) pids.add(child.pid);
  for (const home of homes) for (const pid of processesUsing(home, { databaseProcesses: true })) pids.add(pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitFor(() => [...pids].every((pid) => !isAlive(pid)), 10_000, `processes ${[...pids].join(', ')} to exit`).catch(() => undefined);
  children.clear();
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true });
  homes.clear();
}

/** Runs one query against a server's database port with a fresh `pg` client. */
export async function query<T = Record<string, unknown>>(port: number, sql: string): Promise<T[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'postgres', database: 'template1' });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}
