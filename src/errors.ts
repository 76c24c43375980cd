/**
 * @module
 * The one error type pgdev throws at people. Callers branch on `code`, never on message text.
 */

export const ErrorCode = {
  InvalidName: 'E_INVALID_NAME',
  InvalidPort: 'E_INVALID_PORT',
  PortInUse: 'E_PORT_IN_USE',
  Locked: 'E_LOCKED',
  NotFound: 'E_NOT_FOUND',
  NoMatch: 'E_NO_MATCH',
  NotRunning: 'E_NOT_RUNNING',
  Running: 'E_RUNNING',
  DataDir: 'E_DATA_DIR',
  StartFailed: 'E_START_FAILED',
  Confirm: 'E_CONFIRM',
  State: 'E_STATE',
  UnknownDatabase: 'E_UNKNOWN_DATABASE',
  /** A database command failed as its SQL would: `details.sqlState` has the SQLSTATE. */
  Database: 'E_DATABASE',
  NotSql: 'E_NOT_SQL',
  NewerDump: 'E_NEWER_DUMP',
  LoadFailed: 'E_LOAD_FAILED',
  DumpFailed: 'E_DUMP_FAILED',
  DiskFull: 'E_DISK_FULL',
  ExecutorFetch: 'E_EXECUTOR_FETCH',
  InvalidVersion: 'E_INVALID_VERSION',
  UnknownCommand: 'E_UNKNOWN_COMMAND',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error meant for a person: one lower-case line that says what went wrong and what to do. */
export class PgdevError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for callers, for example the URLs of the server that holds a lock. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, { cause: options.cause });
    this.name = 'PgdevError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isPgdevError(error: unknown, code?: ErrorCode): error is PgdevError {
  return error instanceof PgdevError && (code === undefined || error.code === code);
}
