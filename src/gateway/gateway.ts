/**
 * @module
 * A Postgres wire-protocol endpoint in front of one {@link Engine}: accepts connections on loopback, gives each
 * its own {@link Session}, routes cancel requests and NOTIFY deliveries between sessions, and caps connections.
 */
import net from 'node:net';
import type { Engine } from '../engine/engine.js';
import { SqlState } from './backend-error.js';
import { Session, type SessionHost } from './session.js';

export type GatewayOptions = {
  readonly engine: Engine;
  readonly host: string;
  readonly port: number;
  /** Like Postgres' max_connections; one more client is refused with SQLSTATE 53300. */
  readonly maxConnections?: number;
  /** How long a connection may sit idle inside a transaction while others wait for the engine. */
  readonly idleInTransactionTimeoutMs?: number;
  readonly debug?: boolean;
  readonly log?: (line: string) => void;
};

export type Gateway = {
  readonly port: number;
  readonly connections: number;
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
  let nextProcessId = 1000;

  const host: SessionHost = {
    engine: options.engine,
    idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs ?? DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    debug: options.debug ?? false,
    log,
    cancel(processId, secretKey) {
      const target = sessions.get(processId);
      if (target && target.secretKey === secretKey) target.cancel();
    },
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
    claimedTempRelations(from) {
      const claimed = new Set<string>();
      for (const session of sessions.values()) {
        if (session !== from) for (const relation of session.engineSession.tempRelations) claimed.add(relation);
      }
      return claimed;
    },
    onClosed(session) {
      sessions.delete(session.processId);
    },
  };

  // NOTIFY sent through the other front door (HTTP) reaches listening connections too.
  const stopListening = options.engine.onNotification((channel, payload, pid) => {
    for (const session of sessions.values()) if (session.listening.has(channel)) session.deliverNotification(channel, payload, pid);
  });

  const server = net.createServer({ noDelay: true }, (socket) => {
    const session = new Session(host, socket, nextProcessId++);
    if (sessions.size >= maxConnections) {
      session.fatal({ code: SqlState.TooManyConnections, message: 'sorry, too many clients already' });
      return;
    }
    sessions.set(session.processId, session);
  });
  server.maxConnections = maxConnections * 2;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log(`${options.engine.label} gateway: ${error.message}`));

  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return sessions.size;
    },
    close() {
      closing ??= (async () => {
        stopListening();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.all(
          [...sessions.values()].map((session) => {
            session.fatal({ code: SqlState.AdminShutdown, message: 'terminating connection due to administrator command' });
            return session.close('server shutting down');
          }),
        );
        await closed;
      })();
      return closing;
    },
  };
}
