/**
 * @module
 * One PGlite instance and the rules for sharing it. PGlite is a single Postgres session, so every user of it
 * (a wire-protocol connection, an HTTP request) first takes a {@link Lease}: leases are granted one at a time, in
 * arrival order. Each user has an {@link EngineSession} holding its session settings and role; granting a lease
 * switches the engine to that session's settings and role, so a `SET` made by one connection is never seen by
 * another.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { backendCatalogSql, CATALOG_VERSION, CATALOG_VERSION_QUERY } from './backend-catalog.js';
import { mountBridge } from './bridge.js';
import { processBusyPoll, type BusyPoll } from './busy-poll.js';
import { EngineInterrupts, type InterruptTarget, type Termination } from './interrupts.js';
import { EngineCrashedError, RawPGlite } from './raw-pglite.js';

export { EngineCrashedError };
import { compiledPglite } from './wasm.js';
import { copyTemplateFor, ensureTemplate } from './template.js';
import { Backend, Frontend, backendError, eachMessage, int32, lastReadyStatus, message, query, readError, readRows, type ErrorFields, TransactionStatus } from './protocol.js';
import { SqlState, USER_CANCEL_MESSAGE } from './sql-state.js';

export type Persistence = 'persistent' | 'memory';

export type EngineOptions = {
  readonly label: string;
  /** A folder for a persistent database; omitted for an in-memory one. */
  readonly dataDir?: string;
  /** Start from this tarball of a data directory (a snapshot) instead of the template; replaces `dataDir`'s content. */
  readonly from?: Blob;
  /** The name the engine's own database has in its catalog (`pg_database`); default `postgres`. */
  readonly database?: string;
  readonly log?: (line: string) => void;
};

/** Settings that Postgres reports to clients with ParameterStatus when they change. */
export const REPORTED_SETTINGS = [
  'application_name', 'client_encoding', 'DateStyle', 'IntervalStyle', 'TimeZone', 'standard_conforming_strings',
  'search_path',
] as const;

/**
 * PGlite's own start-up parameters plus two-phase commit: a prepared transaction belongs to no session, so it fits
 * the one shared session. One slot per connection, as the Postgres docs advise; given at start, not baked into the
 * template, so databases created before this setting get it too.
 */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'max_prepared_transactions=100'];

/** A database error from PGlite, with the Postgres fields. */
export class EngineError extends Error {
  readonly fields: ErrorFields;
  constructor(fields: ErrorFields) {
    super(fields.message);
    this.name = 'EngineError';
    this.fields = fields;
  }
}

let nextSessionId = 1000;

/** Where this process's session ids start: each database process of a server gets its own range. */
export function setSessionIdBase(base: number): void {
  nextSessionId = base;
}

/** The state one user of the engine keeps between its leases. */
export class EngineSession {
  /** Unique in the process: a connection's process id (`pg_backend_pid()`, BackendKeyData). */
  readonly id = nextSessionId++;
  /** Session-level settings (name -> value) that differ from the engine's defaults. */
  settings = new Map<string, string>();
  /** Temporary relations this session created (name -> relkind), dropped when it closes. */
  readonly tempRelations = new Map<string, string>();
  /** Whether those relations are renamed out of sight because another session holds the engine. */
  tempHidden = false;
  /** The role this session runs as (SET SESSION AUTHORIZATION); undefined for the engine's own superuser. */
  role: string | undefined;
  /** The role it has taken with SET ROLE; undefined for none. */
  currentRole: string | undefined;

  constructor(settings: Iterable<[string, string]> = []) {
    for (const [name, value] of settings) this.settings.set(name, value);
  }
}

/** Exclusive use of the engine, from {@link Engine.acquire} until {@link Lease.release}. */
export type Lease = {
  readonly session: EngineSession;
  /**
   * Runs wire-protocol messages and returns the backend's raw answer. While it runs, {@link interrupt} with the
   * engine's {@link Engine.interruptTarget} and this session's id stops it (57014, the transaction left failed).
   */
  exec(messages: Uint8Array): Uint8Array;
  /**
   * Set when a terminate (or `transaction_timeout`) ended the last `exec`: its answer holds a cancel's 57014, and
   * the connection is to be closed with this error (severity FATAL) instead.
   */
  readonly termination: Termination | undefined;
  /** Runs a simple query for the gateway's own bookkeeping; throws {@link EngineError} on failure. */
  run(sql: string): Array<Array<string | null>>;
  /** Runs `COPY ... FROM '/dev/blob'` with `data` as the file; interrupted as {@link Lease.exec} is. */
  copyFrom(sql: string, data: Uint8Array): Promise<number>;
  /** The PGlite instance, for the HTTP endpoint's typed queries. */
  readonly pglite: PGlite;
  /** Reads the session's settings back after it may have changed them; returns the reported ones that changed. */
  captureSettings(): Map<string, string>;
  /** The current transaction status, read with an empty query. */
  transactionStatus(): TransactionStatus;
  /** Runs `work` as the engine's superuser, then as the session's role again (for the gateway's own catalog work). */
  asSuperuser<T>(work: () => T | Promise<T>): Promise<T>;
  release(): void;
};

/**
 * Per-connection backends (advisory locks, `pg_stat_activity`, ...), kept by the gateway; the engine's bridge asks
 * them on behalf of the session holding the engine.
 */
export type EngineBackends = {
  answer(request: string, session: EngineSession): string;
  /** A lease of `session` ended. */
  released(session: EngineSession): void;
};

type Waiter = { session: EngineSession; grant: (lease: Lease) => void; reject: (error: unknown) => void };

/** Where PGlite mounts its data directory in its own file system. */
const PGDATA = '/pglite/data';

type EmscriptenMounts = { lookupPath(path: string): { node: { mount: { opts: { root?: string } } } } };

export class Engine {
  /** The database's name, in log lines (it changes when an engine opened ahead is given its database). */
  label: string;
  readonly pglite: RawPGlite;
  readonly serverVersion: string;
  readonly #interrupts: EngineInterrupts;
  /** Default values of the reported settings, sent to every new connection. */
  readonly defaults: ReadonlyMap<string, string>;
  #queue: Waiter[] = [];
  #owner: EngineSession | undefined;
  #applied = new Map<string, string>();
  /** The role the engine's session runs as now; undefined for its own superuser. */
  #appliedRole: string | undefined;
  /** The role it has SET ROLE to now; undefined for none. */
  #appliedCurrentRole: string | undefined;
  #notificationListeners = new Set<(channel: string, payload: string, pid: number) => void>();
  #crashListeners = new Set<(error: EngineCrashedError) => void>();
  #closed = false;
  #log: (line: string) => void;
  /**
   * The session whose unnamed prepared statement the engine holds, if any. Any other use of the engine may replace
   * or drop it (a simple query, another client's unnamed Parse), so it is cleared whenever someone else runs.
   */
  unnamedStatementOwner: EngineSession | undefined;
  /** Sessions owning temporary relations, hidden from every other session. */
  #tempOwners = new Set<EngineSession>();
  #busyPoll: BusyPoll = processBusyPoll();
  backends: EngineBackends | undefined;

  private constructor(
    label: string,
    pglite: RawPGlite,
    interrupts: EngineInterrupts,
    serverVersion: string,
    defaults: Map<string, string>,
    log: (line: string) => void,
  ) {
    this.label = label;
    this.pglite = pglite;
    this.#interrupts = interrupts;
    this.serverVersion = serverVersion;
    this.defaults = defaults;
    this.#log = log;
    mountBridge(pglite, (request) => {
      if (!this.backends || !this.#owner) return undefined;
      return this.backends.answer(request, this.#owner);
    });
    // PGlite reports the notifications it parses: those in answers to its own query API (the HTTP endpoint's). The
    // gateway's raw answers bypass its parser, and the gateway routes their notifications itself.
    pglite.onNotification((channel, payload) => this.#emitNotification(channel, payload, 0));
    pglite.onCrash((panic) => {
      this.#log(`${this.label}: PANIC ${panic.code}: ${panic.message}`);
      const error = new EngineCrashedError(panic);
      for (const waiter of this.#queue.splice(0)) waiter.reject(error);
      for (const listener of this.#crashListeners) listener(error);
    });
  }

  /** Opens a database: a persistent one in `dataDir` (copied from the template when new), or an in-memory one. */
  static async open(options: EngineOptions): Promise<Engine> {
    const log = options.log ?? (() => undefined);
    // Compiling PGlite's WebAssembly runs on V8's background threads: start it first, prepare the files meanwhile.
    const compiled = compiledPglite();
    // Not given our module: it imports a shared memory, which the template's plain PGlite (and its initdb) lack.
    const template = await ensureTemplate();
    let create: PGliteOptions;
    if (options.from) {
      if (options.dataDir) await fs.promises.rm(options.dataDir, { recursive: true, force: true });
      create = { dataDir: options.dataDir, loadDataDir: options.from };
    } else if (options.dataDir) {
      if (fs.existsSync(`${options.dataDir}/PG_VERSION`)) create = { dataDir: options.dataDir };
      else {
        create = { dataDir: options.dataDir, fs: copyTemplateFor(template, options.dataDir) };
        log(`${options.label}: new database created from the template`);
      }
    } else {
      create = { loadDataDir: new Blob([await fs.promises.readFile(template.tarball)]) };
    }
    const { module, waitFunctions } = await compiled;
    const interrupts = new EngineInterrupts(waitFunctions);
    const pglite = await RawPGlite.open({
      ...create,
      database: options.database,
      startParams: START_PARAMS,
      pgliteWasmModule: module,
      extensions: { interrupts: interrupts.extension() },
    });
    interrupts.attach(pglite);
    if (interrupts.target.timeouts === 0) log(`${options.label}: Postgres' timeout table not found: statement_timeout and lock_timeout only end waits`);
    const names = [...REPORTED_SETTINGS, 'server_version'].map((name) => `'${name}'`).join(',');
    const rows = readRows(pglite.execRaw(query(`SELECT name, setting FROM pg_settings WHERE name IN (${names})`)));
    const defaults = new Map(rows.map(([name, value]) => [name!, value ?? '']));
    installBackendCatalog(pglite);
    const version = defaults.get('server_version') ?? '';
    defaults.delete('server_version');
    return new Engine(options.label, pglite, interrupts, version, defaults, log);
  }

  /**
   * Points a persistent engine at its data directory's new path, after the caller renamed the directory: an engine
   * opened ahead of need on a staging directory becomes a database's so (see `daemon/host/serve.ts`). Files
   * already open stay open (a rename keeps them); every later path is resolved under `dataDir`.
   */
  relocate(dataDir: string): void {
    const fs = (this.pglite.Module as unknown as { FS: EmscriptenMounts }).FS;
    const mount = fs.lookupPath(PGDATA).node.mount;
    if (typeof mount.opts.root !== 'string') throw new Error('the engine has no data directory on disk to relocate');
    mount.opts.root = path.resolve(dataDir);
  }

  /**
   * Whether `session`'s next statement is cancelled as it begins: a cancel request came while that statement was
   * received but not started (Postgres would be running it by then).
   */
  cancelNext(session: EngineSession, cancelled: boolean): void {
    this.#interrupts.cancelNext(session.id, cancelled);
  }

  /** Whether the engine is closed, or unusable after a PANIC. */
  get closed(): boolean {
    return this.#closed || this.pglite.panic !== undefined;
  }

  /** The PANIC that stopped the engine, if one did. */
  get crash(): EngineCrashedError | undefined {
    return this.pglite.panic && new EngineCrashedError(this.pglite.panic);
  }

  /**
   * Registers a listener for a PANIC, after which the engine refuses every call: its process must start over from
   * the last commit, as Postgres restarts after a PANIC. Returns its remover.
   */
  onCrash(listener: (error: EngineCrashedError) => void): () => void {
    this.#crashListeners.add(listener);
    return () => void this.#crashListeners.delete(listener);
  }

  /**
   * Registers who hears of a timeout that ends a session (idle_in_transaction_session_timeout, idle_session_timeout,
   * transaction_timeout) coming due between statements, with the session holding the engine then: close that
   * connection with the error given (severity FATAL). Inside PGlite, Postgres' own handling would end the process.
   */
  onIdleTimeout(listener: (sessionId: number | undefined, termination: Termination) => void): void {
    this.#interrupts.onIdleTimeout((termination) => listener(this.#owner?.id, termination));
  }

  /** What a watcher thread needs to interrupt this engine's statements: pass it with `postMessage`. */
  get interruptTarget(): InterruptTarget {
    return this.#interrupts.target;
  }

  /** The id of the session holding the engine, if any. */
  get ownerId(): number | undefined {
    return this.#owner?.id;
  }

  /** How many users wait for the engine right now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Waits for exclusive use of the engine, first come first served. Rejects if `signal` aborts while waiting
   * (a cancel request) or the engine closes.
   */
  acquire(session: EngineSession, signal?: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(new Error(`${this.label} database is shut down`));
    if (this.pglite.panic) return Promise.reject(new EngineCrashedError(this.pglite.panic));
    const free = this.tryAcquire(session);
    if (free) return Promise.resolve(free);
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = { session, grant: resolve, reject };
      this.#queue.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = this.#queue.indexOf(waiter);
          if (index >= 0) {
            this.#queue.splice(index, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
    });
  }

  /** The lease at once if nobody holds or waits for the engine (the common case, kept off the promise path). */
  tryAcquire(session: EngineSession): Lease | undefined {
    if (this.closed || this.#owner || this.#queue.length > 0) return undefined;
    return this.#grant(session);
  }

  #grant(session: EngineSession): Lease {
    this.#owner = session;
    if (this.unnamedStatementOwner !== session) this.unnamedStatementOwner = undefined;
    let released = false;
    let termination: Termination | undefined;
    const lease: Lease = {
      session,
      pglite: this.pglite,
      exec: (messages) => {
        if (released) throw new Error('lease already released');
        const cancelled = this.#interrupts.begin(session.id);
        try {
          if (cancelled) return this.#cancelledAtStart(session, messages);
          return this.pglite.execRaw(messages);
        } finally {
          termination = this.#interrupts.end();
          this.#busyPoll.touch();
        }
      },
      get termination() {
        return termination;
      },
      run: (sql) => {
        const output = this.#internalQuery(sql);
        const error = readError(output);
        if (error) throw new EngineError(error);
        return readRows(output);
      },
      copyFrom: async (sql, data) => {
        this.unnamedStatementOwner = undefined;
        if (this.#interrupts.begin(session.id)) this.#interrupts.cancelNow();
        try {
          const result = await this.pglite.query(sql, [], { blob: new Blob([data as Uint8Array<ArrayBuffer>]) });
          return result.affectedRows ?? 0;
        } catch (error) {
          throw toEngineError(error);
        } finally {
          termination = this.#interrupts.end();
        }
      },
      captureSettings: () => this.#captureSettings(session),
      transactionStatus: () => lastReadyStatus(this.#internalQuery('')) ?? TransactionStatus.Idle,
      asSuperuser: async (work) => {
        const role = this.#appliedRole;
        const currentRole = this.#appliedCurrentRole;
        if (role === undefined && currentRole === undefined) return work();
        this.#switchRole(undefined, undefined);
        try {
          return await work();
        } finally {
          this.#switchRole(role, currentRole);
        }
      },
      release: () => {
        if (released) return;
        released = true;
        this.#owner = undefined;
        this.backends?.released(session);
        this.#busyPoll.touch();
        this.#next();
      },
    };
    // Renaming others' temporary relations and switching settings need the superuser; the role comes last.
    const elevated = this.#appliedRole === undefined && this.#appliedCurrentRole === undefined;
    const sameRole = this.#appliedRole === session.role && this.#appliedCurrentRole === session.currentRole;
    if (!elevated && (!sameRole || this.#tempOwners.size > 0)) this.#switchRole(undefined, undefined);
    this.#isolateTempRelations(session);
    try {
      this.#switchTo(session);
    } catch (error) {
      this.#log(`${this.label}: could not restore the settings of session ${session.id}: ${String(error)}`);
      session.settings = new Map(this.#applied);
    }
    if (session.role !== this.#appliedRole || session.currentRole !== this.#appliedCurrentRole) this.#switchRole(session.role, session.currentRole);
    return lease;
  }

  #next(): void {
    const waiter = this.#queue.shift();
    if (waiter) waiter.grant(this.#grant(waiter.session));
  }

  /** Registers (or, once it has none left, forgets) the temporary relations of a session. */
  trackTempRelations(session: EngineSession): void {
    if (session.tempRelations.size) this.#tempOwners.add(session);
    else this.#tempOwners.delete(session);
  }

  /**
   * Temporary relations live in the one engine session's temp schema, where every client would see them. While a
   * session does not hold the engine, its temporary relations are renamed to a prefixed name, so another session
   * neither sees them by name nor clashes with them; they get their names back when their session runs again.
   */
  #isolateTempRelations(session: EngineSession): void {
    for (const other of this.#tempOwners) {
      if (other === session || other.tempHidden) continue;
      this.#renameTempRelations(other, (name) => [name, hiddenTempName(other, name)]);
      other.tempHidden = true;
    }
    if (session.tempHidden) {
      this.#renameTempRelations(session, (name) => [hiddenTempName(session, name), name]);
      session.tempHidden = false;
    }
  }

  #renameTempRelations(owner: EngineSession, names: (name: string) => [string, string]): void {
    for (const name of [...owner.tempRelations.keys()]) {
      const [from, to] = names(name);
      const output = this.#internalQuery(`ALTER TABLE pg_temp.${quoteIdent(from)} RENAME TO ${quoteIdent(to)}`);
      if (readError(output)) owner.tempRelations.delete(name); // dropped by its owner since
    }
  }

  /**
   * Runs a batch whose first statement a cancel came for before it began (pipelined, or queued for the engine).
   * Postgres would have been running that statement by then, so it fails with 57014, failing its transaction and
   * skipping the rest of its pipeline up to Sync; what the batch parsed, bound or described before it stands.
   * Raising the cancel would not do: Postgres drops a cancel it finds pending as it reads a command. So the statement
   * is swapped for one that fails (see {@link withFirstCommandFailing}), and its error is answered as the cancel's.
   * A batch without a statement leaves the cancel for the next one.
   */
  #cancelledAtStart(session: EngineSession, messages: Uint8Array): Uint8Array {
    const failing = withFirstCommandFailing(messages);
    if (!failing) {
      this.#interrupts.cancelNext(session.id, true);
      return this.pglite.execRaw(messages);
    }
    return answeredAsCancel(this.pglite.execRaw(failing));
  }

  /** Runs a simple query of the engine's own; like any simple query it drops the unnamed prepared statement. */
  #internalQuery(sql: string): Uint8Array {
    this.unnamedStatementOwner = undefined;
    return this.pglite.execRaw(query(sql));
  }

  /**
   * Runs the engine's session as `role` (undefined: its own superuser, whose authority allows any switch), then
   * SET ROLE `currentRole` if any (SET SESSION AUTHORIZATION resets the role, so it comes second).
   */
  #switchRole(role: string | undefined, currentRole: string | undefined): void {
    const setRole = currentRole === undefined ? '' : `; SELECT set_config('role', ${quoteLiteral(currentRole)}, false)`;
    const error = readError(this.#internalQuery(`SET SESSION AUTHORIZATION ${quoteIdent(role ?? ENGINE_SUPERUSER)}${setRole}`));
    if (!error) {
      this.#appliedRole = role;
      this.#appliedCurrentRole = currentRole;
      return;
    }
    this.#log(`${this.label}: could not run as role ${role} (role ${currentRole}): ${error.message}`);
    this.#readRoles();
  }

  /** Reads which roles the engine's session runs as (after a switch, or a client's SET ROLE / SESSION AUTHORIZATION). */
  #readRoles(): void {
    const [[sessionUser, role] = []] = readRows(this.#internalQuery("SELECT session_user, current_setting('role')"));
    this.#appliedRole = sessionUser === ENGINE_SUPERUSER ? undefined : (sessionUser ?? undefined);
    this.#appliedCurrentRole = role === 'none' ? undefined : (role ?? undefined);
  }

  /** Makes the engine's session settings those of `session`, touching only what differs. */
  #switchTo(session: EngineSession): void {
    const statements: string[] = [];
    for (const name of this.#applied.keys()) {
      if (!session.settings.has(name)) statements.push(`RESET ${quoteIdent(name)}`);
    }
    const assignments: string[] = [];
    for (const [name, value] of session.settings) {
      if (this.#applied.get(name) !== value) assignments.push(`set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`);
    }
    if (assignments.length) statements.push(`SELECT ${assignments.join(', ')}`);
    if (statements.length === 0) return;
    const output = this.#internalQuery(statements.join('; '));
    this.#applied = new Map(session.settings);
    const error = readError(output);
    if (error) throw new EngineError(error);
  }

  #captureSettings(session: EngineSession): Map<string, string> {
    const rows = readRows(this.#internalQuery("SELECT name, setting FROM pg_settings WHERE source = 'session'"));
    // SET ROLE and SET SESSION AUTHORIZATION are settings too (not listed in pg_settings): the connection keeps them.
    this.#readRoles();
    session.role = this.#appliedRole;
    session.currentRole = this.#appliedCurrentRole;
    const before = new Map([...this.defaults, ...session.settings]);
    session.settings = new Map(rows.map(([name, value]) => [name!, value ?? '']));
    this.#applied = new Map(session.settings);
    const changed = new Map<string, string>();
    for (const name of this.defaults.keys()) {
      const now = session.settings.get(name) ?? this.defaults.get(name)!;
      if (before.get(name) !== now) changed.set(name, now);
    }
    return changed;
  }

  /** Registers a listener for NOTIFY deliveries (from any front door); returns its remover. */
  onNotification(listener: (channel: string, payload: string, pid: number) => void): () => void {
    this.#notificationListeners.add(listener);
    return () => void this.#notificationListeners.delete(listener);
  }

  #emitNotification(channel: string, payload: string, pid: number): void {
    for (const listener of this.#notificationListeners) listener(channel, payload, pid);
  }

  /** Runs `work` with exclusive use of the engine, in a session of its own with default settings. */
  async exclusive<T>(work: (lease: Lease) => T | Promise<T>): Promise<T> {
    const lease = await this.acquire(new EngineSession());
    try {
      return await work(lease);
    } finally {
      lease.release();
    }
  }

  /**
   * A tarball of the whole data directory, taken while no one else uses the engine. A CHECKPOINT first, so that the
   * copy opens without replaying WAL: replay would move sequences to the values logged ahead (32 at a time).
   */
  dump(): Promise<Blob> {
    return this.exclusive((lease) => {
      lease.run('CHECKPOINT');
      return this.pglite.dumpDataDir('none');
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#queue.splice(0)) waiter.reject(new Error(`${this.label} database is shut down`));
    this.#interrupts.close();
    await this.pglite.close();
  }
}

/** A portal no client can have (their names get a `_pgdev<pid>_` prefix): executing it fails. */
const MISSING_PORTAL = '_pgdev_cancelled';
const MISSING_PORTAL_MESSAGE = `portal "${MISSING_PORTAL}" does not exist`;
const RAISE_MARKER = 'pgdev: cancelled before it began';
const RAISE_CANCELED = `DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = '${USER_CANCEL_MESSAGE}', DETAIL = '${RAISE_MARKER}'; END $$`;

/**
 * `messages` with their first statement swapped for one that fails as a cancel would: an Execute for a portal that
 * does not exist, or a simple query that raises 57014. Undefined if they run no statement.
 */
function withFirstCommandFailing(messages: Uint8Array): Buffer | undefined {
  for (const { type, start, end } of eachMessage(messages)) {
    if (type !== Frontend.Execute && type !== Frontend.Query) continue;
    const failing = type === Frontend.Execute ? message(Frontend.Execute, MISSING_PORTAL, int32(0)) : query(RAISE_CANCELED);
    return Buffer.concat([messages.subarray(0, start), failing, messages.subarray(end)]);
  }
  return undefined;
}

/**
 * The engine's answer with the swapped statement's error replaced by the cancel's (no PL/pgSQL context). It is not
 * there if the statement never ran: an earlier message failed, or the transaction had failed before (25P02), which
 * is what Postgres answers then too.
 */
function answeredAsCancel(output: Buffer): Buffer {
  for (const { type, start, end } of eachMessage(output)) {
    if (type !== Backend.ErrorResponse) continue;
    const error = readError(output.subarray(start, end));
    const swapped = error?.message === MISSING_PORTAL_MESSAGE || error?.detail === RAISE_MARKER;
    if (!swapped) continue;
    const cancel = backendError({ severity: 'ERROR', code: SqlState.QueryCanceled, message: USER_CANCEL_MESSAGE });
    return Buffer.concat([output.subarray(0, start), cancel, output.subarray(end)]);
  }
  return output;
}

/** Installs the per-connection backend functions and views in the database, unless they are there already. */
function installBackendCatalog(pglite: RawPGlite): void {
  if (readRows(pglite.execRaw(query(CATALOG_VERSION_QUERY)))[0]?.[0] === CATALOG_VERSION) return;
  const error = readError(pglite.execRaw(query(backendCatalogSql())));
  if (error) {
    pglite.execRaw(query('ROLLBACK'));
    throw new EngineError(error);
  }
}

function toEngineError(error: unknown): Error {
  const fields = error as Partial<ErrorFields> & { severity?: string };
  if (error instanceof Error && typeof fields.code === 'string') {
    const plain: ErrorFields = { severity: fields.severity ?? 'ERROR', code: fields.code, message: error.message };
    for (const key of ['detail', 'hint', 'position', 'where', 'schema', 'table', 'column', 'constraint'] as const) {
      const value = (error as unknown as Record<string, unknown>)[key];
      if (typeof value === 'string') plain[key] = value;
    }
    return new EngineError(plain);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** The role PGlite's one session authenticates as; connections that name no other role run as it. */
export const ENGINE_SUPERUSER = 'postgres';

/** Names of temporary relations hidden from the session holding the engine start like this. */
export const HIDDEN_TEMP_PATTERN = '^_pgdev[0-9]+_';

function hiddenTempName(owner: EngineSession, name: string): string {
  return `_pgdev${owner.id}_${name}`;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
