/**
 * @module
 * `POST /sql`: SQL over HTTP for scripts and tools that do not speak the wire protocol.
 *
 * - `{"query": "...", "params": [...]}` answers `{"rows", "fields", "rowCount", "command"}`.
 * - `{"queries": [{"query", "params"}, ...]}` runs every statement in one transaction (all or nothing) and answers
 *   `{"results": [...]}`.
 * - Postgres errors answer 400 `{"error": {"code", "message", "detail", "position"}}` (and `index` for a batch);
 *   bad requests answer 4xx `{"error": {"message"}}` (the one error shape: errors.ts).
 *
 * Each request is its own engine session with default settings: a `SET` made by one request is not seen by the next,
 * its temporary tables are dropped when it ends, and it cannot leave a transaction open behind it. Commands on the
 * one Postgres session all clients share (LISTEN, UNLISTEN, DISCARD, DEALLOCATE, PREPARE) are refused: they need a
 * connection, which the TCP database URL gives.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { EngineSession, type Lease } from '../engine/engine.js';
import { dropRelations, mayChangeSettings, mayCreateTempRelations, tempRelations } from '../engine/session-state.js';
import { TransactionStatus } from '../engine/protocol.js';
import { apiKeyAuth } from './api-key.js';
import { MAX_SQL_BODY_BYTES } from './body-limit.js';
import type { EngineHttpContext } from './context.js';
import { HttpError } from './errors.js';
import { SqlState } from '../engine/sql-state.js';
import { parseDatabaseCommand } from '../gateway/database-commands.js';

export { MAX_SQL_BODY_BYTES };

export type SqlStatement = { readonly query: string; readonly params: readonly unknown[] };

export type SqlResult = {
  rows: Array<Record<string, unknown>>;
  fields: Array<{ name: string; dataTypeID: number }>;
  rowCount: number | null;
  command: string | null;
};

/** A Postgres error, with the statement it came from when the request was a batch. */
type PostgresErrorBody = {
  code: string;
  message: string;
  detail: string | null;
  hint: string | null;
  position: number | null;
  index?: number;
};

/** Commands acting on the one Postgres session every client shares, which a one-request session cannot own. */
const SESSION_STATE = new Set(['LISTEN', 'UNLISTEN', 'DISCARD', 'DEALLOCATE', 'PREPARE']);

/** Drops the temporary relations the request created; those of other sessions were there before it started. */
function dropNewTempRelations(lease: Lease, before: Map<string, string>): void {
  dropRelations(lease, new Map([...tempRelations(lease)].filter(([relation]) => !before.has(relation))));
}

export function createSqlRoutes(context: EngineHttpContext): Hono {
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
      const { statements, batch } = parseBody(await readJson(c));

      const sessionCommand = statements.findIndex((statement) => SESSION_STATE.has(leadingKeywords(statement.query).split(' ')[0]!));
      if (sessionCommand >= 0) {
        const keyword = leadingKeywords(statements[sessionCommand]!.query).split(' ')[0];
        throw new HttpError(400, `${keyword} is refused: each /sql request is its own short session, and ${keyword} would reach the database's other clients; use the TCP database URL`);
      }
      const databaseCommand = statements.find((statement) => parseDatabaseCommand(statement.query) !== undefined);
      if (databaseCommand) {
        throw new HttpError(400, `${leadingKeywords(databaseCommand.query).split(' ').slice(0, 2).join(' ')} is refused over HTTP: use a Postgres connection (the database URL) or the API's createDatabase and dropDatabase`);
      }
      const settingsMayChange = statements.some((statement) => mayChangeSettings(statement.query));
      const tempMayBeCreated = statements.some((statement) => mayCreateTempRelations(statement.query));

      let lease: Lease;
      try {
        lease = await context.engine.acquire(new EngineSession(), c.req.raw.signal);
      } catch (error) {
        throw new HttpError(503, `database unavailable: ${errorMessage(error)}`, { cause: error });
      }
      try {
        const tempBefore = tempMayBeCreated ? tempRelations(lease) : undefined;
        try {
          const outcome = batch ? await runBatch(lease, statements) : await runSingle(lease, statements[0]!);
          if ('error' in outcome) {
            const { message, ...fields } = outcome.error;
            throw new HttpError(400, message, { fields });
          }
          return jsonResponse(batch ? { results: outcome.results } : outcome.results[0]);
        } finally {
          // The request's session ends here: its temporary tables go, and what it changed in the settings is
          // recorded so that the next lease puts the engine back to that session's settings.
          try {
            if (tempBefore) dropNewTempRelations(lease, tempBefore);
            if (settingsMayChange) lease.captureSettings();
          } catch {
            // The engine is closing: there is no session left to restore.
          }
        }
      } finally {
        lease.release();
      }
    },
  );

  // Only POST is served; say so rather than 404.
  app.on(['GET', 'PUT', 'PATCH', 'DELETE'], '/sql', () => {
    throw new HttpError(405, 'use POST /sql with a JSON body {"query", "params"} or {"queries": [...]}', { headers: { Allow: 'POST' } });
  });

  return app;
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

export function parseBody(body: unknown): { statements: SqlStatement[]; batch: boolean } {
  if (!isObject(body)) throw new HttpError(400, 'the body must be a JSON object {"query": "...", "params": [...]} or {"queries": [...]}');
  if (body.queries !== undefined) {
    if (body.query !== undefined || body.params !== undefined) throw new HttpError(400, 'send either "query" (with "params") or "queries", not both');
    if (!Array.isArray(body.queries)) throw new HttpError(400, '"queries" must be an array of {"query", "params"}');
    if (body.queries.length === 0) throw new HttpError(400, '"queries" is empty');
    return { statements: body.queries.map((item, index) => parseStatement(item, `queries[${index}]`)), batch: true };
  }
  return { statements: [parseStatement(body, 'the body')], batch: false };
}

type Outcome = { results: SqlResult[] } | { error: PostgresErrorBody };

async function runSingle(lease: Lease, statement: SqlStatement): Promise<Outcome> {
  let result: SqlResult;
  try {
    result = await execute(lease, statement);
  } catch (error) {
    const postgres = postgresError(error);
    if (!postgres) throw error;
    await endOpenTransaction(lease);
    return { error: postgres };
  }
  if (await endOpenTransaction(lease)) {
    return {
      error: transactionLeftOpen('the statement left a transaction open, so it was rolled back; send {"queries": [...]} to run statements in one transaction'),
    };
  }
  return { results: [result] };
}

/** The statement's first keyword(s), after leading whitespace and comments, upper-cased. */
export function leadingKeywords(sql: string): string {
  let i = 0;
  while (i < sql.length) {
    if (/\s/.test(sql[i]!)) {
      i++;
    } else if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', i)) {
      // Block comments nest in Postgres.
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) (depth++, (i += 2));
        else if (sql.startsWith('*/', i)) (depth--, (i += 2));
        else i++;
      } while (depth > 0 && i < sql.length);
    } else {
      break;
    }
  }
  return (sql.slice(i).match(/^[A-Za-z]+(?:\s+[A-Za-z]+)?/)?.[0] ?? '').toUpperCase().replace(/\s+/, ' ');
}

/** Whether a statement would end (or start) the batch's transaction, which would break all-or-nothing. */
export function isTransactionControl(sql: string): boolean {
  const [first, second] = leadingKeywords(sql).split(' ');
  if (first === 'ROLLBACK') return second !== 'TO';
  if (first === 'PREPARE') return second === 'TRANSACTION';
  return ['BEGIN', 'START', 'COMMIT', 'END', 'ABORT'].includes(first ?? '');
}

async function runBatch(lease: Lease, statements: SqlStatement[]): Promise<Outcome> {
  const control = statements.findIndex((statement) => isTransactionControl(statement.query));
  if (control >= 0) {
    return {
      error: {
        ...transactionLeftOpen(`queries[${control}] is a transaction control statement; "queries" already run in one transaction, so send no BEGIN, COMMIT or ROLLBACK`),
        index: control,
      },
    };
  }
  await endOpenTransaction(lease);
  await lease.pglite.query('BEGIN');
  const results: SqlResult[] = [];
  for (const [index, statement] of statements.entries()) {
    try {
      results.push(await execute(lease, statement));
    } catch (error) {
      const postgres = postgresError(error);
      await endOpenTransaction(lease);
      if (!postgres) throw error;
      return { error: { ...postgres, index } };
    }
    if (lease.transactionStatus() !== TransactionStatus.InTransaction) {
      await endOpenTransaction(lease);
      return { error: { ...transactionLeftOpen(`queries[${index}] ended the request's transaction; do not send BEGIN, COMMIT or ROLLBACK in "queries"`), index } };
    }
  }
  try {
    const commit = (await lease.pglite.query('COMMIT')) as { command?: string };
    if (commit.command === 'ROLLBACK') {
      return { error: transactionLeftOpen('the transaction could not commit and was rolled back') };
    }
  } catch (error) {
    await endOpenTransaction(lease);
    const postgres = postgresError(error);
    if (!postgres) throw error;
    return { error: postgres };
  }
  return { results };
}

function transactionLeftOpen(message: string): PostgresErrorBody {
  return { code: SqlState.InvalidTransactionState, message, detail: null, hint: null, position: null };
}

/** Rolls back a transaction the request left open; returns whether there was one. */
async function endOpenTransaction(lease: Lease): Promise<boolean> {
  if (lease.transactionStatus() === TransactionStatus.Idle) return false;
  await lease.pglite.query('ROLLBACK');
  return true;
}

async function execute(lease: Lease, statement: SqlStatement): Promise<SqlResult> {
  const result = (await lease.pglite.query<Record<string, unknown>>(statement.query, statement.params as unknown[])) as {
    rows: Array<Record<string, unknown>>;
    fields: Array<{ name: string; dataTypeID: number }>;
    affectedRows?: number;
    rowCount?: number;
    command?: string;
  };
  return {
    rows: result.rows,
    fields: result.fields.map(({ name, dataTypeID }) => ({ name, dataTypeID })),
    rowCount: result.rowCount ?? null,
    command: result.command ?? null,
  };
}

function postgresError(error: unknown): PostgresErrorBody | undefined {
  if (!(error instanceof Error)) return undefined;
  const fields = error as Error & { code?: unknown; detail?: unknown; hint?: unknown; position?: unknown };
  if (typeof fields.code !== 'string' || !/^[0-9A-Z]{5}$/.test(fields.code)) return undefined;
  const position = fields.position === undefined || fields.position === null || fields.position === '' ? null : Number(fields.position);
  return {
    code: fields.code,
    message: error.message,
    detail: typeof fields.detail === 'string' ? fields.detail : null,
    hint: typeof fields.hint === 'string' ? fields.hint : null,
    position: Number.isFinite(position) ? position : null,
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** JSON for values Postgres hands back: int8 as a string (no precision lost), bytea as `\x` hex like Postgres prints it. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'bigint') return item.toString();
    if (item instanceof Uint8Array) return `\\x${Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('hex')}`;
    return item;
  });
}

function jsonResponse(body: unknown): Response {
  return new Response(toJson(body), { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' } });
}
