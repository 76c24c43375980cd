/**
 * @module
 * Prisma Client 7 over HTTP: what a `prisma+postgres://localhost:PORT/?api_key=...` URL (Prisma Client's
 * `accelerateUrl`) talks to. The client compiles each query into a query plan and posts it here; Prisma's own
 * executor, `@prisma/query-plan-executor`, runs the plan. pgdev does not re-implement that protocol: it checks the
 * api_key and the client's version, then hands the request to the executor's fetch handler, exactly as `prisma dev`
 * does.
 *
 * The executor's public API takes a database URL (it builds its own `@prisma/adapter-pg` pool and accepts no other
 * driver adapter), so it connects to this server's own wire gateway on loopback: each of its connections is a
 * gateway session over the same {@link Engine} as every other client, with its own settings and transactions.
 */
import { Hono, type Context } from 'hono';
import type { Server } from '@prisma/query-plan-executor';
import { packageVersion } from '../package-version.js';
import { bearerToken } from './sql.js';
import { isAuthorised } from './api-key.js';
import type { HttpContext } from './app.js';

/** The version of Prisma's query plan executor pgdev runs. */
export const PRISMA_EXECUTOR_VERSION: string = packageVersion('@prisma/query-plan-executor');

/**
 * Whether the executor can run the query plans of Prisma Client `clientVersion`. Prisma releases the client and the
 * executor together and the plan format may change in any minor release, so the major and minor versions must
 * match; patch releases, prereleases of the same minor and Prisma's own dev builds (`0.0.0`) are accepted.
 */
export function canServeClient(clientVersion: string | undefined, executor: string = PRISMA_EXECUTOR_VERSION): boolean {
  if (!clientVersion) return false;
  if (clientVersion === '0.0.0' || clientVersion === executor) return true;
  const minor = (version: string) => version.match(/^(\d+)\.(\d+)\./)?.slice(1, 3).join('.');
  const wanted = minor(executor);
  return wanted !== undefined && minor(clientVersion) === wanted;
}

/** The executor's routes, as `prisma dev` mounts them. */
const ROUTES = [
  ['GET', '/connection-info'],
  ['POST', '/query'],
  ['POST', '/transaction/start'],
  ['POST', '/transaction/:txId/query'],
  ['POST', '/transaction/:txId/commit'],
  ['POST', '/transaction/:txId/rollback'],
] as const;

const executors = new WeakMap<HttpContext, Promise<Server>>();

/** The executor's database URL: the main gateway, by IP so `localhost` never resolves to an address it does not listen on. */
function executorDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  return url.toString();
}

/**
 * The executor keeps its logger (and tracing) in OpenTelemetry's active context and fails every request with
 * "No active logger found" unless a context manager is registered, as the `prisma` CLI does for `prisma dev`.
 * Registering is global and first-come: if the host process registered one already, that one is used.
 */
async function ensureContextManager(): Promise<void> {
  if (contextManagerReady) return;
  contextManagerReady = true;
  const [{ context }, { AsyncLocalStorageContextManager }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/context-async-hooks'),
  ]);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
let contextManagerReady = false;

/** Starts an executor; the package (half a second to load) is imported on the first Prisma request only. */
async function createExecutor(databaseUrl: string): Promise<Server> {
  await ensureContextManager();
  const { Server, parseDuration, parseSize } = await import('@prisma/query-plan-executor');
  return Server.create({
    databaseUrl,
    maxResponseSize: parseSize('128 MiB'),
    queryTimeout: parseDuration('PT5M'),
    maxTransactionTimeout: parseDuration('PT5M'),
    maxTransactionWaitTime: parseDuration('PT5M'),
    perRequestLogContext: { logFormat: 'text', logLevel: 'off' },
  });
}

function executorFor(context: HttpContext): Promise<Server> {
  let executor = executors.get(context);
  if (!executor) {
    executor = createExecutor(executorDatabaseUrl(context.urls.databaseUrl));
    executor.catch(() => executors.delete(context)); // try again on the next request
    executors.set(context, executor);
  }
  return executor;
}

/** Closes the executor's transactions and database connections, if it was ever started. */
export async function shutdownPrismaExecutor(context: HttpContext): Promise<void> {
  const executor = executors.get(context);
  if (!executor) return;
  executors.delete(context);
  await (await executor.catch(() => undefined))?.shutdown();
}

/** The client's version, from the `Prisma-Engine-Hash` header Prisma Client sends with every request. */
function clientVersionOf(c: Context): string | undefined {
  return c.req.header('prisma-engine-hash');
}

function servedRange(): string {
  const [major, minor] = PRISMA_EXECUTOR_VERSION.split('.');
  return `${major}.${minor}.x`;
}

export function versionMismatchMessage(clientVersion: string | undefined, databaseUrl: string): string {
  return (
    `Prisma Client ${clientVersion ?? '(unknown version)'} cannot use this pgdev server over HTTP: its query plan executor is ` +
    `version ${PRISMA_EXECUTOR_VERSION} and serves only Prisma Client ${servedRange()}. ` +
    `Install prisma and @prisma/client ${PRISMA_EXECUTOR_VERSION}, or connect over TCP instead with @prisma/adapter-pg ` +
    `and the database URL ${databaseUrl}`
  );
}

export function createPrismaRoutes(context: HttpContext): Hono {
  const app = new Hono();

  for (const [method, path] of ROUTES) {
    app.on(method, path, async (c) => {
      // Prisma Client reads `error` (a string) and `code` from an error body and throws a known error with them.
      if (!isAuthorised(bearerToken(c.req.header('authorization')), context.secret)) {
        c.header('WWW-Authenticate', 'Bearer');
        return c.json({ error: 'unauthorised: use the api_key of this server\'s prisma+postgres:// URL as pgdev prints it (one kept from `prisma dev` lacks its secret)', code: 'P6002' }, 401);
      }
      const clientVersion = clientVersionOf(c);
      if (!canServeClient(clientVersion)) {
        return c.json({ error: versionMismatchMessage(clientVersion, context.urls.databaseUrl), code: 'P6000' }, 400);
      }
      let executor: Server;
      try {
        executor = await executorFor(context);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return c.json({ error: `the query plan executor could not start: ${message}`, code: 'P6008' }, 503);
      }
      return executor.fetch(c.req.raw);
    });
  }

  return app;
}
