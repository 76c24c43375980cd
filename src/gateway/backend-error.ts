/**
 * @module
 * Every ErrorResponse the gateway writes itself goes through {@link backendError}, with a real SQLSTATE.
 * @see https://www.postgresql.org/docs/current/protocol-error-fields.html
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { Backend, message } from '../engine/protocol.js';
import type { SqlState } from '../engine/sql-state.js';

// The one table of SQLSTATEs is the engine's (engine/sql-state.ts); the gateway's modules take it from here.
export { SqlState } from '../engine/sql-state.js';

export type BackendErrorFields = {
  severity: 'ERROR' | 'FATAL';
  code: SqlState | string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
};

const FIELD_CODES = { severity: 'S', code: 'C', message: 'M', detail: 'D', hint: 'H', position: 'P' } as const;

/** Encodes an ErrorResponse. A FATAL one must be followed by closing that client's connection. */
export function backendError(fields: BackendErrorFields): Buffer {
  const parts: string[] = [];
  for (const [key, code] of Object.entries(FIELD_CODES)) {
    const value = fields[key as keyof BackendErrorFields];
    if (value !== undefined) parts.push(code + value);
  }
  // 'V' is the non-localised severity that modern clients read first.
  parts.splice(1, 0, `V${fields.severity}`);
  return message(Backend.ErrorResponse, ...parts, [0]);
}

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
