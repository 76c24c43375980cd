/**
 * @module
 * Every gateway connection as its own Postgres *backend*, on an engine that is one Postgres session: what
 * `pg_stat_activity` shows of it, its advisory locks, and `pg_cancel_backend`/`pg_terminate_backend` aimed at it.
 * SQL reaches this module through the engine's bridge (see `engine/backend-catalog.ts`), so the rewritten system
 * functions work wherever they are called: in larger statements, functions, transactions, the extended protocol.
 *
 * Advisory locks are kept here, per connection, with Postgres' rules: exclusive and shared modes, session-level
 * locks counted and held until unlocked or the connection ends, transaction-level ones released when the
 * transaction ends. A lock held by another connection cannot be waited for inside the engine (one thread, one
 * session): the call fails with the private SQLSTATE {@link WAIT_SQLSTATE}, the session undoes the attempt, waits
 * here without holding the engine, and runs the statement again (see `Session`). `lock_timeout` (55P03),
 * `statement_timeout` (57014), deadlocks between waiters (40P01) and cancel requests (57014) end a wait.
 */
import type { EngineBackends, EngineSession } from '../engine/engine.js';
import { BRIDGE_ERROR, BRIDGE_WARNING } from '../engine/backend-catalog.js';
import { Frontend, eachMessage, message, query, sync } from '../engine/protocol.js';
import { SqlState, USER_CANCEL_MESSAGE } from '../engine/sql-state.js';

/**
 * Raised inside the engine when a lock call must wait; never reaches a client. It is query_canceled, the one error
 * (with assert_failure) that a PL/pgSQL `EXCEPTION WHEN OTHERS` handler does not catch.
 */
export const WAIT_SQLSTATE = SqlState.QueryCanceled;

export type BackendState = 'active' | 'idle' | 'idle in transaction' | 'idle in transaction (aborted)';

/** What `pg_stat_activity` shows of one connection; the session keeps it up to date. */
export type BackendActivity = {
  readonly processId: number;
  user: string;
  applicationName: string;
  readonly clientAddress: string | null;
  readonly clientPort: number | null;
  readonly backendStart: Date;
  xactStart: Date | null;
  queryStart: Date | null;
  stateChange: Date;
  state: BackendState;
  /** Why it waits, if it does: the engine (held by another connection's transaction) or an advisory lock. */
  wait: { type: string; event: string; since: Date } | null;
  query: string;
};

/** One connection as `pgdev sessions` shows it. */
export type SessionReport = {
  readonly pid: number;
  readonly user: string;
  readonly applicationName: string;
  readonly clientAddress: string | null;
  readonly state: BackendState;
  readonly query: string;
  readonly backendStart: string;
  readonly holdsDatabase: boolean;
  readonly waitingFor: 'database' | 'advisory lock' | null;
  readonly waitingMs: number | null;
  /** How long it has been in its state. */
  readonly stateMs: number;
};

/** What other backends may do to a connection. */
export type BackendControl = {
  /** A CancelRequest or `pg_cancel_backend`: ends its wait, if it waits. */
  cancel(): void;
  /** `pg_terminate_backend`: FATAL 57P01 once its current statement has answered. */
  terminate(): void;
};

/** How a wait for an advisory lock ended, and so what the retried lock call does. */
export type WaitOutcome = 'free' | 'lock-timeout' | 'statement-timeout' | 'deadlock' | 'cancelled';

type Mode = 'x' | 's';
type Scope = 'session' | 'xact';
type Counts = Record<Mode, Record<Scope, number>>;
type Request = { key: string; mode: Mode };
/** A lock a statement waits for, with the `lock_timeout` and `statement_timeout` in force when it asked. */
export type LockWait = Request & { lockTimeoutMs: number; statementTimeoutMs: number };
type Backend = {
  activity: BackendActivity;
  control: BackendControl;
  /** Grants made by the statement now running, undone if it has to wait and run again. */
  journal: Array<Request & { scope: Scope }> | undefined;
  canWait: boolean;
  /** Set when the running statement asked to wait. */
  wants: LockWait | undefined;
  /** The outcome of the last wait, for the retried statement's lock call. */
  failNext: Exclude<WaitOutcome, 'free'> | undefined;
  waiting: (Request & { since: Date; wake: () => void }) | undefined;
  xactLocks: number;
};

const LOCK_MODE_NAMES: Record<Mode, string> = { x: 'ExclusiveLock', s: 'ShareLock' };

const FAILURES: Record<Exclude<WaitOutcome, 'free'>, string> = {
  'lock-timeout': '55P03 canceling statement due to lock timeout',
  'statement-timeout': '57014 canceling statement due to statement timeout',
  deadlock: '40P01 deadlock detected',
  cancelled: `${SqlState.QueryCanceled} ${USER_CANCEL_MESSAGE}`,
};

export class Backends implements EngineBackends {
  #backends = new Map<number, Backend>();
  /** Advisory locks: key -> holder's process id -> counts by mode and scope. */
  #locks = new Map<string, Map<number, Counts>>();

  register(activity: BackendActivity, control: BackendControl): void {
    this.#backends.set(activity.processId, {
      activity, control, journal: undefined, canWait: false, wants: undefined, failNext: undefined, waiting: undefined, xactLocks: 0,
    });
  }

  /** Forgets a connection that ended, releasing its locks. */
  unregister(processId: number): void {
    const backend = this.#backends.get(processId);
    if (!backend) return;
    backend.waiting?.wake();
    this.#backends.delete(processId);
    this.#releaseWhere(processId, () => true);
  }

  activity(processId: number): BackendActivity | undefined {
    return this.#backends.get(processId)?.activity;
  }

  /** Every connection, for `pgdev sessions`: who holds the database (`holderId`), who waits and for what. */
  report(holderId: number | undefined, now = Date.now()): SessionReport[] {
    return [...this.#backends.values()].map(({ activity, waiting }) => {
      const wait = waiting ? { type: 'Lock', event: 'advisory', since: waiting.since } : activity.wait;
      return {
        pid: activity.processId,
        user: activity.user,
        applicationName: activity.applicationName,
        clientAddress: activity.clientAddress,
        state: activity.state,
        query: activity.query,
        backendStart: activity.backendStart.toISOString(),
        holdsDatabase: activity.processId === holderId,
        waitingFor: wait ? (wait.event === 'advisory' ? 'advisory lock' : 'database') : null,
        waitingMs: wait ? now - wait.since.getTime() : null,
        stateMs: now - activity.stateChange.getTime(),
      };
    });
  }

  /** Before a statement runs: whether a lock call may ask to wait (the session can undo and retry it). */
  beginAttempt(processId: number, canWait: boolean): void {
    const backend = this.#backends.get(processId);
    if (!backend) return;
    backend.journal = undefined;
    backend.wants = undefined;
    backend.canWait = canWait;
  }

  /** After a statement ran: the lock it asked to wait for, if it did, with the attempt's grants undone. */
  takeWait(processId: number): LockWait | undefined {
    const backend = this.#backends.get(processId);
    if (!backend) return undefined;
    const wants = backend.wants;
    const journal = backend.journal;
    backend.wants = backend.journal = undefined;
    backend.failNext = undefined;
    if (!wants) return undefined;
    for (const grant of journal ?? []) this.#release(processId, grant.key, grant.mode, grant.scope, 1);
    return wants;
  }

  /**
   * Waits, without holding the engine, until `request` may be granted (or the wait ends otherwise). Whatever the
   * outcome, the caller runs its statement again: the lock call then takes the lock, or fails with the outcome.
   */
  async wait(processId: number, request: LockWait, limits: { waitedMs: number; signal: AbortSignal }): Promise<WaitOutcome> {
    const backend = this.#backends.get(processId);
    if (!backend) return 'cancelled';
    const outcome = await new Promise<WaitOutcome>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = (result: WaitOutcome) => {
        for (const timer of timers) clearTimeout(timer);
        limits.signal.removeEventListener('abort', onAbort);
        backend.waiting = undefined;
        resolve(result);
      };
      const onAbort = () => finish('cancelled');
      if (limits.signal.aborted) return finish('cancelled');
      limits.signal.addEventListener('abort', onAbort);
      backend.waiting = { key: request.key, mode: request.mode, since: new Date(), wake: () => finish('free') };
      if (this.#conflicts(processId, request).length === 0) return finish('free');
      if (this.#deadlocked(processId)) return finish('deadlock');
      // A statement may wait several times (woken, then beaten to the lock): the timeouts count from its first wait.
      const limit = (timeoutMs: number, outcome: WaitOutcome) => {
        if (timeoutMs > 0) timers.push(setTimeout(() => finish(outcome), Math.max(0, timeoutMs - limits.waitedMs)));
      };
      limit(request.lockTimeoutMs, 'lock-timeout');
      limit(request.statementTimeoutMs, 'statement-timeout');
    });
    if (outcome !== 'free') backend.failNext = outcome;
    return outcome;
  }

  /** The transaction of `processId` ended: its transaction-level locks go. */
  endTransaction(processId: number): void {
    const backend = this.#backends.get(processId);
    if (backend && backend.xactLocks > 0) this.#releaseWhere(processId, (scope) => scope === 'xact');
  }

  /** The engine's lease ended; a user that is not a connection (the HTTP endpoint) keeps no locks past it. */
  released(session: EngineSession): void {
    if (this.#locks.size > 0 && !this.#backends.has(session.id)) this.#releaseWhere(session.id, () => true);
  }

  /** Answers a request from SQL through the engine's bridge, for the session running it. */
  answer(request: string, session: EngineSession): string {
    const [kind, ...args] = request.split(':');
    switch (kind) {
      case 'advisory':
        return this.#advisory(session.id, args);
      case 'pid':
        return String(session.id);
      case 'activity':
        return JSON.stringify(this.#activityRows(session.id));
      case 'locks':
        return JSON.stringify(this.#lockRows());
      case 'cancel':
      case 'terminate':
        return this.#signal(kind, Number(args[0]), session.id);
      default:
        return `${BRIDGE_ERROR}XX000 unknown pgdev bridge request "${request}"`;
    }
  }

  #signal(kind: 'cancel' | 'terminate', processId: number, caller: number): string {
    const target = this.#backends.get(processId);
    if (!target) return `${BRIDGE_WARNING}PID ${processId} is not a PostgreSQL backend process`;
    if (kind === 'cancel') {
      // The caller's own statement is the one running: it is cancelled, as on Postgres.
      if (processId === caller) return `${BRIDGE_ERROR}${FAILURES.cancelled}`;
      target.control.cancel();
      return 't';
    }
    target.control.terminate();
    // Terminating itself, the caller's statement fails at once and the FATAL follows.
    return processId === caller ? `${BRIDGE_ERROR}57P01 terminating connection due to administrator command` : 't';
  }

  #advisory(processId: number, [op, mode, scope, key, lockTimeout, statementTimeout]: string[]): string {
    if (op === 'unlock_all') {
      this.#releaseWhere(processId, (lockScope) => lockScope === 'session');
      return 't';
    }
    const request: Request = { key: key!, mode: mode as Mode };
    if (op === 'unlock') {
      const held = this.#locks.get(request.key)?.get(processId)?.[request.mode].session ?? 0;
      if (held === 0) return `${BRIDGE_WARNING}you don't own a lock of type ${LOCK_MODE_NAMES[request.mode]}`;
      this.#release(processId, request.key, request.mode, 'session', 1);
      return 't';
    }
    const holders = this.#conflicts(processId, request);
    if (holders.length === 0) {
      this.#grant(processId, request, scope as Scope);
      return 't';
    }
    if (op === 'try') return 'f';
    const backend = this.#backends.get(processId);
    if (backend?.failNext) return BRIDGE_ERROR + FAILURES[backend.failNext];
    if (backend?.canWait) {
      backend.wants = { ...request, lockTimeoutMs: settingMs(lockTimeout), statementTimeoutMs: settingMs(statementTimeout) };
      return `${BRIDGE_ERROR}${WAIT_SQLSTATE} waiting for an advisory lock held by process ${holders[0]}`;
    }
    return `${BRIDGE_ERROR}55P03 could not obtain lock on advisory lock ${describeKey(request.key)}\t`
      + `process ${holders[0]} holds it, and pgdev can only wait for it in a statement it can run again: outside a `
      + 'transaction block, or in one that has run nothing but BEGIN and SET so far';
  }

  /** Other connections holding `request.key` in a mode that conflicts with `request.mode`. */
  #conflicts(processId: number, request: Request): number[] {
    const holders = this.#locks.get(request.key);
    if (!holders) return [];
    const conflicting: number[] = [];
    for (const [holder, counts] of holders) {
      if (holder === processId) continue;
      const exclusive = counts.x.session + counts.x.xact > 0;
      const shared = counts.s.session + counts.s.xact > 0;
      if (exclusive || (request.mode === 'x' && shared)) conflicting.push(holder);
    }
    return conflicting;
  }

  /** Whether the waiter `processId` waits, through other waiters, for a lock it holds itself. */
  #deadlocked(processId: number): boolean {
    const seen = new Set<number>();
    const reaches = (from: number): boolean => {
      const waiting = this.#backends.get(from)?.waiting;
      if (!waiting) return false;
      for (const holder of this.#conflicts(from, waiting)) {
        if (holder === processId) return true;
        if (!seen.has(holder)) {
          seen.add(holder);
          if (reaches(holder)) return true;
        }
      }
      return false;
    };
    return reaches(processId);
  }

  #grant(processId: number, request: Request, scope: Scope): void {
    let holders = this.#locks.get(request.key);
    if (!holders) this.#locks.set(request.key, (holders = new Map()));
    let counts = holders.get(processId);
    if (!counts) holders.set(processId, (counts = { x: { session: 0, xact: 0 }, s: { session: 0, xact: 0 } }));
    counts[request.mode][scope] += 1;
    const backend = this.#backends.get(processId);
    if (!backend) return;
    if (scope === 'xact') backend.xactLocks += 1;
    if (backend.canWait) (backend.journal ??= []).push({ ...request, scope });
  }

  #release(processId: number, key: string, mode: Mode, scope: Scope, count: number): void {
    const holders = this.#locks.get(key);
    const counts = holders?.get(processId);
    if (!holders || !counts) return;
    const released = Math.min(count, counts[mode][scope]);
    counts[mode][scope] -= released;
    const backend = this.#backends.get(processId);
    if (backend && scope === 'xact') backend.xactLocks -= released;
    if (counts.x.session + counts.x.xact + counts.s.session + counts.s.xact === 0) holders.delete(processId);
    if (holders.size === 0) this.#locks.delete(key);
    this.#wakeWaitersFor(key);
  }

  #releaseWhere(processId: number, which: (scope: Scope) => boolean): void {
    for (const [key, holders] of [...this.#locks]) {
      const counts = holders.get(processId);
      if (!counts) continue;
      for (const mode of ['x', 's'] as const) {
        for (const scope of ['session', 'xact'] as const) {
          if (which(scope) && counts[mode][scope] > 0) this.#release(processId, key, mode, scope, counts[mode][scope]);
        }
      }
    }
  }

  #wakeWaitersFor(key: string): void {
    for (const backend of this.#backends.values()) if (backend.waiting?.key === key) backend.waiting.wake();
  }

  #activityRows(running: number): object[] {
    return [...this.#backends.values()].map(({ activity, waiting }) => {
      const wait = waiting ? { type: 'Lock', event: 'advisory' } : activity.wait;
      return {
        pid: activity.processId,
        usename: activity.user,
        application_name: activity.applicationName,
        client_addr: activity.clientAddress,
        client_hostname: null,
        client_port: activity.clientPort,
        backend_start: activity.backendStart.toISOString(),
        xact_start: activity.xactStart?.toISOString() ?? null,
        query_start: activity.queryStart?.toISOString() ?? null,
        state_change: activity.stateChange.toISOString(),
        wait_event_type: wait?.type ?? null,
        wait_event: wait?.event ?? null,
        state: activity.processId === running ? 'active' : activity.state,
        query: activity.query,
        backend_type: 'client backend',
      };
    });
  }

  #lockRows(): object[] {
    const rows: object[] = [];
    const row = (key: string, processId: number, mode: Mode, granted: boolean, waitstart: Date | null) => {
      const [classid, objid, objsubid] = lockTag(key);
      rows.push({ classid, objid, objsubid, virtualtransaction: `${processId}/1`, pid: processId, mode: LOCK_MODE_NAMES[mode], granted, waitstart: waitstart?.toISOString() ?? null });
    };
    for (const [key, holders] of this.#locks) {
      for (const [processId, counts] of holders) {
        for (const mode of ['x', 's'] as const) if (counts[mode].session + counts[mode].xact > 0) row(key, processId, mode, true, null);
      }
    }
    for (const backend of this.#backends.values()) {
      if (backend.waiting) row(backend.waiting.key, backend.activity.processId, backend.waiting.mode, false, backend.waiting.since);
    }
    return rows;
  }
}

/** A statement on one line, shortened: for logs and `pgdev sessions`. */
export function statementSummary(sql: string, max = 60): string {
  const text = sql.replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 3)}...` : text || '-';
}

/** `pg_locks`' classid, objid and objsubid of an advisory lock, as Postgres sets them. */
function lockTag(key: string): [number, number, number] {
  const [width, first, second] = key.split('.');
  if (width === '4') return [Number(first) >>> 0, Number(second) >>> 0, 2];
  const value = BigInt.asUintN(64, BigInt(first!));
  return [Number(value >> 32n), Number(value & 0xffffffffn), 1];
}

function describeKey(key: string): string {
  const [width, first, second] = key.split('.');
  return width === '4' ? `(${first}, ${second})` : first!;
}

/**
 * What undoes an attempt that must wait: a ROLLBACK of the transaction it left open, and a Close of each named
 * statement it prepared (the retry prepares them again).
 */
export function undoForRetry(batch: Buffer, rollback: boolean): Buffer {
  const undo: Buffer[] = rollback ? [query('ROLLBACK')] : [];
  for (const { type, start } of eachMessage(batch)) {
    if (type !== Frontend.Parse || batch[start + 5] === 0) continue;
    const name = batch.subarray(start + 5, batch.indexOf(0, start + 5));
    undo.push(message(Frontend.Close, [0x53], name, [0]));
  }
  if (undo.length > (rollback ? 1 : 0)) undo.push(sync());
  return Buffer.concat(undo);
}

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration setting (`lock_timeout`, `statement_timeout`) in milliseconds: `1000`, `'1s'`, `'500ms'`; 0 if unset. */
export function settingMs(value: string | undefined): number {
  const match = value === undefined ? null : DURATION.exec(value);
  return match ? Number(match[1]) * UNIT_MS[match[2] ?? 'ms']! : 0;
}
