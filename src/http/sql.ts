/**
 * @module
 * `POST /sql`: SQL over HTTP for scripts and tools that do not speak the wire protocol.
 *
 * - `{"query": "...", "params": [...]}` answers `{"rows", "fields", "rowCount", "command"}`.
 * - `{"queries": [{"query", "params"}, ...]}` runs every statement in one transaction (all or nothing) and answers
 *   `{"results": [...]}`.
 * - `"database"` names the database (default: `postgres`; `shadow`: the shadow port's).
 * - Postgres errors answer 400 `{"error": {"code", "message", "detail", "position"}}` (and `index` for a batch);
 *   bad requests answer 4xx `{"error": {"message"}}` (the one error shape: errors.ts).
 *
 * The server reads the body (within its limit, before buffering), parses and checks it here, then the database's
 * host runs it (`engine/sql-request.ts`): each request is its own engine session with default settings. Commands on
 * the one Postgres session all clients share (LISTEN, UNLISTEN, DISCARD, DEALLOCATE, PREPARE) are refused: they need
 * a connection, which the TCP database URL gives.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { leadingKeywords, type SqlRequest, type SqlStatement } from '../engine/sql-request.js';
import { parseDatabaseCommand } from '../gateway/database-commands.js';
import { apiKeyAuth } from './api-key.js';
import { MAX_SQL_BODY_BYTES } from './body-limit.js';
import type { HttpContext } from './context.js';
import { HttpError, fromPgdevError } from './errors.js';

export { MAX_SQL_BODY_BYTES };
export { isTransactionControl } from '../engine/sql-request.js';

/** Commands acting on the one Postgres session every client shares, which a one-request session cannot own. */
const SESSION_STATE = new Set(['LISTEN', 'UNLISTEN', 'DISCARD', 'DEALLOCATE', 'PREPARE']);

export function createSqlRoutes(context: HttpContext): Hono {
  const app = new Hono();

  app.post(
    '/sql',
    apiKeyAuth(context.secret),
    bodyLimit({
      maxSize: MAX_SQL_BODY_BYTES,
      onError: () => {
        throw new HttpError(413, `request body too large: the limit is ${MAX_SQL_BODY_BYTES} bytes`);
      },
    }),
    async (c) => {
      const body = await readJson(c);
      const request = parseBody(body);
      const database = await context.database(databaseField(body)).catch((error: unknown) => {
        throw fromPgdevError(error);
      });
      const outcome = await database.sql(request, c.req.raw.signal);
      if ('unavailable' in outcome) throw new HttpError(503, `database unavailable: ${outcome.unavailable}`);
      if ('error' in outcome) {
        const { message, ...fields } = outcome.error;
        throw new HttpError(400, message, { fields });
      }
      return new Response(outcome.json, { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' } });
    },
  );

  // Only POST is served; say so rather than 404.
  app.on(['GET', 'PUT', 'PATCH', 'DELETE'], '/sql', () => {
    throw new HttpError(405, 'use POST /sql with a JSON body {"query", "params"} or {"queries": [...]}', { headers: { Allow: 'POST' } });
  });

  return app;
}

/** The `database` field of a body, if it is a string. */
function databaseField(body: unknown): string | undefined {
  return isObject(body) && typeof body.database === 'string' ? body.database : undefined;
}

async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type');
  if (type && !/^application\/json\b|^text\/plain\b|^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw new HttpError(415, `unsupported content type ${type}: send JSON`);
  }
  const text = await c.req.text();
  if (text.trim() === '') throw new HttpError(400, 'empty body: send JSON {"query": "...", "params": [...]} or {"queries": [...]}');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `invalid JSON: ${errorMessage(error)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseStatement(value: unknown, where: string): SqlStatement {
  if (!isObject(value)) throw new HttpError(400, `${where} must be an object {"query": "...", "params": [...]}`);
  const { query, params } = value;
  if (query === undefined) throw new HttpError(400, `${where}: missing "query"`);
  if (typeof query !== 'string') throw new HttpError(400, `${where}: "query" must be a string`);
  if (query.trim() === '') throw new HttpError(400, `${where}: "query" is empty`);
  if (params !== undefined && params !== null && !Array.isArray(params)) throw new HttpError(400, `${where}: "params" must be an array`);
  return { query, params: (params as unknown[] | null | undefined) ?? [] };
}

/** The request a body asks for, checked: its statements, none of which the one-request session refuses. */
export function parseBody(body: unknown): SqlRequest {
  const request = parseStatements(body);
  const sessionCommand = request.statements.find((statement) => SESSION_STATE.has(leadingKeywords(statement.query).split(' ')[0]!));
  if (sessionCommand) {
    const keyword = leadingKeywords(sessionCommand.query).split(' ')[0];
    throw new HttpError(400, `${keyword} is refused: each /sql request is its own short session, and ${keyword} would reach the database's other clients; use the TCP database URL`);
  }
  const databaseCommand = request.statements.find((statement) => parseDatabaseCommand(statement.query) !== undefined);
  if (databaseCommand) {
    throw new HttpError(400, `${leadingKeywords(databaseCommand.query).split(' ').slice(0, 2).join(' ')} is refused over HTTP: use a Postgres connection (the database URL) or the API's createDatabase and dropDatabase`);
  }
  return request;
}

function parseStatements(body: unknown): SqlRequest {
  if (!isObject(body)) throw new HttpError(400, 'the body must be a JSON object {"query": "...", "params": [...]} or {"queries": [...]}');
  if (body.queries !== undefined) {
    if (body.query !== undefined || body.params !== undefined) throw new HttpError(400, 'send either "query" (with "params") or "queries", not both');
    if (!Array.isArray(body.queries)) throw new HttpError(400, '"queries" must be an array of {"query", "params"}');
    if (body.queries.length === 0) throw new HttpError(400, '"queries" is empty');
    return { statements: body.queries.map((item, index) => parseStatement(item, `queries[${index}]`)), batch: true };
  }
  return { statements: [parseStatement(body, 'the body')], batch: false };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

