/**
 * @module
 * What servers exist on this machine and which of them run: a server runs when its lock is held by a live
 * process and its `server.json` names that process. Anything else (a `kill -9`ed server's leftovers) is stopped.
 */
import fs from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { ErrorCode, PgdevError } from '../../errors.js';
import { isPidAlive, readVersioned, type ServerConfig, type ServerRecord, type StopRecord } from '../../state/files.js';
import { databaseDir, folderSize, readDatabases, type DatabaseRecord } from '../../state/databases.js';
import { isLocked, lockOwnerPid } from '../../state/lock.js';
import { serverPaths, stateRoot, type ServerPaths } from '../../state/paths.js';
import { pgdevCommand } from '../../command-name.js';
import { DEFAULT_DATABASE } from '../../state/database-names.js';
import { readJson, requestServer } from './request.js';

export type ServerStatus = 'running' | 'stopped';

export type ServerListing = {
  readonly name: string;
  readonly status: ServerStatus;
  readonly pid: number | null;
  readonly ports: ServerConfig['ports'] | null;
  readonly sizeBytes: number;
  readonly lastStart: string | null;
  readonly persistence: ServerRecord['persistence'];
  /** The main port's databases (the default one as `postgres`) and their sizes on disk (0 in memory). */
  readonly databases: readonly DatabaseSize[];
};

export type DatabaseSize = { readonly name: string; readonly sizeBytes: number };

/** The running server's record, if `name` runs right now (lock held by a live pid that wrote it). */
export function readRunning(name: string): ServerRecord | undefined {
  const paths = serverPaths(name);
  let record: ServerRecord | undefined;
  try {
    record = readVersioned<ServerRecord>(paths.serverFile);
  } catch {
    return undefined;
  }
  if (!record || !isPidAlive(record.pid) || lockOwnerPid(paths.root) !== record.pid) return undefined;
  return record;
}

/** The name of the running pgdev server listening on `port`, if any. */
export function serverOnPort(port: number): string | undefined {
  return serverNames().find((name) => {
    const ports = readRunning(name)?.ports;
    return ports !== undefined && (ports.http === port || ports.database === port || ports.shadowDatabase === port);
  });
}

/** Names of every server with a state folder, sorted; an in-memory server whose process is gone is removed first. */
export function serverNames(): string[] {
  const root = stateRoot();
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .filter((name) => !removeIfAbandoned(name))
    .sort();
}

/**
 * An in-memory server whose process died without closing it (a test process that crashed) leaves its folder
 * behind: a config, its record and its lock, nothing worth keeping. Removes that folder and answers true. A folder
 * with databases on disk (a persistent server that was run in memory) loses only the stale record.
 */
function removeIfAbandoned(name: string): boolean {
  let paths: ServerPaths;
  let record: ServerRecord | undefined;
  try {
    paths = serverPaths(name);
    record = readVersioned<ServerRecord>(paths.serverFile);
  } catch {
    return false;
  }
  if (record?.persistence !== 'memory' || isPidAlive(record.pid) || lockOwnerPid(paths.root) !== undefined) return false;
  if (fs.existsSync(path.join(paths.root, 'databases')) || fs.existsSync(path.join(paths.root, 'pgdata'))) {
    fs.rmSync(paths.serverFile, { force: true });
    return false;
  }
  fs.rmSync(paths.root, { recursive: true, force: true });
  return true;
}

/** A server's databases with their sizes: from the running server (it knows in-memory ones too), else from disk. */
async function listDatabases(name: string, running: ServerRecord | undefined): Promise<DatabaseSize[]> {
  if (running) {
    try {
      const response = await requestServer(running, { method: 'GET', path: '/databases', failure: ErrorCode.NotRunning });
      return (await readJson<{ databases: DatabaseSize[] }>(response)).databases;
    } catch {
      // an older or unreachable server: what is on disk
    }
  }
  const paths = serverPaths(name);
  let records: readonly DatabaseRecord[] = [];
  try {
    records = readDatabases(paths).databases;
  } catch {
    // unreadable: the default database alone
  }
  return [
    { name: DEFAULT_DATABASE, sizeBytes: folderSize(fs.existsSync(paths.dataDir) ? paths.dataDir : path.join(paths.root, 'pgdata')) },
    ...records.map((record) => ({ name: record.name, sizeBytes: folderSize(databaseDir(paths, record.id)) })),
  ];
}

export async function describeServer(name: string): Promise<ServerListing> {
  const paths = serverPaths(name);
  const running = readRunning(name);
  let config: ServerConfig | undefined;
  try {
    config = readVersioned<ServerConfig>(paths.configFile);
  } catch {
    config = undefined;
  }
  const lastStart = running?.startedAt ?? config?.lastStartedAt ?? null;
  const databases = await listDatabases(name, running);
  return {
    name,
    status: running || (await isLocked(paths.root)) ? 'running' : 'stopped',
    pid: running?.pid ?? null,
    ports: running?.ports ?? config?.ports ?? null,
    sizeBytes: folderSize(paths.root),
    lastStart,
    // Not running: what its folder holds is on disk (an in-memory server leaves nothing to list, serverNames()).
    persistence: running?.persistence ?? 'persistent',
    databases,
  };
}

/** The error for a plain name that is no server; `hint` adds to the suggestion to look at `ls`. */
export function unknownServer(name: string, hint = ''): PgdevError {
  return new PgdevError(ErrorCode.NotFound, `no server named "${name}"; see \`${pgdevCommand()} ls\`${hint}`);
}

/** The error for an existing server that a command needs running. */
export function notRunning(name: string): PgdevError {
  return new PgdevError(ErrorCode.NotRunning, `server "${name}" is not running; start it with \`${pgdevCommand()} start ${name}\``);
}

/**
 * Resolves names and globs (`mydb*`, `test-?`) to existing servers, in order, without duplicates.
 * A plain name that does not exist, or a glob that matches nothing, is an error (suggesting to create the server
 * only where that makes sense: `start`, not `stop` or `rm`).
 */
export function resolveNames(patterns: string[], options: { suggestCreate?: boolean } = {}): string[] {
  const existing = serverNames();
  const found: string[] = [];
  for (const pattern of patterns) {
    const isGlob = picomatch.scan(pattern).isGlob;
    const matcher = isGlob ? picomatch(pattern, { dot: true }) : (name: string) => name === pattern;
    const matches = existing.filter((name) => matcher(name));
    if (matches.length === 0) {
      const pgdev = pgdevCommand();
      const create = options.suggestCreate ? `, or create it with \`${pgdev} -n ${pattern} -d\`` : '';
      throw isGlob
        ? new PgdevError(ErrorCode.NoMatch, `no server matches "${pattern}"; see \`${pgdev} ls\``)
        : unknownServer(pattern, create);
    }
    for (const name of matches) if (!found.includes(name)) found.push(name);
  }
  return found;
}

/** The databases a server's shutdown since `since` stopped in the middle of a statement (see `daemon/server/server.ts`). */
export function cutShortSince(name: string, since: Date): readonly string[] {
  const record = readVersioned<StopRecord>(serverPaths(name).stopFile);
  return record && new Date(record.stoppedAt) >= since ? record.cutShort : [];
}
