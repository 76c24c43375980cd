/**
 * @module
 * The databases a server has, by name: the one place that maps a database name (`pgdev dump --database`, the
 * `database` parameter of the HTTP dump and load) to an engine. Today a server has its main database, which answers
 * to `postgres` and `template1` as a real server's default database would, and its shadow database; databases made
 * with CREATE DATABASE will be added here.
 */
import { ErrorCode, PgdevError } from '../errors.js';

export const DatabaseRole = { Main: 'main', Shadow: 'shadow' } as const;
export type DatabaseRole = (typeof DatabaseRole)[keyof typeof DatabaseRole];

/** The database a command uses when none is named. */
export const DEFAULT_DATABASE = 'postgres';

const DATABASES: ReadonlyMap<string, DatabaseRole> = new Map([
  ['postgres', DatabaseRole.Main],
  ['template1', DatabaseRole.Main],
  ['shadow', DatabaseRole.Shadow],
]);

/** The engine behind a database name; an unknown name is an error that lists the known ones. */
export function resolveDatabase(name: string = DEFAULT_DATABASE): DatabaseRole {
  const role = DATABASES.get(name);
  if (!role) {
    throw new PgdevError(
      ErrorCode.UnknownDatabase,
      `unknown database "${name}"; this server has postgres (also called template1) and shadow`,
    );
  }
  return role;
}
