/**
 * @module
 * The roles of one engine, as rows: on Postgres roles live in shared catalogs (`pg_authid`, `pg_auth_members`,
 * `pg_db_role_setting`), one set for every database of the server, but each pgdev database is an engine of its own
 * with its own copy of them. The server keeps one copy (`daemon/server/roles.ts`) and writes it into every engine with the
 * rows as they are, oids included, so that `pg_roles` reads the same everywhere and the owners and grants each
 * database records point at the same roles.
 *
 * Written with `allow_system_table_mods`, as `pg_database`'s rows are (`daemon/host/serve.ts`). The engine's own
 * superuser (oid 10) is updated in place, never deleted: the session runs as it while the rows are replaced.
 */
import { quoteLiteral, type Lease } from './engine.js';

/** The three shared role catalogs as one JSON text, rows ordered, so that equal texts mean equal catalogs. */
export type RoleCatalog = string;

/** The engine's own superuser, the bootstrap role every Postgres has under this oid. */
const BOOTSTRAP_SUPERUSER_OID = 10;

/** Statements that may change roles, directly or inside a DO block or function (read back when they end). */
const ROLE_CHANGE = /\b(?:(?:create|alter|drop)\s+(?:role|user|group)|grant|revoke)\b/i;

export const mayChangeRoles = (sql: string): boolean => ROLE_CHANGE.test(sql);

export function readRoleCatalog(lease: Lease): RoleCatalog {
  const [row] = lease.run(`SELECT json_build_object(
      'authid', (SELECT coalesce(json_agg(a ORDER BY a.oid), '[]') FROM pg_catalog.pg_authid a),
      'members', (SELECT coalesce(json_agg(m ORDER BY m.oid), '[]') FROM pg_catalog.pg_auth_members m),
      'settings', (SELECT coalesce(json_agg(s ORDER BY s.setrole), '[]') FROM pg_catalog.pg_db_role_setting s WHERE s.setdatabase = 0)
    )::text`);
  return row![0]!;
}

/** Makes the engine's roles those of `catalog`, in one transaction; rows that are already equal stay as they are. */
export function applyRoleCatalog(lease: Lease, catalog: RoleCatalog): void {
  if (readRoleCatalog(lease) === catalog) return;
  const json = `${quoteLiteral(catalog)}::json`;
  const columns = ['rolname', 'rolsuper', 'rolinherit', 'rolcreaterole', 'rolcreatedb', 'rolcanlogin', 'rolreplication', 'rolbypassrls', 'rolconnlimit', 'rolpassword', 'rolvaliduntil'];
  const sql = [
    'BEGIN',
    'SET LOCAL allow_system_table_mods = on',
    'DELETE FROM pg_catalog.pg_auth_members',
    'DELETE FROM pg_catalog.pg_db_role_setting WHERE setdatabase = 0',
    `DELETE FROM pg_catalog.pg_authid WHERE oid <> ${BOOTSTRAP_SUPERUSER_OID}`,
    `UPDATE pg_catalog.pg_authid SET (${columns.join(', ')}) = (SELECT ${columns.map((column) => `n.${column}`).join(', ')}
      FROM json_populate_recordset(NULL::pg_catalog.pg_authid, ${json}->'authid') n WHERE n.oid = ${BOOTSTRAP_SUPERUSER_OID})
      WHERE oid = ${BOOTSTRAP_SUPERUSER_OID}`,
    `INSERT INTO pg_catalog.pg_authid SELECT * FROM json_populate_recordset(NULL::pg_catalog.pg_authid, ${json}->'authid') WHERE oid <> ${BOOTSTRAP_SUPERUSER_OID}`,
    `INSERT INTO pg_catalog.pg_auth_members SELECT * FROM json_populate_recordset(NULL::pg_catalog.pg_auth_members, ${json}->'members')`,
    `INSERT INTO pg_catalog.pg_db_role_setting SELECT * FROM json_populate_recordset(NULL::pg_catalog.pg_db_role_setting, ${json}->'settings')`,
    'COMMIT',
  ].join(';\n');
  try {
    lease.run(sql);
  } catch (error) {
    lease.run('ROLLBACK');
    throw error;
  }
}

/** A role as the server needs to know it: for OWNER, and to name a role in an error. */
export type RoleRow = { readonly oid: number; readonly rolname: string };

export function roleRows(catalog: RoleCatalog): RoleRow[] {
  // json_agg writes an oid as a string.
  return (JSON.parse(catalog) as { authid: Array<{ oid: string; rolname: string }> }).authid.map(({ oid, rolname }) => ({ oid: Number(oid), rolname }));
}

/**
 * How many objects of the engine's database depend on each of `oids` (roles about to be removed): what they own,
 * grants to them, policies naming them. Only the roles with any, as [oid, count].
 */
export function roleDependents(lease: Lease, oids: readonly number[]): Array<[number, number]> {
  if (oids.length === 0) return [];
  const rows = lease.run(`SELECT d.refobjid, count(*) FROM pg_catalog.pg_shdepend d
    WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = ANY(ARRAY[${oids.map(Number).join(', ')}]::oid[])
      AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
    GROUP BY d.refobjid`);
  return rows.map(([oid, count]) => [Number(oid), Number(count)]);
}
