/**
 * @module
 * The per-name state files, documented in the repository's `state/README.md`:
 * `config.json` outlives runs (ports last used, the api_key secret); `server.json` describes the running server
 * and is trusted only while its lock is held and its pid is alive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, PgdevError } from '../errors.js';
import { pgdevCommand } from '../command-name.js';

/** Bump when the layout of the state folder or of these files changes, and add a fixture under `state/`. */
export const STATE_VERSION = 2;

export type Ports = { readonly http: number; readonly database: number; readonly shadowDatabase: number };

export type ServerConfig = {
  readonly version: number;
  readonly name: string;
  readonly createdAt: string;
  readonly secret: string;
  readonly ports: Ports;
  /** When the last run started (absent in files written before pgdev kept it). */
  readonly lastStartedAt?: string;
  /** The idle close given when the server was started with one (`--idle-close`, `idleCloseMs`); later runs keep it. */
  readonly idleCloseMs?: number;
  /** The largest burst of created databases opened at once (2 to 4): later runs keep as many spares warm. */
  readonly warmSpares?: number;
};

export type ServerUrls = {
  readonly databaseUrl: string;
  readonly shadowDatabaseUrl: string;
  readonly prismaPostgresUrl: string;
  readonly httpUrl: string;
};

export type ServerRecord = {
  readonly version: number;
  readonly name: string;
  readonly pid: number;
  readonly ports: Ports;
  readonly urls: ServerUrls;
  readonly pgdevVersion: string;
  readonly startedAt: string;
  readonly persistence: 'persistent' | 'memory';
};

/** What a server's last shutdown had to cut short (`last-stop.json`). */
export type StopRecord = {
  readonly version: number;
  readonly stoppedAt: string;
  /** Databases that were running a statement and were stopped in the middle of it. */
  readonly cutShort: readonly string[];
};

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export function writeFileAtomic(file: string, text: string, mode?: number): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(temp, text, { mode });
  fs.renameSync(temp, file);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a JSON state file; a missing file is `undefined`, an unreadable one an error naming the file. */
export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new PgdevError(ErrorCode.State, `${file} is not valid JSON; delete it or run \`${pgdevCommand()} rm\``, { cause });
  }
}

/** Reads a state file, upgrading older versions; a newer version than this pgdev knows is refused. */
export function readVersioned<T extends { version: number }>(file: string, upgrade: (old: T) => T = (old) => old): T | undefined {
  const value = readJson<T>(file);
  if (value === undefined) return undefined;
  if (typeof value.version !== 'number' || value.version > STATE_VERSION) {
    throw new PgdevError(
      ErrorCode.State,
      `${file} has state version ${String(value.version)}, newer than this pgdev understands (${STATE_VERSION}); upgrade pgdev`,
    );
  }
  return value.version === STATE_VERSION ? value : upgrade(value);
}

/** Whether a process runs; one that has exited (a zombie, killed but not yet reaped by its parent) does not. */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !hasExited(pid);
}

/**
 * A zombie whose threads have all exited. A killed process's main thread turns zombie first; its files and sockets
 * close only when its last thread is gone (measured: a few ms later for a server), and until then its ports are busy.
 */
function hasExited(pid: number): boolean {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    const threads = Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? '1');
    return (state === 'Z' || state === 'X') && threads <= 1;
  } catch {
    return false; // no /proc (macOS): kill(0) is all there is
  }
}
