/**
 * @module
 * Prisma Client 7 over HTTP: what a `prisma+postgres://localhost:PORT/?api_key=...` URL (Prisma Client's
 * `accelerateUrl`) talks to. The client compiles each query into a query plan and posts it here; Prisma's own
 * executor, `@prisma/query-plan-executor`, runs the plan. pgdev does not re-implement that protocol: it checks the
 * api_key and the client's version, picks the executor of the client's own minor release (`executors.ts`: the
 * bundled one, or one fetched from the npm registry), and hands the request to that executor's fetch handler, as
 * `prisma dev` does with its one pinned version.
 *
 * The executor's public API takes a database URL (it builds its own `@prisma/adapter-pg` pool and accepts no other
 * driver adapter), so it connects to this server's own wire gateway on loopback: each of its connections is a
 * gateway session over the same {@link Engine} as every other client, with its own settings and transactions.
 */
import { Hono, type Context } from 'hono';
import type { Server } from '@prisma/query-plan-executor';
import { isPgdevError } from '../errors.js';
import { apiKeyAuth } from './api-key.js';
import type { HttpContext } from './context.js';
import {
  BUNDLED_EXECUTOR_VERSION,
  executorCacheDir,
  executorMinorFor,
  fetchExecutor,
  findExecutor,
  loadExecutorModule,
  type ExecutorInfo,
  type FetchFailure,
} from './executors.js';

/** The executor's routes, as `prisma dev` mounts them. */
const ROUTES = [
  ['GET', '/connection-info'],
  ['POST', '/query'],
  ['POST', '/transaction/start'],
  ['POST', '/transaction/:txId/query'],
  ['POST', '/transaction/:txId/commit'],
  ['POST', '/transaction/:txId/rollback'],
] as const;

/** Each server's running executors, by executor version; one is started on the first request of its minor. */
const servers = new WeakMap<HttpContext, Map<string, Promise<Server>>>();

/** The executor's database URL: the main gateway, by IP so `localhost` never resolves to an address it does not listen on. */
function executorDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  return url.toString();
}

/**
 * The executor keeps its logger (and tracing) in OpenTelemetry's active context and fails every request with
 * "No active logger found" unless a context manager is registered, as the `prisma` CLI does for `prisma dev`.
 * Registering is global and first-come: if the host process registered one already, that one is used. Every
 * executor version bundles its own copy of `@opentelemetry/api`, and all of them find this one (the API keeps its
 * globals under one process-wide symbol per major version).
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

/** Starts an executor; its package (half a second to load) is loaded on the first request of its minor only. */
async function createExecutor(executor: ExecutorInfo, databaseUrl: string): Promise<Server> {
  await ensureContextManager();
  const { Server, parseDuration, parseSize } = await loadExecutorModule(executor);
  return Server.create({
    databaseUrl,
    maxResponseSize: parseSize('128 MiB'),
    queryTimeout: parseDuration('PT5M'),
    maxTransactionTimeout: parseDuration('PT5M'),
    maxTransactionWaitTime: parseDuration('PT5M'),
    perRequestLogContext: { logFormat: 'text', logLevel: 'off' },
  });
}

function serverFor(context: HttpContext, executor: ExecutorInfo): Promise<Server> {
  let running = servers.get(context);
  if (!running) servers.set(context, (running = new Map()));
  let server = running.get(executor.version);
  if (!server) {
    server = createExecutor(executor, executorDatabaseUrl(context.urls.databaseUrl));
    server.catch(() => running.delete(executor.version)); // try again on the next request
    running.set(executor.version, server);
  }
  return server;
}

/** Closes every executor's transactions and database connections, if any was ever started. */
export async function shutdownPrismaExecutor(context: HttpContext): Promise<void> {
  const running = servers.get(context);
  if (!running) return;
  servers.delete(context);
  await Promise.all([...running.values()].map(async (server) => (await server.catch(() => undefined))?.shutdown()));
}

/** How long a failed fetch is remembered, so that an offline machine is not sent to the registry on every request. */
const FETCH_RETRY_MS = 30_000;

/** Fetches in progress (one per minor, shared by every server in this process) and recent failures. */
const fetching = new Map<string, Promise<ExecutorInfo>>();
const failures = new Map<string, { at: number; error: unknown }>();

/**
 * The newest release of `minor` from the registry; for a prerelease client (`7.11.0-dev.3`, an integration build)
 * whose minor has no release yet, the executor published under the client's own version.
 */
async function fetchFor(minor: string, clientVersion: string | undefined): Promise<ExecutorInfo> {
  try {
    return await fetchExecutor(minor);
  } catch (error) {
    const notPublished = isPgdevError(error) && error.details.failure === 'not-published';
    if (notPublished && clientVersion?.includes('-')) return fetchExecutor(clientVersion);
    throw error;
  }
}

/** The executor for `minor`: on this machine already, else fetched from the npm registry (once, whoever asks). */
async function executorFor(minor: string, clientVersion: string | undefined): Promise<ExecutorInfo> {
  const found = findExecutor(minor);
  if (found) return found;
  const failed = failures.get(minor);
  if (failed && Date.now() - failed.at < FETCH_RETRY_MS) throw failed.error;
  let fetch = fetching.get(minor);
  if (!fetch) {
    fetch = fetchFor(minor, clientVersion).then(
      (executor) => {
        failures.delete(minor);
        return executor;
      },
      (error: unknown) => {
        failures.set(minor, { at: Date.now(), error });
        throw error;
      },
    );
    fetch.finally(() => fetching.delete(minor)).catch(() => undefined);
    fetching.set(minor, fetch);
  }
  return fetch;
}

/** The client's version: Prisma Client 7 sends it as `Prisma-Engine-Hash` (and the engines' commit as `Prisma-Engine-Version`). */
function clientVersionOf(c: Context): string | undefined {
  return c.req.header('prisma-engine-hash');
}

/** Why a client cannot be served: it said no version, or its minor's executor is not published or not reachable. */
export type Unservable = 'no-version' | FetchFailure;

/** The message a refused client shows its user: what is missing, and the two ways on (pre-fetch, or the TCP URL). */
export function unservableMessage(clientVersion: string | undefined, databaseUrl: string, why: Unservable, minor = executorMinorFor(clientVersion)): string {
  const client = `Prisma Client ${clientVersion ?? '(unknown version)'} cannot use this pgdev server over HTTP`;
  const tcp = `connect over TCP with @prisma/adapter-pg and the database URL ${databaseUrl}`;
  switch (why) {
    case 'no-version':
      return `${client}: the request does not say which Prisma version sent it (Prisma-Engine-Hash header); ${tcp}`;
    case 'not-published':
      return `${client}: Prisma published no query plan executor for ${minor}.x on the npm registry (pgdev bundles ${BUNDLED_EXECUTOR_VERSION}); use another Prisma version, or ${tcp}`;
    case 'cache-unwritable':
      return (
        `${client}: the query plan executor for Prisma ${minor}.x is not on this machine and pgdev cannot write its cache folder ` +
        `${executorCacheDir()}; fix its permissions or set XDG_CACHE_HOME, or ${tcp}`
      );
    case 'unreachable':
      return (
        `${client}: the query plan executor for Prisma ${minor}.x is not on this machine and the npm registry cannot be reached; ` +
        `run \`pgdev prisma-executors --fetch ${minor}\` once online, or ${tcp}`
      );
    default:
      return why satisfies never;
  }
}

export function createPrismaRoutes(context: HttpContext): Hono {
  const app = new Hono();
  // Prisma Client reads `error` (a string) and `code` from an error body and throws a known error with them.
  const withApiKey = apiKeyAuth(context.secret, (c) => {
    c.header('WWW-Authenticate', 'Bearer');
    return c.json({ error: 'unauthorised: use the api_key of this server\'s prisma+postgres:// URL as pgdev prints it (one kept from `prisma dev` lacks its secret)', code: 'P6002' }, 401);
  });

  for (const [method, path] of ROUTES) {
    app.on(method, path, withApiKey, async (c) => {
      const clientVersion = clientVersionOf(c);
      const minor = executorMinorFor(clientVersion);
      if (!minor) return c.json({ error: unservableMessage(clientVersion, context.urls.databaseUrl, 'no-version'), code: 'P6000' }, 400);
      let executor: ExecutorInfo;
      try {
        executor = await executorFor(minor, clientVersion);
      } catch (error) {
        const failure = isPgdevError(error) ? (error.details.failure as FetchFailure | undefined) : undefined;
        const why = failure ?? 'unreachable';
        return c.json({ error: unservableMessage(clientVersion, context.urls.databaseUrl, why, minor), code: 'P6000' }, why === 'not-published' ? 400 : 503);
      }
      let server: Server;
      try {
        server = await serverFor(context, executor);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return c.json({ error: `the query plan executor ${executor.version} could not start: ${message}`, code: 'P6008' }, 503);
      }
      return server.fetch(c.req.raw);
    });
  }

  return app;
}
