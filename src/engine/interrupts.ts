/**
 * @module
 * Interrupts that reach a running statement (issue 19): a cancel, a terminate, `statement_timeout`, `lock_timeout`
 * and `transaction_timeout`, delivered while the engine's thread is busy inside PGlite.
 *
 * Postgres stops a statement when it finds its interrupt flags set (`InterruptPending`, `QueryCancelPending`) at one
 * of its CHECK_FOR_INTERRUPTS, and wakes from a wait when its latch is set: a signal handler writes those words. Here
 * the engine's WebAssembly memory is shared (`wasm.ts`), so any thread can write them with `Atomics` (see
 * {@link interrupt}): that is all an interrupt does, it never runs code of the engine's.
 *
 * - Cancel: `QueryCancelPending`, as Postgres' SIGINT handler. Only while a statement of the session named runs
 *   (between {@link EngineInterrupts.begin} and {@link EngineInterrupts.end}, under a lock shared with them): a
 *   cancel that arrives between statements cancels nothing, as on Postgres. Postgres also drops a cancel it finds
 *   pending as it reads each message of a statement, so one raised as the statement begins is raised again by the
 *   watchers until the statement fails ({@link raiseDroppedCancel}); one that comes just before it begins is kept
 *   for it (`CancelNext`), and the engine answers it (`Engine`).
 * - Terminate: `ProcDiePending` makes Postgres end the backend (FATAL, `proc_exit`), which inside PGlite wrecks the
 *   engine for good (every later query fails with "CommitTransactionCommand: unexpected state DEFAULT"). So a
 *   terminate cancels the statement and records why; {@link EngineInterrupts.end} returns it, and the caller closes
 *   the connection with 57P01 (its transaction is rolled back when the connection closes).
 * - Timeouts: Postgres arms them with `setitimer`, whose JavaScript timer cannot fire while the thread is busy.
 *   Postgres keeps them in its `all_timeouts` table (found once in memory, see {@link findTimeoutTable}): the active
 *   ones and when each is due. Whoever sees one due (the engine's own wait, or a watcher thread with
 *   {@link watchTimeouts}) does what its handler would: sets its indicator and `QueryCancelPending`, so Postgres
 *   answers with its own text ("canceling statement due to statement timeout", 57014; "... lock timeout", 55P03).
 *   `transaction_timeout` ends the statement as a terminate does, the reason being 25P04.
 * - Waits: `pg_sleep` and other latch waits spin in PGlite, reading the clock (`clock_time_get`) millions of times a
 *   second. Once a stack trace shows the clock is read from a latch wait, the read sleeps (`Atomics.wait` on the
 *   latch word) for a slice, and wakes at once when an interrupt sets the latch.
 */
import type { Extension, PGlite } from '@electric-sql/pglite';
import { shareSideModuleMemory } from './wasm.js';

export const InterruptKind = { Cancel: 'cancel', Terminate: 'terminate' } as const;
export type InterruptKind = (typeof InterruptKind)[keyof typeof InterruptKind];

/** Why a statement was ended for good: the connection is to be closed with this error (severity FATAL). */
export type Termination = { readonly code: string; readonly message: string };

export const TERMINATIONS = {
  1: { code: '57P01', message: 'terminating connection due to administrator command' },
  2: { code: '25P04', message: 'terminating connection due to transaction timeout' },
} as const satisfies Record<number, Termination>;
const TerminationId = { None: 0, Administrator: 1, TransactionTimeout: 2 } as const;

/**
 * What another thread needs to interrupt an engine; it survives `postMessage` (the memory is shared). Addresses
 * are byte offsets in the memory.
 */
export type InterruptTarget = {
  readonly memory: WebAssembly.Memory;
  /** The engine's side of the bargain: which session runs a statement, the lock, the timer sequence. */
  readonly control: SharedArrayBuffer;
  readonly interruptPending: number;
  readonly queryCancelPending: number;
  /** The address of `MyLatch`, a pointer to the latch (whose first word is `is_set`). */
  readonly myLatch: number;
  /** The address of Postgres' `all_timeouts` table; 0 if it was not found (timeouts then stay undelivered). */
  readonly timeouts: number;
};

// The control words (Int32Array indices).
const Control = {
  /** 0 free, 1 held: {@link interrupt}, the timeout delivery and begin/end take it to change what follows. */
  Lock: 0,
  /** The id of the session whose statement runs now; 0 between statements. */
  Running: 1,
  /** A {@link TerminationId} for the running statement. */
  Terminate: 2,
  /** Bumped whenever the timers may have changed (setitimer): watchers wait on it. */
  TimerSequence: 3,
  /**
   * A session whose next statement is cancelled as it begins: a cancel that came while that session's statement was
   * received but not yet started (see {@link interrupt}; the session clears it if it has nothing to start).
   */
  CancelNext: 4,
  /** Counts the statements begun (see {@link EngineInterrupts.begin}): names the running one. */
  Statement: 5,
  /** The statement an {@link interrupt} raised a cancel for: until it fails, a dropped cancel is raised again. */
  CancelRaised: 6,
  /** The last statement in which the engine raised an error (its top-level error recovery ran). */
  Failed: 7,
} as const;
const CONTROL_WORDS = 8;

// Postgres 18's TimeoutId values and `timeout_params` layout (src/include/utils/timeout.h, backend/utils/misc/timeout.c):
// { int index; bool active; bool indicator; handler *; int64 start_time; int64 fin_time; int interval_in_ms } on wasm32.
const Timeout = { Lock: 2, Statement: 3, IdleInTransaction: 7, Transaction: 8, IdleSession: 9, User: 13 } as const;
const TIMEOUT_COUNT = Timeout.User + 10;
/** The timeouts whose handler ends the backend (FATAL), with the error Postgres closes the connection with. */
const SESSION_ENDING_TIMEOUTS = [
  { id: Timeout.IdleInTransaction, termination: { code: '25P03', message: 'terminating connection due to idle-in-transaction timeout' } },
  { id: Timeout.IdleSession, termination: { code: '57P05', message: 'terminating connection due to idle-session timeout' } },
  { id: Timeout.Transaction, termination: TERMINATIONS[2] },
] as const;
const TIMEOUT_STRIDE = 40;
const TIMEOUT_ACTIVE = 4;
const TIMEOUT_INDICATOR = 5;
const TIMEOUT_HANDLER = 8;
const TIMEOUT_FIN_TIME = 24;
/** Postgres' timestamps count microseconds from 2000-01-01. */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000;

/** The id of the session whose statement the engine runs now; 0 if none. */
export function runningSession(target: InterruptTarget): number {
  return Atomics.load(new Int32Array(target.control), Control.Running);
}

/**
 * Interrupts the running statement of `sessionId` (any session's if omitted); false if none was running. A cancel of
 * a session that runs nothing now cancels its next statement as it begins, unless the session clears that first
 * (`Engine.cancelNext`): so a statement that starts between this call and the session hearing of the cancel is not
 * missed.
 */
export function interrupt(target: InterruptTarget, kind: InterruptKind, sessionId?: number): boolean {
  const control = new Int32Array(target.control);
  return withLock(control, () => {
    const running = Atomics.load(control, Control.Running);
    if (running === 0 || (sessionId !== undefined && running !== sessionId)) {
      if (kind === InterruptKind.Cancel && sessionId !== undefined) Atomics.store(control, Control.CancelNext, sessionId);
      return false;
    }
    if (kind === InterruptKind.Terminate) Atomics.store(control, Control.Terminate, TerminationId.Administrator);
    raiseCancel(target);
    // Postgres drops a cancel it finds pending as it reads a command, and the statement may not have read its own
    // yet: the watchers raise it again until the statement fails (see raiseDroppedCancel).
    Atomics.store(control, Control.CancelRaised, Atomics.load(control, Control.Statement));
    wakeWatchers(control);
    return true;
  });
}

/**
 * Raises again a cancel (or terminate) that {@link interrupt} raised for the running statement if Postgres took it
 * without failing: it found it as it read one of the statement's messages (Parse, Bind, Execute, each read
 * separately), and dropped it, as it drops a cancel that comes between commands. Returns whether that cancel is still
 * to be delivered (the caller looks again soon). A statement that catches the cancel itself (`EXCEPTION WHEN
 * query_canceled`) is cancelled again, where Postgres would let it go on.
 */
export function raiseDroppedCancel(target: InterruptTarget): boolean {
  const control = new Int32Array(target.control);
  return withLock(control, () => {
    const statement = Atomics.load(control, Control.Statement);
    if (Atomics.load(control, Control.Running) === 0 || Atomics.load(control, Control.CancelRaised) !== statement) return false;
    if (Atomics.load(control, Control.Failed) === statement) return false;
    if (Atomics.load(new Int32Array(target.memory.buffer), target.queryCancelPending >> 2) === 0) raiseCancel(target);
    return true;
  });
}

/**
 * Delivers the running statement's due timeouts (statement, lock, transaction), as their handlers would; returns
 * whether it delivered one. Safe to call from any thread at any time.
 */
export function deliverDueTimeouts(target: InterruptTarget, nowMicros = Date.now() * 1000): boolean {
  if (target.timeouts === 0) return false;
  const control = new Int32Array(target.control);
  if (Atomics.load(control, Control.Running) === 0) return false;
  return withLock(control, () => {
    if (Atomics.load(control, Control.Running) === 0) return false;
    const table = new TimeoutTable(target);
    const now = BigInt(nowMicros - POSTGRES_EPOCH_MICROS);
    let due = false;
    for (const id of [Timeout.Lock, Timeout.Statement]) {
      if (table.active(id) && !table.indicator(id) && table.finTime(id) <= now) {
        table.setIndicator(id);
        due = true;
      }
    }
    if (table.active(Timeout.Transaction) && table.finTime(Timeout.Transaction) <= now && Atomics.load(control, Control.Terminate) === 0) {
      Atomics.store(control, Control.Terminate, TerminationId.TransactionTimeout);
      due = true;
    }
    if (due) raiseCancel(target);
    return due;
  });
}

/** When the running statement's next timeout is due (milliseconds since the epoch), if it has one. */
export function nextTimeoutDue(target: InterruptTarget): number | undefined {
  if (target.timeouts === 0) return undefined;
  const control = new Int32Array(target.control);
  if (Atomics.load(control, Control.Running) === 0) return undefined;
  const table = new TimeoutTable(target);
  let next: bigint | undefined;
  for (const id of [Timeout.Lock, Timeout.Statement, Timeout.Transaction]) {
    if (!table.active(id) || table.indicator(id)) continue;
    if (id === Timeout.Transaction && Atomics.load(control, Control.Terminate) !== 0) continue;
    const due = table.finTime(id);
    if (next === undefined || due < next) next = due;
  }
  return next === undefined ? undefined : (Number(next) + POSTGRES_EPOCH_MICROS) / 1000;
}

/** Timeouts are looked at this often even if no timer change was signalled. */
const WATCH_RECHECK_MS = 50;
/** How often a raised cancel is looked at until the statement fails (see {@link raiseDroppedCancel}). */
const DROPPED_CANCEL_RECHECK_MS = 1;

/**
 * For a thread with an event loop (the database process's watcher): delivers the engine's timeouts when they are
 * due, however busy the engine's thread is. Returns a function that stops watching.
 */
export function watchTimeouts(target: InterruptTarget): () => void {
  const control = new Int32Array(target.control);
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const sequence = Atomics.load(control, Control.TimerSequence);
      deliverDueTimeouts(target);
      const cancelling = raiseDroppedCancel(target);
      const due = cancelling ? Date.now() + DROPPED_CANCEL_RECHECK_MS : nextTimeoutDue(target);
      // Never asleep for longer than WATCH_RECHECK_MS, running or not: a statement may arm its timeout without a
      // setitimer (Postgres calls it only when the new alarm is due before the one it thinks is pending), and
      // begin() wakes nobody.
      const wait = due === undefined ? WATCH_RECHECK_MS : Math.min(Math.max(0, due - Date.now()), WATCH_RECHECK_MS);
      const result = waitAsync(control, Control.TimerSequence, sequence, wait);
      if (result.async) await result.value;
    }
  };
  void loop();
  return () => {
    stopped = true;
    wakeWatchers(control);
  };
}

/** `Atomics.waitAsync` (Node 16+; typed from ES2024, newer than this project's lib). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeout: number): { async: boolean; value: unknown };
}).waitAsync;

function raiseCancel(target: InterruptTarget): void {
  const memory = new Int32Array(target.memory.buffer);
  Atomics.store(memory, target.queryCancelPending >> 2, 1);
  Atomics.store(memory, target.interruptPending >> 2, 1);
  const latch = Atomics.load(memory, target.myLatch >> 2);
  if (latch !== 0) {
    Atomics.store(memory, latch >> 2, 1);
    Atomics.notify(memory, latch >> 2);
  }
}

/** Makes every {@link watchTimeouts} loop look again now (the timers, or a raised cancel, changed). */
function wakeWatchers(control: Int32Array): void {
  Atomics.add(control, Control.TimerSequence, 1);
  Atomics.notify(control, Control.TimerSequence);
}

function withLock<T>(control: Int32Array, work: () => T): T {
  while (Atomics.compareExchange(control, Control.Lock, 0, 1) !== 0) Atomics.wait(control, Control.Lock, 1, 1);
  try {
    return work();
  } finally {
    Atomics.store(control, Control.Lock, 0);
    Atomics.notify(control, Control.Lock, 1);
  }
}

class TimeoutTable {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #base: number;
  constructor(target: InterruptTarget) {
    const buffer = target.memory.buffer;
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
    this.#base = target.timeouts;
  }
  active(id: number): boolean {
    return Atomics.load(this.#bytes, this.#base + id * TIMEOUT_STRIDE + TIMEOUT_ACTIVE) !== 0;
  }
  indicator(id: number): boolean {
    return Atomics.load(this.#bytes, this.#base + id * TIMEOUT_STRIDE + TIMEOUT_INDICATOR) !== 0;
  }
  setIndicator(id: number): void {
    Atomics.store(this.#bytes, this.#base + id * TIMEOUT_STRIDE + TIMEOUT_INDICATOR, 1);
  }
  finTime(id: number): bigint {
    return this.#view.getBigInt64(this.#base + id * TIMEOUT_STRIDE + TIMEOUT_FIN_TIME, true);
  }
}

/**
 * Where the table was found last: the same module puts its static data at the same address in every instance, so
 * the next engine (of this thread, or of a thread given it with {@link rememberTimeoutTable}) is looked at there
 * first instead of scanning (about 30 ms in a new thread, measured).
 */
let knownTimeoutTable = 0;

/** The table's address as another thread found it (see {@link knownTimeoutTable}); checked before it is used. */
export function rememberTimeoutTable(address: number): void {
  if (address > 0) knownTimeoutTable = address;
}

/** The address this thread knows (0: none yet), to give a new thread. */
export function rememberedTimeoutTable(): number {
  return knownTimeoutTable;
}

/**
 * Finds Postgres' `all_timeouts` table (static, not exported) in the engine's memory, once it has started: the only
 * run of {@link TIMEOUT_COUNT} entries whose first word counts 0, 1, 2, ..., with handlers registered for the
 * statement and lock timeouts and none for the standby ones. Returns 0 if there is no such run (another Postgres).
 */
export function findTimeoutTable(memory: WebAssembly.Memory, below: number): number {
  const words = new Int32Array(memory.buffer, 0, Math.min(below, memory.buffer.byteLength) >> 2);
  if (knownTimeoutTable > 0 && knownTimeoutTable < below && isTimeoutTable(words, knownTimeoutTable >> 2)) return knownTimeoutTable;
  const stride = TIMEOUT_STRIDE >> 2;
  const last = words.length - TIMEOUT_COUNT * stride;
  let found = 0;
  // Each candidate's second entry counts 1: jumping between 1s with the typed array's native search takes a few ms,
  // where looking at every word took 75-150 ms in a new thread (its code not optimised yet), on every start.
  for (let one = words.indexOf(1, stride); one !== -1 && one - stride < last; one = words.indexOf(1, one + 1)) {
    const start = one - stride;
    if (start % 2 !== 0 || !isTimeoutTable(words, start)) continue; // entries are 8-byte aligned
    if (found !== 0) return 0; // two candidates: trust neither
    found = start * 4;
  }
  knownTimeoutTable = found;
  return found;
}

function isTimeoutTable(words: Int32Array, start: number): boolean {
  const stride = TIMEOUT_STRIDE >> 2;
  if (words[start + stride] !== 1 || words[start] !== 0) return false;
  let entry = 2;
  while (entry < TIMEOUT_COUNT && words[start + entry * stride] === entry) entry++;
  if (entry < TIMEOUT_COUNT) return false;
  const handler = (id: number) => words[start + id * stride + (TIMEOUT_HANDLER >> 2)];
  return handler(Timeout.Statement) !== 0 && handler(Timeout.Lock) !== 0 && handler(Timeout.User) === 0;
}

/** A latch wait is only trusted to be one after this many clock reads in a row from the same place. */
const SPIN_READS = 1024;
/** Once a stack showed a latch wait, this many more slices are slept at the same place before looking again. */
const TRUSTED_SLEEPS = 9;
/** At most this much of a wait is slept past its end (a slice is this share of the time waited so far). */
const SLICE_SHARE = 1 / 50;
const MAX_SLICE_MS = 200;
const CLOCK_MONOTONIC = 1;
/** The clock's result is written to this address by wasi's `clock_time_get(id, precision, address)`. */
type ClockTimeGet = (id: number, precision: bigint, address: number) => number;
type SetItimer = (which: number, milliseconds: number) => number;
/** Emscripten's delivery of an expired `setitimer` (raises SIGALRM, which runs Postgres' `handle_sig_alarm`). */
type Alarm = (which: number, now: number) => void;
const ITIMER_REAL = 0;
/** PGlite's memory: 128 MiB to start with, up to 2 GiB (PGlite's own figures). */
const MAXIMUM_PAGES = 32768;
/** Where `dlopen`'s handle (emscripten's `struct dso`) keeps the library's file name. */
const DSO_NAME_OFFSET = 36;
/** Where it keeps the library's bytes when the C side has read them already (a pointer, then a size). */
const DSO_FILE_DATA_OFFSET = 28;
type EmscriptenFs = { readFile(path: string): Uint8Array; writeFile(path: string, data: Uint8Array): void; analyzePath(path: string): { exists: boolean } };
type Imports = Record<string, Record<string, unknown>>;

/**
 * The engine thread's side: creates the shared memory PGlite runs in and the PGlite extension that puts it in
 * place, reads the flags' addresses once PGlite is open, marks where statements begin and end, and makes latch
 * waits sleep.
 */
export class EngineInterrupts {
  readonly memory = new WebAssembly.Memory({ initial: 2048, maximum: MAXIMUM_PAGES, shared: true });
  readonly #control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
  readonly #waitFunctions: ReadonlySet<number>;
  #target: InterruptTarget | undefined;
  #alarm: Alarm | undefined;
  #fs: (() => EmscriptenFs) | undefined;
  /** Side modules already made to import the shared memory. */
  readonly #sharedLibraries = new Set<string>();
  #alarmTimer: NodeJS.Timeout | undefined;
  /** Called when a timeout that ends the session comes due while the engine is idle; see {@link onIdleTimeout}. */
  #idleTimeoutListener: ((termination: Termination) => void) | undefined;
  // Spin detection in the clock reads.
  #reads = 0;
  #nextCheck = SPIN_READS;
  /** Slices still to sleep, at the same place, before the stack is looked at again. */
  #trustedSleeps = 0;
  #readAddress = -1;
  #waitStarted = 0;

  constructor(waitFunctions: ReadonlySet<number>) {
    this.#waitFunctions = waitFunctions;
  }

  /** The PGlite extension (`extensions: { interrupts: ... }`) that gives PGlite this memory and the wrapped imports. */
  extension(): Extension {
    return {
      name: 'pgdev-interrupts',
      setup: async (pg, emscriptenOpts: Record<string, unknown>) => {
        this.#fs = () => (pg as unknown as { Module: { FS: EmscriptenFs } }).Module.FS;
        const instantiate = emscriptenOpts.instantiateWasm as (imports: Imports, done: unknown) => unknown;
        return {
          emscriptenOpts: {
            ...emscriptenOpts,
            wasmMemory: this.memory,
            instantiateWasm: (imports: Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) => {
              this.#wrapImports(imports);
              return instantiate(imports, (instance: WebAssembly.Instance, module: WebAssembly.Module) => {
                this.#alarm = instance.exports._emscripten_timeout as Alarm | undefined;
                done(instance, module);
              });
            },
          },
        };
      },
    };
  }

  /** Reads the addresses of Postgres' flags once PGlite is open. */
  attach(pglite: PGlite): void {
    const mod = pglite.Module as unknown as Record<string, unknown>;
    const address = (name: string) => {
      const value = mod[name];
      if (typeof value !== 'number' || value <= 0) throw new Error(`PGlite exports no ${name}: this version cannot be interrupted`);
      return value;
    };
    const interruptPending = address('_InterruptPending');
    // PGlite calls this (looked up on the module each time) when an error reaches Postgres' main loop.
    const recover = mod._PostgresMainLongJmp;
    if (typeof recover !== 'function') throw new Error('PGlite exports no _PostgresMainLongJmp: this version cannot be interrupted');
    mod._PostgresMainLongJmp = () => {
      Atomics.store(this.#control, Control.Failed, Atomics.load(this.#control, Control.Statement));
      return (recover as () => unknown)();
    };
    this.#target = {
      memory: this.memory,
      control: this.#control.buffer as SharedArrayBuffer,
      interruptPending,
      queryCancelPending: address('_QueryCancelPending'),
      myLatch: address('_MyLatch'),
      // Static data lies a little after the flags, below the heap; 16 MiB leaves room to spare.
      timeouts: findTimeoutTable(this.memory, interruptPending + 16 * 1024 * 1024),
    };
  }

  /** What other threads need to interrupt this engine (post it to them). */
  get target(): InterruptTarget {
    if (!this.#target) throw new Error('the engine is not open yet');
    return this.#target;
  }

  /**
   * A statement of `sessionId` starts: interrupts aimed at it apply from now. Returns whether a cancel was waiting
   * for it (taken now): the caller answers that one itself, since Postgres drops a cancel it finds pending as it
   * reads a command (see `Engine`, and {@link cancelNow} where it cannot).
   */
  begin(sessionId: number): boolean {
    const cancelled = withLock(this.#control, () => {
      Atomics.store(this.#control, Control.Terminate, TerminationId.None);
      Atomics.store(this.#control, Control.Running, sessionId);
      Atomics.add(this.#control, Control.Statement, 1);
      if (Atomics.load(this.#control, Control.CancelNext) !== sessionId) return false;
      Atomics.store(this.#control, Control.CancelNext, 0);
      return true;
    });
    // No wake-up for the watchers here (that would cost every query a thread switch): a statement that arms a
    // timeout calls setitimer, which wakes them.
    this.#restartSpinCount();
    return cancelled;
  }

  /** Raises a cancel now, as a CancelRequest would: Postgres drops it if it is reading a command then. */
  cancelNow(): void {
    if (this.#target) raiseCancel(this.#target);
  }

  /** Whether the next statement of `sessionId` is cancelled as it begins (see {@link interrupt}). */
  cancelNext(sessionId: number, cancelled: boolean): void {
    withLock(this.#control, () => {
      if (cancelled) Atomics.store(this.#control, Control.CancelNext, sessionId);
      else Atomics.compareExchange(this.#control, Control.CancelNext, sessionId, 0);
    });
  }

  /**
   * The statement has ended: a cancel that came too late to stop it is dropped (Postgres drops it too, as it reads
   * the next command). Returns why the connection is to be closed, if a terminate or a transaction timeout hit it.
   */
  end(): Termination | undefined {
    const target = this.#target;
    const terminate = withLock(this.#control, () => {
      Atomics.store(this.#control, Control.Running, 0);
      if (target) Atomics.store(new Int32Array(this.memory.buffer), target.queryCancelPending >> 2, 0);
      return Atomics.exchange(this.#control, Control.Terminate, TerminationId.None);
    });
    return terminate === TerminationId.None ? undefined : TERMINATIONS[terminate as keyof typeof TERMINATIONS];
  }

  #wrapImports(imports: Imports): void {
    const env = imports.env!;
    const wasi = imports.wasi_snapshot_preview1 ?? env;
    const clock = wasi.clock_time_get as ClockTimeGet;
    const readClock: ClockTimeGet = (id, precision, address) => {
      const result = clock(id, precision, address);
      if (id !== CLOCK_MONOTONIC || address !== this.#readAddress || this.#target === undefined) {
        this.#readAddress = id === CLOCK_MONOTONIC ? address : -1;
        this.#restartSpinCount();
        return result;
      }
      if (++this.#reads < this.#nextCheck) return result;
      if (this.#trustedSleeps > 0) this.#trustedSleeps--;
      else if (this.#inLatchWait()) this.#trustedSleeps = TRUSTED_SLEEPS;
      else {
        // A busy reader of the clock (EXPLAIN ANALYZE): look again ever more rarely.
        this.#nextCheck = Math.min(this.#nextCheck * 2, 1 << 24);
        this.#waitStarted = 0;
        return result;
      }
      this.#nextCheck = this.#reads + 1;
      this.#sleep();
      return clock(id, precision, address);
    };
    wasi.clock_time_get = readClock;
    if (env !== wasi && env.clock_time_get === clock) env.clock_time_get = readClock;
    const dlopen = env._dlopen_js as (handle: number) => number;
    env._dlopen_js = (handle: number) => {
      this.#shareLibrary(handle);
      return dlopen(handle);
    };
    const setItimer = env._setitimer_js as SetItimer;
    env._setitimer_js = ((which, milliseconds) => {
      wakeWatchers(this.#control);
      if (which !== ITIMER_REAL || !this.#alarm) return setItimer(which, milliseconds);
      clearTimeout(this.#alarmTimer);
      this.#alarmTimer = milliseconds > 0 ? setTimeout(() => this.#idleAlarm(), milliseconds).unref() : undefined;
      return 0;
    }) satisfies SetItimer;
  }

  /**
   * Makes the side module `dlopen` is about to load import the shared memory. Its bytes are read from the file, or
   * from memory where the C side of `dlopen` left them (the handle's `file_data`, `file_data_size`): then the
   * rewritten module is written to the file and the handle's copy is forgotten, so that the loader reads the file.
   */
  #shareLibrary(handle: number): void {
    const bytes = new Uint8Array(this.memory.buffer);
    const words = new Uint32Array(this.memory.buffer);
    const nameStart = handle + DSO_NAME_OFFSET;
    const path = Buffer.from(bytes.slice(nameStart, bytes.indexOf(0, nameStart))).toString('utf8');
    const fs = this.#fs?.();
    if (!fs || !fs.analyzePath(path).exists) return;
    const data = words[(handle + DSO_FILE_DATA_OFFSET) >> 2]!;
    const size = words[(handle + DSO_FILE_DATA_OFFSET + 4) >> 2]!;
    if (data !== 0 && size !== 0) {
      const shared = shareSideModuleMemory(bytes.slice(data, data + size), MAXIMUM_PAGES);
      if (!shared) return;
      fs.writeFile(path, shared);
      this.#sharedLibraries.add(path);
      words[(handle + DSO_FILE_DATA_OFFSET) >> 2] = 0;
      words[(handle + DSO_FILE_DATA_OFFSET + 4) >> 2] = 0;
      return;
    }
    if (this.#sharedLibraries.has(path)) return;
    this.#sharedLibraries.add(path);
    const shared = shareSideModuleMemory(fs.readFile(path), MAXIMUM_PAGES);
    if (shared) fs.writeFile(path, shared);
  }

  /**
   * Registers who hears of a timeout that ends the session (idle_in_transaction_session_timeout, 25P03;
   * idle_session_timeout, 57P05; transaction_timeout, 25P04) coming due while no statement runs.
   */
  onIdleTimeout(listener: (termination: Termination) => void): void {
    this.#idleTimeoutListener = listener;
  }

  /**
   * The timer fired while the engine's thread was idle (as emscripten's own timer would). Postgres' handler is run
   * for the timeouts it can take (deadlock checks, statistics updates), but not for those whose handler makes the
   * next statement end the backend: inside PGlite that exits the process. Those are reported to the listener.
   */
  #idleAlarm(): void {
    this.#alarmTimer = undefined;
    const target = this.#target;
    if (target && target.timeouts !== 0) {
      const table = new TimeoutTable(target);
      const now = BigInt(Date.now() * 1000 - POSTGRES_EPOCH_MICROS);
      const ending = SESSION_ENDING_TIMEOUTS.find(({ id }) => table.active(id) && table.finTime(id) <= now);
      if (ending) {
        this.#idleTimeoutListener?.(ending.termination);
        return;
      }
    }
    try {
      this.#alarm?.(ITIMER_REAL, performance.now());
    } catch {
      // The handler only sets flags; a closed engine has nothing left to tell.
    }
  }

  /** Stops the engine's timer (the engine is closing). */
  close(): void {
    clearTimeout(this.#alarmTimer);
    this.#alarmTimer = undefined;
    this.#alarm = undefined;
  }

  #restartSpinCount(): void {
    this.#reads = 0;
    this.#nextCheck = SPIN_READS;
    this.#trustedSleeps = 0;
    this.#waitStarted = 0;
  }

  /**
   * Whether the clock is read from a latch wait: one of the wait functions is on the stack. The stack is taken as
   * call sites, bypassing any `Error.prepareStackTrace` hook (source maps), as this runs once per slice of a wait.
   */
  #inLatchWait(): boolean {
    const { prepareStackTrace, stackTraceLimit } = Error;
    const holder: { stack?: unknown } = {};
    let callSites: NodeJS.CallSite[];
    Error.prepareStackTrace = (_error, sites) => sites;
    Error.stackTraceLimit = 8;
    try {
      Error.captureStackTrace(holder);
      callSites = holder.stack as NodeJS.CallSite[]; // formatted when first read: while the hook is ours
    } finally {
      Error.prepareStackTrace = prepareStackTrace;
      Error.stackTraceLimit = stackTraceLimit;
    }
    for (const site of callSites) {
      const match = /wasm-function\[(\d+)\]/.exec(String(site));
      if (match && this.#waitFunctions.has(Number(match[1]))) return true;
    }
    return false;
  }

  /** Sleeps a slice of a latch wait, or until the latch is set; delivers the timeouts due meanwhile. */
  #sleep(): void {
    const target = this.#target!;
    const now = Date.now();
    if (this.#waitStarted === 0) this.#waitStarted = now;
    let slice = Math.min(Math.max(1, (now - this.#waitStarted) * SLICE_SHARE), MAX_SLICE_MS);
    const due = nextTimeoutDue(target);
    if (due !== undefined) slice = Math.min(slice, Math.max(0, due - now));
    const memory = new Int32Array(this.memory.buffer);
    const latch = Atomics.load(memory, target.myLatch >> 2);
    if (latch !== 0 && slice > 0) Atomics.wait(memory, latch >> 2, 0, slice);
    deliverDueTimeouts(target);
  }
}
