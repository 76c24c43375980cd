/**
 * @module
 * The SQLSTATEs pgdev answers with itself (the engine's own errors carry theirs), by their names in Postgres'
 * appendix: the one table, for the gateway, the server and HTTP alike.
 * @see https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const SqlState = {
  InvalidParameterValue: '22023',
  InvalidTransactionState: '25000',
  DependentObjectsStillExist: '2BP01',
  ActiveSqlTransaction: '25001',
  InFailedTransaction: '25P02',
  IdleInTransactionTimeout: '25P03',
  InvalidAuthorization: '28000',
  InvalidPassword: '28P01',
  InvalidCatalogName: '3D000',
  SerializationFailure: '40001',
  SyntaxError: '42601',
  UndefinedObject: '42704',
  InvalidName: '42602',
  DuplicateDatabase: '42P04',
  ProtocolViolation: '08P01',
  FeatureNotSupported: '0A000',
  TooManyConnections: '53300',
  DiskFull: '53100',
  InsufficientResources: '53000',
  InsufficientPrivilege: '42501',
  IoError: '58030',
  CrashShutdown: '57P02',
  CannotConnectNow: '57P03',
  ConfigurationLimitExceeded: '53400',
  ProgramLimitExceeded: '54000',
  ObjectNotInPrerequisiteState: '55000',
  ObjectInUse: '55006',
  QueryCanceled: '57014',
  AdminShutdown: '57P01',
  InternalError: 'XX000',
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];

/** Postgres' text for a statement that a cancel request (or `pg_cancel_backend`) ended, with {@link SqlState.QueryCanceled}. */
export const USER_CANCEL_MESSAGE = 'canceling statement due to user request';
