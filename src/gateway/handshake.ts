/**
 * @module
 * From the StartupMessage up to AuthenticationOk, a connection is pg-gateway's job: the protocol version check and
 * authentication (trust, or SCRAM for a role with a password; see roles.ts). The session answers SSL and GSS
 * requests before that itself (tls.ts). Once the client is authenticated, pg-gateway is detached and the session
 * takes over the byte stream.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { PostgresConnection, type ClientParameters, type ScramSha256Data } from 'pg-gateway';
import { Backend, readError } from '../engine/protocol.js';
import { backendError, SqlState } from './backend-error.js';

export type Handshake = {
  /** Hands one framed startup-phase message to pg-gateway. */
  feed(message: Uint8Array): void;
  /** Resolves to the client's startup parameters once authenticated, or undefined if pg-gateway closed it. */
  readonly done: Promise<ClientParameters | undefined>;
};

/** `scram`: the role's stored SCRAM verifier, which the client's password must match; without it any password does. */
export function createHandshake(write: (data: Uint8Array) => void, serverVersion: string, scram?: ScramSha256Data): Handshake {
  let enqueue!: (message: Uint8Array) => void;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      enqueue = (message) => controller.enqueue(message);
    },
  });
  let settle!: (params: ClientParameters | undefined) => void;
  const done = new Promise<ClientParameters | undefined>((resolve) => (settle = resolve));
  const writable = new WritableStream<Uint8Array>({
    write: (chunk) => write(asPostgresSays(chunk)),
    close: () => settle(undefined),
    abort: () => settle(undefined),
  });
  const connection: PostgresConnection = new PostgresConnection(
    { readable, writable },
    {
      auth: scram ? { method: 'scram-sha-256', getScramSha256Data: () => scram } : { method: 'trust' },
      serverVersion,
      onAuthenticated: async (state) => {
        // From here on the session writes ParameterStatus, BackendKeyData and ReadyForQuery itself.
        await connection.detach();
        settle(state.clientParams);
      },
    },
  );
  // A copy: pg-gateway reads message lengths from the start of the ArrayBuffer behind the view it is given (ignoring
  // its byteOffset), and Node's small Buffers are views into a shared pool.
  return { feed: (message) => enqueue(new Uint8Array(message)), done };
}

/**
 * pg-gateway's SCRAM exchange refuses a wrong password with SQLSTATE 28000; Postgres says 28P01
 * (invalid_password), which clients and scripts check for.
 */
function asPostgresSays(chunk: Uint8Array): Uint8Array {
  if (chunk[0] !== Backend.ErrorResponse) return chunk;
  const error = readError(chunk);
  if (error?.code !== SqlState.InvalidAuthorization || !error.message.startsWith('password authentication failed')) return chunk;
  return backendError({ severity: 'FATAL', code: SqlState.InvalidPassword, message: error.message });
}
