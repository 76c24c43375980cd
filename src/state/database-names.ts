/**
 * @module
 * The rules for database names, without I/O: which names reach the default database, what a new name may be, and the
 * errors for names that break them, worded as Postgres words them.
 */
import { ErrorCode, PgdevError } from '../errors.js';
import { SqlError, SqlState } from '../gateway/backend-error.js';

/** The database a command uses when none is named. */
export const DEFAULT_DATABASE = 'postgres';
/** What the HTTP endpoint and the CLI call the shadow port's default database. */
export const SHADOW_DATABASE = 'shadow';

/** The error for a database name the HTTP endpoint or the CLI does not know, listing those it does. */
export function unknownDatabase(name: string, mainNames: readonly string[]): PgdevError {
  const known = [`${DEFAULT_DATABASE} (also called template1)`, ...mainNames.filter((other) => other !== DEFAULT_DATABASE), SHADOW_DATABASE];
  const list = `${known.slice(0, -1).join(', ')} and ${known.at(-1)}`;
  return new PgdevError(ErrorCode.UnknownDatabase, `unknown database "${name}"; this server has ${list}`);
}

/** Names that reach the default database. */
const DEFAULT_NAMES = new Set([DEFAULT_DATABASE, 'template1']);

/** Whether a name reaches the default database (`postgres` or `template1`). */
export function isDefaultDatabaseName(name: string): boolean {
  return DEFAULT_NAMES.has(name);
}

/** The empty template every database is a copy of unless another is named; it takes no connections. */
export const EMPTY_TEMPLATE = 'template0';
/** Postgres' NAMEDATALEN - 1. */
export const MAX_NAME_BYTES = 63;

/** Postgres' checks on a new database name: not empty, at most {@link MAX_NAME_BYTES} bytes. */
export function checkDatabaseName(name: string): void {
  if (name.length === 0) throw new SqlError(SqlState.InvalidName, 'zero-length delimited identifier');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw new SqlError(SqlState.InvalidName, `database name "${name}" is too long: at most ${MAX_NAME_BYTES} bytes`);
  }
}

/** Options Postgres takes that pgdev cannot honour are accepted (see the README); an encoding other than UTF8 is not. */
export function checkCreateOptions(options: Readonly<Record<string, string>>): void {
  const encoding = options.encoding;
  if (encoding !== undefined && !/^(?:utf-?8|unicode|6|default)$/i.test(encoding)) {
    throw new SqlError(SqlState.InvalidParameterValue, `encoding "${encoding}" is not supported: pgdev databases are UTF8`);
  }
}
