/**
 * @module
 * One client connection, made to behave as its own Postgres session on top of the single-session engine.
 *
 * - It owns the engine (holds a {@link Lease}) from its first message until ReadyForQuery reports idle, so a
 *   transaction or an extended-protocol batch is never interleaved with another client's work.
 * - Extended-protocol messages are buffered until Sync (or Flush) and run as one batch.
 * - Named prepared statements and portals are renamed with a per-connection prefix, so names never clash.
 * - Session settings live in its {@link EngineSession}; the engine switches them when the lease changes hands.
 * - COPY FROM STDIN is collected here and run as `COPY ... FROM '/dev/blob'` (PGlite cannot read it from the wire).
 * - On disconnect its transaction is rolled back and its statements, temporary tables and LISTENs are dropped.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type net from 'node:net';
import type { ClientParameters } from 'pg-gateway';
import { ENGINE_SUPERUSER, Engine, EngineError, EngineSession, quoteIdent, type Lease } from '../engine/engine.js';
import { dropRelations, mayChangeSettings, mayCreateTempRelations, tempRelations } from '../engine/session-state.js';
import {
  Backend, Frontend, StartupCode, TransactionStatus, cstring, decode, eachMessage, int16, int32, lastReadyStatus,
  message, parameterStatus, query, readyForQuery, sync,
} from '../engine/protocol.js';
import { AbortedTransaction } from './aborted-transaction.js';
import { backendError, SqlError, SqlState, type BackendErrorFields } from './backend-error.js';
import { statementSummary, undoForRetry, type BackendActivity, type Backends } from './backends.js';
import { EarlyTerminate, FrameReader, FramingError } from './framing.js';
import { commandTag, type DatabaseCommand } from './database-commands.js';
import { DatabaseStatements, simpleDatabaseCommand } from './database-statements.js';
import { createHandshake, type Handshake } from './handshake.js';
import { findLoginRole, mayChangeRoles, publishRoleChanges, startupUser } from './roles.js';

export const SessionPhase = {
  Startup: 'Startup',
  Idle: 'Idle',
  InBatch: 'InBatch',
  InTransaction: 'InTransaction',
  Failed: 'Failed',
  Copy: 'Copy',
  Closed: 'Closed',
} as const;
export type SessionPhase = (typeof SessionPhase)[keyof typeof SessionPhase];

/** What a session needs from the gateway that accepted it. */
export type SessionHost = {
  readonly engine: Engine;
  /** Every connection's backend: activity, advisory locks, cancel and terminate. */
  readonly backends: Backends;
  /** The engine's lease at once, if free (none while the engine is being swapped). */
  tryAcquire(session: EngineSession): Lease | undefined;
  /** Waits for the engine (past a swap in progress, onto the new one); a cancel request aborts the wait. */
  acquire(session: EngineSession, signal?: AbortSignal): Promise<Lease>;
  readonly idleInTransactionTimeoutMs: number;
  readonly debug: boolean;
  log(line: string): void;
  /** Forwards a CancelRequest to the session it names. */
  cancel(processId: number, secretKey: number): void;
  /** Delivers a NOTIFY to every session listening on the channel except `from`. */
  notify(channel: string, payload: string, from: Session): void;
  /** Whether some other session still listens on the channel. */
  listenedByOthers(channel: string, from: Session): boolean;
  /** Every channel other sessions listen on. */
  channelsOfOthers(from: Session): Set<string>;
  onClosed(session: Session): void;
  /** Runs CREATE, DROP or ALTER DATABASE (the server keeps the databases); throws SqlError. */
  databaseCommand?(command: DatabaseCommand, session: Session): Promise<{ notice?: string }>;
  /** Shares the engine's roles with the server's other databases, or throws SqlError and puts them back (roles.ts). */
  publishRoles?(lease: Lease): Promise<void>;
};

const MAX_COPY_BYTES = 1024 * 1024 * 1024;
const LISTEN_COMMAND = /(?:^|;)\s*(un)?listen\s+("(?:[^"]|"")+"|[a-z_][\w$]*|\*)/gi;
const COPY_FROM_STDIN = /\bcopy\b[^;]*\bfrom\s+stdin\b/i;
const SINGLE_COPY_FROM_STDIN = /^\s*copy\b[^;]*\bfrom\s+stdin\b[^;]*;?\s*$/i;
const TERMINATED = { code: SqlState.AdminShutdown, message: 'terminating connection due to administrator command' } as const;
/** A connection that waits this long for the database is reported in the server's log, with who holds it. */
const LONG_WAIT_MS = 5_000;
/** A statement that ends a transaction: a query string with one cannot be run again after a lock wait. */
const ENDS_TRANSACTION = /(?:^|;)\s*(?:commit|rollback|abort|end|prepare\s+transaction)\b/i;
/** Statements that can run again with the same effect: a transaction made only of them can be replayed. */
const REPLAYABLE = /^\s*(?:begin|start\s+transaction|set)\b[^;]*;?\s*$/i;

class CancelledError extends Error {}

export class Session {
  readonly processId: number;
  readonly secretKey: number;
  /** Channels this connection LISTENs on. */
  readonly listening = new Set<string>();
  readonly engineSession = new EngineSession();
  #phase: SessionPhase = SessionPhase.Startup;
  #host: SessionHost;
  readonly #socket: net.Socket;
  #reader = new FrameReader();
  /** pg-gateway, from the StartupMessage (once the role is known) until the client is authenticated. */
  #handshake: Handshake | undefined;
  #superuser = true;
  #lease: Lease | undefined;
  #inbox: Buffer[] = [];
  #draining = false;
  #batch: Buffer[] = [];
  /** Set when a batch failed in the gateway: later messages are skipped until Sync, as Postgres does. */
  #batchError: Buffer | undefined;
  #copy: { sql: string; chunks: Buffer[]; size: number } | undefined;
  /** This connection's last Parse of the unnamed statement, replayed if the engine lost it since (see #runBatch). */
  #unnamedParse: Buffer | undefined;
  #batchParsesUnnamed = false;
  #batchUsesEarlierUnnamed = false;
  #batchHasQuery = false;
  /** Named prepared statements (prefixed name -> their Parse), to close them at the end or replay them elsewhere. */
  #statements = new Map<string, Buffer>();
  #settingsDirty = false;
  /** Settings changed inside the open transaction: read back once more when it ends (SET LOCAL, a rollback). */
  #settingsAtEnd = false;
  #tempDirty = false;
  #listenDirty = false;
  /** A statement may have changed roles: they are shared with the other databases once its transaction ends. */
  #rolesDirty = false;
  #aborted = new AbortedTransaction();
  #waiting: AbortController | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #activity: BackendActivity;
  /** The statement text of the batch being collected, for pg_stat_activity. */
  #batchText = '';
  /**
   * Each prepared statement by the client's name (the unnamed one under ''): its SQL, shown in pg_stat_activity when
   * Bind runs it again, and whether it has effects the gateway follows, observed again then (postgres.js re-runs
   * prepared statements with Bind alone).
   */
  #prepared = new Map<string, { sql: string; observed: boolean }>();
  /**
   * The batches of the open transaction, while they can all be run again (BEGIN, SET): a lock wait inside such a
   * transaction rolls it back, waits without holding the engine, and replays them. `null` once it cannot.
   */
  #replayable: Buffer[] | null = [];
  /** Set when the connection's own statement called pg_terminate_backend on it. */
  #terminating = false;
  #databaseStatements = new DatabaseStatements(async (command) => {
    if (!this.#host.databaseCommand) throw new SqlError(SqlState.FeatureNotSupported, `${commandTag(command)} is not supported here`);
    return this.#host.databaseCommand(command, this);
  });

  /** `head`: bytes the server already read from the socket (the startup message, when it routed the connection). */
  constructor(host: SessionHost, socket: net.Socket, head?: Buffer) {
    this.#host = host;
    this.#socket = socket;
    this.processId = this.engineSession.id;
    const now = new Date();
    this.#activity = {
      processId: this.processId, user: '', applicationName: '', clientAddress: socket.remoteAddress ?? null,
      clientPort: socket.remotePort ?? null, backendStart: now, xactStart: null, queryStart: null, stateChange: now,
      state: 'idle', wait: null, query: '',
    };
    this.secretKey = (Math.random() * 0x7fffffff) | 0;
    socket.on('data', (chunk) => this.#receive(chunk));
    socket.on('close', () => void this.close('client disconnected'));
    socket.on('error', (error) => this.#debug(`socket error: ${error.message}`));
    if (head?.length) this.#receive(head);
  }

  get phase(): SessionPhase {
    return this.#phase;
  }

  /** The Parse messages of this connection's named prepared statements, as sent to the engine. */
  namedParses(): Buffer[] {
    return [...this.#statements.values()];
  }

  #debug(line: string): void {
    if (this.#host.debug) this.#host.log(`[${this.#host.engine.label} #${this.processId}] ${line}`);
  }

  #transition(to: SessionPhase, reason: string): void {
    if (this.#phase === to) return;
    this.#debug(`${this.#phase} -> ${to} (${reason})`);
    this.#phase = to;
  }

  #write(data: Uint8Array): void {
    if (!this.#socket.destroyed && data.length > 0) this.#socket.write(data);
  }

  /** Sends a FATAL error to this client alone and closes its connection. */
  fatal(fields: Omit<BackendErrorFields, 'severity'>): void {
    this.#debug(`fatal ${fields.code}: ${fields.message}`);
    this.#write(backendError({ severity: 'FATAL', ...fields }));
    this.#socket.end();
    void this.close(fields.message);
  }

  #receive(chunk: Buffer): void {
    if (this.#phase === SessionPhase.Closed) return;
    this.#reader.push(chunk);
    try {
      for (let next = this.#reader.next(); next; next = this.#reader.next()) {
        if ((this.#phase as SessionPhase) === SessionPhase.Closed) return; // a startup message was refused
        if (this.#reader.startup) this.#startupMessage(next);
        else if (this.#phase === SessionPhase.Startup && next[0] === Frontend.PasswordMessage) this.#handshake?.feed(next);
        else this.#inbox.push(next);
      }
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      if (error instanceof EarlyTerminate) {
        this.#socket.end();
        void this.close('client terminated before startup');
        return;
      }
      this.fatal({ code: SqlState.ProtocolViolation, message: `invalid message: ${error.message}` });
      return;
    }
    if (this.#inbox.length > 1000) this.#socket.pause();
    void this.#drain();
  }

  #startupMessage(packet: Buffer): void {
    const code = packet.readUInt32BE(4);
    if (code === StartupCode.CancelRequest && packet.length === 16) {
      this.#host.cancel(packet.readInt32BE(8), packet.readInt32BE(12));
      this.#socket.end();
      void this.close('cancel request handled');
      return;
    }
    // TLS is the router's (daemon/router.ts): a connection that reaches a session directly stays in plain text.
    if ((code === StartupCode.GssEncRequest || code === StartupCode.SslRequest) && packet.length === 8) {
      this.#write(Buffer.from('N'));
      return;
    }
    this.#reader.startup = false;
    if (code !== StartupCode.Protocol3 && code >>> 16 !== 3) {
      this.fatal({ code: SqlState.ProtocolViolation, message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}` });
      return;
    }
    void this.#login(packet);
  }

  /** Looks up the role the client names, then lets pg-gateway authenticate it as that role. */
  async #login(packet: Buffer): Promise<void> {
    try {
      const role = await findLoginRole(this.#host.engine, startupUser(packet));
      if (this.#phase === SessionPhase.Closed) return;
      if ('refused' in role) return this.fatal(role.refused);
      if (role.name !== ENGINE_SUPERUSER) this.engineSession.role = role.name;
      for (const [name, value] of role.settings ?? []) this.engineSession.settings.set(name, value);
      this.#superuser = role.superuser;
      this.#handshake = createHandshake((data) => this.#write(data), this.#host.engine.serverVersion, role.scram);
      this.#handshake.done.then((params) => this.#started(params), (error) => this.#fail(error));
      this.#handshake.feed(packet);
    } catch (error) {
      this.#fail(error);
    }
  }

  #started(params: ClientParameters | undefined): void {
    if (!params) {
      this.#socket.end();
      void this.close('startup refused');
      return;
    }
    for (const [name, value] of startupSettings(params)) this.engineSession.settings.set(name, value);
    const reported = new Map(this.#host.engine.defaults);
    for (const [name, value] of this.engineSession.settings) if (reported.has(name)) reported.set(name, value);
    const out: Uint8Array[] = [
      parameterStatus('server_version', this.#host.engine.serverVersion),
      parameterStatus('server_encoding', 'UTF8'),
      parameterStatus('integer_datetimes', 'on'),
      parameterStatus('is_superuser', this.#superuser ? 'on' : 'off'),
      parameterStatus('session_authorization', params.user),
      parameterStatus('default_transaction_read_only', 'off'),
      parameterStatus('in_hot_standby', 'off'),
      ...[...reported].map(([name, value]) => parameterStatus(name, value)),
      message(Backend.BackendKeyData, int32(this.processId), int32(this.secretKey)),
      readyForQuery(TransactionStatus.Idle),
    ];
    this.#write(Buffer.concat(out));
    this.#activity.user = params.user;
    this.#activity.applicationName = this.engineSession.settings.get('application_name') ?? '';
    this.#host.backends.register(this.#activity, {
      cancel: () => this.cancel(),
      terminate: () => {
        // A connection that terminates itself holds the engine: its statement is answered with the FATAL (#runBatch).
        if (this.#lease) this.#terminating = true;
        else setImmediate(() => this.fatal(TERMINATED));
      },
    });
    this.#transition(SessionPhase.Idle, `startup as ${params.user}`);
    void this.#drain();
  }

  #fail(error: unknown): void {
    this.#host.log(`[${this.#host.engine.label} #${this.processId}] internal error: ${String(error)}`);
    this.fatal({ code: SqlState.InternalError, message: 'internal error in the pgdev gateway' });
  }

  /** Processes queued messages one at a time, in order; only one drain runs per session. */
  async #drain(): Promise<void> {
    if (this.#draining || this.#phase === SessionPhase.Startup) return;
    this.#draining = true;
    try {
      for (let next = this.#inbox.shift(); next; next = this.#inbox.shift()) {
        if (this.#phase === SessionPhase.Closed) return;
        this.#clearIdleTimer();
        await this.#handle(next);
        if (this.#inbox.length < 100 && this.#socket.isPaused()) this.#socket.resume();
      }
    } catch (error) {
      if (error instanceof FramingError) this.fatal({ code: SqlState.ProtocolViolation, message: `invalid message: ${error.message}` });
      else this.#fail(error);
    } finally {
      this.#draining = false;
    }
  }

  async #handle(msg: Buffer): Promise<void> {
    const type = msg[0]!;
    if (this.#phase === SessionPhase.Copy) return this.#copyMessage(type, msg);
    switch (type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        return this.#simple(msg);
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Close: {
        if (this.#batchError) return;
        const forEngine = this.#databaseStatements.take(msg, this.#status() !== TransactionStatus.Idle);
        if (forEngine) this.#batch.push(this.#rewrite(forEngine));
        return;
      }
      case Frontend.Flush:
        return this.#runBatch(false);
      case Frontend.Sync:
        this.#batch.push(msg);
        return this.#runBatch(true);
      case Frontend.CopyData:
      case Frontend.CopyDone:
      case Frontend.CopyFail:
        // Postgres ignores these outside COPY (a client may still be sending them after a COPY failed).
        return;
      case Frontend.Terminate:
        this.#socket.end();
        return this.close('client terminated');
      default:
        this.fatal({ code: SqlState.ProtocolViolation, message: `invalid frontend message type ${type}` });
    }
  }

  /** Waits for the engine unless this session already owns it; a cancel request aborts the wait. */
  async #acquire(): Promise<Lease> {
    if (this.#lease) return this.#lease;
    this.#lease = this.#host.tryAcquire(this.engineSession);
    if (this.#lease) return this.#lease;
    this.#waiting = new AbortController();
    this.#activity.wait = { type: 'Lock', event: 'database', since: new Date() };
    const longWait = setTimeout(() => this.#reportLongWait(), LONG_WAIT_MS).unref();
    try {
      this.#lease = await this.#host.acquire(this.engineSession, this.#waiting.signal);
    } finally {
      clearTimeout(longWait);
      this.#waiting = undefined;
      this.#activity.wait = null;
    }
    return this.#lease;
  }

  /** The question every user of a single-session engine asks: who is holding it up? */
  #reportLongWait(): void {
    const holderId = this.#host.engine.ownerId;
    const holder = holderId === undefined ? undefined : this.#host.backends.activity(holderId);
    const by = holder
      ? `connection ${holder.processId}${holder.applicationName ? ` (${holder.applicationName})` : ''}, ${holder.state}, whose last statement was: ${statementSummary(holder.query, 120)}`
      : 'pgdev itself (a dump, load, restore or HTTP request)';
    this.#host.log(`pgdev: connection ${this.processId} has waited ${LONG_WAIT_MS / 1000} s for the ${this.#host.engine.label} database, held by ${by}`);
  }

  /** Sends a NOTIFY that another session (or the HTTP endpoint, pid 0) caused. */
  deliverNotification(channel: string, payload: string, fromProcessId: number): void {
    if (this.#phase !== SessionPhase.Closed) this.#write(notification(fromProcessId, channel, payload));
  }

  /** The engine, or (if a cancel request dropped the wait) the ErrorResponse to answer with. */
  async #acquireUnlessCancelled(): Promise<Lease | { cancelled: Buffer }> {
    try {
      return await this.#acquire();
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      return { cancelled: backendError({ severity: 'ERROR', code: SqlState.QueryCanceled, message: error.message }) };
    }
  }

  /** Answers a statement the engine never saw: an ErrorResponse, then ReadyForQuery with the unchanged status. */
  #answerError(error: Buffer): void {
    this.#write(Buffer.concat([error, readyForQuery(this.#status())]));
  }

  /** Handles a CancelRequest aimed at this session: a query still waiting for the engine is dropped. */
  cancel(): void {
    this.#debug('cancel request');
    this.#waiting?.abort(new CancelledError('canceling statement due to user request'));
  }

  async #simple(msg: Buffer): Promise<void> {
    const text = msg[0] === Frontend.Query ? decode(msg.subarray(5, msg.length - 1)) : '';
    this.#batchText = text;
    const answered = this.#aborted.handedBack ? this.#aborted.answer(text) : undefined;
    if (answered) {
      this.#write(answered.output);
      if (answered.ended) this.#transition(SessionPhase.Idle, 'failed transaction ended');
      return;
    }
    const database = simpleDatabaseCommand(msg, this.#status() !== TransactionStatus.Idle);
    if (database && 'command' in database) {
      this.#markActive(this.#phase === SessionPhase.Idle);
      const answer = await this.#databaseStatements.runCommand(database.command);
      this.#write(Buffer.concat([answer, readyForQuery(this.#status())]));
      this.#settle(this.#status());
      return;
    }
    if (database) msg = database.replacement;
    if (COPY_FROM_STDIN.test(text)) return this.#startCopy(text);
    this.#observe(text);
    this.#batch.push(msg);
    this.#batchHasQuery = true;
    return this.#runBatch(true);
  }

  /** Notes what a statement may change, so the session's state is read back once it completes; true if anything. */
  #observe(sql: string): boolean {
    let noticed = this.#aborted.observe(sql);
    if (mayChangeSettings(sql)) noticed = this.#settingsDirty = true;
    if (mayCreateTempRelations(sql)) noticed = this.#tempDirty = true;
    if (mayChangeRoles(sql)) noticed = this.#rolesDirty = true;
    for (const [, un, rawName] of sql.matchAll(LISTEN_COMMAND)) {
      noticed = true;
      const channel = rawName!.startsWith('"') ? rawName!.slice(1, -1).replaceAll('""', '"') : rawName!.toLowerCase();
      if (!un) this.listening.add(channel);
      else if (channel === '*') this.listening.clear();
      else this.listening.delete(channel);
      if (un) this.#listenDirty = true;
    }
    return noticed;
  }

  /** Gives named statements and portals a per-connection prefix so that two connections never share a name. */
  #rewrite(msg: Buffer): Buffer {
    const type = msg[0]!;
    const body = msg.subarray(5);
    const at = (offset: number) => {
      const end = body.indexOf(0, offset);
      if (end < 0) throw new FramingError('unterminated string');
      return end;
    };
    let renamed = false;
    const rename = (name: Buffer) => {
      if (name.length === 0) return name;
      renamed = true;
      return Buffer.concat([Buffer.from(`_pgdev${this.processId}_`), name]);
    };
    let parts: Buffer[];
    if (type === Frontend.Parse) {
      const nameEnd = at(0);
      const name = body.subarray(0, nameEnd);
      const sql = decode(body.subarray(nameEnd + 1, at(nameEnd + 1)));
      if (COPY_FROM_STDIN.test(sql)) {
        this.#batchError = backendError({
          severity: 'ERROR', code: SqlState.FeatureNotSupported,
          message: 'COPY FROM STDIN is supported only in the simple query protocol',
        });
        this.#batch = [];
        return msg;
      }
      this.#prepared.set(name.toString(), { sql, observed: this.#observe(sql) });
      this.#batchText = sql;
      if (name.length) {
        const parse = message(type, rename(name), body.subarray(nameEnd));
        this.#statements.set(rename(name).toString(), parse);
        return parse;
      }
      this.#unnamedParse = msg;
      this.#batchParsesUnnamed = true;
      parts = [name, body.subarray(nameEnd)];
    } else if (type === Frontend.Bind) {
      const portalEnd = at(0);
      const statementEnd = at(portalEnd + 1);
      if (statementEnd === portalEnd + 1 && !this.#batchParsesUnnamed) this.#batchUsesEarlierUnnamed = true;
      const prepared = this.#prepared.get(body.toString('utf8', portalEnd + 1, statementEnd));
      if (prepared) {
        this.#batchText = prepared.sql;
        if (prepared.observed) this.#observe(prepared.sql);
      }
      parts = [rename(body.subarray(0, portalEnd)), Buffer.from([0]), rename(body.subarray(portalEnd + 1, statementEnd)), body.subarray(statementEnd)];
    } else if (type === Frontend.Execute) {
      const portalEnd = at(0);
      parts = [rename(body.subarray(0, portalEnd)), body.subarray(portalEnd)];
    } else {
      // Describe and Close: a kind byte ('S' or 'P') then the name.
      const nameEnd = at(1);
      if (type === Frontend.Describe && body[0] === 0x53 && nameEnd === 1 && !this.#batchParsesUnnamed) this.#batchUsesEarlierUnnamed = true;
      parts = [body.subarray(0, 1), rename(body.subarray(1, nameEnd)), body.subarray(nameEnd)];
      if (type === Frontend.Close && body[0] === 0x53) this.#statements.delete(parts[1]!.toString());
    }
    // Unnamed statements and portals (what most drivers use) pass through without a copy.
    return renamed ? message(type, ...parts) : msg;
  }

  /** Runs the buffered messages as one batch; `complete` when it ends with Sync or a simple query. */
  async #runBatch(complete: boolean): Promise<void> {
    if (this.#batchError) {
      if (!complete) return;
      const error = this.#batchError;
      this.#batchError = undefined;
      this.#clearBatch();
      this.#answerError(error);
      return;
    }
    if (this.#databaseStatements.pending) return this.#answerDatabaseStatements(complete);
    const messages = this.#batch;
    const parsesUnnamed = this.#batchParsesUnnamed;
    const usesEarlierUnnamed = this.#batchUsesEarlierUnnamed;
    const hasQuery = this.#batchHasQuery;
    this.#clearBatch();
    if (messages.length === 0) return;
    const wasIdle = this.#phase === SessionPhase.Idle;
    this.#markActive(wasIdle);
    let lease = await this.#acquireUnlessCancelled();
    if ('cancelled' in lease) {
      if (complete) this.#answerError(lease.cancelled);
      else {
        this.#write(lease.cancelled);
        this.#batchError = Buffer.alloc(0);
      }
      return;
    }
    if (this.#aborted.handedBack) this.#aborted.reenter(lease);
    // The unnamed statement outlives a Sync on a real server; here another client may have replaced it since, so
    // this connection's own Parse goes first again, and its ParseComplete is taken out of the answer.
    const engine = this.#host.engine;
    const replay = usesEarlierUnnamed && this.#unnamedParse !== undefined && engine.unnamedStatementOwner !== this.engineSession;
    if (replay) messages.unshift(this.#unnamedParse!);
    const batch = messages.length === 1 ? messages[0]! : Buffer.concat(messages);
    this.#transition(SessionPhase.InBatch, 'running');
    let output: Uint8Array;
    try {
      const canRetry = complete && (wasIdle || this.#replayable !== null) && !(hasQuery && ENDS_TRANSACTION.test(this.#batchText));
      ({ lease, output } = await this.#execWaitingForLocks(lease, batch, canRetry));
      if (this.#rolesDirty && lastReadyStatus(output) === TransactionStatus.Idle) {
        this.#rolesDirty = false;
        output = await publishRoleChanges(this.#host, lease, output);
      }
      if (parsesUnnamed || replay) engine.unnamedStatementOwner = this.engineSession;
      else if (hasQuery) engine.unnamedStatementOwner = undefined;
      if (replay && output[0] === Backend.ParseComplete) output = output.subarray(5);
    } catch (error) {
      if (this.#phase === SessionPhase.Closed) return; // it went away while waiting for a lock: nothing to answer
      this.#host.log(`[${this.#host.engine.label} #${this.processId}] engine error: ${String(error)}`);
      output = Buffer.concat([
        backendError({ severity: 'ERROR', code: SqlState.InternalError, message: `database engine error: ${String(error)}` }),
        ...(complete ? [readyForQuery(TransactionStatus.Idle)] : []),
      ]);
    }
    if (this.#terminating) return this.fatal(TERMINATED);
    this.#deliver(lease, output);
    if (complete) this.#noteForReplay(batch, hasQuery, wasIdle);
  }

  #clearBatch(): void {
    this.#batch = [];
    this.#batchParsesUnnamed = this.#batchUsesEarlierUnnamed = this.#batchHasQuery = false;
  }

  /** A batch holding database commands runs without the engine; mixed with other statements it is refused. */
  async #answerDatabaseStatements(complete: boolean): Promise<void> {
    const mixed = this.#batch.some((msg) => msg[0] !== Frontend.Sync);
    this.#clearBatch();
    this.#markActive(this.#phase === SessionPhase.Idle);
    let out = await this.#databaseStatements.answer(mixed);
    if (complete) out = Buffer.concat([out, readyForQuery(this.#status())]);
    this.#write(out);
    if (complete) this.#settle(this.#status());
  }

  #markActive(startsTransaction: boolean): void {
    const activity = this.#activity;
    activity.state = 'active';
    activity.query = this.#batchText;
    activity.queryStart = activity.stateChange = new Date();
    if (startsTransaction) activity.xactStart = activity.queryStart;
  }

  /**
   * Runs a batch. If a lock call in it must wait for an advisory lock another connection holds, the attempt is
   * undone (its transaction rolled back, its prepared statements closed), the engine released while this connection
   * waits (see backends.ts), and the batch run again, after replaying the transaction it was part of.
   */
  async #execWaitingForLocks(lease: Lease, batch: Buffer, canWait: boolean): Promise<{ lease: Lease; output: Uint8Array }> {
    const backends = this.#host.backends;
    let firstWait: number | undefined;
    for (;;) {
      backends.beginAttempt(this.processId, canWait);
      const output = lease.exec(batch);
      const wanted = backends.takeWait(this.processId);
      if (!wanted) return { lease, output };
      lease.exec(undoForRetry(batch, lastReadyStatus(output) !== TransactionStatus.Idle));
      lease.captureSettings(); // as the undo left them: a SET in the undone attempt is gone, and is made again
      this.#lease = undefined;
      lease.release();
      this.#waiting = new AbortController();
      firstWait ??= Date.now();
      try {
        await backends.wait(this.processId, wanted, { waitedMs: Date.now() - firstWait, signal: this.#waiting.signal });
      } finally {
        this.#waiting = undefined;
      }
      if (this.#phase === SessionPhase.Closed) throw new CancelledError('connection closed while waiting for a lock');
      lease = this.#lease = await this.#host.acquire(this.engineSession);
      if (this.#replayable?.length) lease.exec(Buffer.concat(this.#replayable));
    }
  }

  /** Keeps the batches of an open transaction while they can be replayed (see {@link #replayable}). */
  #noteForReplay(batch: Buffer, isSimpleQuery: boolean, startedIdle: boolean): void {
    const before = startedIdle ? [] : this.#replayable;
    if (this.#phase === SessionPhase.Idle) this.#replayable = [];
    else this.#replayable = before && isSimpleQuery && REPLAYABLE.test(this.#activity.query) ? [...before, batch] : null;
  }

  /** Writes the engine's answer to the client: notifications fanned out, session state read back, lease released at idle. */
  #deliver(lease: Lease, output: Uint8Array): void {
    let status: TransactionStatus | undefined;
    let notifications: Array<{ start: number; end: number }> | undefined;
    for (const { type, start, end } of eachMessage(output)) {
      if (type === Backend.ReadyForQuery) status = output[start + 5] as TransactionStatus;
      else if (type === Backend.NotificationResponse) (notifications ??= []).push({ start, end });
    }
    let out = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    if (notifications) out = this.#fanOut(out, notifications);
    if (status === undefined) {
      this.#write(out);
      return;
    }
    const extra = this.#afterStatement(lease, status);
    if (this.#aborted.mayHandBack(status)) this.#aborted.handBack(lease, () => this.#afterStatement(lease, TransactionStatus.Idle));
    extra.push(...this.#aborted.settle(status));
    if (extra.length) out = Buffer.concat([out.subarray(0, out.length - 6), ...extra, out.subarray(out.length - 6)]);
    this.#write(out);
    this.#settle(status);
  }

  /** Moves this session's NOTIFY deliveries to the sessions that listen, keeping its own only if it listens too. */
  #fanOut(out: Buffer, notifications: Array<{ start: number; end: number }>): Buffer {
    const kept: Buffer[] = [];
    let from = 0;
    for (const { start, end } of notifications) {
      kept.push(out.subarray(from, start));
      from = end;
      const channelEnd = out.indexOf(0, start + 9);
      const channel = decode(out.subarray(start + 9, channelEnd));
      const payload = decode(out.subarray(channelEnd + 1, out.indexOf(0, channelEnd + 1)));
      this.#host.notify(channel, payload, this);
      if (this.listening.has(channel)) kept.push(notification(this.processId, channel, payload));
    }
    kept.push(out.subarray(from));
    return Buffer.concat(kept);
  }

  /** Reads back what the statement may have changed; returns ParameterStatus messages to send before ReadyForQuery. */
  #afterStatement(lease: Lease, status: TransactionStatus): Buffer[] {
    const extra: Buffer[] = [];
    if (this.#settingsDirty || (this.#settingsAtEnd && status === TransactionStatus.Idle)) {
      for (const [name, value] of lease.captureSettings()) extra.push(parameterStatus(name, value));
      this.#activity.applicationName = this.engineSession.settings.get('application_name') ?? '';
      this.#settingsDirty = false;
      this.#settingsAtEnd = status !== TransactionStatus.Idle;
    }
    if (status !== TransactionStatus.Idle) return extra;
    if (this.#tempDirty) {
      this.#tempDirty = false;
      // Other sessions' temporary relations are hidden while this one runs: what is visible is its own.
      for (const [relation, kind] of tempRelations(lease)) this.engineSession.tempRelations.set(relation, kind);
      this.#host.engine.trackTempRelations(this.engineSession);
    }
    if (this.#listenDirty) {
      // UNLISTEN stops the shared engine session listening; channels other connections still want come back.
      this.#listenDirty = false;
      const wanted = [...this.#host.channelsOfOthers(this)];
      if (wanted.length) lease.run(wanted.map((channel) => `LISTEN ${quoteIdent(channel)}`).join('; '));
    }
    return extra;
  }

  #status(): TransactionStatus {
    if (this.#phase === SessionPhase.InTransaction) return TransactionStatus.InTransaction;
    if (this.#phase === SessionPhase.Failed) return TransactionStatus.Failed;
    return TransactionStatus.Idle;
  }

  /** Follows the status of a ReadyForQuery: idle (or a failed block handed back) releases the engine; else it is kept. */
  #settle(status: TransactionStatus): void {
    const activity = this.#activity;
    activity.stateChange = new Date();
    if (status === TransactionStatus.Idle || this.#aborted.handedBack) {
      const idle = status === TransactionStatus.Idle;
      activity.state = idle ? 'idle' : 'idle in transaction (aborted)';
      if (idle) activity.xactStart = null;
      // A failed transaction handed back was rolled back in the engine: its locks went with it, as on Postgres.
      this.#host.backends.endTransaction(this.processId);
      this.#transition(idle ? SessionPhase.Idle : SessionPhase.Failed, idle ? 'ready' : 'failed transaction handed back');
      const lease = this.#lease;
      this.#lease = undefined;
      lease?.release();
      return;
    }
    activity.state = status === TransactionStatus.Failed ? 'idle in transaction (aborted)' : 'idle in transaction';
    this.#transition(status === TransactionStatus.Failed ? SessionPhase.Failed : SessionPhase.InTransaction, 'ready');
    this.#armIdleTimer();
  }

  #armIdleTimer(): void {
    const timeout = this.#host.idleInTransactionTimeoutMs;
    if (!(timeout > 0)) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      // Only a session that holds others back is ended, as a lock timeout would.
      if (this.#host.engine.waiting === 0) return this.#armIdleTimer();
      this.fatal({ code: SqlState.IdleInTransactionTimeout, message: 'terminating connection due to idle-in-transaction timeout' });
    }, timeout);
    this.#idleTimer.unref();
  }

  #clearIdleTimer(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  async #startCopy(sql: string): Promise<void> {
    if (!SINGLE_COPY_FROM_STDIN.test(sql)) {
      this.#answerError(backendError({ severity: 'ERROR', code: SqlState.FeatureNotSupported, message: 'COPY FROM STDIN must be sent as a query of its own' }));
      return;
    }
    const lease = await this.#acquireUnlessCancelled();
    if ('cancelled' in lease) {
      this.#answerError(lease.cancelled);
      return;
    }
    this.#copy = { sql, chunks: [], size: 0 };
    this.#replayable = null;
    this.#transition(SessionPhase.Copy, 'COPY FROM STDIN');
    const binary = /\bbinary\b/i.test(sql);
    this.#write(message(Backend.CopyInResponse, [binary ? 1 : 0], int16(0)));
  }

  async #copyMessage(type: number, msg: Buffer): Promise<void> {
    const copy = this.#copy!;
    if (type === Frontend.CopyData) {
      copy.size += msg.length - 5;
      if (copy.size <= MAX_COPY_BYTES) copy.chunks.push(msg.subarray(5));
      return;
    }
    if (type === Frontend.Flush || type === Frontend.Sync) return;
    if (type !== Frontend.CopyDone && type !== Frontend.CopyFail) {
      return this.fatal({ code: SqlState.ProtocolViolation, message: `unexpected message type ${type} during COPY from stdin` });
    }
    this.#copy = undefined;
    const lease = this.#lease!;
    const wasInTransaction = this.#status() !== TransactionStatus.Idle;
    let result: Buffer;
    if (type === Frontend.CopyFail) {
      if (wasInTransaction) lease.exec(query("SELECT 'COPY from stdin failed'::int")); // leaves the transaction failed, as Postgres does
      const reason = decode(msg.subarray(5, msg.length - 1));
      result = backendError({ severity: 'ERROR', code: SqlState.QueryCanceled, message: `COPY from stdin failed: ${reason}` });
    } else if (copy.size > MAX_COPY_BYTES) {
      result = backendError({ severity: 'ERROR', code: SqlState.ProgramLimitExceeded, message: `COPY data larger than ${MAX_COPY_BYTES} bytes` });
    } else {
      try {
        const sql = copy.sql.replace(/\bstdin\b/i, "'/dev/blob'");
        const rows = await lease.copyFrom(sql, Buffer.concat(copy.chunks));
        result = message(Backend.CommandComplete, `COPY ${rows}`);
      } catch (error) {
        const fields = error instanceof EngineError ? error.fields : { code: SqlState.InternalError, message: String(error) };
        result = backendError({ ...fields, severity: 'ERROR' });
      }
    }
    this.#transition(SessionPhase.InBatch, 'COPY done');
    this.#deliver(lease, Buffer.concat([result, readyForQuery(lease.transactionStatus())]));
  }

  /**
   * Ends the session: rolls back its transaction, drops its prepared statements, temporary tables and LISTENs,
   * and releases the engine. Idempotent.
   */
  close(reason: string): Promise<void> {
    this.#closing ??= this.#teardown(reason);
    return this.#closing;
  }

  async #teardown(reason: string): Promise<void> {
    const wasStarted = this.#phase !== SessionPhase.Startup;
    this.#transition(SessionPhase.Closed, reason);
    this.#clearIdleTimer();
    this.#waiting?.abort(new CancelledError('connection closed'));
    this.#host.backends.unregister(this.processId);
    this.#inbox = [];
    if (!this.#socket.destroyed) this.#socket.destroySoon();
    const owned = this.#lease;
    const needsEngine = owned || this.#statements.size || this.engineSession.tempRelations.size || this.listening.size;
    if (wasStarted && needsEngine && !this.#host.engine.closed) {
      let lease: Lease | undefined;
      try {
        lease = owned ?? (await this.#host.engine.acquire(this.engineSession));
        this.#cleanUp(lease, Boolean(owned));
      } catch (error) {
        this.#debug(`clean-up skipped: ${String(error)}`);
      } finally {
        this.#lease = undefined;
        lease?.release();
      }
    }
    this.#host.onClosed(this);
  }

  #cleanUp(lease: Lease, ownedEngine: boolean): void {
    if (ownedEngine) {
      // ROLLBACK aborts a transaction (explicit or implicit); Sync ends a failed extended batch first if there was one.
      lease.exec(Buffer.concat([query('ROLLBACK'), sync(), query('ROLLBACK')]));
    }
    if (this.#statements.size) {
      const closes = [...this.#statements.keys()].map((name) => message(Frontend.Close, [0x53], cstring(name)));
      lease.exec(Buffer.concat([...closes, sync()]));
    }
    dropRelations(lease, this.engineSession.tempRelations);
    this.engineSession.tempRelations.clear();
    this.#host.engine.trackTempRelations(this.engineSession);
    const unlistens = [...this.listening]
      .filter((channel) => !this.#host.listenedByOthers(channel, this))
      .map((channel) => `UNLISTEN ${quoteIdent(channel)}`);
    if (unlistens.length) lease.exec(query(unlistens.join('; ')));
    this.listening.clear();
  }
}

function notification(processId: number, channel: string, payload: string): Buffer {
  return message(Backend.NotificationResponse, int32(processId), channel, payload);
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
