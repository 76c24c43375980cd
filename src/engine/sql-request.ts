/**
 * @module
 * One `POST /sql` request run on a database's engine, where the engine is (a database's host): its own short session
 * with default settings. A `SET` made by one request is not seen by the next, its temporary tables are dropped when it
 * ends, and it cannot leave a transaction open behind it. The HTTP route (`http/sql.ts`, in the server) parses and
 * checks the request; this runs it and answers the JSON the client gets, or the Postgres error it gets instead.
 */
import { EngineSession, type Engine, type Lease } from './engine.js';
import { TransactionStatus } from './protocol.js';
import { dropRelations, mayChangeSettings, mayCreateTempRelations, tempRelations } from './session-state.js';
import { SqlState } from './sql-state.js';

export type SqlStatement = { readonly query: string; readonly params: readonly unknown[] };

/** A checked request: one statement, or a batch run in one transaction (`queries`). */
export type SqlRequest = { readonly statements: readonly SqlStatement[]; readonly batch: boolean };

export type SqlResult = {
  rows: Array<Record<string, unknown>>;
  fields: Array<{ name: string; dataTypeID: number }>;
  rowCount: number | null;
  command: string | null;
};

/** A Postgres error, with the statement it came from when the request was a batch. */
export type PostgresErrorBody = {
  code: string;
  message: string;
  detail: string | null;
  hint: string | null;
  position: number | null;
  index?: number;
};

/**
 * What a request comes to: the JSON text of its answer (int8 as a string, bytea as `\x` hex), a Postgres error, or
 * the engine could not be had (it is closing).
 */
export type SqlOutcome = { readonly json: string } | { readonly error: PostgresErrorBody } | { readonly unavailable: string };

/** Runs a checked request in a session of its own; `signal` gives up the wait for the engine. */
export async function runSqlRequest(engine: Engine, request: SqlRequest, signal?: AbortSignal): Promise<SqlOutcome> {
  const { statements, batch } = request;
  const settingsMayChange = statements.some((statement) => mayChangeSettings(statement.query));
  const tempMayBeCreated = statements.some((statement) => mayCreateTempRelations(statement.query));
  let lease: Lease;
  try {
    lease = await engine.acquire(new EngineSession(), signal);
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) };
  }
  try {
    const tempBefore = tempMayBeCreated ? tempRelations(lease) : undefined;
    try {
      const outcome = batch ? await runBatch(lease, statements) : await runSingle(lease, statements[0]!);
      if ('error' in outcome) return outcome;
      return { json: toJson(batch ? { results: outcome.results } : outcome.results[0]) };
    } finally {
      // The request's session ends here: its temporary tables go, and what it changed in the settings is recorded so
      // that the next lease puts the engine back to that session's settings.
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
}

/** Drops the temporary relations the request created; those of other sessions were there before it started. */
function dropNewTempRelations(lease: Lease, before: Map<string, string>): void {
  dropRelations(lease, new Map([...tempRelations(lease)].filter(([relation]) => !before.has(relation))));
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

async function runBatch(lease: Lease, statements: readonly SqlStatement[]): Promise<Outcome> {
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

/** JSON for values Postgres hands back: int8 as a string (no precision lost), bytea as `\x` hex like Postgres prints it. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'bigint') return item.toString();
    if (item instanceof Uint8Array) return `\\x${Buffer.from(item.buffer, item.byteOffset, item.byteLength).toString('hex')}`;
    return item;
  });
}
