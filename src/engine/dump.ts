/**
 * @module
 * `pgdev dump`: plain SQL as pg_dump writes it, made by PGlite's WebAssembly pg_dump (`@electric-sql/pglite-tools`)
 * speaking the wire protocol to the engine in this process. pg_dump holds the engine for the whole dump (it needs one
 * consistent snapshot, and the engine is a single session), so other connections wait for it.
 *
 * pg_dump leaves the one engine session changed: its transaction open, its settings, and pglite-tools then runs
 * `DEALLOCATE ALL`, which would drop every connection's prepared statements. So the statements are dropped only if
 * pg_dump made them, the transaction is rolled back and the settings are put back before anyone else runs.
 */
import type { PGlite } from '@electric-sql/pglite';
import { ErrorCode, PgdevError } from '../errors.js';
import { quoteIdent, type Engine, type Lease } from './engine.js';

export type DumpOptions = {
  /** Only the schema (`pg_dump --schema-only`). */
  readonly schemaOnly?: boolean;
  /** Only the rows (`pg_dump --data-only`). */
  readonly dataOnly?: boolean;
  /** Leave out the settings that a Postgres of this major version does not know (pg_dump writes its own version's). */
  readonly targetVersion?: number;
};

/** Settings pg_dump 18 writes at the top of a dump, with the Postgres version that introduced them. */
const NEWER_SETTINGS: ReadonlyMap<string, number> = new Map([['transaction_timeout', 17]]);

/** The dump without the `SET` lines a Postgres of `major` would refuse as unknown settings. */
export function forTargetVersion(sql: string, major: number): string {
  return sql.replace(/^SET (\w+) = .*;\n/gm, (line, name: string) => ((NEWER_SETTINGS.get(name) ?? 0) > major ? '' : line));
}

export type DumpResult = {
  readonly sql: string;
  /** How long the engine was held: what a connection arriving during the dump waited at most. */
  readonly heldMs: number;
};

export async function dumpDatabase(engine: Engine, options: DumpOptions = {}): Promise<DumpResult> {
  if (options.schemaOnly && options.dataOnly) {
    throw new PgdevError(ErrorCode.DumpFailed, 'choose one of --schema-only and --data-only, or neither for both');
  }
  const { pgDump } = await import('@electric-sql/pglite-tools/pg_dump');
  const args = options.schemaOnly ? ['--schema-only'] : options.dataOnly ? ['--data-only'] : [];
  return engine.exclusive(async (lease) => {
    const started = performance.now();
    const before = preparedStatements(lease);
    let sql: string;
    try {
      sql = await (await pgDump({ pg: withOwnDeallocate(lease, before), args })).text();
    } catch (cause) {
      const reason = String((cause as Error)?.message ?? cause).split('\n').filter(Boolean).pop() ?? 'unknown error';
      throw new PgdevError(ErrorCode.DumpFailed, `pg_dump failed: ${reason.replace(/^pg_dump: (error: )?/, '')}`, { cause });
    } finally {
      lease.run('ROLLBACK'); // pg_dump's snapshot transaction, left open
      lease.captureSettings(); // the next lease puts the settings back to its session's
    }
    const heldMs = Math.round(performance.now() - started);
    return { sql: options.targetVersion === undefined ? sql : forTargetVersion(sql, options.targetVersion), heldMs };
  });
}

function preparedStatements(lease: Lease): Set<string> {
  return new Set(lease.run('SELECT name FROM pg_prepared_statements').map(([name]) => name!));
}

/** The engine as pglite-tools sees it, where `DEALLOCATE ALL` drops only the statements pg_dump prepared. */
function withOwnDeallocate(lease: Lease, before: Set<string>): PGlite {
  const pglite = lease.pglite;
  const exec = async (sql: string) => {
    if (sql.trim().toUpperCase() !== 'DEALLOCATE ALL') return pglite.exec(sql);
    for (const name of preparedStatements(lease)) if (!before.has(name)) lease.run(`DEALLOCATE ${quoteIdent(name)}`);
    return [];
  };
  return new Proxy(pglite, {
    get(target, property) {
      if (property === 'exec') return exec;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
