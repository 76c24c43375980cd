/**
 * @module
 * The HTTP front door: health and info, the JSON SQL endpoint, dump and load, and Prisma's protocol for
 * `prisma+postgres://` URLs. It serves only this machine: requests must name a loopback Host (no DNS rebinding), an Origin other than a
 * loopback one is refused, and no CORS header is ever sent, so a web page cannot reach the database.
 */
import { Hono } from 'hono';
import type { HttpContext } from './context.js';
import { createDataRoutes } from './data.js';
import { createPrismaRoutes } from './prisma.js';
import { apiKeyAuth, bearerToken, isAuthorised } from './api-key.js';
import { errorBody, HttpError, onHttpError } from './errors.js';
import { createSqlRoutes } from './sql.js';

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
    if (!isLoopbackHost(c.req.header('host'))) throw new HttpError(403, 'forbidden: this server answers only requests to localhost');
    const origin = c.req.header('origin');
    if (origin === 'null' || (origin && !isLoopbackOrigin(origin))) throw new HttpError(403, 'forbidden: cross-origin requests are refused');
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

  const withApiKey = apiKeyAuth(context.secret);
  app.get('/sessions', withApiKey, async (c) => c.json({ sessions: (await context.sessions?.()) ?? [] }));

  app.route('/', createSqlRoutes(context));
  app.route('/', createDataRoutes(context));
  const databases = context.databases;
  if (databases) app.get('/databases', withApiKey, (c) => c.json({ databases: databases() }));
  app.route('/', createPrismaRoutes(context));

  app.notFound((c) => c.json(errorBody(`no route ${c.req.method} ${c.req.path}`), 404));
  app.onError(onHttpError);
  return app;
}
