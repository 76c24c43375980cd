/**
 * @module
 * The HTTP front door: health and info, the JSON SQL endpoint, dump and load, and Prisma's protocol for
 * `prisma+postgres://` URLs. It serves only this machine: requests must name a loopback Host (no DNS rebinding), an Origin other than a
 * loopback one is refused, and no CORS header is ever sent, so a web page cannot reach the database.
 */
import { Hono } from 'hono';
import type { Engine } from '../engine/engine.js';
import type { SessionReport } from '../gateway/backends.js';
import type { ServerUrls } from '../state/files.js';
import { createDataRoutes } from './data.js';
import { createPrismaRoutes } from './prisma.js';
import { isAuthorised } from './api-key.js';
import { bearerToken, createSqlRoutes, unauthorised } from './sql.js';

export type HttpContext = {
  readonly name: string;
  readonly version: string;
  readonly urls: ServerUrls;
  /** The random per-server secret every authorised request must carry in its api_key. */
  readonly secret: string;
  readonly engine: Engine;
  /** The engine behind a database name (default: the main database); rejects with E_UNKNOWN_DATABASE. */
  database(name?: string): Promise<Engine>;
  /** Whether both databases answer; the shadow database may be started on demand. */
  isReady(): boolean;
  /** Every wire connection of both databases (`GET /sessions`, `pgdev sessions`). */
  sessions?(): Array<SessionReport & { database: string }>;
};

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const host = hostHeader.replace(/:\d+$/, '').toLowerCase();
  return LOOPBACK_HOSTS.has(host);
}

function isLoopbackOrigin(origin: string): boolean {
  try {
    const url = new URL(origin);
    return isLoopbackHost(url.host);
  } catch {
    return false;
  }
}

export function createHttpApp(context: HttpContext): Hono {
  const app = new Hono();

  app.use(async (c, next) => {
    if (!isLoopbackHost(c.req.header('host'))) return c.json({ error: 'forbidden: this server answers only requests to localhost' }, 403);
    const origin = c.req.header('origin');
    if (origin && origin !== 'null' && !isLoopbackOrigin(origin)) {
      return c.json({ error: 'forbidden: cross-origin requests are refused' }, 403);
    }
    if (origin === 'null') return c.json({ error: 'forbidden: cross-origin requests are refused' }, 403);
    return next();
  });

  app.get('/health', (c) => (context.isReady() ? c.json({ status: 'ok' }) : c.json({ status: 'starting' }, 503)));

  // The postgres:// URLs carry no secret (the database ports ask for none, on loopback); the prisma+postgres:// URL
  // does (its api_key opens this endpoint), so it is shown only to a request that already has it.
  app.get('/info', (c) => {
    const { databaseUrl, shadowDatabaseUrl, prismaPostgresUrl, httpUrl } = context.urls;
    const withKey = isAuthorised(bearerToken(c.req.header('authorization')), context.secret);
    return c.json({ name: context.name, version: context.version, databaseUrl, shadowDatabaseUrl, ...(withKey ? { prismaPostgresUrl } : {}), httpUrl });
  });

  app.get('/sessions', (c) => unauthorised(c, context.secret) ?? c.json({ sessions: context.sessions?.() ?? [] }));

  app.route('/', createSqlRoutes(context));
  app.route('/', createDataRoutes(context));
  app.route('/', createPrismaRoutes(context));

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => c.json({ error: `internal error: ${error.message}` }, 500));
  return app;
}
