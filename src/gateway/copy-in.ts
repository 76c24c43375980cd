/**
 * @module
 * COPY FROM STDIN. PGlite cannot take COPY data from the wire, so the session answers CopyInResponse itself,
 * collects the CopyData, and on CopyDone runs the statement as `COPY ... FROM '/dev/blob'` with the data as the blob.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY
 */
import { EngineError, type Lease } from '../engine/engine.js';
import { Backend, Frontend, decode, int16, message, query } from '../engine/protocol.js';
import { backendError, SqlState, USER_CANCEL_MESSAGE } from './backend-error.js';

const MAX_COPY_BYTES = 1024 * 1024 * 1024;
const SINGLE_COPY_FROM_STDIN = /^\s*copy\b[^;]*\bfrom\s+stdin\b[^;]*;?\s*$/i;

/** A query that COPYs FROM STDIN. */
export const isCopyFromStdin = (sql: string): boolean => /\bcopy\b[^;]*\bfrom\s+stdin\b/i.test(sql);

/** The ErrorResponse for a query that mixes COPY FROM STDIN with other statements, or undefined if it is alone. */
export function copyInRefusal(sql: string): Buffer | undefined {
  if (SINGLE_COPY_FROM_STDIN.test(sql)) return undefined;
  return backendError({ severity: 'ERROR', code: SqlState.FeatureNotSupported, message: 'COPY FROM STDIN must be sent as a query of its own' });
}

export class CopyIn {
  readonly #sql: string;
  #chunks: Buffer[] = [];
  #size = 0;
  #cancelled = false;

  constructor(sql: string) {
    this.#sql = sql;
  }

  /** The CopyInResponse that starts the copy: no columns listed, text or binary as the statement says. */
  response(): Buffer {
    return message(Backend.CopyInResponse, [/\bbinary\b/i.test(this.#sql) ? 1 : 0], int16(0));
  }

  /** Takes a message of the copy; true once it is over (CopyDone or CopyFail). */
  accepts(type: number): boolean {
    return type === Frontend.CopyData || type === Frontend.Flush || type === Frontend.Sync || this.ends(type);
  }

  ends(type: number): boolean {
    return type === Frontend.CopyDone || type === Frontend.CopyFail;
  }

  /**
   * A cancel request while the client sends the data: Postgres ends the COPY at once with 57014, and drops what the
   * client sends of it afterwards. Returns the CopyFail that ends it here ({@link finish} answers it as the cancel).
   */
  cancel(): Buffer {
    this.#cancelled = true;
    return message(Frontend.CopyFail, 'canceled');
  }

  /** A CopyData message. */
  data(msg: Buffer): void {
    this.#size += msg.length - 5;
    if (this.#size <= MAX_COPY_BYTES) this.#chunks.push(msg.subarray(5));
  }

  /**
   * Runs the copy (CopyDone) or fails it (CopyFail); the CommandComplete or ErrorResponse. A CopyFail inside a
   * transaction leaves it failed, as on Postgres.
   */
  async finish(msg: Buffer, lease: Lease, inTransaction: boolean): Promise<Buffer> {
    if (msg[0] === Frontend.CopyFail) {
      if (inTransaction) lease.exec(query("SELECT 'COPY from stdin failed'::int"));
      const reason = decode(msg.subarray(5, msg.length - 1));
      const text = this.#cancelled ? USER_CANCEL_MESSAGE : `COPY from stdin failed: ${reason}`;
      return backendError({ severity: 'ERROR', code: SqlState.QueryCanceled, message: text });
    }
    if (this.#size > MAX_COPY_BYTES) {
      return backendError({ severity: 'ERROR', code: SqlState.ProgramLimitExceeded, message: `COPY data larger than ${MAX_COPY_BYTES} bytes` });
    }
    try {
      const rows = await lease.copyFrom(this.#sql.replace(/\bstdin\b/i, "'/dev/blob'"), Buffer.concat(this.#chunks));
      return message(Backend.CommandComplete, `COPY ${rows}`);
    } catch (error) {
      const fields = error instanceof EngineError ? error.fields : { code: SqlState.InternalError, message: String(error) };
      return backendError({ ...fields, severity: 'ERROR' });
    } finally {
      this.#chunks = [];
    }
  }
}
