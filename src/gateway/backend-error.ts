/**
 * @module
 * Every ErrorResponse the gateway writes itself goes through {@link backendError}, with a real SQLSTATE.
 * @see https://www.postgresql.org/docs/current/protocol-error-fields.html
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { Backend, message } from '../engine/protocol.js';

// The one table of SQLSTATEs is the engine's (engine/sql-state.ts), and so is the encoder (the engine answers a
// cancelled statement itself); the gateway's modules take them from here.
export { SqlState, USER_CANCEL_MESSAGE } from '../engine/sql-state.js';
export { backendError, type BackendErrorFields } from '../engine/protocol.js';

/** A NoticeResponse of severity NOTICE (SQLSTATE 00000), as `DROP ... IF EXISTS` sends for a missing object. */
export function noticeResponse(text: string): Buffer {
  return message(Backend.NoticeResponse, 'SNOTICE', 'VNOTICE', 'C00000', `M${text}`, [0]);
}

/** An error with the SQLSTATE a Postgres client is answered with (from the server's own work, not the engine's). */
export class SqlError extends Error {
  readonly sqlState: string;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  constructor(sqlState: string, message: string, extra: { detail?: string; hint?: string } = {}) {
    super(message);
    this.name = 'SqlError';
    this.sqlState = sqlState;
    this.detail = extra.detail;
    this.hint = extra.hint;
  }
}
