/**
 * @module
 * Dump and load for a named server, running or stopped. A running server owns its database (the lock), so the
 * command asks it over its HTTP endpoint (`GET /dump`, `POST /load`) with the api_key from its `server.json`, and the
 * server runs the work on its engine between clients. A stopped server's database is opened here, under its lock, so
 * that the server cannot start meanwhile.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { Engine } from '../../engine/engine.js';
import { dumpDatabase, type DumpOptions } from '../../engine/dump.js';
import { decodeScript, loadScript, type LoadResult } from '../../engine/load.js';
import { ErrorCode, PgdevError, isPgdevError } from '../../errors.js';
import type { ServerRecord } from '../../state/files.js';
import { acquireLock } from '../../state/lock.js';
import { databaseDir, readDatabases, upgradeStateFolder } from '../../state/databases.js';
import { serverPaths } from '../../state/paths.js';
import { DEFAULT_DATABASE, SHADOW_DATABASE, isDefaultDatabaseName, unknownDatabase } from '../../state/database-names.js';
import { pgdevCommand } from '../../command-name.js';
import { readRunning, serverNames, unknownServer } from './registry.js';
import { readJson, requestServer } from './request.js';

export type DumpStream = {
  readonly body: Readable;
  /** How long the database was held (other clients waited), when the server said. */
  readonly heldMs: number | undefined;
};

export type LoadServerOptions = {
  readonly database?: string;
  /** The script's name in messages. */
  readonly source: string;
  /** Called once the script is handed over and the load runs. */
  readonly onStarted?: () => void;
};

/** The SQL of one database of a server, from the running server or from its data directory. */
export async function dumpServer(name: string, options: DumpOptions & { database?: string }): Promise<DumpStream> {
  const running = runningOrStopped(name, options.database);
  if (running) {
    const query = new URLSearchParams({ database: options.database ?? DEFAULT_DATABASE });
    if (options.schemaOnly) query.set('schemaOnly', '1');
    if (options.dataOnly) query.set('dataOnly', '1');
    if (options.targetVersion !== undefined) query.set('targetVersion', String(options.targetVersion));
    const response = await requestServer(running, { method: 'GET', path: `/dump?${query}`, failure: ErrorCode.DumpFailed });
    const held = /held;dur=(\d+)/.exec(String(response.headers['server-timing'] ?? ''));
    return { body: response, heldMs: held ? Number(held[1]) : undefined };
  }
  const { sql, heldMs } = await withStoppedDatabase(name, options.database, (engine) => dumpDatabase(engine, options));
  return { body: Readable.from([Buffer.from(sql)]), heldMs };
}

/** Loads a script into one database of a server, in one transaction. */
export async function loadServer(name: string, script: Uint8Array, options: LoadServerOptions): Promise<LoadResult> {
  const database = options.database ?? DEFAULT_DATABASE;
  const running = runningOrStopped(name, options.database);
  if (running) {
    const query = new URLSearchParams({ database, source: options.source });
    const response = await requestServer(running, {
      method: 'POST', path: `/load?${query}`, body: script, onSent: options.onStarted, failure: ErrorCode.LoadFailed,
    });
    return readJson<LoadResult>(response);
  }
  const text = decodeScript(script, options.source);
  return withStoppedDatabase(name, database, (engine) => {
    options.onStarted?.();
    return loadScript(engine, text, { source: options.source, database });
  });
}

/** The running server's record (which checks the database name itself), or undefined for a stopped one; refuses an unknown server. */
function runningOrStopped(name: string, database: string | undefined): ServerRecord | undefined {
  const running = readRunning(name);
  if (running) return running;
  if (!serverNames().includes(name)) {
    throw unknownServer(name);
  }
  if (database === SHADOW_DATABASE) {
    throw new PgdevError(ErrorCode.NotRunning, `the shadow database of "${name}" exists only while the server runs; start it with \`${pgdevCommand()} start ${name}\``);
  }
  return undefined;
}

/** Opens a database of a stopped server under its lock, runs `work`, and closes it. */
async function withStoppedDatabase<T>(name: string, database: string = DEFAULT_DATABASE, work: (engine: Engine) => Promise<T>): Promise<T> {
  const paths = serverPaths(name);
  let lock;
  try {
    lock = await acquireLock(paths.root, () => undefined);
  } catch (error) {
    if (!isPgdevError(error, ErrorCode.Locked)) throw error;
    throw new PgdevError(ErrorCode.Locked, `server "${name}" is starting or busy with another command; try again in a moment`, { cause: error });
  }
  try {
    upgradeStateFolder(paths);
    const records = readDatabases(paths).databases;
    const record = records.find((candidate) => candidate.name === database);
    if (!record && !isDefaultDatabaseName(database)) throw unknownDatabase(database, [DEFAULT_DATABASE, ...records.map((known) => known.name)]);
    const dataDir = record ? databaseDir(paths, record.id) : paths.dataDir;
    if (!fs.existsSync(`${dataDir}/PG_VERSION`)) {
      if (record) throw new PgdevError(ErrorCode.NotFound, `database "${database}" of server "${name}" is still empty; start the server and try again`);
      throw new PgdevError(ErrorCode.NotFound, `server "${name}" has no database on disk (it ran in memory); start it and try again`);
    }
    const engine = await Engine.open({ label: database, dataDir, database: record?.engineName });
    try {
      return await work(engine);
    } finally {
      await engine.close();
    }
  } finally {
    await lock.release();
  }
}
