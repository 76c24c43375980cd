/**
 * @module
 * The main process's handle on one database process (`database-main.ts`): starts it, hands it connections, asks it
 * things over IPC, and closes it. A process that exits on its own (a crash) is reported through `exited`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, PgdevError } from '../errors.js';
import type { DatabaseCommand } from '../gateway/database-commands.js';
import type { SessionReport } from '../gateway/backends.js';
import { Channel } from './ipc.js';
import type { DatabaseProcessConfig, DatabaseProcessReady, DatabaseListing } from './database-main.js';

export type { DatabaseProcessConfig, DatabaseListing };

/**
 * The compiled entry, found from the package root (this module runs from `src/daemon` under vitest, `dist/daemon`, or
 * the CLI bundle in `dist/cli`: two levels down in each case). A process needs JavaScript, so it is always `dist/`.
 */
const ENTRY = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'daemon', 'database-main.js');

export type DatabaseProcessEvents = {
  /** A session ran CREATE, DROP or ALTER DATABASE: the server runs it (it owns the list of databases). */
  databaseCommand(command: DatabaseCommand, from: string): Promise<{ notice?: string }>;
  /** The process has had no connection for its idle period. */
  idle(process: DatabaseProcess): void;
  log(line: string): void;
};

export class DatabaseProcess {
  readonly name: string;
  readonly wirePort: number;
  readonly httpPort: number;
  /** The first and last session ids this process hands out: cancel requests are routed by them. */
  readonly sessionIds: readonly [number, number];
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<void>;
  #child: ChildProcess;
  #channel: Channel;
  /** Connections sent and not yet acknowledged: an idle report that crosses one is ignored. */
  #adopting = 0;
  #closing: Promise<void> | undefined;

  private constructor(name: string, child: ChildProcess, channel: Channel, ready: DatabaseProcessReady, sessionIds: [number, number], exited: Promise<void>) {
    this.name = name;
    this.#child = child;
    this.#channel = channel;
    this.wirePort = ready.wirePort;
    this.httpPort = ready.httpPort;
    this.sessionIds = sessionIds;
    this.exited = exited;
  }

  static async start(config: DatabaseProcessConfig, events: DatabaseProcessEvents, idsPerProcess: number): Promise<DatabaseProcess> {
    const child = fork(ENTRY, [], {
      env: { ...process.env, PGDEV_DATABASE_PROCESS: JSON.stringify(config) },
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    const channel = new Channel(child);
    let stderr = '';
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        channel.close(new PgdevError(ErrorCode.StartFailed, `the process of database "${config.name}" exited (${signal ?? `code ${code}`})${stderr}`));
        resolve();
      }),
    );
    channel.handle('log', (line: string) => events.log(line));
    channel.handle('databaseCommand', ({ command, from }: { command: DatabaseCommand; from: string }) => events.databaseCommand(command, from));
    let handle: DatabaseProcess | undefined;
    channel.handle('idle', () => handle && handle.#adopting === 0 && !handle.#closing && events.idle(handle));
    const ready = await new Promise<DatabaseProcessReady>((resolve, reject) => {
      channel.handle('ready', resolve);
      child.once('error', reject);
      void exited.then(() => reject(new PgdevError(ErrorCode.StartFailed, `could not open database "${config.name}": its process exited before it was ready`)));
    });
    handle = new DatabaseProcess(config.name, child, channel, ready, [config.sessionIdBase, config.sessionIdBase + idsPerProcess - 1], exited);
    return handle;
  }

  get pid(): number | undefined {
    return this.#child.pid;
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

  cancel(processId: number, secretKey: number): void {
    this.#channel.request('cancel', { processId, secretKey }).catch(() => undefined);
  }

  sessions(): Promise<Array<SessionReport & { database: string }>> {
    return this.#channel.request('sessions');
  }

  request<T = unknown>(op: 'connections' | 'terminateAll' | 'hold' | 'release' | 'dumpToFile' | 'reset' | 'snapshot' | 'restore' | 'others' | 'hasSnapshots', payload?: unknown): Promise<T> {
    return this.#channel.request<T>(op, payload);
  }

  /** Ends its connections (57P01), closes its engine (flushing a persistent one) and waits for it to exit. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const killer = setTimeout(() => this.#child.kill('SIGKILL'), 15_000);
      try {
        await this.#channel.request('close').catch(() => undefined);
        await this.exited;
      } finally {
        clearTimeout(killer);
      }
    })();
    return this.#closing;
  }
}
