/**
 * @module
 * The databases of a server's main port, as kept on disk (state version 2, see `state/README.md`):
 * `databases.json` lists them, and each persistent one has its data directory in `databases/<id>/`. The default
 * database (`postgres`, also called `template1`) is id 5, Postgres' own oid for `postgres`; it is not listed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { STATE_VERSION, readVersioned, writeJsonAtomic } from './files.js';
import type { ServerPaths } from './paths.js';

export type DatabaseRecord = {
  /** Unique in the server, never reused; also the oid other databases list it under in `pg_database`. */
  readonly id: number;
  readonly name: string;
  /** The name the database's engine knows itself by (it differs after a clone or a rename until the next open). */
  engineName: string;
  readonly createdAt: string;
  /** The oid of the role that owns it (`CREATE DATABASE ... OWNER`, `ALTER DATABASE ... OWNER TO`); absent: postgres. */
  owner?: number;
};

export type DatabasesFile = { readonly version: number; readonly nextId: number; readonly databases: DatabaseRecord[] };

export const DEFAULT_DATABASE_ID = 5;
/** Ids of created databases start here, above the oids of the databases every engine has. */
export const FIRST_DATABASE_ID = 16384;

export function databasesFile(paths: ServerPaths): string {
  return path.join(paths.root, 'databases.json');
}

/** The folder of every database of a server's main port (and of what pgdev keeps beside them). */
function databasesRoot(paths: ServerPaths): string {
  return path.join(paths.root, 'databases');
}

export function databaseDir(paths: ServerPaths, id: number): string {
  return path.join(databasesRoot(paths), String(id));
}

export function readDatabases(paths: ServerPaths): DatabasesFile {
  return readVersioned<DatabasesFile>(databasesFile(paths)) ?? { version: STATE_VERSION, nextId: FIRST_DATABASE_ID, databases: [] };
}

export function writeDatabases(paths: ServerPaths, nextId: number, databases: readonly DatabaseRecord[]): void {
  fs.mkdirSync(path.join(paths.root, 'databases'), { recursive: true });
  writeJsonAtomic(databasesFile(paths), { version: STATE_VERSION, nextId, databases });
}

/** What pgdev makes under `databases/`: a database's `<id>`, `<id>.copying` while a clone is copied, `<id>.lock` (and its `.<pid>.<thread>.tmp`). */
const DATABASE_FOLDER = /^(\d+)(\.copying|\.lock(\.\d+(?:\.\d+)?\.tmp)?)?$/;
/** A new database's engine opened ahead of need (see {@link aheadDir}): renamed to its database's folder when used. */
const AHEAD_FOLDER = /^ahead-\d+-\d+$/;

let aheadCount = 0;

/** A staging folder, beside the databases' own, for an engine opened ahead of need (`daemon/server/database-hosts.ts`). */
export function aheadDir(paths: ServerPaths): string {
  return path.join(databasesRoot(paths), `ahead-${process.pid}-${++aheadCount}`);
}

/**
 * Removes what a killed `CREATE DATABASE ... TEMPLATE` or `DROP DATABASE` left under `databases/`: `<id>.copying`
 * folders, and `<id>` folders that `databases.json` does not list. Never the default database's folder, a listed
 * database's, or anything pgdev does not name so. Run under the server's lock, before any database opens. Returns
 * the names removed.
 */
export function removeLeftoverDatabaseFolders(paths: ServerPaths, records: readonly DatabaseRecord[]): string[] {
  const root = databasesRoot(paths);
  const kept = new Set([DEFAULT_DATABASE_ID, ...records.map((record) => record.id)].map(String));
  let names: string[];
  try {
    names = fs.readdirSync(root);
  } catch {
    return []; // no databases folder yet
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = DATABASE_FOLDER.exec(name);
    // An engine opened ahead, a copy cut short and a lock file half taken are always leftovers; a folder or lock,
    // only of an unlisted id.
    const leftover = AHEAD_FOLDER.test(name) || (match !== null && (match[2] === '.copying' || match[3] !== undefined || !kept.has(match[1]!)));
    if (!leftover) continue;
    fs.rmSync(path.join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Upgrades a version 1 state folder in place: its one data directory `pgdata/` becomes the default database's
 * `databases/5/` (a rename, so instant), and `config.json` says version 2. Idempotent; run under the server's lock.
 */
export function upgradeStateFolder(paths: ServerPaths): void {
  const oldDataDir = path.join(paths.root, 'pgdata');
  const defaultDir = databaseDir(paths, DEFAULT_DATABASE_ID);
  if (fs.existsSync(oldDataDir) && !fs.existsSync(defaultDir)) {
    fs.mkdirSync(path.dirname(defaultDir), { recursive: true });
    fs.renameSync(oldDataDir, defaultDir);
  }
  const config = readVersioned<{ version: number }>(paths.configFile);
  if (config && config.version < STATE_VERSION) writeJsonAtomic(paths.configFile, { ...config, version: STATE_VERSION });
}

/**
 * Whether a database opens as a copy of the template: created and never opened (or its folder gone), with no data
 * of its own in its folder (`dataDir`; none in memory) or in a file to load (`fromFile`: a clone in memory).
 */
export function startsFromTemplate(dataDir: string | undefined, fromFile: string | undefined): boolean {
  return !fromFile && (dataDir === undefined || !fs.existsSync(path.join(dataDir, 'PG_VERSION')));
}

/**
 * The bytes every file under `dir` takes on disk (0 if it does not exist): blocks, not lengths, since a WAL segment
 * copied from the template is mostly a hole.
 */
export function folderSize(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const stat = fs.statSync(path.join(entry.parentPath, entry.name), { throwIfNoEntry: false });
    if (stat) total += stat.blocks === undefined ? stat.size : stat.blocks * 512;
  }
  return total;
}

/** The main port's roles (`daemon/server/roles.ts`): a version, and the shared role catalogs as one JSON text. */
export type RolesFile = { readonly version: number; readonly roles: { readonly version: number; readonly catalog: string } };

export function rolesFile(paths: ServerPaths): string {
  return path.join(paths.root, 'roles.json');
}

export function readRoles(paths: ServerPaths): RolesFile['roles'] | undefined {
  return readVersioned<RolesFile>(rolesFile(paths))?.roles;
}

export function writeRoles(paths: ServerPaths, roles: RolesFile['roles']): void {
  writeJsonAtomic(rolesFile(paths), { version: STATE_VERSION, roles });
}
