/**
 * @module
 * A connection's start, up to its first ReadyForQuery: the first packet (a CancelRequest, an SSL or GSS request
 * refused in plain text, or the StartupMessage), the role it logs in as (roles.ts), authentication (handshake.ts),
 * then the ParameterStatus messages and BackendKeyData a client expects.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { ClientParameters } from 'pg-gateway';
import { ENGINE_SUPERUSER, type Engine, type EngineSession } from '../engine/engine.js';
import { Backend, StartupCode, TransactionStatus, int32, message, parameterStatus, readyForQuery } from '../engine/protocol.js';
import { SqlState, type BackendErrorFields } from './backend-error.js';
import { createHandshake, type Handshake } from './handshake.js';
import { findLoginRole, startupUser } from './roles.js';

/** What the start of a connection needs from its session. */
export type StartupHost = {
  readonly engine: Engine;
  readonly engineSession: EngineSession;
  readonly processId: number;
  readonly secretKey: number;
  write(data: Uint8Array): void;
  /** Ends the connection without an error (a cancel request served, a client that went away). */
  end(reason: string): void;
  fatal(fields: Omit<BackendErrorFields, 'severity'>): void;
  /** Forwards a CancelRequest to the session it names. */
  cancel(processId: number, secretKey: number): void;
  /** The client is authenticated and has been sent its first ReadyForQuery. */
  onStarted(params: ClientParameters): void;
  onError(error: unknown): void;
  /** Whether the connection was closed meanwhile. */
  readonly closed: boolean;
};

export class SessionStartup {
  #host: StartupHost;
  /** pg-gateway, from the StartupMessage (once the role is known) until the client is authenticated. */
  #handshake: Handshake | undefined;
  #superuser = true;

  constructor(host: StartupHost) {
    this.#host = host;
  }

  /**
   * Handles a packet read in the startup framing (no type byte); true when the StartupMessage has come, after which
   * messages are typed.
   */
  packet(packet: Buffer): boolean {
    const host = this.#host;
    const code = packet.readUInt32BE(4);
    if (code === StartupCode.CancelRequest && packet.length === 16) {
      host.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
      host.end('cancel request handled');
      return false;
    }
    // TLS is the router's (daemon/server/router.ts): a connection that reaches a session directly stays in plain text.
    if ((code === StartupCode.GssEncRequest || code === StartupCode.SslRequest) && packet.length === 8) {
      host.write(Buffer.from('N'));
      return false;
    }
    if (code !== StartupCode.Protocol3 && code >>> 16 !== 3) {
      host.fatal({ code: SqlState.ProtocolViolation, message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}` });
      return true;
    }
    void this.#login(packet);
    return true;
  }

  /** A PasswordMessage (or SASL response) of the authentication exchange. */
  password(msg: Buffer): void {
    this.#handshake?.feed(msg);
  }

  /** Looks up the role the client names, then lets pg-gateway authenticate it as that role. */
  async #login(packet: Buffer): Promise<void> {
    const host = this.#host;
    try {
      const role = await findLoginRole(host.engine, startupUser(packet));
      if (host.closed) return;
      if ('refused' in role) return host.fatal(role.refused);
      if (role.name !== ENGINE_SUPERUSER) host.engineSession.role = role.name;
      for (const [name, value] of role.settings ?? []) host.engineSession.settings.set(name, value);
      this.#superuser = role.superuser;
      this.#handshake = createHandshake((data) => host.write(data), host.engine.serverVersion, role.scram);
      this.#handshake.done.then((params) => this.#started(params), (error) => host.onError(error));
      this.#handshake.feed(packet);
    } catch (error) {
      host.onError(error);
    }
  }

  #started(params: ClientParameters | undefined): void {
    const host = this.#host;
    this.#handshake = undefined;
    if (!params) return host.end('startup refused');
    const settings = host.engineSession.settings;
    for (const [name, value] of startupSettings(params)) settings.set(name, value);
    const reported = new Map(host.engine.defaults);
    for (const [name, value] of settings) if (reported.has(name)) reported.set(name, value);
    host.write(Buffer.concat([
      parameterStatus('server_version', host.engine.serverVersion),
      parameterStatus('server_encoding', 'UTF8'),
      parameterStatus('integer_datetimes', 'on'),
      parameterStatus('is_superuser', this.#superuser ? 'on' : 'off'),
      parameterStatus('session_authorization', params.user),
      parameterStatus('default_transaction_read_only', 'off'),
      parameterStatus('in_hot_standby', 'off'),
      ...[...reported].map(([name, value]) => parameterStatus(name, value)),
      message(Backend.BackendKeyData, int32(host.processId), int32(host.secretKey)),
      readyForQuery(TransactionStatus.Idle),
    ]));
    host.onStarted(params);
  }
}

const IGNORED_STARTUP = new Set(['user', 'database', 'replication', 'options', 'client_encoding']);

/** The session settings a client asks for in its startup packet, `options` (`-c name=value`) included. */
export function startupSettings(params: ClientParameters): Map<string, string> {
  const settings = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) {
    if (!IGNORED_STARTUP.has(name) && /^[A-Za-z_][\w.]*$/.test(name)) settings.set(name, value);
  }
  for (const [, name, value] of (params.options ?? '').matchAll(/(?:-c\s*|--)([A-Za-z_][\w.]*)=((?:\\.|[^\s\\])*)/g)) {
    settings.set(name!.replaceAll('-', '_'), value!.replaceAll(/\\(.)/g, '$1'));
  }
  return settings;
}
