/**
 * @module
 * The system functions and views that show one Postgres backend, rewritten so that each gateway connection is its
 * own backend: the advisory lock functions, `pg_cancel_backend`, `pg_terminate_backend`, `pg_stat_activity` and
 * `pg_locks` ask the gateway through the {@link mountBridge bridge}, and so does `pg_backend_pid()`. (Postgres' own
 * `MyProcPid` must keep PGlite's value: latches and files check it.)
 *
 * Each rewritten function falls back to the original (renamed `pg_catalog.pgdev_orig_*`) when the bridge is not
 * mounted, so a data directory opened by plain PGlite still works. Everything lives in `pg_catalog`, which
 * `pg_dump` leaves out. The catalog is installed once per database and marked with {@link CATALOG_VERSION}.
 */

export const CATALOG_VERSION = 'pgdev backend catalog 7';

/** Answers a bridge request whose text starts like this with an error: `E<sqlstate> <message>[\t<detail>]`. */
export const BRIDGE_ERROR = 'E';
/** Answers with a warning and `false`: `W<message>`. */
export const BRIDGE_WARNING = 'W';

type Variant = { args: string; key: string };
const KEY_VARIANTS: Variant[] = [
  { args: 'bigint', key: "'8.' || $1" },
  { args: 'integer, integer', key: "'4.' || $1 || '.' || $2" },
];
const CALL_ARGS: Record<string, string> = { bigint: '$1', 'integer, integer': '$1, $2' };

/** What a blocking lock call also tells the gateway: the timeouts in force, which end a wait. */
const TIMEOUTS = "':' || current_setting('lock_timeout') || ':' || current_setting('statement_timeout')";

/** [function, bridge operation, mode (x exclusive, s shared), scope, return type] */
const ADVISORY_FUNCTIONS: Array<[string, string, string, string, 'void' | 'boolean']> = [
  ['pg_advisory_lock', 'lock', 'x', 'session', 'void'],
  ['pg_advisory_lock_shared', 'lock', 's', 'session', 'void'],
  ['pg_advisory_xact_lock', 'lock', 'x', 'xact', 'void'],
  ['pg_advisory_xact_lock_shared', 'lock', 's', 'xact', 'void'],
  ['pg_try_advisory_lock', 'try', 'x', 'session', 'boolean'],
  ['pg_try_advisory_lock_shared', 'try', 's', 'session', 'boolean'],
  ['pg_try_advisory_xact_lock', 'try', 'x', 'xact', 'boolean'],
  ['pg_try_advisory_xact_lock_shared', 'try', 's', 'xact', 'boolean'],
  ['pg_advisory_unlock', 'unlock', 'x', 'session', 'boolean'],
  ['pg_advisory_unlock_shared', 'unlock', 's', 'session', 'boolean'],
];

/** A function that asks the bridge `request` (an SQL expression), or calls the original when there is no bridge. */
function bridged(signature: string, returns: string, request: string, original: string, call: string): string {
  const orig = `pg_catalog.pgdev_orig_${original}`;
  const body = returns === 'void'
    ? `BEGIN IF pg_catalog.pgdev_bridge(${request}) IS NULL THEN PERFORM ${orig}(${call}); END IF; END`
    : `DECLARE answer text := pg_catalog.pgdev_bridge(${request});
       BEGIN RETURN CASE WHEN answer IS NULL THEN ${orig}(${call}) ELSE answer = 't' END; END`;
  return `CREATE OR REPLACE FUNCTION pg_catalog.${signature} RETURNS ${returns} LANGUAGE plpgsql STRICT VOLATILE AS $fn$ ${body} $fn$;`;
}

/**
 * Keeps the built-in function under another name. Postgres calls a built-in function through its OID, whatever
 * its catalog row says, so a built-in cannot be replaced in place: it is renamed, and a new function takes its name.
 */
function original(name: string, args: string): string {
  return `DO $do$ BEGIN
    IF to_regprocedure('pg_catalog.pgdev_orig_${name}(${args})') IS NULL THEN
      ALTER FUNCTION pg_catalog.${name}(${args}) RENAME TO pgdev_orig_${name};
    END IF;
  END $do$;`;
}

const ACTIVITY_COLUMNS = `pid integer, usename name, application_name text, client_addr inet, client_hostname text,
  client_port integer, backend_start timestamptz, xact_start timestamptz, query_start timestamptz,
  state_change timestamptz, wait_event_type text, wait_event text, state text, query text, backend_type text`;

const LOCK_COLUMNS = `classid oid, objid oid, objsubid smallint, virtualtransaction text, pid integer, mode text,
  granted boolean, waitstart timestamptz`;

/** The SQL that installs the catalog, in one transaction. */
export function backendCatalogSql(): string {
  const statements: string[] = [
    'BEGIN',
    // SECURITY DEFINER: pg_read_file needs the superuser, and a connection may run as another role.
    `CREATE OR REPLACE FUNCTION pg_catalog.pgdev_bridge(request text) RETURNS text LANGUAGE plpgsql VOLATILE
     SECURITY DEFINER SET search_path = pg_catalog AS $fn$
     DECLARE
       answer text := pg_catalog.pg_read_file('/pgdev/' || request, 0, 67108864, true);
       detail text := split_part(substr(answer, 8), E'\\t', 2);
     BEGIN
       IF answer LIKE '${BRIDGE_ERROR}%' AND detail = '' THEN
         RAISE EXCEPTION USING ERRCODE = substr(answer, 2, 5), MESSAGE = substr(answer, 8);
       ELSIF answer LIKE '${BRIDGE_ERROR}%' THEN
         RAISE EXCEPTION USING ERRCODE = substr(answer, 2, 5), MESSAGE = split_part(substr(answer, 8), E'\\t', 1), DETAIL = detail;
       ELSIF answer LIKE '${BRIDGE_WARNING}%' THEN
         RAISE WARNING '%', substr(answer, 2);
       END IF;
       RETURN answer;
     END $fn$;`,
  ];
  for (const [name, op, mode, scope, returns] of ADVISORY_FUNCTIONS) {
    for (const variant of KEY_VARIANTS) {
      statements.push(original(name, variant.args));
      statements.push(
        bridged(
          `${name}(${variant.args})`, returns, `'advisory:${op}:${mode}:${scope}:' || ${variant.key}${op === 'lock' ? ` || ${TIMEOUTS}` : ''}`,
          name, CALL_ARGS[variant.args]!,
        ),
      );
    }
  }
  statements.push(original('pg_advisory_unlock_all', ''));
  statements.push(bridged('pg_advisory_unlock_all()', 'void', "'advisory:unlock_all'", 'pg_advisory_unlock_all', ''));
  statements.push(original('pg_backend_pid', ''));
  statements.push(`CREATE OR REPLACE FUNCTION pg_catalog.pg_backend_pid() RETURNS integer LANGUAGE plpgsql STABLE AS $fn$
    BEGIN RETURN coalesce(pg_catalog.pgdev_bridge('pid')::integer, pg_catalog.pgdev_orig_pg_backend_pid()); END $fn$;`);
  statements.push(original('pg_cancel_backend', 'integer'));
  statements.push(bridged('pg_cancel_backend(integer)', 'boolean', "'cancel:' || $1", 'pg_cancel_backend', '$1'));
  statements.push(original('pg_terminate_backend', 'integer, bigint'));
  statements.push(
    bridged('pg_terminate_backend(pid integer, timeout bigint DEFAULT 0)', 'boolean', "'terminate:' || $1", 'pg_terminate_backend', '$1, $2'),
  );
  statements.push(`CREATE OR REPLACE VIEW pg_catalog.pg_stat_activity AS
    WITH bridge AS (SELECT pg_catalog.pgdev_bridge('activity') AS answer)
    SELECT (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AS datid,
      current_database()::name AS datname, s.pid, NULL::integer AS leader_pid,
      (SELECT oid FROM pg_catalog.pg_authid WHERE rolname = s.usename) AS usesysid, s.usename,
      s.application_name, s.client_addr, s.client_hostname, s.client_port, s.backend_start, s.xact_start,
      s.query_start, s.state_change, s.wait_event_type, s.wait_event, s.state, NULL::xid AS backend_xid,
      NULL::xid AS backend_xmin, NULL::bigint AS query_id, s.query, s.backend_type
    FROM bridge, json_to_recordset(bridge.answer::json) AS s(${ACTIVITY_COLUMNS})
    UNION ALL
    SELECT s.datid, d.datname, s.pid, s.leader_pid, s.usesysid, u.rolname, s.application_name, s.client_addr,
      s.client_hostname, s.client_port, s.backend_start, s.xact_start, s.query_start, s.state_change,
      s.wait_event_type, s.wait_event, s.state, s.backend_xid, s.backend_xmin, s.query_id, s.query, s.backend_type
    FROM bridge, pg_catalog.pg_stat_get_activity(NULL::integer) s
      LEFT JOIN pg_catalog.pg_database d ON s.datid = d.oid LEFT JOIN pg_catalog.pg_authid u ON s.usesysid = u.oid
    WHERE bridge.answer IS NULL;`);
  statements.push(`CREATE OR REPLACE VIEW pg_catalog.pg_locks AS
    WITH bridge AS (SELECT pg_catalog.pgdev_bridge('locks') AS answer)
    SELECT l.locktype, l.database, l.relation, l.page, l.tuple, l.virtualxid, l.transactionid, l.classid, l.objid,
      l.objsubid, l.virtualtransaction, CASE WHEN bridge.answer IS NULL THEN l.pid ELSE pg_catalog.pg_backend_pid() END AS pid,
      l.mode, l.granted, l.fastpath, l.waitstart
    FROM bridge, pg_catalog.pg_lock_status() l
    WHERE bridge.answer IS NULL OR l.locktype <> 'advisory'
    UNION ALL
    SELECT 'advisory'::text, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()),
      NULL::oid, NULL::integer, NULL::smallint, NULL::text, NULL::xid, a.classid, a.objid, a.objsubid,
      a.virtualtransaction, a.pid, a.mode, a.granted, false, a.waitstart
    FROM bridge, json_to_recordset(bridge.answer::json) AS a(${LOCK_COLUMNS});`);
  statements.push(`COMMENT ON FUNCTION pg_catalog.pgdev_bridge(text) IS '${CATALOG_VERSION}'`);
  statements.push('COMMIT');
  return statements.join(';\n');
}

/** A query answering the installed catalog's version (NULL when none is installed). */
export const CATALOG_VERSION_QUERY = "SELECT obj_description(to_regprocedure('pg_catalog.pgdev_bridge(text)'), 'pg_proc')";
