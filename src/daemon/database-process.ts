/**
 * @module
 * The main process's handle on one database process (`database-main.ts`, `database-serve.ts`): starts it, hands it connections, asks it
 * things over IPC, and closes it. A process that exits on its own (a crash) is reported through `exited`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { InterruptKind } from '../engine/interrupts.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, PgdevError } from '../errors.js';
import type { DatabaseCommand } from '../gateway/database-commands.js';
import type { SessionReport } from '../gateway/backends.js';
import { Channel } from './ipc.js';
import { onJsonLines } from './json-lines.js';
import type { DatabaseProcessConfig, DatabaseProcessReady, DatabaseListing } from './database-serve.js';
import type { InterruptAnswer, InterruptRequest } from './database-watcher.js';

export type { DatabaseProcessConfig, DatabaseListing };

/**
 * The entry, bundled into one file by the build (as the CLI is: about 50 ms less to load), found from the package
 * root: this module runs from `src/daemon` under vitest, `dist/daemon`, or the CLI bundle in `dist/cli`, two levels
 * down in each case. A process needs JavaScript, so it is always `dist/`.
 */
const ENTRY = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'daemon', 'database-main.bundle.js');

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

/** A database process started ahead of need: it loads pgdev and compiles PGlite, then waits to be given a database. */
export class SpareProcess {
  readonly child: ChildProcess;
  readonly channel: Channel;
  readonly exited: Promise<void>;
  /** Resolves once it listens for its database. */
  readonly ready: Promise<void>;

  private constructor() {
    this.child = fork(ENTRY, [], {
      env: { ...process.env, PGDEV_DATABASE_PROCESS: 'spare' },
      execArgv: [],
      // The last is the interrupt line: its watcher thread reads it while the engine's thread is busy.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      serialization: 'json',
    });
    this.channel = new Channel(this.child);
    this.ready = new Promise<void>((resolve) => this.channel.handle('spare', () => resolve()));
    this.exited = new Promise<void>((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.channel.close(new PgdevError(ErrorCode.StartFailed, `its process exited (${signal ?? `code ${code}`})`));
        resolve();
      }),
    );
    this.child.once('error', (error) => this.channel.close(error));
    // Writing to a process that has just died fails with EPIPE: its exit is reported through `exited`.
    this.child.stdio[4]?.on('error', () => undefined);
  }

  static spawn(): SpareProcess {
    return new SpareProcess();
  }

  /** Ends a spare that was never used. */
  discard(): Promise<void> {
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/**
 * Keeps one spare process warm once databases other than the default one are in use (a test suite creating a
 * database per worker), so that the next open does not wait for Node and PGlite to load.
 */
export class SparePool {
  #spare: SpareProcess | undefined;
  #wanted = false;
  #closed = false;

  /** A spare to give a database to: the warm one if there is one. */
  take(): SpareProcess {
    const taken = this.#spare ?? SpareProcess.spawn();
    this.#spare = undefined;
    if (this.#wanted) this.#refill();
    return taken;
  }

  /** Starts one spare now (for the next open), without keeping one from then on. */
  prestart(): void {
    this.#refill();
  }

  /** From now on, keep one spare ready. */
  keepWarm(): void {
    this.#wanted = true;
    this.#refill();
  }

  #refill(): void {
    if (this.#closed || this.#spare) return;
    const spare = SpareProcess.spawn();
    this.#spare = spare;
    void spare.exited.then(() => {
      if (this.#spare === spare) this.#spare = undefined;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const spare = this.#spare;
    this.#spare = undefined;
    await spare?.discard();
  }
}

export class DatabaseProcess {
  readonly wirePort: number;
  readonly httpPort: number;
  /** The first and last session ids this process hands out: cancel requests are routed by them. */
  readonly sessionIds: readonly [number, number];
  /** The roles its engine had when it opened, when it was given none (the first database of a port). */
  readonly initialRoles: string | undefined;
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;
  #child: ChildProcess;
  #channel: Channel;
  /** The interrupt line: its other end is the process's watcher thread. */
  #line: Duplex;
  #nextInterruptId = 1;
  /** Interrupt requests waiting for the watcher's answer. */
  #interrupts = new Map<number, (interrupted: boolean) => void>();
  /** Connections sent and not yet acknowledged: an idle report that crosses one is ignored. */
  #adopting = 0;
  /**
   * Its client connections, as it last reported them (it reports every change). Kept here because a process
   * running a statement cannot answer until the statement ends.
   */
  #connections = 0;
  #closing: Promise<boolean> | undefined;

  private constructor(child: ChildProcess, channel: Channel, ready: DatabaseProcessReady, sessionIds: [number, number], exited: Promise<void>) {
    this.#child = child;
    this.#channel = channel;
    this.#line = child.stdio[4] as Duplex;
    onJsonLines<InterruptAnswer>(this.#line, (answer) => this.#answered(answer.id, answer.interrupted));
    void exited.then(() => {
      for (const id of [...this.#interrupts.keys()]) this.#answered(id, false);
    });
    this.wirePort = ready.wirePort;
    this.httpPort = ready.httpPort;
    this.initialRoles = ready.roles;
    this.sessionIds = sessionIds;
    this.exited = exited;
  }

  /** Gives `spare` (a process started ahead, or a new one) the database `config` and waits until it serves. */
  static async start(config: DatabaseProcessConfig, events: DatabaseProcessEvents, idsPerProcess: number, spare = SpareProcess.spawn()): Promise<DatabaseProcess> {
    const { child, channel } = spare;
    await Promise.race([spare.ready, spare.exited]);
    channel.handle('log', (line: string) => events.log(line));
    channel.handle('databaseCommand', ({ command, from }: { command: DatabaseCommand; from: string }) => events.databaseCommand(command, from));
    channel.handle('publishRoles', (change: { base: number; catalog: string }) => events.publishRoles(change));
    let handle: DatabaseProcess | undefined;
    channel.handle('idle', () => handle && handle.#adopting === 0 && !handle.#closing && events.idle(handle));
    channel.handle('connections', (count: number) => handle && (handle.#connections = count));
    let ready: DatabaseProcessReady;
    try {
      ready = await channel.request<DatabaseProcessReady>('start', config);
    } catch (error) {
      child.kill('SIGKILL');
      throw new PgdevError(ErrorCode.StartFailed, `could not open database "${config.name}": ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    handle = new DatabaseProcess(child, channel, ready, [config.sessionIdBase, config.sessionIdBase + idsPerProcess - 1], spare.exited);
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
   * A CancelRequest already checked by the caller (`cancel-key.ts`): to the watcher thread, which stops the
   * statement if that connection's is running, and to the process, which ends the connection's wait if it waits.
   */
  cancel(processId: number, secretKey: number): void {
    void this.interrupt(InterruptKind.Cancel, processId);
    this.#channel.request('cancel', { processId, secretKey }).catch(() => undefined);
  }

  /**
   * Asks the watcher thread, which acts while the engine's thread is busy (see `database-watcher.ts`), to interrupt
   * the statement of `processId` (or whichever runs). Resolves to whether one was running; false if the process
   * does not answer within a second.
   */
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



  sessions(): Promise<Array<SessionReport & { database: string }>> {
    return this.#channel.request('sessions');
  }

  request<T = unknown>(op: 'terminateAll' | 'hold' | 'release' | 'dumpToFile' | 'reset' | 'snapshot' | 'restore' | 'others' | 'hasSnapshots' | 'rename' | 'roles' | 'roleDependents', payload?: unknown): Promise<T> {
    return this.#channel.request<T>(op, payload);
  }

  /** Stops the process at once (SIGKILL), whatever it is running; for a database that is being dropped. */
  async kill(): Promise<void> {
    this.#closing ??= this.exited.then(() => true);
    this.#child.kill('SIGKILL');
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
      this.#channel.handle('closing', () => (taken = true));
      const busyCheck = setTimeout(() => taken || this.#child.kill('SIGKILL'), BUSY_CLOSE_MS);
      const killer = setTimeout(() => this.#child.kill('SIGKILL'), 15_000);
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
