/**
 * @module
 * CREATE, DROP and ALTER DATABASE as a session answers them, in the simple and in the extended protocol. The engine
 * never sees them: they run in the server (`SessionHost.databaseCommand`). In the extended protocol the session
 * answers their Parse, Bind, Describe, Execute and Close itself, and remembers their prepared statements by name, as
 * a driver that prepares every statement (postgres.js) binds them again later without a Parse.
 *
 * Inside a transaction block, or in a pipeline after other statements (extended-protocol messages already run since
 * the last Sync), they fail with 25001, as on Postgres: the statement is replaced by one that raises that error in
 * the engine, so the transaction is marked failed there too and the engine answers the Sync.
 */
import { backendError, noticeResponse, SqlError, SqlState } from './backend-error.js';
import { commandTag, isSyntaxError, parseDatabaseCommand, type DatabaseCommand, type DatabaseCommandSyntaxError } from './database-commands.js';
import { Backend, Frontend, commandComplete, decode, int16, message, query } from '../engine/protocol.js';

export type DatabaseCommandRunner = (command: DatabaseCommand) => Promise<{ notice?: string }>;

type Parsed = DatabaseCommand | DatabaseCommandSyntaxError;

/** Where a database command arrives: on its own, inside a transaction block, or after other statements of a pipeline. */
export const CommandContext = { Alone: 'alone', TransactionBlock: 'transaction block', Pipeline: 'pipeline' } as const;
export type CommandContext = (typeof CommandContext)[keyof typeof CommandContext];

export class DatabaseStatements {
  #statements = new Map<string, Parsed>();
  #portals = new Map<string, Parsed>();
  #held: Buffer[] = [];
  #run: DatabaseCommandRunner;

  constructor(run: DatabaseCommandRunner) {
    this.#run = run;
  }

  /** Whether messages of database commands wait for the next Sync or Flush. */
  get pending(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Looks at an extended-protocol message: `undefined` if it belongs to a database command (held until Sync), else
   * the message to send to the engine (the same one, or inside a transaction block or a pipeline a Parse that fails
   * with 25001).
   */
  take(msg: Buffer, context: CommandContext): Buffer | undefined {
    const body = msg.subarray(5);
    switch (msg[0]) {
      case Frontend.Parse: {
        const name = cstringAt(body, 0);
        const sql = cstringAt(body, Buffer.byteLength(name) + 1);
        const parsed = parseDatabaseCommand(sql);
        if (!parsed) {
          this.#statements.delete(name);
          return msg;
        }
        if (context !== CommandContext.Alone && failsInTransaction(parsed)) {
          this.#statements.delete(name);
          return message(Frontend.Parse, name, raiseRefusal(parsed, context), int16(0));
        }
        this.#statements.set(name, parsed);
        break;
      }
      case Frontend.Bind: {
        const portal = cstringAt(body, 0);
        const statement = this.#statements.get(cstringAt(body, Buffer.byteLength(portal) + 1));
        if (!statement) {
          this.#portals.delete(portal);
          return msg;
        }
        this.#portals.set(portal, statement);
        break;
      }
      case Frontend.Describe:
      case Frontend.Close: {
        const names = body[0] === 0x53 ? this.#statements : this.#portals;
        const name = cstringAt(body, 1);
        if (!names.has(name)) return msg;
        if (msg[0] === Frontend.Close) names.delete(name);
        break;
      }
      case Frontend.Execute:
        if (!this.#portals.has(cstringAt(body, 0))) return msg;
        break;
      default:
        return msg;
    }
    this.#held.push(msg);
    return undefined;
  }

  /**
   * Answers the held messages, stopping at the first error as Postgres does. `mixed`: the batch held other statements
   * too, which were dropped; the commands are refused as they are on Postgres in a pipeline.
   */
  async answer(mixed = false): Promise<Buffer> {
    const held = this.#held;
    this.#held = [];
    if (mixed) return backendError({ severity: 'ERROR', code: SqlState.ActiveSqlTransaction, message: 'CREATE, DROP and ALTER DATABASE cannot be executed within a pipeline' });
    const out: Buffer[] = [];
    for (const msg of held) {
      const body = msg.subarray(5);
      switch (msg[0]) {
        case Frontend.Parse: {
          const parsed = this.#statements.get(cstringAt(body, 0))!;
          if (isSyntaxError(parsed)) return Buffer.concat([...out, syntaxError(parsed)]);
          out.push(message(Backend.ParseComplete));
          break;
        }
        case Frontend.Bind:
          out.push(message(Backend.BindComplete));
          break;
        case Frontend.Describe:
          if (body[0] === 0x53) out.push(message(Backend.ParameterDescription, int16(0))); // a statement: no parameters
          out.push(message(Backend.NoData));
          break;
        case Frontend.Close:
          out.push(message(Backend.CloseComplete));
          break;
        case Frontend.Execute: {
          const answer = await this.runCommand(this.#portals.get(cstringAt(body, 0))!);
          out.push(answer);
          if (answer[0] === Backend.ErrorResponse) return Buffer.concat(out);
          break;
        }
      }
    }
    return Buffer.concat(out);
  }

  /** Runs one command: its notice and CommandComplete, or its ErrorResponse. */
  async runCommand(parsed: Parsed): Promise<Buffer> {
    if (isSyntaxError(parsed)) return syntaxError(parsed);
    try {
      const { notice } = await this.#run(parsed);
      const done = commandComplete(commandTag(parsed));
      return notice ? Buffer.concat([noticeResponse(notice), done]) : done;
    } catch (error) {
      if (error instanceof SqlError) {
        return backendError({ severity: 'ERROR', code: error.sqlState, message: error.message, detail: error.detail, hint: error.hint });
      }
      return backendError({ severity: 'ERROR', code: SqlState.InternalError, message: error instanceof Error ? error.message : String(error) });
    }
  }
}

/**
 * A simple query's text as a database command: `undefined` if it is none; otherwise the query to run in the engine
 * instead (inside a transaction block) or the command to run.
 */
export function simpleDatabaseCommand(msg: Buffer, context: CommandContext): { replacement: Buffer } | { command: Parsed } | undefined {
  const parsed = parseDatabaseCommand(decode(msg.subarray(5, msg.length - 1)));
  if (!parsed) return undefined;
  if (context !== CommandContext.Alone && failsInTransaction(parsed)) return { replacement: query(raiseRefusal(parsed, context)) };
  return { command: parsed };
}

/** CREATE, DROP and RENAME cannot run in a transaction block (other ALTER DATABASE forms can). */
function failsInTransaction(parsed: Parsed): parsed is DatabaseCommand {
  return !isSyntaxError(parsed) && parsed.kind !== 'alter' && parsed.kind !== 'owner';
}

/** The null-terminated string at `offset` of a message body. */
function cstringAt(body: Buffer, offset: number): string {
  return body.toString('utf8', offset, body.indexOf(0, offset));
}

/** A statement that fails in the engine as Postgres refuses the command there (25001, Postgres' own wording). */
function raiseRefusal(command: DatabaseCommand, context: Exclude<CommandContext, 'alone'>): string {
  const where = context === CommandContext.Pipeline ? 'be executed within a pipeline' : 'run inside a transaction block';
  const text = `${commandTag(command)} cannot ${where}`;
  return `DO $pgdev$BEGIN RAISE EXCEPTION USING ERRCODE = '${SqlState.ActiveSqlTransaction}', MESSAGE = '${text}'; END$pgdev$`;
}

function syntaxError(parsed: DatabaseCommandSyntaxError): Buffer {
  return backendError({ severity: 'ERROR', code: SqlState.SyntaxError, message: parsed.syntaxError });
}
