/**
 * @module
 * A Postgres wire-protocol endpoint in front of one {@link Engine}: accepts connections on loopback, gives each
 * its own {@link Session}, routes cancel requests and NOTIFY deliveries between sessions, and caps connections.
 */
import net from 'node:net';
import type { Engine } from '../engine/engine.js';
import { SqlState } from './backend-error.js';
import { Backends, type SessionReport } from './backends.js';
import { createEngineSwap } from './engine-swap.js';
import { Session, type SessionHost } from './session.js';

export type GatewayOptions = {
  /** The engine, or a function opening it when the first client connects. */
  readonly engine: Engine | (() => Promise<Engine>);
  readonly host: string;
  readonly port: number;
  /** Like Postgres' max_connections; one more client is refused with SQLSTATE 53300. */
  readonly maxConnections?: number;
  /** How long a connection may sit idle inside a transaction while others wait for the engine. */
  readonly idleInTransactionTimeoutMs?: number;
  readonly debug?: boolean;
  readonly log?: (line: string) => void;
  /** Told the number of connections whenever it changes. */
  readonly onConnections?: (count: number) => void;
  /** The server's secret, from which sessions' cancel keys are derived (see `cancel-key.ts`). */
  readonly cancelSecret?: string;
  /** Runs CREATE, DROP and ALTER DATABASE for a session; without it they are refused (0A000). */
  readonly databaseCommand?: SessionHost['databaseCommand'];
  /** Shares the engine's roles with the server's other databases after a change (see roles.ts). */
  readonly publishRoles?: SessionHost['publishRoles'];
};

export type Gateway = {
  readonly port: number;
  readonly connections: number;
  /** Every connection: its backend's state, whether it holds the database, what it waits for. */
  sessions(): SessionReport[];
  /**
   * Starts serving a different engine (a reset, or a restore after a schema change): sessions that lose something
   * are ended, the others wait; call the returned `resume` with the new engine to let them go on (engine-swap.ts).
   */
  suspend(reason: string): Promise<(next: Engine) => Promise<void>>;
  /** Serves a connection accepted elsewhere; `head` holds the bytes already read from it (its startup message). */
  adopt(socket: net.Socket, head: Buffer): void;
  /**
   * A CancelRequest for one of this gateway's connections that the server's main thread has tried on the running
   * statement (`interrupt()`): it found none, and kept the cancel for the connection's next statement.
   */
  cancel(processId: number, secretKey: number): void;
  /** Ends every session with FATAL 57P01 `message` and waits for their clean-up (DROP DATABASE ... WITH (FORCE)). */
  terminateAll(message: string): Promise<void>;
  /** Stops accepting, ends every session (FATAL 57P01 to each client) and waits for their clean-up. */
  close(): Promise<void>;
};

export const DEFAULT_MAX_CONNECTIONS = 100;
export const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/** Listens on `host:port`; rejects with the listen error (EADDRINUSE, ...) if the port cannot be had. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const sessions = new Map<number, Session>();
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const log = options.log ?? (() => undefined);
  const backends = new Backends();

  let engine: Engine | undefined;
  let opening: Promise<Engine> | undefined;
  const swap = createEngineSwap({ sessions: () => sessions.values(), use: (next) => useEngine(next), log });
  const cancelSession = (processId: number, secretKey: number, kept: boolean) => {
    const target = sessions.get(processId);
    if (target && target.secretKey === secretKey) target.cancel(kept);
  };
  const host: SessionHost = {
    get engine() {
      return engine!;
    },
    backends,
    tryAcquire: (session) => swap.tryAcquire(engine!, session),
    acquire: (session, signal) => swap.acquire(() => engine!, session, signal),
    idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    cancelSecret: options.cancelSecret,
    debug: options.debug ?? false,
    log,
    cancel: (processId, secretKey) => cancelSession(processId, secretKey, false),
    notify(channel, payload, from) {
      for (const session of sessions.values()) {
        if (session !== from && session.listening.has(channel)) session.deliverNotification(channel, payload, from.processId);
      }
    },
    listenedByOthers(channel, from) {
      for (const session of sessions.values()) if (session !== from && session.listening.has(channel)) return true;
      return false;
    },
    channelsOfOthers(from) {
      const channels = new Set<string>();
      for (const session of sessions.values()) if (session !== from) for (const channel of session.listening) channels.add(channel);
      return channels;
    },
    onClosed(session) {
      if (sessions.delete(session.processId)) options.onConnections?.(sessions.size);
    },
    databaseCommand: options.databaseCommand,
    publishRoles: options.publishRoles,
  };

  // NOTIFY sent through the other front door (HTTP) reaches listening connections too.
  const deliverFromHttp = (channel: string, payload: string, pid: number) => {
    for (const session of sessions.values()) if (session.listening.has(channel)) session.deliverNotification(channel, payload, pid);
  };
  let stopListening: () => void = () => undefined;
  const useEngine = (next: Engine) => {
    stopListening();
    if (engine?.backends === backends) engine.backends = undefined;
    engine = next;
    engine.backends = backends;
    const stopNotifications = engine.onNotification(deliverFromHttp);
    const stopCrash = engine.onCrash(endSessionsAfterCrash);
    // Postgres' own idle_in_transaction_session_timeout, idle_session_timeout and transaction_timeout end the session.
    next.onIdleTimeout((sessionId, termination) => {
      if (engine === next && sessionId !== undefined) setImmediate(() => sessions.get(sessionId)?.fatal(termination));
    });
    stopListening = () => {
      stopNotifications();
      stopCrash();
    };
    return next;
  };
  // Postgres ends every other backend after one's PANIC, with this message, and restarts from the WAL. After the
  // session that met the PANIC has answered it (in the same tick), the others are ended so.
  const endSessionsAfterCrash = () =>
    setImmediate(() => {
      for (const session of sessions.values()) {
        session.fatal({
          code: SqlState.CrashShutdown,
          message: 'terminating connection because of crash of another server process',
          hint: 'the database restarts from its last commit; in a moment you should be able to reconnect and repeat your command',
        });
      }
    });
  const source = options.engine;
  if (typeof source !== 'function') useEngine(source);
  const openEngine = () => (opening ??= typeof source === 'function' ? source().then(useEngine) : Promise.resolve(source));
  const endSessions = (message: string, reason: string) =>
    Promise.all(
      [...sessions.values()].map((session) => {
        session.fatal({ code: SqlState.AdminShutdown, message });
        return session.close(reason);
      }),
    );

  const accept = (socket: net.Socket, head?: Buffer) => {
    const session = new Session(host, socket, head);
    if (sessions.size >= maxConnections) {
      session.fatal({ code: SqlState.TooManyConnections, message: 'sorry, too many clients already' });
      return;
    }
    sessions.set(session.processId, session);
    options.onConnections?.(sessions.size);
  };
  const serve = (socket: net.Socket, head?: Buffer) => {
    if (engine) return accept(socket, head);
    // Until the engine is open the socket stays paused: its bytes wait in the kernel and in Node's buffer.
    openEngine().then(
      () => (socket.destroyed ? undefined : accept(socket, head)),
      (error: unknown) => {
        log(`gateway: could not open the database: ${String(error)}`);
        socket.destroy();
      },
    );
  };
  const server = net.createServer({ noDelay: true }, (socket) => serve(socket));
  server.maxConnections = maxConnections * 2;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log(`gateway on port ${options.port}: ${error.message}`));

  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return sessions.size;
    },
    sessions: () => backends.report(engine?.ownerId),
    suspend: (reason) => swap.suspend(reason),
    adopt(socket, head) {
      socket.setNoDelay(true);
      serve(socket, head);
    },
    cancel: (processId, secretKey) => cancelSession(processId, secretKey, true),
    terminateAll: (message) => endSessions(message, 'terminated').then(() => undefined),
    close() {
      closing ??= (async () => {
        stopListening();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await endSessions('terminating connection due to administrator command', 'server shutting down');
        await closed;
      })();
      return closing;
    },
  };
}
