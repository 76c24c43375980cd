/**
 * @module
 * The roles of one database port, kept by the main process as Postgres keeps them in its shared catalogs: one set
 * for all the port's databases. A role statement runs in the database of the session that sent it; once its
 * transaction commits, that database's process publishes its role catalog here (`engine/role-catalog.ts`), and
 * this module checks it, keeps it (`roles.json` for a persistent server) and hands it to every other open database.
 * A database that opens later catches up before it serves.
 *
 * Each change carries the version it was made on: a database whose engine had not yet taken the last change
 * (it was held by a transaction) has its own change refused with 40001, and its engine put back.
 */
import { SqlError, SqlState } from '../../gateway/backend-error.js';
import { roleRows, type RoleCatalog } from '../../engine/role-catalog.js';

export type RoleState = { readonly version: number; readonly catalog: RoleCatalog };

/** What depends, in one database, on roles a change would remove. */
export type RoleDependents = { readonly database: string; readonly dependents: ReadonlyMap<number, { objects: number; ownsDatabase: boolean }> };

export type ServerRolesOptions = {
  readonly stored?: RoleState;
  /** Writes the roles after each change (persistent servers). */
  readonly save?: (state: RoleState) => void;
};

export class ServerRoles {
  #state: RoleState | undefined;
  readonly #save: ((state: RoleState) => void) | undefined;
  /** Changes are taken one at a time. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ServerRolesOptions = {}) {
    this.#state = options.stored;
    this.#save = options.save;
  }

  /** The roles every database must have; undefined until the first database has opened (it brings its own). */
  get current(): RoleState | undefined {
    return this.#state;
  }

  /** The first open database's roles become the port's, when it has none yet (a new server, or one kept before). */
  adopt(catalog: RoleCatalog): RoleState {
    if (!this.#state) this.#commit(catalog);
    return this.#state!;
  }

  /** The oid of a role by name; throws 42704 as Postgres does for an unknown one. */
  oidOf(name: string): number {
    const role = this.#state && roleRows(this.#state.catalog).find((row) => row.rolname === name);
    if (!role) throw new SqlError(SqlState.UndefinedObject, `role "${name}" does not exist`);
    return role.oid;
  }

  /** The name of a role by oid, if it exists. */
  nameOf(oid: number): string | undefined {
    return this.#state && roleRows(this.#state.catalog).find((row) => row.oid === oid)?.rolname;
  }

  /**
   * Takes a database's roles after a change made on version `base`. `dependents` is asked, for roles the change
   * removes, what the other databases still hold of them; any such object refuses the change, as Postgres refuses
   * DROP ROLE. Resolves to the new version once `broadcast` has handed it to the other databases.
   */
  publish(
    base: number,
    catalog: RoleCatalog,
    dependents: (removed: readonly number[]) => Promise<RoleDependents[]>,
    broadcast: (state: RoleState) => void,
  ): Promise<number> {
    const run = this.#queue.then(async () => {
      const before = this.#state;
      if (before && before.version !== base) {
        throw new SqlError(SqlState.SerializationFailure, 'could not change roles: another database changed them at the same time', {
          hint: 'run the statement again',
        });
      }
      if (before?.catalog === catalog) return before.version;
      const kept = new Set(roleRows(catalog).map((row) => row.oid));
      const removed = before ? roleRows(before.catalog).filter((row) => !kept.has(row.oid)) : [];
      if (removed.length) refuseIfDepended(removed, await dependents(removed.map((row) => row.oid)));
      this.#commit(catalog);
      broadcast(this.#state!);
      return this.#state!.version;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #commit(catalog: RoleCatalog): void {
    this.#state = { version: (this.#state?.version ?? 0) + 1, catalog };
    this.#save?.(this.#state);
  }
}

/** Postgres' DROP ROLE error for objects in other databases: one line of detail per database. */
function refuseIfDepended(removed: ReadonlyArray<{ oid: number; rolname: string }>, found: RoleDependents[]): void {
  for (const role of removed) {
    const lines: string[] = [];
    for (const { database, dependents } of found) {
      const held = dependents.get(role.oid);
      if (!held) continue;
      if (held.ownsDatabase) lines.push(`owner of database ${database}`);
      if (held.objects > 0) lines.push(`${held.objects} object${held.objects === 1 ? '' : 's'} in database ${database}`);
    }
    if (lines.length) {
      throw new SqlError(SqlState.DependentObjectsStillExist, `role "${role.rolname}" cannot be dropped because some objects depend on it`, {
        detail: lines.join('\n'),
      });
    }
  }
}
