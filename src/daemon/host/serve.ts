/**
 * @module
 * One database of a server, served by its host (started through `host/main.ts`: a worker thread of the server, or a
 * process of its own), so that a long statement in it never holds up the others (PGlite blocks the thread it runs
 * on). The server hands it the connections that name its database (see `server/database-hosts.ts`), and asks it over
 * their channel for the rest (`boundary/protocol.ts`): cancel requests, the list of sessions, the HTTP endpoint's
 * `/sql`, `/dump` and `/load`, reset, snapshot and restore, clones, and closing. Its own loopback port serves the
 * connections the server relays (TLS).
 */
import fs from 'node:fs';
import { ENGINE_SUPERUSER, Engine, EngineSession, quoteLiteral, setSessionIdBase, type Lease } from '../../engine/engine.js';
import { applyRoleCatalog, readRoleCatalog, roleDependents } from '../../engine/role-catalog.js';
import { restoreDataSnapshot, takeDataSnapshot, type DataSnapshot } from '../../engine/snapshot.js';
import { createGateway, type Gateway } from '../../gateway/gateway.js';
import { engineRequests } from '../../engine/requests.js';
import type { DatabaseCommand } from '../../gateway/database-commands.js';
import { holdDataDir } from '../../state/data-lock.js';
import { startsFromTemplate } from '../../state/databases.js';
import type { InterruptTarget } from '../../engine/interrupts.js';
import type net from 'node:net';
import type { DatabaseConfig, DatabaseListing, DatabaseReady, HostChannel, HostOperations, RoleVersion } from '../boundary/protocol.js';
import { LOOPBACK } from '../server/ports.js';

/** The oid of the engine's own superuser, owner of a database that names no other. */
const SUPERUSER_OID = 10;
/** The oid of the database every engine runs (Postgres' `postgres` database); the others are catalog rows only. */
const OWN_DATABASE_OID = 5;
/** template1 and template0: real databases of every engine, never listed as others. */
const BUILT_IN_OIDS = [1, 4, OWN_DATABASE_OID];

/** What differs between a database hosted in a process of its own and one in a worker thread of the server. */
export type DatabaseHostSide = {
  /** Told of every engine it opens (and after a reset or restore): whoever interrupts its statements needs its memory. */
  engineOpened(target: InterruptTarget): void;
  /** Stops taking connections at once (after a crash): the server hands them to the next host of the database. */
  leave(): void;
  /** Ends the host (the process, or the thread). */
  exit(code: number): void;
  /** Calls `stop` if the server goes away while the host lives (a process whose server was killed). */
  onServerGone(stop: () => void): void;
};

/** An engine a spare opened ahead of need on a copy of the template (`dataDir`: its staging folder; absent: in memory). */
export type OpenedAhead = { readonly engine: Engine; readonly dataDir?: string };

/** Opens an engine ahead of need, for {@link serve} to take if its database is a new one. */
export async function openAhead(dataDir: string | undefined): Promise<OpenedAhead> {
  const engine = await Engine.open({ label: 'spare', dataDir, database: 'postgres' });
  return { engine, dataDir };
}

/**
 * The engine opened ahead, if it can be the new database's: `target` is the database's folder (null: in memory;
 * undefined: not a new database). Its staging folder is renamed into place. Otherwise it is closed and removed.
 */
async function takeOpenedAhead(warm: OpenedAhead | undefined, target: string | null | undefined): Promise<Engine | undefined> {
  if (!warm) return undefined;
  if (target === undefined || (target === null) !== (warm.dataDir === undefined)) {
    void warm.engine.close().finally(() => warm.dataDir && fs.promises.rm(warm.dataDir, { recursive: true, force: true })).catch(() => undefined);
    return undefined;
  }
  if (target !== null && warm.dataDir) {
    await fs.promises.rm(target, { recursive: true, force: true });
    await fs.promises.rename(warm.dataDir, target);
    warm.engine.relocate(target);
  }
  return warm.engine;
}

/** `warm`: an engine this host opened ahead (see {@link openAhead}), used if the database is a new one. */
export async function serve(config: DatabaseConfig, channel: HostChannel, side: DatabaseHostSide, warm?: OpenedAhead): Promise<DatabaseReady> {
  const host = await DatabaseHost.open(config, channel, side, warm);
  return host.ready();
}

type DataLock = Awaited<ReturnType<typeof holdDataDir>>;

/** What the server asks of a host once it serves a database (`openAhead` and `start` are the spare's, in main.ts). */
type OpenDatabaseOperations = Omit<HostOperations, 'openAhead' | 'start'>;

/**
 * One database served by this host: its engine (replaced by a reset or a restore), its gateway, and the answer to each
 * of the server's requests ({@link OpenDatabaseOperations}, bound to the channel by {@link DatabaseHost.open}).
 */
class DatabaseHost {
  readonly #config: DatabaseConfig;
  readonly #channel: HostChannel;
  readonly #side: DatabaseHostSide;
  /** Set by open() before anything can use it; a reset or a restore replaces it. */
  #engine!: Engine;
  #gateway!: Gateway;
  readonly #dataLock: DataLock | undefined;
  /** The database's name: ALTER DATABASE ... RENAME changes it while the host runs. */
  #name: string;
  #others: ReadonlyArray<DatabaseListing>;
  #owner: number | undefined;
  /** The port's roles as this engine has them: changes are made on this version (see daemon/server/roles.ts). */
  #roles: RoleVersion | undefined;
  /** The newest roles the server sent, which an engine opened from now on (reset, restore) starts with. */
  #latestRoles: RoleVersion | undefined;
  readonly #requests = engineRequests(() => this.#engine);
  /** The HTTP calls running now, by id: each is aborted if its client goes away. */
  readonly #calls = new Map<number, AbortController>();
  readonly #snapshots = new Map<string, { data: DataSnapshot; full: Blob }>();
  #held: { release: () => void } | undefined;
  #closing: Promise<void> | undefined;
  #idleSince = Date.now();
  readonly #openedAt = performance.now();

  private constructor(config: DatabaseConfig, channel: HostChannel, side: DatabaseHostSide, dataLock: DataLock | undefined) {
    this.#config = config;
    this.#channel = channel;
    this.#side = side;
    this.#dataLock = dataLock;
    this.#name = config.name;
    this.#others = config.others;
    this.#owner = config.owner;
    this.#roles = config.roles;
    this.#latestRoles = config.roles;
  }

  static async open(config: DatabaseConfig, channel: HostChannel, side: DatabaseHostSide, warm?: OpenedAhead): Promise<DatabaseHost> {
    setSessionIdBase(config.sessionIdBase);
    const log = (line: string) => channel.emit('log', line);
    const fromFile = config.fromFile ? new Blob([await fs.promises.readFile(config.fromFile)]) : undefined;
    if (config.fromFile) await fs.promises.rm(config.fromFile, { force: true });
    // Only this host may write its folder from now on (see state/data-lock.ts): taken before the first look at it.
    const dataLock = config.dataDir ? await holdDataDir(config.dataDir, (line) => log(`pgdev: database "${config.name}": ${line}`)) : undefined;
    const host = new DatabaseHost(config, channel, side, dataLock);
    // A database never opened (or whose folder went missing) starts from the template, whose database is `postgres`.
    const fresh = startsFromTemplate(config.dataDir, config.fromFile);
    try {
      const ahead = await takeOpenedAhead(warm, fresh ? config.dataDir ?? null : undefined);
      if (ahead) ahead.label = config.name;
      host.#engine = ahead
        ? await host.#prepare(ahead)
        : await openUnderEitherName(fresh ? ['postgres'] : [config.engineName, config.name], (engineName) => host.#open(engineName, fromFile));
    } catch (error) {
      dataLock?.release();
      throw error;
    }
    host.#debugLog(`${config.name}: engine open in ${Math.round(performance.now() - host.#openedAt)} ms`);
    host.#gateway = await host.#createGateway();
    host.#watchIdle();
    host.#bind();
    side.onServerGone(() => void host.#close().finally(() => side.exit(0)));
    return host;
  }

  /** What the server is told once the database serves. */
  async ready(): Promise<DatabaseReady> {
    this.#debugLog(`${this.#name}: database host serves (ready ${Math.round(performance.now() - this.#openedAt)} ms)`);
    const initialRoles = this.#roles ? undefined : await this.#engine.exclusive(readRoleCatalog);
    return { wirePort: this.#gateway.port, ...(initialRoles === undefined ? {} : { roles: initialRoles }) };
  }

  /** Answers each of the server's requests with the method of the same name; the compiler checks each pair. */
  #bind(): void {
    const channel = this.#channel;
    const operations: { [K in keyof OpenDatabaseOperations]: (payload: Parameters<OpenDatabaseOperations[K]>[0], socket?: net.Socket) => ReturnType<OpenDatabaseOperations[K]> | Promise<ReturnType<OpenDatabaseOperations[K]>> } = {
      adopt: (connection, socket) => this.adopt(connection, socket),
      cancel: (key) => this.#gateway.cancel(key.processId, key.secretKey),
      sessions: () => this.#gateway.sessions().map((session) => ({ database: this.#name, ...session })),
      sql: ({ id, request }) => this.#abortable(id, (signal) => this.#requests.sql(request, signal)),
      dump: (options) => this.#requests.dump(options),
      load: ({ id, script, ...options }) => this.#abortable(id, (signal) => this.#requests.load(script, { ...options, signal })),
      abort: (id) => this.#calls.get(id)?.abort(),
      terminateAll: () => this.#gateway.terminateAll('terminating connection due to administrator command'),
      others: (listing) => this.others(listing),
      rename: (newName) => this.rename(newName),
      roles: (next) => this.takeRoles(next),
      roleDependents: (oids) => this.#engine.exclusive((lease) => roleDependents(lease, oids)),
      hasSnapshots: () => this.#snapshots.size > 0,
      hold: () => this.hold(),
      release: () => this.release(),
      dumpToFile: (file) => this.dumpToFile(file),
      reset: () => this.reset(),
      snapshot: (label) => this.snapshot(label),
      restore: (label) => this.restore(label),
      close: () => this.close(),
    };
    for (const [op, handler] of Object.entries(operations)) channel.handle(op as keyof OpenDatabaseOperations, handler as never);
  }

  adopt(connection: { head: string }, socket?: net.Socket): void {
    this.#idleSince = Date.now();
    if (socket) this.#gateway.adopt(socket, Buffer.from(connection.head, 'base64'));
  }

  async others(listing: { owner?: number; others: DatabaseListing[] }): Promise<void> {
    this.#others = listing.others;
    this.#owner = listing.owner;
    await this.#updateCatalog();
  }

  async rename(newName: string): Promise<void> {
    this.#name = newName;
    await this.#updateCatalog();
  }

  /**
   * Answered at once, the change queued for the engine: a connection handed over after this message (the channel keeps
   * the order) waits behind it, so it logs in with the new roles.
   */
  takeRoles(next: RoleVersion): void {
    this.#latestRoles = next;
    void this.#engine.exclusive((lease) => {
      applyRoleCatalog(lease, next.catalog);
      this.#roles = next;
    }).catch((error: unknown) => this.#log(`pgdev: database "${this.#name}" could not take the port's roles: ${String(error)}`));
  }

  /** A consistent copy of the data directory: CHECKPOINT, then nobody writes until `release` (or close). */
  async hold(): Promise<void> {
    const lease = await this.#engine.acquire(new EngineSession());
    try {
      lease.run('CHECKPOINT');
    } catch (error) {
      lease.release();
      throw error;
    }
    this.#held = { release: () => lease.release() };
  }

  release(): void {
    this.#held?.release();
    this.#held = undefined;
  }

  async dumpToFile(file: string): Promise<void> {
    const tarball = await this.#engine.dump();
    await fs.promises.writeFile(file, Buffer.from(await tarball.arrayBuffer()));
  }

  reset(): Promise<void> {
    return this.#replace(async () => {
      if (this.#config.dataDir) await fs.promises.rm(this.#config.dataDir, { recursive: true, force: true });
      return this.#open('postgres');
    }, 'reset');
  }

  async snapshot(label: string): Promise<void> {
    const data = await this.#engine.exclusive(takeDataSnapshot);
    this.#snapshots.set(label, { data, full: await this.#engine.dump() });
  }

  async restore(label: string): Promise<boolean> {
    const snapshot = this.#snapshots.get(label);
    if (!snapshot) return false;
    if (await this.#engine.exclusive((lease) => restoreDataSnapshot(lease, snapshot.data))) return true;
    this.#debugLog(`${this.#name}: snapshot "${label}": the schema changed since; reopening its full copy`);
    await this.#replace(() => this.#open(this.#name, snapshot.full), 'restored');
    return true;
  }

  async close(): Promise<void> {
    this.#channel.emit('closing'); // taken: the server waits for the rest (see DatabaseProcess.close)
    await this.#close();
    setImmediate(() => this.#side.exit(0));
  }

  #log(line: string): void {
    this.#channel.emit('log', line);
  }

  #debugLog(line: string): void {
    if (this.#config.debug) this.#log(line);
  }

  /** Opens the engine and makes its catalog say who it is: its own name and the endpoint's other databases. */
  async #open(engineName: string, from?: Blob): Promise<Engine> {
    const { dataDir } = this.#config;
    return this.#prepare(await Engine.open({ label: this.#name, dataDir, from, database: engineName, log: (line) => this.#debugLog(line) }));
  }

  async #prepare(engine: Engine): Promise<Engine> {
    engine.onCrash((error) => this.#exitAfterCrash(error.message));
    this.#side.engineOpened(engine.interruptTarget);
    const wanted = this.#latestRoles;
    if (wanted) {
      await engine.exclusive((lease) => applyRoleCatalog(lease, wanted.catalog));
      this.#roles = wanted;
    }
    await updateCatalog(engine, this.#name, this.#owner, this.#others);
    return engine;
  }

  #updateCatalog(): Promise<void> {
    return updateCatalog(this.#engine, this.#name, this.#owner, this.#others);
  }

  #createGateway(): Promise<Gateway> {
    const config = this.#config;
    const channel = this.#channel;
    return createGateway({
      engine: this.#engine,
      host: LOOPBACK,
      port: 0,
      debug: config.debug,
      log: (line) => this.#log(line),
      idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
      cancelSecret: config.secret,
      onConnections: (count) => channel.emit('connections', count),
      databaseCommand: (command: DatabaseCommand, session) => channel.request('databaseCommand', { command: ownedBy(command, session.engineSession.role), from: this.#name }),
      publishRoles: async (lease: Lease) => {
        const catalog = readRoleCatalog(lease);
        if (catalog === this.#roles?.catalog) return;
        try {
          this.#roles = { version: await channel.request('publishRoles', { base: this.#roles?.version ?? 0, catalog }), catalog };
        } catch (error) {
          // Refused: the engine's roles go back to the port's (a newer change is on its way here if there is one).
          if (this.#roles) applyRoleCatalog(lease, this.#roles.catalog);
          throw error;
        }
      },
    });
  }

  /** Idle: no connection for idleCloseMs. The server decides (it may have handed a connection over meanwhile). */
  #watchIdle(): void {
    const { idleCloseMs } = this.#config;
    if (idleCloseMs <= 0) return;
    setInterval(() => {
      if (this.#gateway.connections > 0) this.#idleSince = Date.now();
      else if (Date.now() - this.#idleSince >= idleCloseMs) {
        this.#idleSince = Date.now();
        this.#channel.emit('idle');
      }
    }, Math.min(idleCloseMs, 1000)).unref();
  }

  async #abortable<T>(id: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    this.#calls.set(id, controller);
    try {
      return await call(controller.signal);
    } finally {
      this.#calls.delete(id);
    }
  }

  /** Puts a different engine behind the connections (reset, restore): see `Gateway.suspend`. */
  async #replace(next: () => Promise<Engine>, reason: string): Promise<void> {
    const previous = this.#engine;
    // Clients inside a transaction are disconnected first (one idle in a transaction holds the engine, and dump()
    // below would wait for it); idle ones wait, and carry on with the new engine.
    const resume = await this.#gateway.suspend(reason);
    try {
      const fallback = await previous.dump().catch(() => undefined);
      await previous.close();
      try {
        this.#engine = await next();
      } catch (error) {
        this.#engine = await this.#open(this.#name, fallback); // never leave the database without an engine
        throw error;
      }
    } finally {
      await resume(this.#engine);
    }
  }

  #close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#held?.release();
      await this.#gateway.close();
      await this.#engine.close();
      this.#dataLock?.release();
    })();
    return this.#closing;
  }

  /**
   * A PANIC leaves the engine unusable: once the gateway has ended its sessions, the host ends, and the server opens
   * the database again, which replays its WAL (as Postgres restarts after a PANIC).
   */
  #exitAfterCrash(why: string): void {
    this.#log(`pgdev: database "${this.#name}": ${why}`);
    // Leaving first makes the server stop handing connections to this host at once: they wait for the next.
    setImmediate(() => this.#side.leave());
    const bounded = new Promise((resolve) => setTimeout(resolve, 2_000).unref());
    setImmediate(() => void Promise.race([this.#close().catch(() => undefined), bounded]).finally(() => this.#side.exit(3)));
  }
}

/**
 * Opens an engine under the first of `names` its data answers to. The server records a database's engine name
 * after the engine was renamed (a clone's first open) or before (ALTER DATABASE ... RENAME); a kill in between leaves
 * the record one step behind or ahead of the data, and the other name is the right one.
 */
async function openUnderEitherName(names: readonly string[], open: (engineName: string) => Promise<Engine>): Promise<Engine> {
  const [first, ...others] = [...new Set(names)];
  try {
    return await open(first!);
  } catch (error) {
    for (const other of others) {
      const engine = await open(other).catch(() => undefined);
      if (engine) return engine;
    }
    throw error;
  }
}

/**
 * Makes the engine's `pg_database` list `ownName` (its own database, owned by `owner`) and `others`, writing only if
 * it differs.
 */
async function updateCatalog(engine: Engine, ownName: string, owner: number | undefined, others: ReadonlyArray<DatabaseListing>): Promise<void> {
  await engine.exclusive((lease) => {
    const listed = lease.run(`SELECT oid, datname, datdba FROM pg_database WHERE oid NOT IN (1, 4) ORDER BY oid`).map(([oid, name, dba]) => `${oid}:${name}:${dba}`);
    const wanted = [{ oid: OWN_DATABASE_OID, name: ownName, owner }, ...others]
      .sort((a, b) => a.oid - b.oid)
      .map((listing) => `${listing.oid}:${listing.name}:${listing.owner ?? SUPERUSER_OID}`);
    if (listed.join('\n') === wanted.join('\n')) return;
    const sql = catalogSql(ownName, owner, others);
    try {
      lease.run(sql);
    } catch (error) {
      lease.run('ROLLBACK');
      throw error;
    }
  });
}

/**
 * The statements that make an engine's `pg_database` list the endpoint's databases: its own database under its name
 * (renamed after a clone or a rename), and a row for each other one. Those rows are only names: nothing can connect to them
 * inside this engine (connections are routed by the server before they reach an engine).
 */
function catalogSql(ownName: string, owner: number | undefined, others: ReadonlyArray<DatabaseListing>): string {
  const statements = [
    'BEGIN',
    'SET LOCAL allow_system_table_mods = on',
    `DELETE FROM pg_database WHERE oid NOT IN (${BUILT_IN_OIDS.join(', ')})`,
  ];
  statements.push(`UPDATE pg_database SET datname = ${quoteLiteral(ownName)}, datdba = ${Number(owner ?? SUPERUSER_OID)} WHERE oid = ${OWN_DATABASE_OID}`);
  if (others.length) {
    const rows = others.map(({ oid, name, owner }) => `(${oid}, ${quoteLiteral(name)}, ${Number(owner ?? SUPERUSER_OID)})`).join(', ');
    statements.push(`INSERT INTO pg_database SELECT o.oid::oid, o.name::name, o.owner::oid, ${COPIED_COLUMNS}
      FROM (VALUES ${rows}) AS o(oid, name, owner), pg_database d WHERE d.oid = ${OWN_DATABASE_OID}`);
  }
  statements.push('COMMIT');
  return statements.join('; ');
}

/** pg_database's columns after oid and datname (Postgres 17/18), taken from the engine's own row. */
const COPIED_COLUMNS = `d.encoding, d.datlocprovider, false, true, d.dathasloginevt, d.datconnlimit, d.datfrozenxid,
  d.datminmxid, d.dattablespace, d.datcollate, d.datctype, d.datlocale, d.daticurules, d.datcollversion, d.datacl`;

/** `OWNER CURRENT_USER` (and SESSION_USER, CURRENT_ROLE) name the role of the session that sent the command. */
function ownedBy(command: DatabaseCommand, sessionRole: string | undefined): DatabaseCommand {
  const self = (owner: string | undefined) => (owner && ['current_user', 'current_role', 'session_user'].includes(owner) ? sessionRole ?? ENGINE_SUPERUSER : owner);
  if (command.kind === 'owner') return { ...command, owner: self(command.owner)! };
  if (command.kind === 'create' && command.options.owner !== undefined) return { ...command, options: { ...command.options, owner: self(command.options.owner)! } };
  return command;
}
