/**
 * @module
 * A database port, as Postgres' postmaster runs it: it reads each new connection's opening messages itself, then
 * passes the connection to the process of the database the client names.
 *
 * - SSLRequest / GSSENCRequest: answered ('S' with TLS when the server has a certificate, else 'N'), then the
 *   startup message is read.
 * - A TLS ClientHello as the first bytes (direct SSL negotiation, Postgres 17+): TLS at once, with ALPN
 *   `postgresql`, then the startup message is read inside it.
 * - CancelRequest: handed to the process owning that process id; the connection is closed.
 * - StartupMessage: its `database` (by default the user name, as libpq does) picks the database; the socket and
 *   the bytes read so far go to that database's process. A TLS connection cannot be handed over (its keys live
 *   here), so its plain text is relayed instead (the slow path, TLS only).
 *
 * A connection must send its startup message within `startupTimeoutMs` (Postgres' authentication_timeout, 60 s) or
 * it is closed. Connections still silent are not counted against any limit a client can hit: when too many wait at
 * once, the one waiting longest is closed, so a flood of silent sockets can never shut real clients out (Node's
 * `server.maxConnections`, 200 before, counted them: the 201st connection, and every one after, was reset at once).
 * The limit on real connections is each database's (53300 from its gateway).
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 * @see https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-AUTHENTICATION-TIMEOUT
 */
import net from 'node:net';
import type tls from 'node:tls';
import { StartupCode, startupParameters } from '../../engine/protocol.js';
import { backendError, SqlState, type BackendErrorFields } from '../../gateway/backend-error.js';
import { EarlyTerminate, FrameReader, FramingError } from '../../gateway/framing.js';
import { acceptDirectTls, acceptTls, createTlsServer, POSTGRES_ALPN, TLS_HANDSHAKE_RECORD, type TlsCertificate } from '../../gateway/tls.js';
import { wasHandedToThread } from '../boundary/channel.js';

/** Where a connection goes once its database is known. */
export type Destination = {
  /** Takes the plain socket over (the bytes in `head` first). */
  adopt(socket: net.Socket, head: Buffer): Promise<void>;
  /** A loopback port speaking the same protocol, for connections that must be relayed (TLS). */
  readonly relayPort: number;
};

export type RouterOptions = {
  readonly host: string;
  readonly port: number;
  /** The database a client names (its process opened if need be), or a FATAL error to answer with. */
  route(database: string): Promise<Destination | { refused: Omit<BackendErrorFields, 'severity'> }>;
  cancel(processId: number, secretKey: number): void;
  readonly tls?: () => Promise<TlsCertificate>;
  readonly log: (line: string) => void;
  /** How long a new connection may take to send its startup message (default {@link DEFAULT_STARTUP_TIMEOUT_MS}). */
  readonly startupTimeoutMs?: number;
  /** How many connections may wait for their startup message at once; beyond, the oldest is closed (default {@link DEFAULT_MAX_STARTING}). */
  readonly maxStarting?: number;
};

/** Postgres' default authentication_timeout. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 60_000;

/** Connections waiting for their startup message at once, before the oldest is closed: enough for any burst of real clients. */
export const DEFAULT_MAX_STARTING = 500;

export type Router = {
  readonly port: number;
  /** Stops accepting; connections already handed over belong to their database processes. */
  close(): Promise<void>;
};

/** A connection that sent no startup message in time (Postgres closes it without a word; this says why). */
const STARTUP_TIMEOUT = (ms: number) => ({
  code: SqlState.ProtocolViolation,
  message: `no startup message within ${ms / 1000} s: connection closed`,
  hint: 'a Postgres client sends its startup message as soon as it connects; check what connected to this port',
});

/** The connection closed to make room when too many wait for their startup message at once. */
const TOO_MANY_STARTING = {
  code: SqlState.TooManyConnections,
  message: 'too many connections are waiting to start up: the one waiting longest was closed',
  hint: 'connect again; something is opening connections to this port without sending a startup message',
};

/** Bytes sent after an SSLRequest before its answer, which Postgres refuses (CVE-2021-23214). */
const UNENCRYPTED_DATA = { code: SqlState.ProtocolViolation, message: 'received unencrypted data after SSL request' };
/** Postgres' answer to direct SSL without ALPN (a client that might not speak the protocol inside TLS). */
const NO_ALPN = {
  code: SqlState.ProtocolViolation,
  message: 'received direct SSL connection request without ALPN protocol negotiation extension',
  hint: 'offer the ALPN protocol "postgresql" (libpq 17+ and node-postgres do with sslnegotiation=direct)',
};

export async function createRouter(options: RouterOptions): Promise<Router> {
  const tlsServer = options.tls && createTlsServer(options.tls);
  /** Connections not handed over yet, and relayed ones: what close() must end itself. */
  const held = new Set<net.Socket>();
  /** Connections that have not sent their startup message yet, oldest first, and the socket to answer them on (TLS once negotiated). */
  const starting = new Map<net.Socket, net.Socket>();
  const startupTimeoutMs = options.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const maxStarting = options.maxStarting ?? DEFAULT_MAX_STARTING;

  const refuse = (socket: net.Socket, fields: Omit<BackendErrorFields, 'severity'>) => {
    if (socket.destroyed) return;
    socket.end(backendError({ severity: 'FATAL', ...fields }));
    // A client that reads nothing would keep the socket half-open: it is gone either way.
    setTimeout(() => socket.destroy(), 1_000).unref();
  };

  /** Reads the opening message of `socket` (`raw`: the TCP socket, `socket` itself unless it is TLS over it). */
  const opening = (socket: net.Socket | tls.TLSSocket, secure: boolean, raw: net.Socket = socket) => {
    if (starting.has(raw)) starting.set(raw, socket);
    const reader = new FrameReader();
    const onData = (chunk: Buffer) => {
      if (!secure && reader.buffered === 0 && chunk[0] === TLS_HANDSHAKE_RECORD) {
        socket.off('data', onData);
        socket.pause();
        void direct(socket, chunk);
        return;
      }
      reader.push(chunk);
      let packet: Buffer | undefined;
      try {
        packet = reader.next();
      } catch (error) {
        if (error instanceof EarlyTerminate) return socket.end();
        if (error instanceof FramingError) return refuse(socket, { code: SqlState.ProtocolViolation, message: `invalid message: ${error.message}` });
        throw error;
      }
      if (!packet) return;
      const code = packet.readUInt32BE(4);
      if (code !== StartupCode.SslRequest && code !== StartupCode.GssEncRequest) starting.delete(raw);
      socket.off('data', onData);
      socket.pause();
      void handle(socket, packet, reader, secure).catch((error: unknown) => {
        options.log(`pgdev: could not route a connection: ${String(error)}`);
        if (wasHandedToThread(socket)) return; // its thread ended with it: see wasHandedToThread
        refuse(socket, { code: SqlState.InternalError, message: `could not open the database: ${error instanceof Error ? error.message : String(error)}` });
      });
    };
    socket.on('data', onData);
  };

  const handle = async (socket: net.Socket, packet: Buffer, reader: FrameReader, secure: boolean): Promise<void> => {
    const code = packet.readUInt32BE(4);
    if (code === StartupCode.CancelRequest && packet.length === 16) {
      options.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
      socket.end();
      return;
    }
    if ((code === StartupCode.SslRequest || code === StartupCode.GssEncRequest) && packet.length === 8 && !secure) {
      if (reader.buffered > 0) return refuse(socket, UNENCRYPTED_DATA);
      socket.resume();
      if (code === StartupCode.GssEncRequest || !tlsServer) {
        socket.write('N');
        return opening(socket, false);
      }
      const tlsSocket = await acceptTls(socket, tlsServer, options.log);
      if (tlsSocket === 'unencrypted data') return refuse(socket, UNENCRYPTED_DATA);
      if (!tlsSocket) return opening(socket, false);
      tlsSocket.on('error', () => tlsSocket.destroy());
      return opening(tlsSocket, true, socket);
    }
    if (code !== StartupCode.Protocol3 && code >>> 16 !== 3) {
      return refuse(socket, { code: SqlState.ProtocolViolation, message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}` });
    }
    const params = startupParameters(packet);
    const database = params.get('database') || params.get('user') || '';
    const destination = await options.route(database);
    if ('refused' in destination) return refuse(socket, destination.refused);
    const head = Buffer.concat([packet, reader.takeRest()]);
    if (!secure) {
      held.delete(socket);
      return destination.adopt(socket, Buffer.concat([head, stopReading(socket)]));
    }
    relay(socket, head, destination.relayPort);
  };

  /** Direct SSL negotiation: the client's first bytes are its ClientHello (`head`). */
  const direct = async (socket: net.Socket, head: Buffer) => {
    if (!tlsServer) return socket.destroy(); // no TLS on this port: a TLS client cannot be answered in its language
    const tlsSocket = await acceptDirectTls(socket, head, tlsServer, options.log);
    if (!tlsSocket) return;
    tlsSocket.on('error', () => tlsSocket.destroy());
    if (tlsSocket.alpnProtocol !== POSTGRES_ALPN) return refuse(tlsSocket, NO_ALPN);
    opening(tlsSocket, true);
  };

  const relay = (client: net.Socket, head: Buffer, port: number) => {
    const upstream = net.connect({ host: options.host, port, noDelay: true });
    upstream.write(head);
    client.pipe(upstream).pipe(client);
    client.resume();
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  };

  const server = net.createServer({ noDelay: true }, (socket) => {
    held.add(socket);
    starting.set(socket, socket);
    const timer = setTimeout(() => {
      const current = starting.get(socket);
      if (current) refuse(current, STARTUP_TIMEOUT(startupTimeoutMs));
    }, startupTimeoutMs).unref();
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(timer);
      held.delete(socket);
      starting.delete(socket);
    });
    for (const [oldest, current] of starting) {
      if (starting.size <= maxStarting) break;
      starting.delete(oldest);
      refuse(current, TOO_MANY_STARTING);
    }
    opening(socket, false);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => options.log(`database port ${options.port}: ${error.message}`));

  return {
    port: (server.address() as net.AddressInfo).port,
    close() {
      // Not waiting for close's callback: Node counts connections handed to another process until they end, and
      // those are their database processes' to end. The port is free once close() returns.
      server.close();
      for (const socket of held) socket.destroy();
      return Promise.resolve();
    },
  };
}

/**
 * Stops this process reading a socket it is about to hand over, and returns what it had read and not delivered.
 * `pause()` alone is not enough: the handle goes on reading into the stream's buffer, and once the socket is sent
 * whatever this process reads before the other side acknowledges it is dropped (Node sets the handle's `onread` to
 * a no-op): a client's first query, sent as soon as the database process has answered the startup, was lost so.
 */
function stopReading(socket: net.Socket): Buffer {
  socket.pause();
  const pending: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) pending.push(chunk);
  // After the reads (read() may start reading again) and in the same tick (the handle reads only when the event
  // loop polls): nothing can arrive in between.
  (socket as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
  return Buffer.concat(pending);
}
