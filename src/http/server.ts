/**
 * @module
 * The HTTP endpoint's socket: listening on loopback starts with the server, but the app behind it (hono, the SQL
 * and Prisma routes) is loaded on the first request, which keeps about 30 ms of module loading off every start-up;
 * most sessions never use HTTP. The first request waits for the load, later ones do not.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { StartupCode } from '../engine/protocol.js';
import { SqlState, backendError } from '../gateway/backend-error.js';
import type { HttpContext } from './context.js';

export type HttpEndpoint = {
  readonly port: number;
  /** Shuts the Prisma executor down if it was started, then stops listening (idle connections close, requests finish). */
  close(): Promise<void>;
};

type Listener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

async function loadApp(context: HttpContext): Promise<Listener> {
  const [{ createHttpApp }, { getRequestListener }] = await Promise.all([import('./app.js'), import('@hono/node-server')]);
  return getRequestListener(createHttpApp(context).fetch);
}

/** Listens on `host:port` (`0`: any free port); rejects with the listen error (EADDRINUSE, ...). */
export async function startHttp(context: HttpContext, host: string, port: number): Promise<HttpEndpoint> {
  let app: Promise<Listener> | undefined;
  const server = http.createServer((request, response) => {
    app ??= loadApp(context);
    app.then(
      (listener) => listener(request, response),
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: `internal error: ${String(error)}` }));
      },
    );
  });
  // The socket is a plain TCP server that hands HTTP to `server`, so that a Postgres client pointed at this port by
  // mistake (psql -p 51213) gets a Postgres error naming the database port instead of "received invalid response".
  // `server` never listens itself, so it does not track its connections: close() ends the idle keep-alive ones here.
  const inFlight = new Map<net.Socket, number>();
  let closing = false;
  const settle = (socket: net.Socket, delta: number) => {
    const count = (inFlight.get(socket) ?? 0) + delta;
    inFlight.set(socket, count);
    if (closing && count === 0) socket.destroy();
  };
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    settle(request.socket, 1);
    response.once('close', () => settle(request.socket, -1));
  });
  const front = net.createServer((socket) => {
    socket.once('data', (first: Buffer) => {
      if (isPostgresOpening(first)) return refusePostgres(socket, first, context);
      inFlight.set(socket, 0);
      socket.once('close', () => inFlight.delete(socket));
      socket.pause();
      socket.unshift(first);
      server.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen({ port, host, exclusive: true }, () => {
      front.off('error', reject);
      resolve();
    });
  });
  return {
    port: (front.address() as AddressInfo).port,
    async close() {
      if (app) await (await import('./prisma.js')).shutdownPrismaExecutor(context);
      const closed = new Promise((resolve) => front.close(resolve));
      closing = true;
      for (const [socket, count] of inFlight) if (count === 0) socket.destroy();
      await closed;
    },
  };
}

/** Protocol codes of the messages a Postgres client opens with: SSLRequest, GSSENCRequest, CancelRequest, v3 startup. */
const POSTGRES_OPENINGS = new Set<number>(Object.values(StartupCode));

/** Whether the first bytes of a connection are a Postgres client's opening message (an Int32 length, then a code). */
function isPostgresOpening(first: Buffer): boolean {
  return first.length >= 8 && first.readInt32BE(0) >= 8 && first.readInt32BE(0) <= 10_000 && POSTGRES_OPENINGS.has(first.readInt32BE(4));
}

/**
 * Answers a Postgres client on the HTTP port: declines SSL or GSS encryption (so that the client goes on to its
 * startup message), then a FATAL ErrorResponse naming the database URL, and closes.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
function refusePostgres(socket: net.Socket, first: Buffer, context: HttpContext): void {
  const code = first.readInt32BE(4);
  if (code === StartupCode.SslRequest || code === StartupCode.GssEncRequest) {
    socket.write('N');
    socket.once('data', (next: Buffer) => refusePostgres(socket, next, context));
    return;
  }
  const { databaseUrl } = context.urls;
  const port = new URL(databaseUrl).port;
  socket.end(
    backendError({
      severity: 'FATAL',
      code: SqlState.ProtocolViolation,
      message: `this is the HTTP port of pgdev server "${context.name}"; connect Postgres clients to its database port ${port}`,
      hint: `use ${databaseUrl}`,
    }),
  );
}
