/**
 * @module
 * A named server: its lock and state files, the main and shadow engines, the two wire gateways and the HTTP
 * endpoint, started in that order and shut down in reverse by one idempotent `close`. The CLI (foreground and
 * detached) and the programmatic API both start servers through {@link startServer}.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Engine, type Persistence } from '../engine/engine.js';
import { restoreDataSnapshot, takeDataSnapshot, type DataSnapshot } from '../engine/snapshot.js';
import { ErrorCode, PgdevError, isPgdevError } from '../errors.js';
import { createGateway } from '../gateway/gateway.js';
import { encodeApiKey } from '../http/api-key.js';
import { startHttp } from '../http/server.js';
import {
  STATE_VERSION, readVersioned, writeJsonAtomic, type Ports, type ServerConfig, type ServerRecord, type ServerUrls,
} from '../state/files.js';
import { ensureCertificate, type Certificate } from '../state/certificate.js';
import { acquireLock, type HeldLock } from '../state/lock.js';
import { dataDirError, serverPaths } from '../state/paths.js';
import { DatabaseRole, resolveDatabase } from './databases.js';
import { LOOPBACK, PORT_OPTIONS, choosePorts, portInUse, type PortNames, type RequestedPorts } from './ports.js';
import { readRunning } from './registry.js';
import { PGDEV_VERSION } from './version.js';
import { pgdevCommand } from '../command-name.js';

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
   * Empties the main database. Idle connections carry on (their settings, prepared statements and LISTENs are kept);
   * one inside a transaction, or with temporary tables, is disconnected with SQLSTATE 57P01.
   */
  reset(): Promise<void>;
  /** Keeps a copy of the main database under `label`, in memory. */
  snapshot(label: string): Promise<void>;
  /** Puts the main database back to the snapshot `label`; after a schema change, connections are treated as by `reset`. */
  restore(label: string): Promise<void>;
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

  let shutdownReason: (reason: string) => void = () => undefined;
  let lock: HeldLock;
  try {
    lock = await acquireLock(paths.root, (error) => shutdownReason(`lock lost: ${error.message}`));
  } catch (error) {
    if (!isPgdevError(error, ErrorCode.Locked)) throw error;
    const running = readRunning(name);
    const where = running ? ` (pid ${running.pid}, ports ${running.ports.http}, ${running.ports.database}, ${running.ports.shadowDatabase})` : '';
    throw new PgdevError(ErrorCode.Locked, `server "${name}" is already running${where}; stop it with \`${pgdevCommand()} stop ${name}\``, {
      cause: error,
      details: running ? { ...running.urls, pid: running.pid, ports: running.ports } : {},
    });
  }

  const cleanups: Array<() => Promise<unknown> | unknown> = [() => lock.release()];
  const undo = async () => {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  };
  try {
    fs.rmSync(paths.serverFile, { force: true }); // a crashed run's record is never trusted
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

    const dataDir = persistence === 'persistent' ? paths.dataDir : undefined;
    // The database opens while the ports are bound: a client that connects meanwhile waits for it instead of being
    // refused, and a busy port is reported without waiting for the database.
    let main!: Engine;
    const mainOpening = Engine.open({ label: 'main', dataDir, log: debugLog }).then((engine) => (main = engine));
    mainOpening.catch(() => undefined); // awaited once the ports are bound
    cleanups.push(async () => {
      await mainOpening.catch(() => undefined);
      await main?.close();
    });
    // The shadow database is opened on first use: most sessions never touch it, and it costs memory and start time.
    let shadowOpening: Promise<Engine> | undefined;
    const openShadow = () => (shadowOpening ??= Engine.open({ label: 'shadow', log: debugLog }));
    cleanups.push(async () => shadowOpening && (await shadowOpening).close());

    // Made on the first SSLRequest, once for both gateways, and kept in the state folder.
    let certificate: Promise<Certificate> | undefined;
    const tls = () => (certificate ??= ensureCertificate(paths.tlsKeyFile, paths.tlsCertFile).catch((error: unknown) => {
      certificate = undefined;
      throw error;
    }));
    const gatewayOptions = { host: LOOPBACK, debug, log, tls, idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs };
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
    const mainGateway = await listen('database', () => createGateway({ ...gatewayOptions, engine: () => mainOpening, port: wanted.database }));
    cleanups.push(() => mainGateway.close());
    const shadowGateway = await listen('shadowDatabase', () =>
      createGateway({ ...gatewayOptions, engine: openShadow, port: wanted.shadowDatabase }),
    );
    cleanups.push(() => shadowGateway.close());
    await mainOpening;

    let urls: ServerUrls = serverUrls(name, { ...wanted, database: mainGateway.port, shadowDatabase: shadowGateway.port }, config.secret);
    const database = async (databaseName?: string) => (resolveDatabase(databaseName) === DatabaseRole.Shadow ? openShadow() : main);
    const sessions = () => [
      ...mainGateway.sessions().map((session) => ({ database: 'postgres', ...session })),
      ...shadowGateway.sessions().map((session) => ({ database: 'shadow', ...session })),
    ];
    const context = { name, version: PGDEV_VERSION, urls, secret: config.secret, get engine() { return main; }, database, sessions, isReady: () => !main.closed };
    const http = await listen('http', () => startHttp(context, LOOPBACK, wanted.http));
    cleanups.push(() => http.close());
    const ports: Ports = { http: http.port, database: mainGateway.port, shadowDatabase: shadowGateway.port };
    urls = serverUrls(name, ports, config.secret);
    Object.assign(context, { urls });

    const startedAt = new Date().toISOString();
    writeJsonAtomic(paths.configFile, { ...config, ports, lastStartedAt: startedAt });
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

    // A snapshot is the data (restored in one transaction while the schema is unchanged) and a full copy of the
    // data directory (reopened when the schema changed since).
    const snapshots = new Map<string, { data: DataSnapshot; full: Blob }>();
    const replaceMain = async (next: () => Promise<Engine>, reason: string) => {
      const previous = main;
      // Clients inside a transaction are disconnected first (one idle in a transaction holds the engine, and dump()
      // below would wait for it); idle ones wait, and carry on with the new engine.
      const resume = await mainGateway.suspend(reason);
      try {
        const snapshotFirst = await previous.dump().catch(() => undefined);
        await previous.close();
        try {
          main = await next();
        } catch (error) {
          // Never leave the server without a database: fall back to what it had.
          main = await Engine.open({ label: 'main', dataDir, from: snapshotFirst, log: debugLog });
          throw error;
        }
      } finally {
        await resume(main);
      }
    };

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

    return {
      name,
      ...urls,
      ports,
      persistence,
      portSource,
      startupMs: Math.round(performance.now() - started),
      reset: () => replaceMain(() => {
        if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
        return Engine.open({ label: 'main', dataDir, log: debugLog });
      }, 'reset'),
      async snapshot(label) {
        const data = await main.exclusive(takeDataSnapshot);
        snapshots.set(label, { data, full: await main.dump() });
      },
      async restore(label) {
        const snapshot = snapshots.get(label);
        if (!snapshot) throw new PgdevError(ErrorCode.NotFound, `no snapshot named "${label}"; take one with snapshot("${label}") first`);
        if (await main.exclusive((lease) => restoreDataSnapshot(lease, snapshot.data))) return;
        debugLog(`${name}: the schema changed since snapshot "${label}"; reopening its full copy`);
        await replaceMain(() => Engine.open({ label: 'main', dataDir, from: snapshot.full, log: debugLog }), 'restored');
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
