/**
 * @module
 * The databases behind one database port, by name: which exist, where their data lives, and their processes (one
 * per open database, started on the first connection and closed after an idle period). CREATE, DROP and ALTER
 * DATABASE from any session end up here, in the main process, one at a time.
 *
 * The default database answers to `postgres` and `template1`; `template0` is the empty template. A new database
 * without TEMPLATE starts empty (a copy of pgdev's prepared template, as from `template0`); `TEMPLATE t` copies `t`
 * as it is at that moment: its process (if open) checkpoints and holds its engine while the copy is made.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { ErrorCode, isPgdevError } from '../../errors.js';
import { SqlError, SqlState } from '../../gateway/backend-error.js';
import { cancelSecretKey } from '../../gateway/cancel-key.js';
import type { DatabaseCommand } from '../../gateway/database-commands.js';
import type { SessionReport } from '../../gateway/backends.js';
import { DEFAULT_DATABASE_ID, FIRST_DATABASE_ID, folderSize, startsFromTemplate, type DatabaseRecord } from '../../state/databases.js';
import { InterruptKind } from '../../engine/interrupts.js';
import { dataLockFile } from '../../state/data-lock.js';
import { copyDirectory } from '../../engine/copy-directory.js';
import { DatabaseProcess, type SparePool } from './database-hosts.js';
import type { DatabaseListing } from '../boundary/protocol.js';
import { ServerRoles, type RoleDependents, type RoleState, type ServerRolesOptions } from './roles.js';
import type { Destination } from './router.js';
import {
  DEFAULT_DATABASE, EMPTY_TEMPLATE, checkCreateOptions, checkDatabaseName, isDefaultDatabaseName,
} from '../../state/database-names.js';
import { wasHandedToThread } from '../boundary/channel.js';

/** Session ids per process: each database process of a server hands out its own range (cancel requests use them). */
const IDS_PER_PROCESS = 1_000_000;
export const DEFAULT_MAX_DATABASES = 100;
export const DEFAULT_IDLE_CLOSE_MS = 300_000;
/** How long DROP DATABASE ... WITH (FORCE) lets a database end its connections before stopping its process. */
const FORCE_GRACE_MS = 1_000;
/** How long a change that removes roles waits for each other database to say what it holds of them. */
const ROLE_CHECK_WAIT_MS = 5_000;
/** How long `pgdev sessions` waits for a database's answer. */
const SESSIONS_WAIT_MS = 2_000;

/** The SQLSTATEs of the one table (engine/sql-state.ts), under the name this file uses. */
const State = SqlState;

/**
 * Where a database is in its life, one state at a time. `closed`: no host (it opens on its next connection);
 * `opening`: a host is being given it (connections wait for `opened`); `open`: its host serves it; `closing`: its
 * host is ending (idle, dropped, or the server stopping), and serves no new work. Only this file changes it.
 */
type Lifecycle =
  | { readonly state: 'closed' }
  | { readonly state: 'opening'; readonly opened: Promise<DatabaseProcess> }
  | { readonly state: 'open' | 'closing'; readonly process: DatabaseProcess };

const CLOSED: Lifecycle = { state: 'closed' };

/** The database's host if it serves (open), else undefined. */
function serving(database: Database): DatabaseProcess | undefined {
  return database.life.state === 'open' ? database.life.process : undefined;
}

/** The database's host if it has one that is not still opening (open or closing). */
function hostOf(database: Database): DatabaseProcess | undefined {
  return 'process' in database.life ? database.life.process : undefined;
}

/** Marks the database closing if `process` is still its host; answers the process. */
function markClosing(database: Database, process: DatabaseProcess): DatabaseProcess {
  if (hostOf(database) === process) database.life = { state: 'closing', process };
  return process;
}

type Database = Omit<DatabaseRecord, 'name'> & {
  /** ALTER DATABASE ... RENAME changes it. */
  name: string;
  readonly isDefault: boolean;
  life: Lifecycle;
  /** A tarball to open an in-memory clone from (deleted by the process that reads it). */
  fromFile?: string;
  /** Work that must not overlap on this database (open, close, copy), chained. */
  queue: Promise<unknown>;
};

export type DatabaseSetOptions = {
  /** `main` or `shadow`: which port's databases. */
  readonly endpoint: string;
  /** Where each database's folder is (`databases/<id>`); absent: every database is in memory. */
  readonly dataDir?: (id: number) => string;
  readonly records: readonly DatabaseRecord[];
  readonly nextId: number;
  /** Writes the list after each change (persistent servers). */
  readonly save?: (nextId: number, records: readonly DatabaseRecord[]) => void;
  readonly secret: string;
  readonly debug: boolean;
  readonly idleInTransactionTimeoutMs?: number;
  /** 0: never; the default database never closes. In-memory databases never close either (their data would go). */
  readonly idleCloseMs: number;
  /**
   * The shadow port's databases: scratch space for `prisma migrate dev`, so they close when idle, the default one
   * and in-memory ones too (their data goes; the next connection gets an empty database).
   */
  readonly scratch?: boolean;
  readonly maxDatabases: number;
  /** Gives out session id ranges across the server's processes. */
  nextSessionIdBase(): number;
  /** Processes started ahead of need, shared by the server's ports. */
  readonly spares: SparePool;
  /** The port's roles as last kept, and where to keep them. */
  readonly roles: ServerRolesOptions;
  readonly log: (line: string) => void;
};

/** `open`: its engine runs now (a database opens on its first connection, and may close when idle). */
export type DatabaseInfo = { readonly name: string; readonly sizeBytes: number; readonly open: boolean };

export class DatabaseSet {
  readonly #options: DatabaseSetOptions;
  readonly #databases = new Map<string, Database>();
  #nextId: number;
  /** Counts catalog changes: a process that started with an older list is told the new one. */
  #version = 0;
  /** Catalog changes run one at a time. */
  #catalogQueue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #roles: ServerRoles;

  constructor(options: DatabaseSetOptions) {
    this.#options = options;
    this.#roles = new ServerRoles(options.roles);
    this.#nextId = Math.max(options.nextId, FIRST_DATABASE_ID);
    const now = new Date().toISOString();
    this.#add({ id: DEFAULT_DATABASE_ID, name: DEFAULT_DATABASE, engineName: DEFAULT_DATABASE, createdAt: now }, true);
    for (const record of options.records) this.#add(record, false);
  }

  #add(record: DatabaseRecord, isDefault: boolean): Database {
    const database: Database = { ...record, isDefault, life: CLOSED, queue: Promise.resolve() };
    this.#databases.set(record.name, database);
    return database;
  }

  /** The database a name reaches, if any. */
  #find(name: string): Database | undefined {
    return this.#databases.get(isDefaultDatabaseName(name) ? DEFAULT_DATABASE : name);
  }

  get #default(): Database {
    return this.#databases.get(DEFAULT_DATABASE)!;
  }

  /** Every database name (the default once, as `postgres`). */
  names(): string[] {
    return [...this.#databases.keys()];
  }

  has(name: string): boolean {
    return this.#find(name) !== undefined;
  }

  /** Whether the default database's process runs (`/health`). */
  get defaultIsOpen(): boolean {
    return serving(this.#default) !== undefined;
  }

  /** The process of the default database, started if need be (the server's `ready` waits for it). */
  openDefault(): Promise<DatabaseProcess> {
    return this.#open(this.#default);
  }

  /** Where a client connection naming `name` goes: its database's process, or a FATAL error. */
  async route(name: string): Promise<Destination | { refused: { code: string; message: string } }> {
    if (name === EMPTY_TEMPLATE) return { refused: { code: State.ObjectNotInPrerequisiteState, message: `database "${name}" is not currently accepting connections` } };
    const database = this.#find(name);
    if (!database) return { refused: { code: State.InvalidCatalogName, message: `database "${name}" does not exist` } };
    const process = await this.#open(database);
    return { adopt: (socket: net.Socket, head: Buffer) => this.#adopt(database, process, socket, head), relayPort: process.wirePort };
  }

  /**
   * Hands a connection to the database's process. If that process has just died (killed, or ended by a PANIC) and
   * its exit is not handled yet, the connection waits for the database to open again, as a Postgres client waits
   * for a restart, instead of failing with "Channel closed".
   */
  async #adopt(database: Database, process: DatabaseProcess, socket: net.Socket, head: Buffer): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await process.adopt(socket, head);
      } catch (error) {
        if (!isGone(error) || socket.destroyed || wasHandedToThread(socket) || attempt >= MAX_ADOPT_ATTEMPTS || this.#closed) throw error;
        this.#options.log(`pgdev: database "${database.name}": its process was gone when a client connected; the client waits for it to open again`);
        await process.exited;
        if (this.#find(database.name) !== database) throw error; // dropped meanwhile
        process = await this.#open(database);
      }
    }
  }

  /** The process of a database by name, opened if need be; throws SqlError 3D000 for an unknown name. */
  async process(name: string = DEFAULT_DATABASE): Promise<DatabaseProcess> {
    const database = this.#find(name);
    if (!database) throw new SqlError(State.InvalidCatalogName, `database "${name}" does not exist`);
    return this.#open(database);
  }

  cancel(processId: number, secretKey: number): void {
    if (secretKey !== cancelSecretKey(this.#options.secret, processId)) return; // not a connection of this server's
    for (const database of this.#databases.values()) {
      const process = serving(database);
      if (process && processId >= process.sessionIds[0] && processId <= process.sessionIds[1]) process.cancel(processId, secretKey);
    }
  }

  async sessions(): Promise<Array<SessionReport & { database: string }>> {
    const open = [...this.#databases.values()].flatMap((database) => serving(database) ?? []);
    // A database running a statement answers only once it ends: its connections are left out rather than waited for.
    const reports = await Promise.all(open.map((process) => Promise.race([process.sessions().catch(() => []), delay(SESSIONS_WAIT_MS, [])])));
    return reports.flat();
  }

  /** Each database with its size on disk (0 in memory). */
  list(): DatabaseInfo[] {
    return [...this.#databases.values()].map((database) => ({
      name: database.name,
      sizeBytes: this.#options.dataDir ? folderSize(this.#options.dataDir(database.id)) : 0,
      open: serving(database) !== undefined,
    }));
  }

  /** Runs a session's CREATE, DROP or ALTER DATABASE; `from` is the database the session is connected to. */
  databaseCommand(command: DatabaseCommand, from: string): Promise<{ notice?: string }> {
    switch (command.kind) {
      case 'create':
        checkCreateOptions(command.options);
        return this.create(command.name, { template: command.template, owner: command.options.owner, from }).then(() => ({}));
      case 'drop':
        return this.drop(command.name, { ifExists: command.ifExists, force: command.force, from });
      case 'rename':
        return this.rename(command.name, command.newName, from).then(() => ({}));
      case 'owner':
        return this.setOwner(command.name, command.owner, from).then(() => ({}));
      case 'alter':
        if (!this.has(command.name)) return Promise.reject(new SqlError(State.InvalidCatalogName, `database "${command.name}" does not exist`));
        return Promise.resolve({});
    }
  }

  /** `from`: the database of the session that asked, whose `pg_database` must list the new one before this returns. */
  async create(name: string, options: { template?: string; owner?: string; from?: string } = {}): Promise<void> {
    const { opening } = await this.#catalogChange(async () => {
      checkDatabaseName(name);
      if (this.has(name) || name === EMPTY_TEMPLATE) throw new SqlError(State.DuplicateDatabase, `database "${name}" already exists`);
      if (this.#databases.size >= this.#options.maxDatabases) {
        throw new SqlError(State.ConfigurationLimitExceeded, `too many databases: this server's limit is ${this.#options.maxDatabases}`, {
          hint: 'drop databases you no longer need, or start the server with a higher limit (maxDatabases)',
        });
      }
      const templateName = options.template ?? EMPTY_TEMPLATE;
      const template = templateName === EMPTY_TEMPLATE ? undefined : this.#find(templateName);
      if (templateName !== EMPTY_TEMPLATE && !template) {
        throw new SqlError(State.InvalidCatalogName, `template database "${templateName}" does not exist`);
      }
      const owner = options.owner === undefined || options.owner === 'DEFAULT' ? undefined : this.#roles.oidOf(options.owner);
      const id = this.#nextId++;
      const record: DatabaseRecord = {
        id, name, engineName: template?.engineName ?? DEFAULT_DATABASE, createdAt: new Date().toISOString(), ...(owner === undefined ? {} : { owner }),
      };
      const fromFile = template ? await this.#copy(template, id) : undefined;
      const database = this.#add(record, false);
      this.#save();
      if (fromFile) database.fromFile = fromFile;
      await this.#announce(options.from);
      // Opened at once: whoever creates a database connects to it next, and in memory the copy lives in its process.
      return { opening: this.#open(database) };
    });
    // Answered once it serves (outside the catalog queue): a client that connects next, often with a short connect
    // timeout (postgres.js's suite: 1 s), does not wait for the open, which takes a second or more on a busy machine.
    await opening.catch((error: unknown) => this.#options.log(`pgdev: database "${name}" could not be opened: ${String(error)}`));
  }

  drop(name: string, options: { ifExists?: boolean; force?: boolean; from?: string } = {}): Promise<{ notice?: string }> {
    return this.#catalogChange(async () => {
      const database = this.#find(name);
      if (!database) {
        if (options.ifExists) return { notice: `database "${name}" does not exist, skipping` };
        throw new SqlError(State.InvalidCatalogName, `database "${name}" does not exist`);
      }
      if (database === this.#find(options.from ?? '')) throw new SqlError(State.ObjectInUse, 'cannot drop the currently open database');
      if (database.isDefault) {
        throw new SqlError(State.ObjectInUse, `cannot drop database "${name}": it is this server's default database`, {
          hint: 'to empty it, use `reset` (the API) or drop its tables',
        });
      }
      await this.#closeUnlessUsed(database, options.force ?? false);
      this.#databases.delete(database.name);
      this.#save();
      if (this.#options.dataDir) {
        const dataDir = this.#options.dataDir(database.id);
        await removeFolder(dataDir);
        fs.rmSync(dataLockFile(dataDir), { force: true }); // left behind by a process stopped with FORCE
      }
      await this.#announce(options.from);
      return {};
    });
  }

  rename(name: string, newName: string, from?: string): Promise<void> {
    return this.#catalogChange(async () => {
      const database = this.#find(name);
      if (!database) throw new SqlError(State.InvalidCatalogName, `database "${name}" does not exist`);
      if (database === this.#find(from ?? '')) throw new SqlError(SqlState.FeatureNotSupported, 'current database cannot be renamed');
      if (database.isDefault) throw new SqlError(SqlState.FeatureNotSupported, `the default database "${name}" cannot be renamed`);
      checkDatabaseName(newName);
      if (this.has(newName) || newName === EMPTY_TEMPLATE) throw new SqlError(State.DuplicateDatabase, `database "${newName}" already exists`);
      const process = await this.#openedProcess(database);
      const connections = process ? await othersGone(process) : 0;
      if (connections > 0) throw inUse(database.name, connections);
      const oldName = database.name;
      // An open database is renamed in place (an in-memory one lives only in its process); a closed one on its
      // next open (engineName keeps the name its engine has). The new name is recorded first: a server killed
      // before the engine's rename is recorded finds its engine under either name (see host/serve.ts).
      this.#setName(database, newName);
      if (process) {
        try {
          await process.request('rename', newName);
        } catch (error) {
          this.#setName(database, oldName);
          throw error;
        }
        database.engineName = newName;
        this.#save();
      }
      await this.#announce(from);
    });
  }

  /** ALTER DATABASE ... OWNER TO: the owner is the main process's to keep, as the list of databases is. */
  setOwner(name: string, owner: string, from?: string): Promise<void> {
    return this.#catalogChange(async () => {
      const database = this.#find(name);
      if (!database) throw new SqlError(State.InvalidCatalogName, `database "${name}" does not exist`);
      const oid = this.#roles.oidOf(owner);
      if (database.owner === oid) return;
      database.owner = oid;
      this.#save();
      await this.#announce(from);
    });
  }

  /**
   * A database's process changed the port's roles (see roles.ts): removed roles are looked for in every other
   * database first (closed ones are opened for it), then the others are given the new roles.
   */
  #publishRoles(origin: Database, base: number, catalog: string): Promise<number> {
    return this.#roles.publish(base, catalog, (removed) => this.#roleDependents(origin, removed), (state) => this.#broadcastRoles(origin, state));
  }

  async #roleDependents(origin: Database, removed: readonly number[]): Promise<RoleDependents[]> {
    return Promise.all([...this.#databases.values()].map(async (database) => {
      const objects = database === origin ? [] : await this.#objectsOfRoles(database, removed);
      const dependents = new Map(objects.map(([oid, count]) => [oid, { objects: count, ownsDatabase: false }]));
      const owner = database.owner;
      if (owner !== undefined && removed.includes(owner)) dependents.set(owner, { objects: dependents.get(owner)?.objects ?? 0, ownsDatabase: true });
      return { database: database.name, dependents };
    }));
  }

  /** What a database (opened if need be) holds of roles: [oid, number of objects] for each role it holds any of. */
  async #objectsOfRoles(database: Database, oids: readonly number[]): Promise<Array<[number, number]>> {
    const process = await this.#open(database);
    return withinOr(process.request('roleDependents', oids), ROLE_CHECK_WAIT_MS, () =>
      new SqlError(State.ObjectInUse, `could not check database "${database.name}" for objects of the roles being dropped: it is busy`, {
        hint: 'end the transaction that holds it, then run the statement again',
      }));
  }

  #broadcastRoles(origin: Database, state: RoleState): void {
    for (const database of this.#databases.values()) {
      const process = serving(database);
      if (database === origin || !process) continue;
      process.request('roles', state).catch((error: unknown) => {
        this.#options.log(`pgdev: could not give database "${database.name}" the new roles: ${String(error)}`);
      });
    }
  }

  #setName(database: Database, name: string): void {
    this.#databases.delete(database.name);
    database.name = name;
    this.#databases.set(name, database);
    this.#save();
  }

  /**
   * Closes every process (their connections get 57P01); the set serves nothing afterwards. Resolves to the names of
   * the databases that were running a statement and had to be stopped in the middle of it.
   */
  async close(): Promise<string[]> {
    this.#closed = true;
    await this.#catalogQueue.catch(() => undefined);
    const databases = [...this.#databases.values()];
    const cutShort = await Promise.all(databases.map((database) => this.#closeProcess(database)));
    return databases.filter((_, index) => cutShort[index]).map((database) => database.name);
  }

  #catalogChange<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#catalogQueue.then(change, change);
    this.#catalogQueue = run.catch(() => undefined);
    return run;
  }

  /** Refuses with 55006 while others are connected, unless `force`, which ends their connections; then closes it. */
  async #closeUnlessUsed(database: Database, force: boolean): Promise<void> {
    const process = await this.#openedProcess(database);
    if (process) {
      const connections = force ? process.connections : await othersGone(process);
      if (connections > 0 && !force) throw inUse(database.name, connections);
      if (connections > 0) {
        // A running statement is ended first (the process answers nothing until it ends); one that does not end
        // in time has its process stopped instead, as the database is going away (its clients see their connection end).
        await process.interrupt(InterruptKind.Terminate);
        const ended = await Promise.race([process.request('terminateAll').then(() => true, () => true), delay(FORCE_GRACE_MS, false)]);
        if (!ended) await markClosing(database, process).kill();
      }
    }
    await this.#closeProcess(database);
  }

  /** The database's process if it runs (or is starting), else undefined. */
  async #openedProcess(database: Database): Promise<DatabaseProcess | undefined> {
    if (database.life.state === 'opening') await database.life.opened.catch(() => undefined);
    return serving(database);
  }

  /** Copies a template's data for a new database: to `databases/<id>` on disk, or to a tarball for an in-memory one. */
  #copy(template: Database, id: number): Promise<string | undefined> {
    return this.#serialised(template, async () => {
      const process = serving(template);
      if (!this.#options.dataDir) {
        // In memory, the data lives only in the template's process; one never opened is still the empty template.
        if (!process) return undefined;
        const file = path.join(os.tmpdir(), `pgdev-clone-${globalThis.process.pid}-${id}.tar`);
        await process.request('dumpToFile', file).catch((error: unknown) => {
          fs.rmSync(file, { force: true });
          throw copyError(template.name, error);
        });
        return file;
      }
      const source = this.#options.dataDir(template.id);
      if (!fs.existsSync(path.join(source, 'PG_VERSION'))) return undefined; // never opened: still the empty template
      const target = this.#options.dataDir(id);
      const temporary = `${target}.copying`;
      await removeFolder(temporary);
      if (process) await holdTemplate(process, template.name);
      try {
        await copyFolder(source, temporary);
        await fs.promises.rename(temporary, target);
      } catch (error) {
        await removeFolder(temporary);
        throw copyError(template.name, error);
      } finally {
        if (process) await process.request('release').catch(() => undefined);
      }
      return undefined;
    });
  }

  /** Runs `work` once the database's earlier open, close or copy is done. */
  #serialised<T>(database: Database, work: () => Promise<T>): Promise<T> {
    const run = database.queue.then(work, work);
    database.queue = run.catch(() => undefined);
    return run;
  }

  #open(database: Database): Promise<DatabaseProcess> {
    const { life } = database;
    if (life.state === 'open') return Promise.resolve(life.process);
    if (life.state === 'opening') return life.opened;
    // Closed or closing: the open waits in the database's queue for the close to end.
    const opened = this.#serialised(database, async () => {
      if (this.#closed) throw new SqlError(SqlState.AdminShutdown, 'the server is shutting down');
      const options = this.#options;
      const persistent = options.dataDir !== undefined;
      const dataDir = options.dataDir?.(database.id);
      const fresh = startsFromTemplate(dataDir, database.fromFile);
      if (fresh && !database.isDefault) options.spares.keepWarm();
      const listedVersion = this.#version;
      const rolesVersion = this.#roles.current?.version;
      const taken = options.spares.take(fresh);
      const process = await DatabaseProcess.start(
        {
          name: database.name,
          engineName: database.engineName,
          dataDir,
          fromFile: database.fromFile,
          others: this.#listingsFor(database),
          owner: database.owner,
          roles: this.#roles.current,
          sessionIdBase: options.nextSessionIdBase(),
          secret: options.secret,
          debug: options.debug,
          idleInTransactionTimeoutMs: options.idleInTransactionTimeoutMs,
          idleCloseMs: options.scratch || (persistent && !database.isDefault) ? options.idleCloseMs : 0,
        },
        {
          databaseCommand: (command, from) => this.databaseCommand(command, from),
          publishRoles: ({ base, catalog }) => this.#publishRoles(database, base, catalog),
          idle: () => void this.#closeIdle(database),
          log: options.log,
        },
        IDS_PER_PROCESS,
        taken.spare,
      ).finally(taken.done);
      database.fromFile = undefined;
      // A database created or dropped while this one was opening: its list is stale.
      if (this.#version !== listedVersion) await process.request('others', this.#catalogFor(database));
      // The first database to open brings the roles (a new server); one that opened with older roles is caught up.
      const roles = this.#roles.current ?? (process.initialRoles === undefined ? undefined : this.#roles.adopt(process.initialRoles));
      if (roles && roles.version !== rolesVersion) await process.request('roles', roles);
      if (database.engineName !== database.name) {
        database.engineName = database.name;
        this.#save();
      }
      database.life = { state: 'open', process };
      void process.exited.then(() => {
        if (hostOf(database) === process) database.life = CLOSED;
        if (process.closing || this.#closed) return;
        options.log(`pgdev: the process of database "${database.name}" (${options.endpoint} port) exited unexpectedly`);
        // The default database is what the printed URLs reach: it comes back at once (from its last committed state).
        if (database.isDefault && persistent) void this.#open(database).catch(() => undefined);
      });
      return process;
    });
    database.life = { state: 'opening', opened };
    opened.catch(() => {
      if (database.life.state === 'opening' && database.life.opened === opened) database.life = CLOSED;
    });
    return opened;
  }

  #closeIdle(database: Database): Promise<void> {
    return this.#serialised(database, async () => {
      const process = serving(database);
      if (!process || process.connections > 0) return;
      if (await process.request('hasSnapshots').catch(() => true)) return;
      if (serving(database) !== process || process.connections > 0) return;
      const which = this.#options.scratch ? `shadow database "${database.name}"` : `database "${database.name}"`;
      this.#options.log(`pgdev: ${which} closed after ${Math.round(this.#options.idleCloseMs / 1000)} s without connections`);
      await markClosing(database, process).close();
    });
  }

  /** Resolves to whether the process had to be stopped in the middle of a statement. */
  #closeProcess(database: Database): Promise<boolean> {
    return this.#serialised(database, async () => {
      const process = hostOf(database);
      return process ? markClosing(database, process).close() : false;
    });
  }

  /** What a database's `pg_database` says besides its own name: its owner and the other databases. */
  #catalogFor(database: Database): { owner: number | undefined; others: DatabaseListing[] } {
    return { owner: database.owner, others: this.#listingsFor(database) };
  }

  /** The other databases a database's `pg_database` lists. */
  #listingsFor(database: Database): DatabaseListing[] {
    return [...this.#databases.values()].filter((other) => other !== database).map((other) => ({ oid: 100_000 + other.id, name: other.name, owner: other.owner }));
  }

  /**
   * Tells every open database the new list (its `pg_database`). Waits only for the database of the session that
   * asked (`from`), so that its next query sees the change, and not for long if it is busy (held in a transaction).
   */
  async #announce(from?: string): Promise<void> {
    const asker = from === undefined ? undefined : this.#find(from);
    let waitFor: Promise<unknown> = Promise.resolve();
    for (const database of this.#databases.values()) {
      const process = serving(database);
      if (!process) continue;
      const update = process.request('others', this.#catalogFor(database)).catch((error: unknown) => {
        this.#options.log(`pgdev: could not update the databases list of "${database.name}": ${String(error)}`);
      });
      if (database === asker) waitFor = update;
    }
    await Promise.race([waitFor, delay(2_000, undefined)]);
  }

  #save(): void {
    this.#version++;
    this.#options.save?.(
      this.#nextId,
      [...this.#databases.values()].filter((database) => !database.isDefault).map(({ id, name, engineName, createdAt, owner }) => ({ id, name, engineName, createdAt, ...(owner === undefined ? {} : { owner }) })),
    );
  }
}

/** CHECKPOINT and hold the template's engine; a template held in a transaction by a client is refused after a while. */
async function holdTemplate(process: DatabaseProcess, name: string): Promise<void> {
  const hold = process.request('hold');
  try {
    await withinOr(hold, 5_000, () => new SqlError(State.ObjectInUse, `source database "${name}" is being accessed by other users`, {
      detail: 'A session has held it in a transaction for 5 seconds; end that transaction and try again.',
    }));
  } catch (error) {
    void hold.then(() => process.request('release')).catch(() => undefined);
    throw error;
  }
}

/** `work`'s outcome, or `failure()` thrown if it has not settled within `ms` (a database busy in a transaction). */
async function withinOr<T>(work: Promise<T>, ms: number, failure: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failure()), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits up to 5 s for a database's connections to end, as Postgres does before refusing to drop a database others
 * use (a client that has just disconnected may not be gone yet); returns how many are left.
 */
async function othersGone(process: DatabaseProcess): Promise<number> {
  for (let tries = 0; tries < 50 && process.connections > 0; tries++) await delay(100, undefined);
  return process.connections;
}

function inUse(name: string, connections: number): SqlError {
  return new SqlError(State.ObjectInUse, `database "${name}" is being accessed by other users`, {
    detail: `There ${connections === 1 ? 'is 1 other session' : `are ${connections} other sessions`} using the database.`,
  });
}


/**
 * The error a failed copy of `template` answers: what failed, on which file, and what to do; branched on the errno
 * code, with SQLSTATEs as Postgres gives file errors (errcode_for_file_access).
 */
export function copyError(template: string, error: unknown): Error {
  if (error instanceof SqlError) return error;
  const { code, path: file } = error as NodeJS.ErrnoException;
  const what = `could not copy database "${template}"`;
  const where = file ? ` (${file})` : '';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return new SqlError(State.DiskFull, `${what}: no space left on device`, { hint: 'free some disk space and try again' });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new SqlError(State.InsufficientPrivilege, `${what}: permission denied${where}`, {
        hint: "give the user running pgdev read and write access to the server's folder, then try again",
      });
    case 'EMFILE':
    case 'ENFILE':
      return new SqlError(State.InsufficientResources, `${what}: too many open files`, { hint: 'close other programs or raise the open file limit (ulimit -n), then try again' });
    case 'ENOTSUP':
      return new SqlError(SqlState.InternalError, `${what}: its folder holds something other than files and folders${where}`, {
        hint: 'remove it: a database folder holds only files and folders',
      });
    default:
      return new SqlError(code === 'EIO' ? State.IoError : SqlState.InternalError, `${what}: ${code ? `error ${code}` : String(error)}${where}`, {
        hint: "check the disk that holds the server's folder, then try again",
      });
  }
}

/**
 * Copies a data directory, `PG_VERSION` last (see copy-directory.ts). A database of 10 tables x 10,000 rows (1,002
 * files, 62 MiB, ext4 without reflink; 15 interleaved runs on a loaded 2-core machine): this walk 991 ms median,
 * `cp -a --reflink=auto` 1,106, fs.promises.cp 1,447.
 */
function copyFolder(source: string, target: string): Promise<void> {
  return copyDirectory(source, target, { last: 'PG_VERSION' });
}

/** Times a connection is offered to a database whose process keeps dying under it. */
const MAX_ADOPT_ATTEMPTS = 3;

/** Whether an IPC failure means the database process is gone (exited, or its channel closed as it died). */
function isGone(error: unknown): boolean {
  return isPgdevError(error, ErrorCode.StartFailed) || (error as NodeJS.ErrnoException).code === 'ERR_IPC_CHANNEL_CLOSED';
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

async function removeFolder(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
}
