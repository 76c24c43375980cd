/**
 * @module
 * The one boundary between the server and a database's host (a worker thread or a process): what each side may
 * ask of the other, with its payload and answer, checked by the compiler on both sides of a {@link Channel}.
 * An operation answered with `void` may also be sent as an event (`emit`), which expects no answer.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SharedBusyPoll } from '../../engine/busy-poll.js';
import type { DumpOptions, DumpResult } from '../../engine/dump.js';
import type { InterruptKind, InterruptTarget } from '../../engine/interrupts.js';
import type { LoadResult } from '../../engine/load.js';
import type { SqlOutcome, SqlRequest } from '../../engine/sql-request.js';
import type { RoleCatalog } from '../../engine/role-catalog.js';
import type { SessionReport } from '../../gateway/backends.js';
import type { DatabaseCommand } from '../../gateway/database-commands.js';
import type { Channel } from './channel.js';

/** What the server tells a host when it gives it a database (the `start` request). */
export type DatabaseConfig = {
  /** The database's name: what `current_database()` answers. */
  readonly name: string;
  /**
   * The name its engine's own database has in the catalog now (it is renamed to `name` on open). A server killed
   * between a rename and its record leaves the data under `name` instead: that is tried next.
   */
  readonly engineName: string;
  /** A persistent database's folder; absent for an in-memory one. */
  readonly dataDir?: string;
  /** A tarball of a data directory to start from (an in-memory clone), deleted once read. */
  readonly fromFile?: string;
  /** The endpoint's other databases, listed in `pg_database` (oid, name). */
  readonly others: ReadonlyArray<DatabaseListing>;
  /** The oid of the role owning the database; absent: the engine's superuser. */
  readonly owner?: number;
  /** The port's roles, which the engine takes before it serves; absent for the first database of a port. */
  readonly roles?: RoleVersion;
  readonly sessionIdBase: number;
  readonly secret: string;
  readonly debug: boolean;
  readonly idleInTransactionTimeoutMs?: number;
  /** Reports `idle` after this long without a connection; 0: never. */
  readonly idleCloseMs: number;
};

export type DatabaseListing = { readonly oid: number; readonly name: string; readonly owner?: number };

/** The port's roles at one version (see `daemon/server/roles.ts`). */
export type RoleVersion = { readonly version: number; readonly catalog: RoleCatalog };

/** What a host reports once it serves; `roles`: its engine's own, when it was given none. */
export type DatabaseReady = { readonly wirePort: number; readonly roles?: RoleCatalog };

/** A connection's session as `pg_stat_activity` and `pgdev sessions` show it, with its database. */
export type DatabaseSession = SessionReport & { readonly database: string };

/** What a host answers: the server's requests. */
export type HostOperations = {
  /**
   * A spare opens an engine on a copy of the template now, in `dataDir` (a staging folder beside the databases'
   * own; absent: in memory), so that a new database starts with it (`start`) in the time a catalog update takes.
   */
  openAhead(staging: { dataDir?: string }): void;
  start(config: DatabaseConfig): DatabaseReady;
  /** A client connection (it travels with the request); `head`: what the server read of it, base64. */
  adopt(connection: { head: string }): void;
  /** A CancelRequest the server checked: ends that connection's wait for the engine, if it waits. */
  cancel(key: { processId: number; secretKey: number }): void;
  sessions(): DatabaseSession[];
  /** A `POST /sql` the server's HTTP endpoint read and checked; `id` names it for {@link HostOperations.abort}. */
  sql(call: { id: number; request: SqlRequest }): SqlOutcome;
  /** `GET /dump`. */
  dump(options: DumpOptions): DumpResult;
  /** `POST /load`: the script, read and decoded by the server. */
  load(call: { id: number; script: string; source: string; database: string }): LoadResult;
  /** The client of `sql` or `load` call `id` went away: a wait for the engine ends, a load is rolled back. */
  abort(id: number): void;
  /** Ends every connection with 57P01 (`DROP DATABASE ... WITH (FORCE)`). */
  terminateAll(): void;
  /** The port's list of databases changed: the engine's `pg_database` follows. */
  others(listing: { owner?: number; others: DatabaseListing[] }): void;
  rename(name: string): void;
  /** The port's roles changed in another database. */
  roles(next: RoleVersion): void;
  /** For each role oid, how many objects of this database depend on it, as [oid, count] pairs. */
  roleDependents(oids: readonly number[]): Array<[number, number]>;
  hasSnapshots(): boolean;
  /** CHECKPOINT, then nobody writes until `release`: the data directory can be copied. */
  hold(): void;
  release(): void;
  /** Writes a tarball of the data directory to `file`. */
  dumpToFile(file: string): void;
  reset(): void;
  snapshot(label: string): void;
  /** Resolves to false if there is no snapshot of that label. */
  restore(label: string): boolean;
  close(): void;
};

/** What the server answers: a host's requests and events. */
export type ServerOperations = {
  /** A spare has loaded and waits for its database. */
  spare(): void;
  log(line: string): void;
  /** No connection for the idle period. */
  idle(): void;
  /** Its number of client connections, on every change. */
  connections(count: number): void;
  /** `close` was taken (see DatabaseProcess.close). */
  closing(): void;
  /** A thread's engine, after every open: the server interrupts its statements through its memory. */
  engine(target: InterruptTarget): void;
  /** The engine crashed: the host ends, and takes no more connections. */
  leaving(): void;
  /** A session ran CREATE, DROP or ALTER DATABASE: the server runs it (it owns the list of databases). */
  databaseCommand(request: { command: DatabaseCommand; from: string }): { notice?: string };
  /** A transaction changed the roles of its database: they become the port's; answers their version. */
  publishRoles(change: { base: number; catalog: string }): number;
};

/** The server's side of a host's channel. */
export type ServerChannel = Channel<ServerOperations, HostOperations>;
/** A host's side of its channel to the server. */
export type HostChannel = Channel<HostOperations, ServerOperations>;

/** What a database thread is started with (`workerData`); PGlite's compiled module follows as its first message. */
export type DatabaseThreadData = {
  readonly pgdev: 'database-thread';
  readonly port: MessagePort;
  /** Where an earlier engine of the module had Postgres' timeout table (see `engine/interrupts.ts`); 0: unknown. */
  readonly timeoutTable: number;
  /** The server's busy poller (`engine/busy-poll.ts`), which this thread's engine touches. */
  readonly busyPoll: SharedBusyPoll;
};

/** What the main process asks of the watcher; without `processId`, whichever connection's statement runs. */
export type InterruptRequest = { readonly id: number; readonly kind: InterruptKind; readonly processId?: number };
/** The watcher's answer: whether a statement was running and was interrupted. */
export type InterruptAnswer = { readonly id: number; readonly interrupted: boolean };
/** What the process's main thread tells its watcher: the engine it now runs (after every open, reset or restore). */
export type WatcherMessage = { readonly target: InterruptTarget };
