/**
 * @module
 * The HTTP endpoint's socket: listening on loopback starts with the server, but the app behind it (hono, the SQL
 * and Prisma routes) is loaded on the first request, which keeps about 30 ms of module loading off every start-up;
 * most sessions never use HTTP. The first request waits for the load, later ones do not.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpContext } from './app.js';

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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      if (app) await (await import('./prisma.js')).shutdownPrismaExecutor(context);
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
