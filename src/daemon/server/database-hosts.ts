/**
 * @module
 * The main process's handle on one database's host (`host/main.ts`, `host/serve.ts`), a worker thread or a
 * process: starts it, hands it connections, asks it things over its channel, and closes it. A host that ends on its
 * own (a crash) is reported through `exited`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { MessageChannel, Worker } from 'node:worker_threads';
import { InterruptKind, interrupt, rememberTimeoutTable, rememberedTimeoutTable, watchTimeouts, type InterruptTarget } from '../../engine/interrupts.js';
import { compiledPglite } from '../../engine/wasm.js';
import type { DatabaseRequests } from '../../engine/requests.js';
import { processBusyPoll } from '../../engine/busy-poll.js';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../package-root.js';
import { ErrorCode, PgdevError } from '../../errors.js';
import type { DatabaseCommand } from '../../gateway/database-commands.js';
import { Channel, processEndpoint, threadEndpoint } from '../boundary/channel.js';
import { onJsonLines } from '../boundary/json-lines.js';
import type {
  DatabaseConfig, DatabaseReady, DatabaseSession, DatabaseThreadData, HostOperations, InterruptAnswer, InterruptRequest, ServerChannel, ServerOperations,
} from '../boundary/protocol.js';

/**
 * A database host's program, bundled into one file by the build (as the CLI is: about 50 ms less to load). A thread
 * or process needs JavaScript, so it is always `dist/` (under vitest too: its global setup bundles it from `src/`).
 */
const ENTRY = path.join(PACKAGE_ROOT, 'dist', 'daemon', 'host', 'main.bundle.js');

/** How long a closing database process has to take the request before it is taken to be running a statement. */
const BUSY_CLOSE_MS = 2_000;
/** How long the watcher thread has to answer an interrupt request (it answers at once unless the process is gone). */
const INTERRUPT_ANSWER_MS = 1_000;

export type DatabaseProcessEvents = {
  /** A session ran CREATE, DROP or ALTER DATABASE: the server runs it (it owns the list of databases). */
  databaseCommand(command: DatabaseCommand, from: string): Promise<{ notice?: string }>;
  /** A transaction changed the roles of its database: they become the port's (see roles.ts); resolves to their version. */
  publishRoles(change: { base: number; catalog: string }): Promise<number>;
  /** The process has had no connection for its idle period. */
  idle(process: DatabaseProcess): void;
  log(line: string): void;
};

/**
 * Where a database runs (the "host"): a worker thread of the server's process (the default: threads share PGlite's
 * compiled code, so a database costs its engine's memory and start only) or a process of its own
 * (`PGDEV_DATABASE_HOST=process`: a crash of the engine cannot take the server with it). Both run the same code
 * (`host/main.ts`, `host/serve.ts`) behind the same {@link Channel}; a spare is one started ahead of need,
 * which has loaded pgdev and waits to be given a database.
 */
export interface Spare {
  readonly kind: DatabaseHostKind;
  readonly channel: ServerChannel;
  /** Resolves once it waits for its database. */
  readonly ready: Promise<void>;
  /** Resolves when it has ended, for whatever reason. */
  readonly exited: Promise<void>;
  /**
   * Interrupts the running statement of connection `processId` (or whichever runs), whatever the engine's thread is
   * doing; resolves to whether one was running.
   */
  interrupt(kind: InterruptKind, processId?: number): Promise<boolean>;
  /** Stops it at once, whatever it runs. */
  kill(): void;
  /** Ends a spare that was never used. */
  discard(): Promise<void>;
}

export type DatabaseHostKind = 'thread' | 'process';

/** The host of new databases: `PGDEV_DATABASE_HOST=process` for a process each. */
export function databaseHostKind(): DatabaseHostKind {
  return process.env.PGDEV_DATABASE_HOST === 'process' ? 'process' : 'thread';
}

export function spawnSpare(kind: DatabaseHostKind = databaseHostKind()): Spare {
  return kind === 'process' ? new SpareProcess() : new SpareThread();
}

/** A process of its own: its watcher thread takes interrupts over the interrupt line (`host/watcher.ts`). */
class SpareProcess implements Spare {
  readonly kind = 'process';
  readonly child: ChildProcess;
  readonly channel: ServerChannel;
  readonly exited: Promise<void>;
  readonly ready: Promise<void>;
  /** The interrupt line: its other end is the process's watcher thread. */
  #line: Duplex;
  #nextInterruptId = 1;
  /** Interrupt requests waiting for the watcher's answer. */
  #interrupts = new Map<number, (interrupted: boolean) => void>();

  constructor() {
    this.child = fork(ENTRY, [], {
      env: { ...process.env, PGDEV_DATABASE_PROCESS: 'spare' },
      execArgv: [],
      // The last is the interrupt line: its watcher thread reads it while the engine's thread is busy.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      serialization: 'json',
    });
    this.channel = new Channel<ServerOperations, HostOperations>(processEndpoint(this.child));
    this.ready = new Promise<void>((resolve) => this.channel.handle('spare', () => resolve()));
    this.exited = new Promise<void>((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.channel.close(new PgdevError(ErrorCode.StartFailed, `its process exited (${signal ?? `code ${code}`})`));
        resolve();
      }),
    );
    this.child.once('error', (error) => this.channel.close(error));
    this.#line = this.child.stdio[4] as Duplex;
    // Writing to a process that has just died fails with EPIPE: its exit is reported through `exited`.
    this.#line.on('error', () => undefined);
    onJsonLines<InterruptAnswer>(this.#line, (answer) => this.#answered(answer.id, answer.interrupted));
    void this.exited.then(() => {
      for (const id of [...this.#interrupts.keys()]) this.#answered(id, false);
    });
  }

  /** Asks the watcher thread; false if the process does not answer within a second. */
  interrupt(kind: InterruptKind, processId?: number): Promise<boolean> {
    const id = this.#nextInterruptId++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => this.#answered(id, false), INTERRUPT_ANSWER_MS);
      this.#interrupts.set(id, (interrupted) => {
        clearTimeout(timer);
        resolve(interrupted);
      });
      this.#line.write(`${JSON.stringify({ id, kind, processId } satisfies InterruptRequest)}\n`);
    });
  }

  #answered(id: number, interrupted: boolean): void {
    const resolve = this.#interrupts.get(id);
    this.#interrupts.delete(id);
    resolve?.(interrupted);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  discard(): Promise<void> {
    this.kill();
    return this.exited;
  }
}

/**
 * A worker thread of the server's process, given PGlite's module as the server compiled it. The engine's memory is
 * shared, so this (the server's main thread, never busy with a statement) interrupts it directly and delivers its
 * timeouts (`engine/interrupts.ts`).
 */
class SpareThread implements Spare {
  readonly kind = 'thread';
  readonly channel: ServerChannel;
  readonly exited: Promise<void>;
  readonly ready: Promise<void>;
  #worker: Worker;
  #target: InterruptTarget | undefined;
  #stopWatchingTimeouts: (() => void) | undefined;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.channel = new Channel<ServerOperations, HostOperations>(threadEndpoint(port1));
    this.channel.handle('engine', (target: InterruptTarget) => {
      rememberTimeoutTable(target.timeouts);
      this.#stopWatchingTimeouts?.();
      this.#target = target;
      this.#stopWatchingTimeouts = watchTimeouts(target);
    });
    // A host whose engine crashed leaves before it ends: from then on, connections wait for the next one.
    this.channel.handle('leaving', () => this.channel.close(new PgdevError(ErrorCode.StartFailed, 'its thread is ending after a crash')));
    const workerData: DatabaseThreadData = { pgdev: 'database-thread', port: port2, timeoutTable: rememberedTimeoutTable(), busyPoll: processBusyPoll().share() };
    // Started at once, so that the thread loads pgdev while PGlite compiles; it is sent the module when compiled.
    this.#worker = new Worker(ENTRY, { workerData, transferList: [port2], stdout: false, stderr: false });
    const worker = this.#worker;
    compiledPglite().then(
      (compiled) => worker.postMessage(compiled),
      () => void worker.terminate(),
    );
    this.ready = new Promise<void>((resolve) => this.channel.handle('spare', () => resolve()));
    this.exited = new Promise<void>((resolve) => {
      worker.once('error', (error) => this.channel.close(error));
      worker.once('exit', (code) => {
        this.#stopWatchingTimeouts?.();
        this.channel.close(new PgdevError(ErrorCode.StartFailed, `its thread ended (code ${code})`));
        port1.close();
        resolve();
      });
    });
  }

  interrupt(kind: InterruptKind, processId?: number): Promise<boolean> {
    return Promise.resolve(this.#target !== undefined && interrupt(this.#target, kind, processId));
  }

  kill(): void {
    void this.#worker.terminate();
  }

  discard(): Promise<void> {
    this.kill();
    return this.exited;
  }
}

/** At most this many spares are kept warm, each with a new database's engine open (about 100 MiB each). */
const MAX_WARM = 4;
/** Opens this close together count as one burst: a test runner's workers, each creating its database at once. */
const BURST_MS = 2_000;
/** Spares are warmed this long after the last take at the soonest, so that warming them does not slow down the opens in progress. */
const REFILL_DELAY_MS = 300;
/**
 * Spares are warmed only once the server's process has used less than this share of one CPU over the delay (each
 * costs about half a CPU-second and a copy of the template): a test suite's workers, busy in the databases they
 * just created, would otherwise lose a core to the spares for their next run. Looked at again every delay.
 */
const QUIET_CPU_SHARE = 0.25;
/**
 * A spare of a persistent server opens its engine ahead only where the disk has this much room: the copy it writes
 * (tens of MB) must never be what fills a nearly full disk under the user's databases.
 */
const MIN_FREE_BYTES_TO_OPEN_AHEAD = 1024 ** 3;

/**
 * Spares started ahead of need. One starts with the server (the default database's host). Once databases other
 * than the default one are in use (a test suite creating a database per worker), spares are kept *warm*: each has
 * opened a new database's engine (the template's copy) that the next `CREATE DATABASE` takes as it is, so that
 * opening it costs a catalog update. As many are kept as the largest burst of opens seen (up to {@link MAX_WARM}).
 * A burst of two or more is reported (`onBurst`), for the server to keep as many warm from its next start on.
 */
export class SparePool {
  readonly #kind: DatabaseHostKind;
  readonly #aheadDir: (() => string) | undefined;
  #warm: Array<{ readonly spare: Spare; readonly dataDir?: string }> = [];
  #cold: Spare | undefined;
  /** How many warm spares are wanted: 0 until created databases are in use. */
  #size = 0;
  #takes: number[] = [];
  /** Databases being opened now, on spares taken from here. */
  #opening = 0;
  #refillTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #onBurst: ((size: number) => void) | undefined;

  /**
   * `aheadDir`: where a warm spare of a persistent server opens its engine (a new folder each call). `onBurst`: told
   * the number of warm spares wanted when a burst of opens makes it grow to two or more.
   */
  constructor(kind: DatabaseHostKind, aheadDir?: () => string, onBurst?: (size: number) => void) {
    this.#kind = kind;
    this.#aheadDir = aheadDir;
    this.#onBurst = onBurst;
  }

  /**
   * A spare to give a database to: for a new database (`fresh`: a copy of the template), a warm one if there is one;
   * for one with data of its own (a clone, a reopen), which cannot use a warm engine, one without, so that the warm
   * ones are kept for new databases (only those count towards a burst). The caller calls `done` once the database
   * serves (or failed to): spares are warmed again only when no database is opening, so as not to slow those down.
   */
  take(fresh: boolean): { spare: Spare; done: () => void } {
    if (fresh) {
      const now = Date.now();
      this.#takes = [...this.#takes.filter((time) => now - time < BURST_MS), now];
      const size = Math.min(MAX_WARM, this.#takes.length);
      if (this.#size > 0 && size > this.#size) {
        this.#size = size;
        this.#onBurst?.(size);
      }
    }
    const spare = (fresh ? this.#warm.shift()?.spare : undefined) ?? this.#cold ?? spawnSpare(this.#kind);
    if (spare === this.#cold) this.#cold = undefined;
    this.#opening++;
    clearTimeout(this.#refillTimer);
    let done = false;
    return {
      spare,
      done: () => {
        if (done) return;
        done = true;
        this.#opening--;
        this.#scheduleRefill();
      },
    };
  }

  /** Starts one spare now (for the next open), without keeping one from then on. */
  prestart(): void {
    if (this.#closed || this.#cold) return;
    const spare = spawnSpare(this.#kind);
    this.#cold = spare;
    void spare.exited.then(() => {
      if (this.#cold === spare) this.#cold = undefined;
    });
  }

  /** From now on, keep at least `count` spares warm (a restarted server: as many as its earlier bursts needed). */
  keepWarm(count = 1): void {
    const size = Math.min(MAX_WARM, Math.max(this.#size, count));
    if (size === this.#size) return;
    // The opens before (the server's default databases, at its start) were no burst of created databases.
    if (this.#size === 0) this.#takes = [];
    this.#size = size;
    this.#scheduleRefill();
  }

  #scheduleRefill(): void {
    if (this.#size === 0 || this.#closed || this.#opening > 0) return;
    clearTimeout(this.#refillTimer);
    const since = process.cpuUsage();
    const sinceMs = performance.now();
    this.#refillTimer = setTimeout(() => {
      const used = process.cpuUsage(since);
      const share = (used.user + used.system) / 1000 / (performance.now() - sinceMs);
      if (share < QUIET_CPU_SHARE) this.#refill();
      else this.#scheduleRefill();
    }, REFILL_DELAY_MS).unref();
  }

  #refill(): void {
    while (!this.#closed && this.#warm.length < this.#size) {
      const dataDir = this.#aheadDir?.();
      if (dataDir !== undefined && freeBytes(path.dirname(dataDir)) < MIN_FREE_BYTES_TO_OPEN_AHEAD) return;
      const spare = spawnSpare(this.#kind);
      const entry = { spare, dataDir };
      this.#warm.push(entry);
      void spare.ready.then(() => spare.channel.request('openAhead', dataDir === undefined ? {} : { dataDir })).catch(() => undefined);
      void spare.exited.then(() => {
        const index = this.#warm.indexOf(entry);
        if (index < 0) return; // taken: its folder became its database's
        this.#warm.splice(index, 1);
        removeAheadDir(dataDir);
      });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#refillTimer);
    const warm = this.#warm.splice(0);
    const cold = this.#cold;
    this.#cold = undefined;
    await Promise.all([cold?.discard(), ...warm.map(({ spare }) => spare.discard())]);
    for (const { dataDir } of warm) removeAheadDir(dataDir);
  }
}

/** Bytes free for this user on the file system of `dir` (0 if it cannot be told). */
function freeBytes(dir: string): number {
  try {
    const { bavail, bsize } = fs.statfsSync(dir);
    return bavail * bsize;
  } catch {
    return 0;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function removeAheadDir(dataDir: string | undefined): void {
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}

/** Ids of the HTTP calls to hosts, unique in the server. */
let nextCallId = 1;

export class DatabaseProcess {
  readonly wirePort: number;
  /** The first and last session ids this process hands out: cancel requests are routed by them. */
  readonly sessionIds: readonly [number, number];
  /** The roles its engine had when it opened, when it was given none (the first database of a port). */
  readonly initialRoles: string | undefined;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;
  #host: Spare;
  #channel: ServerChannel;
  /** Connections sent and not yet acknowledged: an idle report that crosses one is ignored. */
  #adopting = 0;
  /**
   * Its client connections, as it last reported them (it reports every change). Kept here because a process
   * running a statement cannot answer until the statement ends.
   */
  #connections = 0;
  #closing: Promise<boolean> | undefined;

  private constructor(host: Spare, ready: DatabaseReady, sessionIds: [number, number]) {
    this.#host = host;
    this.#channel = host.channel;
    this.wirePort = ready.wirePort;
    this.initialRoles = ready.roles;
    this.sessionIds = sessionIds;
    this.exited = host.exited;
  }

  /** Gives `spare` (a process started ahead, or a new one) the database `config` and waits until it serves. */
  static async start(config: DatabaseConfig, events: DatabaseProcessEvents, idsPerProcess: number, spare: Spare): Promise<DatabaseProcess> {
    try {
      return await DatabaseProcess.#start(config, events, idsPerProcess, spare);
    } catch (error) {
      // A spare that had died waiting (killed with its server's other processes, say): once more with a new one.
      const died = await Promise.race([spare.exited.then(() => true), delay(1_000).then(() => false)]);
      if (!died) throw error;
      return DatabaseProcess.#start(config, events, idsPerProcess, spawnSpare(spare.kind));
    }
  }

  static async #start(config: DatabaseConfig, events: DatabaseProcessEvents, idsPerProcess: number, spare: Spare): Promise<DatabaseProcess> {
    const { channel } = spare;
    await Promise.race([spare.ready, spare.exited]);
    channel.handle('log', (line) => events.log(line));
    channel.handle('databaseCommand', ({ command, from }) => events.databaseCommand(command, from));
    channel.handle('publishRoles', (change) => events.publishRoles(change));
    let handle: DatabaseProcess | undefined;
    channel.handle('idle', () => {
      if (handle && handle.#adopting === 0 && !handle.#closing) events.idle(handle);
    });
    channel.handle('connections', (count) => {
      if (handle) handle.#connections = count;
    });
    let ready: DatabaseReady;
    try {
      ready = await channel.request('start', config);
    } catch (error) {
      spare.kill();
      throw new PgdevError(ErrorCode.StartFailed, `could not open database "${config.name}": ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    handle = new DatabaseProcess(spare, ready, [config.sessionIdBase, config.sessionIdBase + idsPerProcess - 1]);
    return handle;
  }

  /** Its connections, those being handed over included. */
  get connections(): number {
    return this.#connections + this.#adopting;
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Hands a client connection over; `head` is what was read of it already. */
  async adopt(socket: net.Socket, head: Buffer): Promise<void> {
    this.#adopting++;
    try {
      await this.#channel.request('adopt', { head: head.toString('base64') }, socket);
    } finally {
      this.#adopting--;
    }
  }

  /**
   * A CancelRequest already checked by the caller (`cancel-key.ts`): it stops the connection's statement if one runs;
   * otherwise the host ends the connection's wait for the engine, or cancels the statement it is about to start.
   * One or the other, never both: a cancel stops one statement.
   */
  cancel(processId: number, secretKey: number): void {
    void this.interrupt(InterruptKind.Cancel, processId).then((stopped) => {
      if (!stopped) this.#channel.request('cancel', { processId, secretKey }).catch(() => undefined);
    });
  }

  /**
   * Interrupts the statement of `processId` (or whichever runs), while the engine's thread is busy with it (see
   * {@link Spare.interrupt}). Resolves to whether one was running.
   */
  interrupt(kind: InterruptKind, processId?: number): Promise<boolean> {
    return this.#host.interrupt(kind, processId);
  }

  sessions(): Promise<DatabaseSession[]> {
    return this.#channel.request('sessions');
  }

  /** What the HTTP endpoint asks of this database, answered by its host (see `engine/requests.ts`). */
  readonly requests: DatabaseRequests = {
    sql: (request, signal) => this.#abortable(signal, (id) => this.#channel.request('sql', { id, request })),
    dump: (options) => this.#channel.request('dump', options),
    load: (script, { source, database, signal }) => this.#abortable(signal, (id) => this.#channel.request('load', { id, script, source, database })),
  };

  /** Runs call `id`, telling the host to abort it if `signal` fires (the HTTP client went away). */
  async #abortable<T>(signal: AbortSignal | undefined, call: (id: number) => Promise<T>): Promise<T> {
    const id = nextCallId++;
    const abort = () => this.#channel.emit('abort', id);
    signal?.addEventListener('abort', abort, { once: true });
    try {
      return await call(id);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  /** Asks the host (see `boundary/protocol.ts`; `start`, `adopt` and `close` are this class's own). */
  request<K extends Exclude<keyof HostOperations, 'start' | 'adopt' | 'close'>>(op: K, ...[payload]: Parameters<HostOperations[K]>): Promise<Awaited<ReturnType<HostOperations[K]>>> {
    return this.#channel.request(op, payload as never) as Promise<Awaited<ReturnType<HostOperations[K]>>>;
  }

  /** Stops the process at once (SIGKILL), whatever it is running; for a database that is being dropped. */
  async kill(): Promise<void> {
    this.#closing ??= this.exited.then(() => true);
    this.#host.kill();
    await this.exited;
  }

  /**
   * Ends its connections (57P01), closes its engine (flushing a persistent one) and waits for it to exit. A statement
   * that is running is terminated first (through the watcher thread), its transaction rolled back; a process that
   * still does not take the request within {@link BUSY_CLOSE_MS} is stopped, as in a crash. Resolves to whether a
   * statement was cut short either way.
   */
  close(): Promise<boolean> {
    this.#closing ??= (async () => {
      // A running statement is ended first (its transaction rolled back), so that the process can close cleanly.
      const interrupted = await this.interrupt(InterruptKind.Terminate);
      let taken = false;
      this.#channel.handle('closing', () => {
        taken = true;
      });
      const busyCheck = setTimeout(() => taken || this.#host.kill(), BUSY_CLOSE_MS);
      const killer = setTimeout(() => this.#host.kill(), 15_000);
      try {
        await this.#channel.request('close').catch(() => undefined);
        await this.exited;
      } finally {
        clearTimeout(busyCheck);
        clearTimeout(killer);
      }
      return interrupted || !taken;
    })();
    return this.#closing;
  }
}
