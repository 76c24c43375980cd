/**
 * The two servers the suites run against, each fresh, on free loopback ports, in its own process group that is
 * killed at the end whatever happens: pgdev from this checkout's dist/ (XDG_DATA_HOME in a temporary folder), and a
 * throw-away cluster of Debian's PostgreSQL run as a non-root user.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand, spawnGroup, stopGroup } from '../lib/proc.js';
import { REPO, freePorts } from '../lib/subjects.js';
import { lastLines, waitForSelect1 } from '../lib/tcp.js';

const READY_MS = 120_000;
const HOST = '127.0.0.1';

// Temporary folders still in use, removed however the runner exits (Ctrl-C included).
const temporary = new Set();
process.on('exit', () => {
  for (const dir of temporary) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {} // a server still writing there: the other exit handlers (killing the servers) must still run
  }
});

export function temporaryDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.add(dir);
  return dir;
}

export function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  temporary.delete(dir);
}

/** The connection every suite gets, through the PG* variables that both drivers read. */
const pgEnv = (port) => ({ PGHOST: HOST, PGPORT: String(port), PGUSER: 'postgres', PGPASSWORD: 'postgres', PGDATABASE: 'postgres' });

async function ready(child, port, what) {
  try {
    await waitForSelect1(`postgres://postgres:postgres@${HOST}:${port}/postgres`, { deadlineMs: READY_MS, until: child.exited });
  } catch (error) {
    await stopGroup(child);
    throw new Error(`${what} did not start: ${error.message}\n${child.logTail.slice(-10).join('\n')}`);
  }
}

/** A new pgdev server (`bin/pgdev.js`, which runs dist/): run `npm run build` after changing src/. */
export async function startPgdev(log) {
  const bin = path.join(REPO, 'bin', 'pgdev.js');
  if (!fs.existsSync(path.join(REPO, 'dist', 'cli', 'main.bundle.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const home = temporaryDir('pgdev-suites-');
  const [http, db, shadow] = await freePorts(3);
  const args = [bin, '--name', 'suites', '--port', String(http), '--db-port', String(db), '--shadow-db-port', String(shadow)];
  log(`pgdev: starting on port ${db} (XDG_DATA_HOME=${home})`);
  const child = spawnGroup(process.execPath, args, { env: { XDG_DATA_HOME: home }, cwd: REPO });
  await ready(child, db, 'pgdev');
  return {
    version: JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version,
    env: pgEnv(db),
    stop: async () => {
      await stopGroup(child);
      removeDir(home);
    },
  };
}

/** The newest installed /usr/lib/postgresql/<major>/bin (with initdb), or undefined. */
export function installedPostgresBin() {
  const root = '/usr/lib/postgresql';
  const majors = fs.existsSync(root) ? fs.readdirSync(root).filter((m) => fs.existsSync(path.join(root, m, 'bin', 'initdb'))) : [];
  majors.sort((a, b) => Number(b) - Number(a));
  return majors.length ? path.join(root, majors[0], 'bin') : undefined;
}

/** The newest /usr/lib/postgresql/<major>/bin, installing Debian's `postgresql` first when there is none. */
async function postgresBin(log) {
  const find = installedPostgresBin;
  if (find()) return find();
  if (process.getuid?.() !== 0) throw new Error('PostgreSQL is not installed: run `sudo apt-get install postgresql`, or run this as root');
  log("postgres: installing Debian's postgresql (apt-get) ...");
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  let r = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { env, timeoutMs: 900_000 });
  if (r.code !== 0) {
    await runCommand('apt-get', ['update'], { env, timeoutMs: 900_000 });
    r = await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], { env, timeoutMs: 900_000 });
  }
  if (r.code !== 0 || !find()) throw new Error(`apt-get install postgresql failed: ${lastLines(r.stderr || r.stdout, 3)}`);
  return find();
}

/**
 * A throw-away cluster: initdb into a temporary folder, trust on loopback, configured as postgres.js's CI configures
 * its server (prepared transactions, logical WAL), minus TLS. Postgres refuses to run as root, so as root it runs
 * as the `postgres` user that the Debian package creates. `bin`: the binaries to use (default: the newest installed,
 * installing them first if there are none).
 */
export async function startPostgres(log, { bin } = {}) {
  bin ??= await postgresBin(log);
  const asRoot = process.getuid?.() === 0;
  const dir = temporaryDir('pgdev-suites-pg-');
  const data = path.join(dir, 'data');
  let as = (cmd, args) => [cmd, args];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    fs.chownSync(dir, uid, gid);
    as = (cmd, args) => ['setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', cmd, ...args]];
  }
  log(`postgres: initdb in ${data}`);
  const init = await runCommand(
    ...as(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']),
    { cwd: dir, timeoutMs: 120_000 },
  );
  if (init.code !== 0) throw new Error(`initdb failed: ${lastLines(init.stderr || init.stdout, 3)}`);
  const [port] = await freePorts(1);
  const settings = {
    listen_addresses: HOST,
    unix_socket_directories: dir,
    max_prepared_transactions: '100',
    wal_level: 'logical',
    fsync: 'off',
  };
  const args = ['-D', data, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  log(`postgres: starting ${bin}/postgres on port ${port}`);
  const child = spawnGroup(...as(path.join(bin, 'postgres'), args), { cwd: dir });
  await ready(child, port, 'postgres');
  return {
    version: execFileSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }).trim(),
    env: pgEnv(port),
    stop: async () => {
      child.kill('SIGINT'); // fast shutdown; stopGroup follows with SIGTERM and, if needed, SIGKILL to the group
      await stopGroup(child);
      removeDir(dir);
    },
  };
}
