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
import path from 'node:path';
import { ENGINE_SUPERUSER, Engine, EngineSession, quoteLiteral, setSessionIdBase, type Lease } from '../../engine/engine.js';
import { applyRoleCatalog, readRoleCatalog, roleDependents } from '../../engine/role-catalog.js';
import { restoreDataSnapshot, takeDataSnapshot, type DataSnapshot } from '../../engine/snapshot.js';
import { createGateway, type Gateway } from '../../gateway/gateway.js';
import { engineRequests } from '../../engine/requests.js';
import type { DatabaseCommand } from '../../gateway/database-commands.js';
import { holdDataDir } from '../../state/data-lock.js';
import type { InterruptTarget } from '../../engine/interrupts.js';
import type { DatabaseConfig, DatabaseListing, DatabaseReady, HostChannel } from '../boundary/protocol.js';
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
export async function serve(config: DatabaseConfig, channel: HostChannel, host: DatabaseHostSide, warm?: OpenedAhead): Promise<DatabaseReady> {
  const log = (line: string) => channel.emit('log', line);
  const debugLog = (line: string) => config.debug && log(line);
  setSessionIdBase(config.sessionIdBase);
  let others = config.others;
  let owner = config.owner;
  /** The port's roles as this engine has them: changes are made on this version (see daemon/server/roles.ts). */
  let roles = config.roles;
  /** The newest roles the main process sent, which an engine opened from now on (reset, restore) starts with. */
  let latestRoles = config.roles;
  /** The database's name: ALTER DATABASE ... RENAME changes it while the process runs. */
  let name = config.name;

  /** Opens the engine and makes its catalog say who it is: its own name and the endpoint's other databases. */
  const open = async (engineName: string, from?: Blob): Promise<Engine> =>
    prepare(await Engine.open({ label: name, dataDir: config.dataDir, from, database: engineName, log: debugLog }));
  const prepare = async (engine: Engine): Promise<Engine> => {
    engine.onCrash((error) => exitAfterCrash(error.message));
    host.engineOpened(engine.interruptTarget);
    const wanted = latestRoles;
    if (wanted) {
      await engine.exclusive((lease) => applyRoleCatalog(lease, wanted.catalog));
      roles = wanted;
    }
    await updateCatalog(engine, name, owner, others);
    return engine;
  };
  const fromFile = config.fromFile ? new Blob([await fs.promises.readFile(config.fromFile)]) : undefined;
  if (config.fromFile) await fs.promises.rm(config.fromFile, { force: true });
  const opening = performance.now();
  // Only this process may write its folder from now on (see state/data-lock.ts): taken before the first look at it.
  const dataLock = config.dataDir ? await holdDataDir(config.dataDir, (line) => log(`pgdev: database "${name}": ${line}`)) : undefined;
  // A database never opened (or whose folder went missing) starts from the template, whose database is `postgres`.
  const fresh = !fromFile && (!config.dataDir || !fs.existsSync(path.join(config.dataDir, 'PG_VERSION')));
  let engine: Engine;
  try {
    const ahead = await takeOpenedAhead(warm, fresh ? config.dataDir ?? null : undefined);
    if (ahead) ahead.label = name;
    engine = ahead
      ? await prepare(ahead)
      : await openUnderEitherName(fresh ? ['postgres'] : [config.engineName, config.name], (engineName) => open(engineName, fromFile));
  } catch (error) {
    dataLock?.release();
    throw error;
  }
  const openMs = Math.round(performance.now() - opening);

  const gateway: Gateway = await createGateway({
    engine,
    host: LOOPBACK,
    port: 0,
    debug: config.debug,
    log,
    idleInTransactionTimeoutMs: config.idleInTransactionTimeoutMs,
    cancelSecret: config.secret,
    onConnections: (count) => channel.emit('connections', count),
    databaseCommand: (command: DatabaseCommand, session) => channel.request('databaseCommand', { command: ownedBy(command, session.engineSession.role), from: name }),
    publishRoles: async (lease: Lease) => {
      const catalog = readRoleCatalog(lease);
      if (catalog === roles?.catalog) return;
      try {
        roles = { version: await channel.request('publishRoles', { base: roles?.version ?? 0, catalog }), catalog };
      } catch (error) {
        // Refused: the engine's roles go back to the port's (a newer change is on its way here if there is one).
        if (roles) applyRoleCatalog(lease, roles.catalog);
        throw error;
      }
    },
  });
  const requests = engineRequests(() => engine);
  /** The HTTP calls running now, by id: each is aborted if its client goes away. */
  const calls = new Map<number, AbortController>();
  const abortable = async <T>(id: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const controller = new AbortController();
    calls.set(id, controller);
    try {
      return await call(controller.signal);
    } finally {
      calls.delete(id);
    }
  };

  // Idle: no connection for idleCloseMs. The main process decides (it may have handed a connection over meanwhile).
  let idleSince = Date.now();
  if (config.idleCloseMs > 0) {
    setInterval(() => {
      if (gateway.connections > 0) idleSince = Date.now();
      else if (Date.now() - idleSince >= config.idleCloseMs) {
        idleSince = Date.now();
        channel.emit('idle');
      }
    }, Math.min(config.idleCloseMs, 1000)).unref();
  }

  /** Puts a different engine behind the connections (reset, restore): see `Gateway.suspend`. */
  const replace = async (next: () => Promise<Engine>, reason: string) => {
    const previous = engine;
    // Clients inside a transaction are disconnected first (one idle in a transaction holds the engine, and dump()
    // below would wait for it); idle ones wait, and carry on with the new engine.
    const resume = await gateway.suspend(reason);
    try {
      const fallback = await previous.dump().catch(() => undefined);
      await previous.close();
      try {
        engine = await next();
      } catch (error) {
        engine = await open(name, fallback); // never leave the database without an engine
        throw error;
      }
    } finally {
      await resume(engine);
    }
  };

  const snapshots = new Map<string, { data: DataSnapshot; full: Blob }>();
  let held: { release: () => void } | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      held?.release();
      await gateway.close();
      await engine.close();
      dataLock?.release();
    })());

  // A PANIC leaves the engine unusable: once the gateway has ended its sessions, the process exits, and the main
  // process starts the database again, which replays its WAL (as Postgres restarts after a PANIC).
  const exitAfterCrash = (why: string) => {
    log(`pgdev: database "${name}": ${why}`);
    // Leaving first makes the main process stop handing connections to this host at once: they wait for the next.
    setImmediate(() => host.leave());
    const bounded = new Promise((resolve) => setTimeout(resolve, 2_000).unref());
    setImmediate(() => void Promise.race([close().catch(() => undefined), bounded]).finally(() => host.exit(3)));
  };
  channel.handle('adopt', (payload, socket) => {
    idleSince = Date.now();
    if (socket) gateway.adopt(socket, Buffer.from(payload.head, 'base64'));
  });
  channel.handle('cancel', ({ processId, secretKey }) => gateway.cancel(processId, secretKey));
  channel.handle('sessions', () => gateway.sessions().map((session) => ({ database: name, ...session })));
  channel.handle('sql', ({ id, request }) => abortable(id, (signal) => requests.sql(request, signal)));
  channel.handle('dump', (options) => requests.dump(options));
  channel.handle('load', ({ id, script, ...options }) => abortable(id, (signal) => requests.load(script, { ...options, signal })));
  channel.handle('abort', (id) => calls.get(id)?.abort());
  channel.handle('terminateAll', async () => gateway.terminateAll('terminating connection due to administrator command'));
  channel.handle('others', async (listing) => {
    others = listing.others;
    owner = listing.owner;
    await updateCatalog(engine, name, owner, others);
  });
  channel.handle('rename', async (newName) => {
    name = newName;
    await updateCatalog(engine, name, owner, others);
  });
  // Answered at once, the change queued for the engine: a connection handed over after this message (IPC keeps the
  // order) waits behind it, so it logs in with the new roles.
  channel.handle('roles', (next) => {
    latestRoles = next;
    void engine.exclusive((lease) => {
      applyRoleCatalog(lease, next.catalog);
      roles = next;
    }).catch((error: unknown) => log(`pgdev: database "${name}" could not take the port's roles: ${String(error)}`));
  });
  channel.handle('roleDependents', (oids) => engine.exclusive((lease) => roleDependents(lease, oids)));
  channel.handle('hasSnapshots', () => snapshots.size > 0);
  // A consistent copy of the data directory: CHECKPOINT, then nobody writes until `release` (or close).
  channel.handle('hold', async () => {
    const lease = await engine.acquire(new EngineSession());
    try {
      lease.run('CHECKPOINT');
    } catch (error) {
      lease.release();
      throw error;
    }
    held = { release: () => lease.release() };
  });
  channel.handle('release', () => {
    held?.release();
    held = undefined;
  });
  channel.handle('dumpToFile', async (file) => {
    const tarball = await engine.dump();
    await fs.promises.writeFile(file, Buffer.from(await tarball.arrayBuffer()));
  });
  channel.handle('reset', () =>
    replace(async () => {
      if (config.dataDir) await fs.promises.rm(config.dataDir, { recursive: true, force: true });
      return open('postgres');
    }, 'reset'),
  );
  channel.handle('snapshot', async (label) => {
    const data = await engine.exclusive(takeDataSnapshot);
    snapshots.set(label, { data, full: await engine.dump() });
  });
  channel.handle('restore', async (label) => {
    const snapshot = snapshots.get(label);
    if (!snapshot) return false;
    if (await engine.exclusive((lease) => restoreDataSnapshot(lease, snapshot.data))) return true;
    debugLog(`${name}: snapshot "${label}": the schema changed since; reopening its full copy`);
    await replace(() => open(name, snapshot.full), 'restored');
    return true;
  });
  channel.handle('close', async () => {
    channel.emit('closing'); // taken: the server waits for the rest (see DatabaseProcess.close)
    await close();
    setImmediate(() => host.exit(0));
  });
  host.onServerGone(() => void close().finally(() => host.exit(0)));

  debugLog(`${name}: database host serves (engine open ${openMs} ms, ready ${Math.round(performance.now() - opening)} ms)`);
  const initialRoles = roles ? undefined : await engine.exclusive(readRoleCatalog);
  return { wirePort: gateway.port, ...(initialRoles === undefined ? {} : { roles: initialRoles }) };
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
