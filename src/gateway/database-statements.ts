/**
 * @module
 * CREATE, DROP and ALTER DATABASE as a session answers them, in the simple and in the extended protocol. The engine
 * never sees them: they run in the server (`SessionHost.databaseCommand`). In the extended protocol the session
 * answers their Parse, Bind, Describe, Execute and Close itself, and remembers their prepared statements by name, as
 * a driver that prepares every statement (postgres.js) binds them again later without a Parse.
 *
 * Inside a transaction block they fail with 25001, as on Postgres: the statement is replaced by one that raises
 * that error in the engine, so the transaction is marked failed there too.
 */
import { backendError, noticeResponse, SqlError, SqlState } from './backend-error.js';
import { commandTag, isSyntaxError, parseDatabaseCommand, type DatabaseCommand, type DatabaseCommandSyntaxError } from './database-commands.js';
import { Backend, Frontend, commandComplete, decode, int16, message, query } from '../engine/protocol.js';

export type DatabaseCommandRunner = (command: DatabaseCommand) => Promise<{ notice?: string }>;

type Parsed = DatabaseCommand | DatabaseCommandSyntaxError;

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
   * the message to send to the engine (the same one, or inside a transaction block a Parse that fails with 25001).
   */
  take(msg: Buffer, inTransaction: boolean): Buffer | undefined {
    const body = msg.subarray(5);
    const text = (offset: number) => body.toString('utf8', offset, body.indexOf(0, offset));
    switch (msg[0]) {
      case Frontend.Parse: {
        const name = text(0);
        const sql = text(Buffer.byteLength(name) + 1);
        const parsed = parseDatabaseCommand(sql);
        if (!parsed) {
          this.#statements.delete(name);
          return msg;
        }
        if (inTransaction && !isSyntaxError(parsed) && parsed.kind !== 'alter') {
          this.#statements.delete(name);
          return message(Frontend.Parse, name, raiseInTransaction(parsed), int16(0));
        }
        this.#statements.set(name, parsed);
        break;
      }
      case Frontend.Bind: {
        const portal = text(0);
        const statement = this.#statements.get(text(Buffer.byteLength(portal) + 1));
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
        const name = text(1);
        if (!names.has(name)) return msg;
        if (msg[0] === Frontend.Close) names.delete(name);
        break;
      }
      case Frontend.Execute:
        if (!this.#portals.has(text(0))) return msg;
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
    if (mixed) return backendError({ severity: 'ERROR', code: '25001', message: 'CREATE, DROP and ALTER DATABASE cannot be executed within a pipeline' });
    const out: Buffer[] = [];
    const body = (msg: Buffer) => msg.subarray(5);
    const name = (msg: Buffer, offset: number) => body(msg).toString('utf8', offset, body(msg).indexOf(0, offset));
    for (const msg of held) {
      switch (msg[0]) {
        case Frontend.Parse: {
          const parsed = this.#statements.get(name(msg, 0))!;
          if (isSyntaxError(parsed)) return Buffer.concat([...out, syntaxError(parsed)]);
          out.push(message(Backend.ParseComplete));
          break;
        }
        case Frontend.Bind:
          out.push(message(0x32)); // BindComplete
          break;
        case Frontend.Describe:
          if (body(msg)[0] === 0x53) out.push(message(0x74, int16(0))); // ParameterDescription: no parameters
          out.push(message(0x6e)); // NoData
          break;
        case Frontend.Close:
          out.push(message(0x33)); // CloseComplete
          break;
        case Frontend.Execute: {
          const answer = await this.runCommand(this.#portals.get(name(msg, 0))!);
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
export function simpleDatabaseCommand(msg: Buffer, inTransaction: boolean): { replacement: Buffer } | { command: Parsed } | undefined {
  const parsed = parseDatabaseCommand(decode(msg.subarray(5, msg.length - 1)));
  if (!parsed) return undefined;
  if (inTransaction && !isSyntaxError(parsed) && parsed.kind !== 'alter') return { replacement: query(raiseInTransaction(parsed)) };
  return { command: parsed };
}

function raiseInTransaction(command: DatabaseCommand): string {
  const text = `${commandTag(command)} cannot run inside a transaction block`;
  return `DO $pgdev$BEGIN RAISE EXCEPTION USING ERRCODE = '25001', MESSAGE = '${text}'; END$pgdev$`;
}

function syntaxError(parsed: DatabaseCommandSyntaxError): Buffer {
  return backendError({ severity: 'ERROR', code: '42601', message: parsed.syntaxError });
}
