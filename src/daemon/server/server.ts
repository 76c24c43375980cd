/**
 * @module
 * A named server: its lock and state files, the main and shadow engines, the two wire gateways and the HTTP
 * endpoint, started in that order and shut down in reverse by one idempotent `close`. The CLI (foreground and
 * detached) and the programmatic API both start servers through {@link startServer}.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Persistence } from '../../engine/engine.js';
import { TemplateWork, templateWork } from '../../engine/template.js';
import { ErrorCode, PgdevError, isPgdevError } from '../../errors.js';
import { SqlError } from '../../gateway/backend-error.js';
import { encodeApiKey } from '../../http/api-key.js';
import { startHttp } from '../../http/server.js';
import {
  STATE_VERSION, readVersioned, writeJsonAtomic, type Ports, type ServerConfig, type ServerRecord, type ServerUrls, type StopRecord,
} from '../../state/files.js';
import { ensureCertificate, type Certificate } from '../../state/certificate.js';
import { acquireLock, type HeldLock } from '../../state/lock.js';
import { aheadDir, databaseDir, readDatabases, readRoles, removeLeftoverDatabaseFolders, upgradeStateFolder, writeDatabases, writeRoles } from '../../state/databases.js';
import { dataDirError, serverPaths, type ServerPaths } from '../../state/paths.js';
import { SparePool, databaseHostKind, type DatabaseHostKind } from './database-hosts.js';
import { DEFAULT_IDLE_CLOSE_MS, DEFAULT_MAX_DATABASES, DatabaseSet } from './databases.js';
import { DEFAULT_DATABASE, SHADOW_DATABASE, unknownDatabase } from '../../state/database-names.js';
import { createRouter } from './router.js';
import { LOOPBACK, PORT_OPTIONS, choosePorts, portInUse, type PortNames, type RequestedPorts } from './ports.js';
import { readRunning } from '../client/registry.js';
import { PGDEV_VERSION } from '../../package-root.js';
import { pgdevCommand } from '../../command-name.js';

export type StartServerOptions = {
  /** Server name; default `default`. Letters, digits, `-`, `_` and `.`. */
  readonly name?: string;
  /** HTTP port; `0` picks a free one. Omitted: the last run's port (an error if busy), else 51213, else the next free block. */
  readonly port?: number;
  readonly databasePort?: number;
  readonly shadowDatabasePort?: number;
  /** `persistent` (default) keeps the database under the state folder; `memory` leaves no database on disk. */
  readonly persistence?: Persistence;
  /** Logs protocol and lifecycle events. */
  readonly debug?: boolean;
  /** Where log lines go; default stderr. */
  readonly log?: (line: string) => void;
  /** Ends a connection idle inside a transaction this long while others wait (default 60 s; 0 disables). */
  readonly idleInTransactionTimeoutMs?: number;
  /** Called if the server shuts itself down (lock lost, fatal error), with the reason. */
  readonly onShutdown?: (reason: string) => void;
  /**
   * A created database's process closes after this long without connections, and opens again on the next one
   * (default: the value this server was last given, else 300,000 ms; 0: never). The default database, and every database of an in-memory server, stay open.
   * The shadow port's databases close too, and come back empty on the next connection (they are migrate's scratch).
   */
  readonly idleCloseMs?: number;
  /**
   * Where each open database runs: `thread` (default), a worker thread of the server's process; `process`, a process
   * of its own (about 2 CPU-seconds and 150 MiB more per database, but an engine that crashes the process takes only
   * itself down). The environment variable `PGDEV_DATABASE_HOST` sets the default.
   */
  readonly databaseHost?: DatabaseHostKind;
  /** How many databases each database port may have, the default one included (default 100). */
  readonly maxDatabases?: number;
  /**
   * Called with a line when this start will take longer than usual, before the wait: the first start after an
   * install prepares the database template. Default: written to `log`.
   */
  readonly onProgress?: (line: string) => void;
  /** A connection to a database port that sends no startup message this long is closed (default 60,000 ms, Postgres' authentication_timeout). */
  readonly startupTimeoutMs?: number;
};

/** What the CLI adds to the options: errors name its flags and commands instead of the API's options. */
export type CliStartOptions = StartServerOptions & { readonly portNames?: PortNames };

export type PgdevServer = ServerUrls & {
  readonly name: string;
  readonly ports: Ports;
  readonly persistence: Persistence;
  /** Which ports were chosen and why, for the CLI's output. */
  readonly portSource: string;
  /** Milliseconds from the call to ready. */
  readonly startupMs: number;
  /**
   * The URL of a database of the main port, shaped like `databaseUrl` (which names `template1`, the default
   * database). Not `databaseUrl(name)`: `databaseUrl` is the string `prisma dev` prints, kept as it is.
   */
  databaseUrlFor(database: string): string;
  /**
   * Creates a database on the main port, as `CREATE DATABASE` does: empty, or a copy of `template` as it is now.
   * Rejects with E_DATABASE (and `details.sqlState`) as the SQL command would fail.
   */
  createDatabase(database: string, options?: { template?: string }): Promise<void>;
  /** Drops a database of the main port; with `force`, its connections are ended (57P01) instead of refusing (55006). */
  dropDatabase(database: string, options?: { force?: boolean; ifExists?: boolean }): Promise<void>;
  /** The names of the main port's databases (`postgres` for the default one). */
  databases(): string[];
  /** The databases whose engines run now, of the main port or the shadow one (a database opens on its first connection, and may close when idle). */
  openDatabases(port?: 'main' | 'shadow'): string[];
  /**
   * Empties a database (default: the default one). Idle connections carry on (their settings, prepared statements
   * and LISTENs are kept); one inside a transaction, or with temporary tables, is disconnected with SQLSTATE 57P01.
   */
  reset(database?: string): Promise<void>;
  /** Keeps a copy of a database (default: the default one) under `label`, in memory. */
  snapshot(label: string, database?: string): Promise<void>;
  /** Puts a database back to its snapshot `label`; after a schema change, connections are treated as by `reset`. */
  restore(label: string, database?: string): Promise<void>;
  /** Shuts down: connections closed, data flushed, lock released, ports free. Idempotent. */
  close(reason?: string): Promise<void>;
  /** Resolves once the server has shut down, whoever asked. */
  readonly closed: Promise<string>;
};

/** Builds the URLs `prisma dev` prints, so `.env` files carry over. */
export function serverUrls(name: string, ports: Ports, secret: string): ServerUrls {
  const databaseUrl = `postgres://postgres:postgres@localhost:${ports.database}/template1?sslmode=disable`;
  const shadowDatabaseUrl = `postgres://postgres:postgres@localhost:${ports.shadowDatabase}/template1?sslmode=disable`;
  const apiKey = encodeApiKey({ databaseUrl, name, shadowDatabaseUrl, secret });
  return {
    databaseUrl,
    shadowDatabaseUrl,
    prismaPostgresUrl: `prisma+postgres://localhost:${ports.http}/?api_key=${apiKey}`,
    httpUrl: `http://localhost:${ports.http}`,
  };
}

/** What a first start says while the database template is prepared (by the default database's process). */
const TEMPLATE_PROGRESS = {
  [TemplateWork.Unpack]: 'pgdev: unpacking the database template (first start after install, about 2 s)',
  [TemplateWork.Build]: 'pgdev: preparing the database template (first start only, about 15 s: initdb runs in WebAssembly)',
} as const;

export async function startServer(options: CliStartOptions = {}): Promise<PgdevServer> {
  const started = performance.now();
  const name = options.name ?? 'default';
  const paths = serverPaths(name);
  const persistence = options.persistence ?? 'persistent';
  const debug = options.debug ?? false;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const debugLog = (line: string) => debug && log(line);
  const existedBefore = fs.existsSync(paths.root);

  try {
    fs.mkdirSync(paths.root, { recursive: true });
    fs.accessSync(paths.root, fs.constants.W_OK);
  } catch (cause) {
    throw dataDirError(paths.root, cause);
  }

  // The default database's process starts loading now, while this one takes the lock and the ports.
  let rememberBurst = (_warmSpares: number): void => undefined;
  const spares = new SparePool(
    options.databaseHost ?? databaseHostKind(),
    persistence === 'persistent' ? () => aheadDir(paths) : undefined,
    (warmSpares) => rememberBurst(warmSpares),
  );
  spares.prestart();
  let shutdownReason: (reason: string) => void = () => undefined;
  let lock: HeldLock;
  try {
    lock = await acquireLock(paths.root, (error) => shutdownReason(`lock lost: ${error.message}`));
  } catch (error) {
    await spares.close();
    if (!isPgdevError(error, ErrorCode.Locked)) throw error;
    const running = readRunning(name);
    const where = running ? ` (pid ${running.pid}, ports ${running.ports.http}, ${running.ports.database}, ${running.ports.shadowDatabase})` : '';
    throw new PgdevError(ErrorCode.Locked, `server "${name}" is already running${where}; stop it with \`${pgdevCommand()} stop ${name}\``, {
      cause: error,
      details: running ? { ...running.urls, pid: running.pid, ports: running.ports } : {},
    });
  }

  const cleanups: Array<() => Promise<unknown> | unknown> = [() => lock.release(), () => spares.close()];
  const undo = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    fs.rmSync(paths.serverFile, { force: true }); // a crashed run's record is never trusted
    upgradeStateFolder(paths);
    const config: ServerConfig = readVersioned<ServerConfig>(paths.configFile) ?? {
      version: STATE_VERSION,
      name,
      createdAt: new Date().toISOString(),
      secret: randomBytes(24).toString('base64url'),
      ports: { http: 0, database: 0, shadowDatabase: 0 },
    };
    const requested: RequestedPorts = { http: options.port, database: options.databasePort, shadowDatabase: options.shadowDatabasePort };
    const remembered = config.ports.http ? config.ports : undefined;
    const portNames = options.portNames ?? PORT_OPTIONS;
    const { ports: wanted, source: portSource } = await choosePorts(name, requested, remembered, portNames);

    const persistent = persistence === 'persistent';
    let urls: ServerUrls = serverUrls(name, wanted, config.secret);
    let processesStarted = 0;
    const setOptions = {
      secret: config.secret,
      debug,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs,
      idleCloseMs: options.idleCloseMs ?? config.idleCloseMs ?? DEFAULT_IDLE_CLOSE_MS,
      maxDatabases: options.maxDatabases ?? DEFAULT_MAX_DATABASES,
      // Process ids are unique across the server (cancel requests name them): each process gets its own range.
      nextSessionIdBase: () => 1000 + (processesStarted++ % 2000) * 1_000_000,
      spares,
      log,
    };
    const stored = persistent ? readDatabases(paths) : undefined;
    if (stored) {
      const removed = removeLeftoverDatabaseFolders(paths, stored.databases);
      if (removed.length) debugLog(`${name}: removed what interrupted CREATE or DROP DATABASE left: databases/${removed.join(', databases/')}`);
    }
    const main = new DatabaseSet({
      ...setOptions,
      endpoint: 'main',
      dataDir: persistent ? (id: number) => databaseDir(paths, id) : undefined,
      records: stored?.databases ?? [],
      nextId: stored?.nextId ?? 0,
      save: persistent ? (nextId, records) => writeDatabases(paths, nextId, records) : undefined,
      roles: persistent ? { stored: readRoles(paths), save: (roles) => writeRoles(paths, roles) } : {},
    });
    // The shadow port's databases live in memory and open on first use: most sessions never touch them.
    const shadow = new DatabaseSet({ ...setOptions, endpoint: 'shadow', records: [], nextId: 0, scratch: true, roles: {} });
    cleanups.push(async () => {
      const [mainCut, shadowCut] = await Promise.all([main.close(), shadow.close()]);
      reportCutShort(paths, [...mainCut, ...shadowCut.map((database) => (database === DEFAULT_DATABASE ? SHADOW_DATABASE : `${SHADOW_DATABASE}/${database}`))], log);
    });

    const work = templateWork();
    if (work !== TemplateWork.None) (options.onProgress ?? log)(TEMPLATE_PROGRESS[work]);
    // The default database opens while the ports are bound: a client that connects meanwhile waits for it instead
    // of being refused, and a busy port is reported without waiting for the database.
    const mainOpening = main.openDefault();
    mainOpening.catch(() => undefined); // awaited once the ports are bound

    // Made on the first SSLRequest, once for both ports, and kept in the state folder.
    let certificate: Promise<Certificate> | undefined;
    const tls = () => (certificate ??= ensureCertificate(paths.tlsKeyFile, paths.tlsCertFile).catch((error: unknown) => {
      certificate = undefined;
      throw error;
    }));
    const cancel = (processId: number, secretKey: number) => {
      main.cancel(processId, secretKey);
      shadow.cancel(processId, secretKey);
    };
    const listen = async <T>(key: keyof Ports, create: () => Promise<T>): Promise<T> => {
      try {
        return await create();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw portInUse({ key, port: wanted[key], server: name, remembered: remembered !== undefined && requested[key] === undefined }, portNames);
        }
        throw error;
      }
    };
    const routerFor = (set: DatabaseSet, key: 'database' | 'shadowDatabase') =>
      listen(key, () => createRouter({ host: LOOPBACK, port: wanted[key], route: (database) => set.route(database), cancel, tls, log, startupTimeoutMs: options.startupTimeoutMs }));
    const mainRouter = await routerFor(main, 'database');
    cleanups.push(() => mainRouter.close());
    const shadowRouter = await routerFor(shadow, 'shadowDatabase');
    cleanups.push(() => shadowRouter.close());
    await mainOpening;

    urls = serverUrls(name, { ...wanted, database: mainRouter.port, shadowDatabase: shadowRouter.port }, config.secret);
    /** The process behind a database name of the HTTP endpoint and the CLI (`shadow`: the shadow port's default). */
    const processFor = async (databaseName: string = DEFAULT_DATABASE) => {
      if (databaseName === SHADOW_DATABASE) return shadow.process();
      if (!main.has(databaseName)) throw unknownDatabase(databaseName, main.names());
      return main.process(databaseName);
    };
    const sessions = async () => [
      ...(await main.sessions()),
      ...(await shadow.sessions()).map((session) => ({ ...session, database: session.database === DEFAULT_DATABASE ? SHADOW_DATABASE : `${SHADOW_DATABASE}/${session.database}` })),
    ];
    const database = async (databaseName?: string) => (await processFor(databaseName)).requests;
    const context = { name, version: PGDEV_VERSION, urls, secret: config.secret, database, sessions, databases: () => main.list(), isReady: () => main.defaultIsOpen };
    const http = await listen('http', () => startHttp(context, LOOPBACK, wanted.http));
    cleanups.push(() => http.close());
    const ports: Ports = { http: http.port, database: mainRouter.port, shadowDatabase: shadowRouter.port };
    urls = serverUrls(name, ports, config.secret);
    Object.assign(context, { urls });

    const startedAt = new Date().toISOString();
    const idleCloseMs = options.idleCloseMs ?? config.idleCloseMs;
    let saved: ServerConfig = { ...config, version: STATE_VERSION, ports, lastStartedAt: startedAt, ...(idleCloseMs === undefined ? {} : { idleCloseMs }) };
    writeJsonAtomic(paths.configFile, saved);
    if (persistent) {
      rememberBurst = (warmSpares) => {
        if (warmSpares <= (saved.warmSpares ?? 0)) return;
        saved = { ...saved, warmSpares };
        try {
          writeJsonAtomic(paths.configFile, saved);
        } catch (error) {
          debugLog(`${name}: could not remember ${warmSpares} warm spares in ${paths.configFile}: ${String(error)}`);
        }
      };
    }
    const record: ServerRecord = {
      version: STATE_VERSION,
      name,
      pid: process.pid,
      ports,
      urls,
      pgdevVersion: PGDEV_VERSION,
      startedAt,
      persistence,
    };
    writeJsonAtomic(paths.serverFile, record);
    cleanups.push(() => fs.rmSync(paths.serverFile, { force: true }));
    // A test suite that created a database per worker at once will do so again: warm as many now that the server
    // serves, so that its next run after this start finds them ready.
    if (persistent && saved.warmSpares) spares.keepWarm(saved.warmSpares);

    let closing: Promise<void> | undefined;
    let resolveClosed!: (reason: string) => void;
    const closed = new Promise<string>((resolve) => (resolveClosed = resolve));
    const close = (reason = 'stopped') => {
      closing ??= (async () => {
        debugLog(`${name}: shutting down (${reason})`);
        await undo();
        // An in-memory server leaves nothing behind; only once its lock is released, which would otherwise see its
        // folder vanish and report the lock lost.
        if (persistence === 'memory' && !existedBefore) fs.rmSync(paths.root, { recursive: true, force: true });
        resolveClosed(reason);
      })();
      return closing;
    };
    shutdownReason = (reason) => {
      log(`pgdev: server "${name}" is shutting down: ${reason}`);
      options.onShutdown?.(reason);
      void close(reason);
    };

    const databaseUrlFor = (databaseName: string) => urls.databaseUrl.replace('/template1?', `/${encodeURIComponent(databaseName)}?`);
    const toApiError = (error: unknown) => (error instanceof SqlError ? new PgdevError(ErrorCode.Database, error.message, { cause: error, details: { sqlState: error.sqlState } }) : error);
    const api = <T>(work: Promise<T>) => work.catch((error: unknown) => Promise.reject(toApiError(error)));
    return {
      name,
      ...urls,
      ports,
      persistence,
      portSource,
      startupMs: Math.round(performance.now() - started),
      databaseUrlFor,
      createDatabase: (databaseName, createOptions = {}) => api(main.create(databaseName, createOptions)),
      dropDatabase: (databaseName, dropOptions = {}) => api(main.drop(databaseName, dropOptions).then(() => undefined)),
      databases: () => main.names(),
      openDatabases: (port = 'main') => (port === 'main' ? main : shadow).list().filter((database) => database.open).map((database) => database.name),
      reset: (databaseName) => api(main.process(databaseName).then((process) => process.request('reset'))).then(() => undefined),
      snapshot: (label, databaseName) => api(main.process(databaseName).then((process) => process.request('snapshot', label))).then(() => undefined),
      async restore(label, databaseName) {
        const process = await api(main.process(databaseName));
        if (!(await process.request('restore', label))) {
          throw new PgdevError(ErrorCode.NotFound, `no snapshot named "${label}"; take one with snapshot("${label}") first`);
        }
      },
      close,
      closed,
    };
  } catch (error) {
    await undo();
    if (!existedBefore) fs.rmSync(paths.root, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Says which databases a shutdown stopped in the middle of a statement: in the server's log, and in the state folder
 * for `pgdev stop` to tell whoever stopped it.
 */
function reportCutShort(paths: ServerPaths, databases: readonly string[], log: (line: string) => void): void {
  for (const database of databases) {
    log(`pgdev: database "${database}" was running a statement and was stopped in the middle of it; that statement's transaction is rolled back`);
  }
  try {
    writeJsonAtomic(paths.stopFile, { version: STATE_VERSION, stoppedAt: new Date().toISOString(), cutShort: databases } satisfies StopRecord);
  } catch {
    // an in-memory server's folder may be gone already: the log line is all there is
  }
}
