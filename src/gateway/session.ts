/**
 * @module
 * One client connection, made to behave as its own Postgres session on top of the single-session engine.
 *
 * The session is a state machine on its {@link SessionPhase}, dispatched in one `switch` (see {@link Session.#handle}).
 * Its transaction status is the status byte of the last ReadyForQuery it sent (the engine's, or one a failed
 * transaction handed back answers with), never derived from the phase. It owns the engine (holds a {@link Lease})
 * from its first statement until the engine is no longer inside its work (a transaction, a batch or pipeline, a
 * COPY): the lease is taken in one place (`#acquire`) and given back in one `finally` (`#withEngine`).
 *
 * The rest lives beside it: the start of a connection (session-startup.ts), statement and portal names
 * (statement-names.ts), the extended-protocol batch and pipeline (extended-batch.ts), the advisory-lock wait and
 * replay (lock-wait.ts), COPY FROM STDIN (copy-in.ts), what statements leave in the engine session
 * (session-tracking.ts), NOTIFY fan-out (notify-fan-out.ts) and the pg_stat_activity line (session-activity.ts).
 * On disconnect its transaction is rolled back and its statements, temporary tables and LISTENs are dropped.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type net from 'node:net';
import type { ClientParameters } from 'pg-gateway';
import { Engine, EngineSession, type Lease } from '../engine/engine.js';
import { Backend, Frontend, TransactionStatus, decode, eachMessage, lastReadyStatus, query, readyForQuery, sync } from '../engine/protocol.js';
import { AbortedTransaction } from './aborted-transaction.js';
import { cancelSecretKey } from './cancel-key.js';
import { backendError, SqlError, SqlState, USER_CANCEL_MESSAGE, type BackendErrorFields } from './backend-error.js';
import type { BackendActivity, Backends } from './backends.js';
import { CopyIn, copyInRefusal, isCopyFromStdin } from './copy-in.js';
import { commandTag, type DatabaseCommand } from './database-commands.js';
import { CommandContext, DatabaseStatements, simpleDatabaseCommand } from './database-statements.js';
import { ExtendedBatch } from './extended-batch.js';
import { EarlyTerminate, FrameReader, FramingError } from './framing.js';
import { LockReplay, attempt, type RetryableBatch } from './lock-wait.js';
import { fanOut, notification, type FanOutTarget } from './notify-fan-out.js';
import { createActivity, LONG_WAIT_MS, longWaitReport, markActive, markReady } from './session-activity.js';
import { SessionStartup } from './session-startup.js';
import { SessionTracking } from './session-tracking.js';
import { mayChangeRoles, publishRoleChanges } from './roles.js';
import { StatementNames } from './statement-names.js';

export const SessionPhase = {
  Startup: 'Startup',
  Idle: 'Idle',
  /** A batch runs, or a pipeline is open (flushed, not yet synced). */
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
  /** Where each session's BackendKeyData secret is derived from (`cancel-key.ts`); random keys without it. */
  readonly cancelSecret?: string;
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

const TERMINATED = { code: SqlState.AdminShutdown, message: 'terminating connection due to administrator command' } as const;
/** Back-pressure: past this many unread messages the socket is paused, and resumed below the second figure. */
const PAUSE_ABOVE = 1000;
const RESUME_BELOW = 100;

/** How the engine is waited for: a statement's wait can be cancelled; after a lock wait, or to clean up, it cannot. */
const Acquire = { Statement: 'statement', AfterLockWait: 'after lock wait', CleanUp: 'clean up' } as const;
type Acquire = (typeof Acquire)[keyof typeof Acquire];

class CancelledError extends Error {}

export class Session {
  readonly processId: number;
  readonly secretKey: number;
  readonly engineSession = new EngineSession();
  #phase: SessionPhase = SessionPhase.Startup;
  /** The status of the last ReadyForQuery sent: written only from a ReadyForQuery byte (see {@link #ready}). */
  #transactionStatus: TransactionStatus = TransactionStatus.Idle;
  #host: SessionHost;
  readonly #socket: net.Socket;
  #reader = new FrameReader();
  #lease: Lease | undefined;
  #inbox: Buffer[] = [];
  #draining = false;
  /** Aborts the wait in progress, for the engine or for an advisory lock (a cancel request, the connection's end). */
  #waiting: AbortController | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** Set when the connection's own statement called pg_terminate_backend on it. */
  #terminating = false;
  #copy: CopyIn | undefined;
  readonly #activity: BackendActivity;
  readonly #startup: SessionStartup;
  readonly #tracking: SessionTracking;
  /** A statement may have changed roles: they are shared with the other databases once its transaction ends. */
  #rolesDirty = false;
  readonly #names: StatementNames;
  readonly #fanOut: FanOutTarget;
  readonly #batch = new ExtendedBatch();
  readonly #locks = new LockReplay();
  readonly #aborted = new AbortedTransaction();
  readonly #databaseStatements = new DatabaseStatements(async (command) => {
    if (!this.#host.databaseCommand) throw new SqlError(SqlState.FeatureNotSupported, `${commandTag(command)} is not supported here`);
    return this.#host.databaseCommand(command, this);
  });

  /** `head`: bytes the server already read from the socket (the startup message, when it routed the connection). */
  constructor(host: SessionHost, socket: net.Socket, head?: Buffer) {
    this.#host = host;
    this.#socket = socket;
    this.processId = this.engineSession.id;
    this.secretKey = host.cancelSecret === undefined ? (Math.random() * 0x7fffffff) | 0 : cancelSecretKey(host.cancelSecret, this.processId);
    this.#activity = createActivity(this.processId, socket);
    this.#tracking = new SessionTracking({
      engineSession: this.engineSession,
      trackTempRelations: (session) => this.#host.engine.trackTempRelations(session),
      channelsOfOthers: () => this.#host.channelsOfOthers(this),
      listenedByOthers: (channel) => this.#host.listenedByOthers(channel, this),
    });
    this.#names = new StatementNames(this.processId, (sql) => this.#observe(sql));
    this.#fanOut = {
      processId: this.processId,
      listening: this.#tracking.listening,
      notify: (channel, payload) => this.#host.notify(channel, payload, this),
    };
    this.#startup = this.#createStartup();
    socket.on('data', (chunk) => this.#receive(chunk));
    socket.on('close', () => void this.close('client disconnected'));
    socket.on('error', (error) => this.#debug(`socket error: ${error.message}`));
    if (head?.length) this.#receive(head);
  }

  get phase(): SessionPhase {
    return this.#phase;
  }

  /** Channels this connection LISTENs on. */
  get listening(): ReadonlySet<string> {
    return this.#tracking.listening;
  }

  /** The Parse messages of this connection's named prepared statements, as sent to the engine. */
  namedParses(): Buffer[] {
    return this.#names.namedParses();
  }

  #createStartup(): SessionStartup {
    const session = this;
    return new SessionStartup({
      get engine() {
        return session.#host.engine;
      },
      engineSession: this.engineSession,
      processId: this.processId,
      secretKey: this.secretKey,
      get closed() {
        return session.#phase === SessionPhase.Closed;
      },
      write: (data) => this.#write(data),
      end: (reason) => {
        this.#socket.end();
        void this.close(reason);
      },
      fatal: (fields) => this.fatal(fields),
      cancel: (processId, secretKey) => this.#host.cancel(processId, secretKey),
      onStarted: (params) => this.#started(params),
      onError: (error) => this.#fail(error),
    });
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
    if (this.#phase === SessionPhase.Closed) return;
    this.#debug(`fatal ${fields.code}: ${fields.message}`);
    this.#write(backendError({ severity: 'FATAL', ...fields }));
    this.#socket.end();
    void this.close(fields.message);
  }

  #fail(error: unknown): void {
    this.#host.log(`[${this.#host.engine.label} #${this.processId}] internal error: ${String(error)}`);
    this.fatal({ code: SqlState.InternalError, message: 'internal error in the pgdev gateway' });
  }

  #receive(chunk: Buffer): void {
    if (this.#phase === SessionPhase.Closed) return;
    this.#reader.push(chunk);
    try {
      for (let next = this.#reader.next(); next; next = this.#reader.next()) {
        if ((this.#phase as SessionPhase) === SessionPhase.Closed) return; // a startup message was refused
        if (this.#reader.startup) this.#reader.startup = !this.#startup.packet(next);
        else if (this.#phase === SessionPhase.Startup && next[0] === Frontend.PasswordMessage) this.#startup.password(next);
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
    if (this.#inbox.length > PAUSE_ABOVE) this.#socket.pause();
    void this.#drain();
  }

  #started(params: ClientParameters): void {
    this.#activity.user = params.user;
    this.#activity.applicationName = this.engineSession.settings.get('application_name') ?? '';
    this.#host.backends.register(this.#activity, {
      cancel: () => this.cancel(false),
      terminate: () => {
        // A connection that terminates itself holds the engine: its statement is answered with the FATAL (#runBatch).
        if (this.#lease) this.#terminating = true;
        else setImmediate(() => this.fatal(TERMINATED));
      },
    });
    this.#transition(SessionPhase.Idle, `startup as ${params.user}`);
    void this.#drain();
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
        if (this.#inbox.length < RESUME_BELOW && this.#socket.isPaused()) this.#socket.resume();
      }
    } catch (error) {
      if (error instanceof FramingError) this.fatal({ code: SqlState.ProtocolViolation, message: `invalid message: ${error.message}` });
      else this.#fail(error);
    } finally {
      this.#draining = false;
      this.#host.engine.cancelNext(this.engineSession, false);
    }
  }

  /** The state machine: what a message means depends on the phase. */
  async #handle(msg: Buffer): Promise<void> {
    const phase = this.#phase;
    switch (phase) {
      case SessionPhase.Startup:
      case SessionPhase.Closed:
        return; // nothing is drained before the startup ends, and nothing is answered once closed
      case SessionPhase.Copy:
        return this.#copyMessage(msg);
      case SessionPhase.Idle:
      case SessionPhase.InBatch:
      case SessionPhase.InTransaction:
      case SessionPhase.Failed:
        return this.#message(msg);
      default: {
        const unknown: never = phase;
        throw new Error(`unknown session phase ${String(unknown)}`);
      }
    }
  }

  /** Whether the engine is inside this connection's work, so that the lease must be kept. */
  #engineBusy(): boolean {
    const phase = this.#phase;
    switch (phase) {
      case SessionPhase.Startup:
      case SessionPhase.Idle:
      case SessionPhase.Closed:
        return false;
      case SessionPhase.Failed:
        return !this.#aborted.handedBack;
      case SessionPhase.InBatch:
      case SessionPhase.InTransaction:
      case SessionPhase.Copy:
        return true;
      default: {
        const unknown: never = phase;
        throw new Error(`unknown session phase ${String(unknown)}`);
      }
    }
  }

  async #message(msg: Buffer): Promise<void> {
    const type = msg[0]!;
    switch (type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        return this.#simple(msg);
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Close:
        return this.#extended(msg);
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

  /**
   * The one place the engine is taken (unless this session holds it already) and the one place it is given back:
   * once `work` is done, unless the engine is still inside this connection's work, or when `giveBack` says so.
   */
  async #withEngine<T>(work: (lease: Lease) => T | Promise<T>, options: { acquire?: Acquire; giveBack?: (result: T) => boolean } = {}): Promise<T> {
    const mode = options.acquire ?? Acquire.Statement;
    const lease = (this.#lease ??= await this.#acquire(mode));
    let giveBack = false;
    try {
      if (this.#phase === SessionPhase.Closed && mode !== Acquire.CleanUp) throw new CancelledError('connection closed');
      const result = await work(lease);
      giveBack = options.giveBack?.(result) ?? false;
      return result;
    } finally {
      if (this.#lease === lease && (giveBack || !this.#engineBusy())) {
        this.#lease = undefined;
        lease.release();
      }
    }
  }

  async #acquire(mode: Acquire): Promise<Lease> {
    const host = this.#host;
    if (mode === Acquire.CleanUp) return host.engine.acquire(this.engineSession);
    if (mode === Acquire.AfterLockWait) return host.acquire(this.engineSession);
    const lease = host.tryAcquire(this.engineSession);
    if (lease) return lease;
    this.#waiting = new AbortController();
    this.#activity.wait = { type: 'Lock', event: 'database', since: new Date() };
    const longWait = setTimeout(() => host.log(longWaitReport(host.backends, this.processId, host.engine.ownerId, host.engine.label)), LONG_WAIT_MS).unref();
    try {
      return await host.acquire(this.engineSession, this.#waiting.signal);
    } finally {
      clearTimeout(longWait);
      this.#waiting = undefined;
      this.#activity.wait = null;
    }
  }

  /** Sends a NOTIFY that another session (or the HTTP endpoint, pid 0) caused. */
  deliverNotification(channel: string, payload: string, fromProcessId: number): void {
    if (this.#phase !== SessionPhase.Closed) this.#write(notification(fromProcessId, channel, payload));
  }

  /**
   * Handles a CancelRequest aimed at this session: a query still waiting for the engine is dropped. `kept`: the
   * cancel reached the server's main thread first, which kept it for this session's next statement (`interrupt()`);
   * that statement may have taken it already, so it is not kept again here.
   */
  cancel(kept: boolean): void {
    this.#debug('cancel request');
    // A statement already received (pipelined, or being handled) and not started: Postgres would be running it by
    // now, so it is the one cancelled. Idle, with nothing received, a cancel cancels nothing, as on Postgres; nor
    // does it once it has ended a wait or a COPY.
    const startingNext = !this.#waiting && this.#phase !== SessionPhase.Copy && (this.#draining || this.#inbox.some((message) => message[0] === Frontend.Query || message[0] === Frontend.Execute));
    if (!startingNext || !kept) this.#host.engine.cancelNext(this.engineSession, startingNext);
    if (this.#waiting) return this.#waiting.abort(new CancelledError(USER_CANCEL_MESSAGE));
    if (this.#phase === SessionPhase.Copy && this.#copy) {
      // Receiving COPY data: it ends now, as on Postgres (the rest the client sends of it is dropped).
      this.#inbox.unshift(this.#copy.cancel());
      void this.#drain();
    }
  }

  /** Notes what a statement may change (savepoints, settings, temporary objects, LISTEN); true if anything. */
  #observe(sql: string): boolean {
    const savepoints = this.#aborted.observe(sql);
    const tracked = this.#tracking.observe(sql);
    const roles = mayChangeRoles(sql);
    if (roles) this.#rolesDirty = true;
    return savepoints || tracked || roles;
  }

  /** How a database command is answered: the transaction status and the pipeline decide, never the phase. */
  #commandContext(): CommandContext {
    if (this.#transactionStatus !== TransactionStatus.Idle || this.#batch.inBlock) return CommandContext.TransactionBlock;
    if (this.#batch.followsStatements) return CommandContext.Pipeline;
    return CommandContext.Alone;
  }

  #markActive(): void {
    markActive(this.#activity, this.#batch.text, this.#phase === SessionPhase.Idle);
  }

  async #simple(msg: Buffer): Promise<void> {
    const text = msg[0] === Frontend.Query ? decode(msg.subarray(5, msg.length - 1)) : '';
    this.#batch.text = text;
    const answered = this.#aborted.handedBack ? this.#aborted.answer(text) : undefined;
    if (answered) {
      this.#write(answered.output);
      return this.#ready(lastReadyStatus(answered.output)!);
    }
    const database = simpleDatabaseCommand(msg, this.#commandContext());
    if (database && 'command' in database) {
      this.#markActive();
      return this.#answerWithoutEngine(await this.#databaseStatements.runCommand(database.command));
    }
    if (database) msg = database.replacement;
    if (isCopyFromStdin(text)) return this.#startCopy(text);
    this.#observe(text);
    this.#batch.pushQuery(msg, text);
    return this.#runBatch(true);
  }

  #extended(msg: Buffer): void {
    if (this.#batch.skipping) return;
    const forEngine = this.#databaseStatements.take(msg, this.#commandContext());
    if (!forEngine) return;
    const renamed = this.#names.rename(forEngine);
    this.#batch.push(renamed.message, renamed.sql);
  }

  /**
   * Answers what the gateway ran itself, then ReadyForQuery with the unchanged status. With a pipeline open the
   * engine is inside this connection's transaction: it answers a Sync, and its status is the one reported.
   */
  async #answerWithoutEngine(answer: Buffer): Promise<void> {
    if (this.#lease && this.#batch.open) {
      return this.#withEngine((lease) => this.#deliver(lease, Buffer.concat([answer, lease.exec(sync())])));
    }
    const status = this.#transactionStatus;
    this.#write(Buffer.concat([answer, readyForQuery(status)]));
    this.#ready(status);
  }

  /** A wait for the engine that a cancel request ended: 57014 now, and the rest of the batch skipped until Sync. */
  async #answerCancelled(error: CancelledError, complete: boolean): Promise<void> {
    const cancelled = backendError({ severity: 'ERROR', code: SqlState.QueryCanceled, message: error.message });
    if (complete) return this.#answerWithoutEngine(cancelled);
    this.#write(cancelled);
    this.#batch.skipUntilSync(Buffer.alloc(0));
  }

  /** Runs the collected messages as one batch; `complete` when it ends with Sync or a simple query. */
  async #runBatch(complete: boolean): Promise<void> {
    if (this.#batch.skipping) {
      if (!complete) return;
      const error = this.#batch.takeSkipped()!;
      this.#batch.take();
      this.#names.takeBatchUse();
      return this.#answerWithoutEngine(error);
    }
    if (this.#databaseStatements.pending) return this.#answerDatabaseStatements(complete);
    const { messages, query: simpleQuery } = this.#batch.take();
    const unnamed = this.#names.takeBatchUse();
    if (messages.length === 0) return;
    const retry: RetryableBatch = { complete, pipelined: this.#batch.ran, startedIdle: this.#phase === SessionPhase.Idle, query: simpleQuery };
    this.#markActive();
    const engine = this.#host.engine;
    let firstWait: number | undefined;
    try {
      for (;;) {
        const wanted = await this.#withEngine(
          async (lease) => {
            if (firstWait !== undefined) this.#locks.replay(lease);
            else if (this.#aborted.handedBack) this.#aborted.reenter(lease);
            const { batch, replayed } = this.#names.withUnnamed(messages, unnamed, engine, this.engineSession);
            this.#transition(SessionPhase.InBatch, 'running');
            let output: Uint8Array;
            try {
              const result = attempt(this.#host.backends, this.processId, lease, batch, this.#locks.canRetry(retry));
              if ('wanted' in result) return result.wanted;
              output = this.#names.ran({ ...unnamed, replayed, hasQuery: simpleQuery !== undefined }, result.output, engine, this.engineSession);
              if (this.#rolesDirty && lastReadyStatus(output) === TransactionStatus.Idle) {
                this.#rolesDirty = false;
                output = await publishRoleChanges(this.#host, lease, output);
              }
            } catch (error) {
              this.#host.log(`[${engine.label} #${this.processId}] engine error: ${String(error)}`);
              output = Buffer.concat([
                backendError({ severity: 'ERROR', code: SqlState.InternalError, message: `database engine error: ${String(error)}` }),
                ...(complete ? [readyForQuery(TransactionStatus.Idle)] : []),
              ]);
            }
            // A terminate (pg_terminate_backend, DROP DATABASE ... WITH (FORCE)) or transaction_timeout ended it.
            const termination = lease.termination;
            if (this.#terminating || termination) {
              this.fatal(termination ?? TERMINATED);
              return undefined;
            }
            if (!complete) this.#batch.flushed(messages);
            this.#deliver(lease, output);
            if (complete) this.#locks.ran(retry, batch, this.#transactionStatus === TransactionStatus.Idle);
            return undefined;
          },
          // The attempt was undone: the engine is free while this connection waits for the lock.
          { acquire: firstWait === undefined ? Acquire.Statement : Acquire.AfterLockWait, giveBack: (wanted) => wanted !== undefined },
        );
        if (!wanted) return;
        firstWait ??= Date.now();
        this.#waiting = new AbortController();
        try {
          await this.#host.backends.wait(this.processId, wanted, { waitedMs: Date.now() - firstWait, signal: this.#waiting.signal });
        } finally {
          this.#waiting = undefined;
        }
      }
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      if (this.#phase === SessionPhase.Closed) return; // it went away while waiting: nothing to answer
      return this.#answerCancelled(error, complete);
    }
  }

  /** A batch holding database commands runs without the engine; mixed with other statements it is refused. */
  async #answerDatabaseStatements(complete: boolean): Promise<void> {
    const mixed = this.#batch.take().messages.some((msg) => msg[0] !== Frontend.Sync);
    this.#names.takeBatchUse();
    this.#markActive();
    const out = await this.#databaseStatements.answer(mixed);
    if (complete) return this.#answerWithoutEngine(out);
    this.#write(out);
  }

  /** Writes the engine's answer to the client: notifications fanned out, session state read back, status followed. */
  #deliver(lease: Lease, output: Uint8Array): void {
    let status: TransactionStatus | undefined;
    let notifications: Array<{ start: number; end: number }> | undefined;
    for (const { type, start, end } of eachMessage(output)) {
      if (type === Backend.ReadyForQuery) status = output[start + 5] as TransactionStatus;
      else if (type === Backend.NotificationResponse) (notifications ??= []).push({ start, end });
      else if (type === Backend.CommandComplete) this.#batch.commandTag(decode(output.subarray(start + 5, end - 1)));
    }
    let out = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    if (notifications) out = fanOut(out, notifications, this.#fanOut);
    if (this.#host.engine.crash) {
      // The engine answered a PANIC and will not answer again: as a Postgres backend exits after one, the client
      // gets the PANIC and its connection closes.
      this.#write(out);
      this.#socket.end();
      void this.close('the database engine crashed');
      return;
    }
    if (status === undefined) {
      this.#write(out);
      return;
    }
    const extra = this.#afterStatement(lease, status);
    if (this.#aborted.mayHandBack(status)) this.#aborted.handBack(lease, () => this.#afterStatement(lease, TransactionStatus.Idle));
    extra.push(...this.#aborted.settle(status));
    if (extra.length) out = Buffer.concat([out.subarray(0, out.length - 6), ...extra, out.subarray(out.length - 6)]);
    this.#write(out);
    this.#ready(status);
  }

  /** Reads back what the statement may have changed; returns ParameterStatus messages to send before ReadyForQuery. */
  #afterStatement(lease: Lease, status: TransactionStatus): Buffer[] {
    const extra = this.#tracking.afterStatement(lease, status);
    this.#activity.applicationName = this.engineSession.settings.get('application_name') ?? '';
    return extra;
  }

  /** A ReadyForQuery with `status` went to the client: the transaction status and the phase follow it. */
  #ready(status: TransactionStatus): void {
    this.#transactionStatus = status;
    this.#batch.synced();
    markReady(this.#activity, status);
    const handedBack = this.#aborted.handedBack;
    // A failed transaction handed back was rolled back in the engine: its locks went with it, as on Postgres.
    if (status === TransactionStatus.Idle || handedBack) this.#host.backends.endTransaction(this.processId);
    if (status === TransactionStatus.Idle) return this.#transition(SessionPhase.Idle, 'ready');
    if (status === TransactionStatus.Failed) this.#transition(SessionPhase.Failed, handedBack ? 'failed transaction handed back' : 'ready');
    else this.#transition(SessionPhase.InTransaction, 'ready');
    if (!handedBack) this.#armIdleTimer();
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
    const refusal = copyInRefusal(sql);
    if (refusal) return this.#answerWithoutEngine(refusal);
    try {
      await this.#withEngine(() => {
        this.#copy = new CopyIn(sql);
        this.#locks.forget();
        this.#transition(SessionPhase.Copy, 'COPY FROM STDIN');
        this.#write(this.#copy.response());
      });
    } catch (error) {
      if (!(error instanceof CancelledError)) throw error;
      if (this.#phase !== SessionPhase.Closed) await this.#answerCancelled(error, true);
    }
  }

  async #copyMessage(msg: Buffer): Promise<void> {
    const copy = this.#copy!;
    const type = msg[0]!;
    if (!copy.accepts(type)) {
      return this.fatal({ code: SqlState.ProtocolViolation, message: `unexpected message type ${type} during COPY from stdin` });
    }
    if (type === Frontend.CopyData) return copy.data(msg);
    if (!copy.ends(type)) return; // Flush and Sync mean nothing during COPY
    this.#copy = undefined;
    await this.#withEngine(async (lease) => {
      const result = await copy.finish(msg, lease, this.#transactionStatus !== TransactionStatus.Idle);
      if (this.#phase === SessionPhase.Closed) return;
      this.#transition(SessionPhase.InBatch, 'COPY done');
      this.#deliver(lease, Buffer.concat([result, readyForQuery(lease.transactionStatus())]));
    });
  }

  /**
   * Ends the session: rolls back its transaction, drops its prepared statements, temporary tables and LISTENs,
   * and gives back the engine. Idempotent.
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
    const owned = this.#lease !== undefined;
    const needsEngine = owned || this.#names.hasNamed || this.#tracking.leavesState;
    if (wasStarted && needsEngine && !this.#host.engine.closed) {
      try {
        await this.#withEngine((lease) => this.#cleanUp(lease, owned), { acquire: Acquire.CleanUp });
      } catch (error) {
        this.#debug(`clean-up skipped: ${String(error)}`);
      }
    }
    this.#host.onClosed(this);
  }

  #cleanUp(lease: Lease, ownedEngine: boolean): void {
    if (ownedEngine) {
      // ROLLBACK aborts a transaction (explicit or implicit); Sync ends a failed extended batch first if there was one.
      lease.exec(Buffer.concat([query('ROLLBACK'), sync(), query('ROLLBACK')]));
    }
    const closes = this.#names.closeAll();
    if (closes) lease.exec(closes);
    this.#tracking.cleanUp(lease);
  }
}
