/**
 * @module
 * Who a connection is: the role named in its startup packet, looked up in the engine's catalog before
 * authentication. `postgres` always exists and is never looked up (no cost for the default user). An unknown role,
 * or one without LOGIN, is refused with 28000 as Postgres refuses it. A role with a SCRAM password must give it
 * (pg-gateway runs the exchange against the stored verifier); any other role is trusted with any password.
 *
 * Roles are the server's (`daemon/server/roles.ts`): a transaction that may have changed them has its database's roles
 * published when it ends ({@link publishRoleChanges}), before its client is answered.
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import type { ScramSha256Data } from 'pg-gateway';
import { ENGINE_SUPERUSER, quoteIdent, quoteLiteral, type Engine, type Lease } from '../engine/engine.js';
import { Backend, eachMessage, startupParameters } from '../engine/protocol.js';
import { mayChangeRoles } from '../engine/role-catalog.js';
import { SqlError, SqlState, backendError, type BackendErrorFields } from './backend-error.js';

export { mayChangeRoles };

export type LoginRole = {
  readonly name: string;
  readonly superuser: boolean;
  /** The stored SCRAM verifier, when the role has a password. */
  readonly scram?: ScramSha256Data;
  /** Its settings (`ALTER ROLE ... SET`), the database's own (`IN DATABASE`) last, as a new backend takes them. */
  readonly settings?: ReadonlyArray<readonly [string, string]>;
};

/** The user named in a StartupMessage (Postgres' default when it names none is the empty string, refused later). */
export function startupUser(packet: Buffer): string {
  return startupParameters(packet).get('user') ?? '';
}

/** The role a client logs in as, or the FATAL error refusing it. Waits for the engine unless the role is `postgres`. */
export async function findLoginRole(engine: Engine, name: string): Promise<LoginRole | { refused: Omit<BackendErrorFields, 'severity'> }> {
  if (name === ENGINE_SUPERUSER) return { name, superuser: true };
  const rows = await engine.exclusive((lease) => {
    const found = lease.run(`SELECT rolsuper, rolcanlogin, rolpassword, pg_has_role(a.oid, 'pg_read_server_files', 'MEMBER'),
        (SELECT json_agg(c ORDER BY s.setdatabase) FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
          WHERE s.setrole = a.oid AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())))
      FROM pg_catalog.pg_authid a WHERE rolname = ${quoteLiteral(name)}`);
    // The gateway runs COPY FROM STDIN as a read of a server file (PGlite cannot take COPY data from the wire), which
    // needs pg_read_server_files: a role that logs in is given it, so that its COPY works as on Postgres. Roles
    // made through the gateway have it already (publishRoleChanges); this is for those made otherwise.
    if (found[0]?.[1] === 't' && found[0][3] === 'f') lease.run(`GRANT pg_read_server_files TO ${quoteIdent(name)}`);
    return found;
  });
  const [row] = rows;
  if (!row) {
    return {
      refused: {
        code: SqlState.InvalidAuthorization,
        message: `role "${name}" does not exist`,
        hint: `connect as postgres and run CREATE ROLE "${name.replaceAll('"', '""')}" LOGIN;`,
      },
    };
  }
  const [superuser, canLogin, password, , settings] = row;
  if (canLogin !== 't') {
    return {
      refused: {
        code: SqlState.InvalidAuthorization,
        message: `role "${name}" is not permitted to log in`,
        hint: `connect as postgres and run ALTER ROLE "${name.replaceAll('"', '""')}" LOGIN;`,
      },
    };
  }
  return { name, superuser: superuser === 't', scram: password ? parseScramVerifier(password) : undefined, settings: roleSettings(settings) };
}

/** `name=value` entries, as pg_db_role_setting keeps them. */
function roleSettings(json: string | null | undefined): Array<[string, string]> {
  const entries = json ? (JSON.parse(json) as string[]) : [];
  return entries.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]);
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as pg_authid keeps it; undefined for anything else. */
function parseScramVerifier(verifier: string): ScramSha256Data | undefined {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!match) return undefined;
  return { iterations: Number(match[1]), salt: match[2]!, storedKey: match[3]!, serverKey: match[4]! };
}

/**
 * After a transaction that may have changed roles: login roles get pg_read_server_files (see findLoginRole), and
 * the roles are shared with the server's other databases. A change the server refuses (a dropped role that another
 * database still uses) has been undone by then; its statement's answer becomes the error.
 */
export async function publishRoleChanges(host: { publishRoles?(lease: Lease): Promise<void> }, lease: Lease, output: Uint8Array): Promise<Uint8Array> {
  if (!host.publishRoles) return output;
  try {
    await lease.asSuperuser(() => {
      const lacking = lease.run(`SELECT rolname FROM pg_catalog.pg_authid a
        WHERE rolcanlogin AND NOT rolsuper AND NOT pg_has_role(a.oid, 'pg_read_server_files', 'MEMBER')`);
      if (lacking.length) lease.run(`GRANT pg_read_server_files TO ${lacking.map(([name]) => quoteIdent(name!)).join(', ')}`);
      return host.publishRoles!(lease);
    });
    return output;
  } catch (error) {
    if (!(error instanceof SqlError)) throw error;
    return replaceLastCompletion(output, backendError({ severity: 'ERROR', code: error.sqlState, message: error.message, detail: error.detail, hint: error.hint }));
  }
}

/** The answer with its last CommandComplete (and what follows it up to ReadyForQuery) replaced by `error`. */
function replaceLastCompletion(output: Uint8Array, error: Buffer): Buffer {
  let cut: number | undefined;
  let ready: number | undefined;
  for (const { type, start } of eachMessage(output)) {
    if (type === Backend.CommandComplete) cut = start;
    else if (type === Backend.ReadyForQuery) ready = start;
  }
  const bytes = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  if (ready === undefined) return Buffer.concat([bytes, error]);
  return Buffer.concat([bytes.subarray(0, cut ?? ready), error, bytes.subarray(ready)]);
}
