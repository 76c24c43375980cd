/**
 * @module
 * Who a connection is: the role named in its startup packet, looked up in the engine's catalog before
 * authentication. `postgres` always exists and is never looked up (no cost for the default user). An unknown role,
 * or one without LOGIN, is refused with 28000 as Postgres refuses it. A role with a SCRAM password must give it
 * (pg-gateway runs the exchange against the stored verifier); any other role is trusted with any password.
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import type { ScramSha256Data } from 'pg-gateway';
import { ENGINE_SUPERUSER, quoteIdent, quoteLiteral, type Engine } from '../engine/engine.js';
import { startupParameters } from '../engine/protocol.js';
import { SqlState, type BackendErrorFields } from './backend-error.js';

export type LoginRole = {
  readonly name: string;
  readonly superuser: boolean;
  /** The stored SCRAM verifier, when the role has a password. */
  readonly scram?: ScramSha256Data;
};

/** The user named in a StartupMessage (Postgres' default when it names none is the empty string, refused later). */
export function startupUser(packet: Buffer): string {
  return startupParameters(packet).get('user') ?? '';
}

/** The role a client logs in as, or the FATAL error refusing it. Waits for the engine unless the role is `postgres`. */
export async function findLoginRole(engine: Engine, name: string): Promise<LoginRole | { refused: Omit<BackendErrorFields, 'severity'> }> {
  if (name === ENGINE_SUPERUSER) return { name, superuser: true };
  const rows = await engine.exclusive((lease) => {
    const found = lease.run(`SELECT rolsuper, rolcanlogin, rolpassword, pg_has_role(oid, 'pg_read_server_files', 'MEMBER')
      FROM pg_catalog.pg_authid WHERE rolname = ${quoteLiteral(name)}`);
    // The gateway runs COPY FROM STDIN as a read of a server file (PGlite cannot take COPY data from the wire), which
    // needs pg_read_server_files: a role that logs in is given it, so that its COPY works as on Postgres.
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
  const [superuser, canLogin, password] = row;
  if (canLogin !== 't') {
    return {
      refused: {
        code: SqlState.InvalidAuthorization,
        message: `role "${name}" is not permitted to log in`,
        hint: `connect as postgres and run ALTER ROLE "${name.replaceAll('"', '""')}" LOGIN;`,
      },
    };
  }
  return { name, superuser: superuser === 't', scram: password ? parseScramVerifier(password) : undefined };
}

/** `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as pg_authid keeps it; undefined for anything else. */
function parseScramVerifier(verifier: string): ScramSha256Data | undefined {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!match) return undefined;
  return { iterations: Number(match[1]), salt: match[2]!, storedKey: match[3]!, serverKey: match[4]! };
}
