/**
 * @module
 * Fast snapshots of a database's data, for test suites that restore between tests. A snapshot keeps every user
 * table's rows (binary COPY, in memory), the sequences' positions and a fingerprint of the schema. Restoring into a
 * database whose schema has not changed since is one transaction: TRUNCATE, COPY back, setval; a few milliseconds
 * for thousands of rows, and connected clients keep their sessions. When the schema did change, the caller falls
 * back to reopening a full copy of the data directory.
 */
import { Backend, eachMessage, query, readError } from './protocol.js';
import { EngineError, quoteLiteral, type Lease } from './engine.js';

export type DataSnapshot = {
  readonly fingerprint: string;
  /** `signature` tells whether a table's rows changed since (see {@link tableSignatures}). */
  readonly tables: ReadonlyArray<{ readonly name: string; readonly data: Uint8Array; signature: string }>;
  /** Foreign keys: each table's name -> the tables that reference it. */
  readonly referencedBy: ReadonlyMap<string, readonly string[]>;
  readonly sequences: ReadonlyArray<{ readonly name: string; readonly lastValue: string; readonly isCalled: boolean }>;
};

const USER_NAMESPACES = `SELECT oid FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'`;

/**
 * A digest of the user schema: relations, columns, defaults, constraints, indexes, triggers, functions, types and
 * views, leaving out what data changes touch (relfilenode after TRUNCATE, statistics).
 */
const FINGERPRINT_SQL = `WITH ns AS (${USER_NAMESPACES}),
  rel AS (SELECT * FROM pg_class WHERE relnamespace IN (SELECT oid FROM ns))
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
  SELECT concat_ws('|', 'n', oid, nspname) FROM pg_namespace WHERE oid IN (SELECT oid FROM ns)
  UNION ALL SELECT concat_ws('|', 'c', oid, relname, relnamespace, relkind, relnatts) FROM rel
  UNION ALL SELECT concat_ws('|', 'a', attrelid, attnum, attname, atttypid, atttypmod, attnotnull, attisdropped)
    FROM pg_attribute WHERE attrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws('|', 'd', oid, pg_get_expr(adbin, adrelid)) FROM pg_attrdef WHERE adrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws('|', 'k', oid, conname, pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace IN (SELECT oid FROM ns)
  UNION ALL SELECT concat_ws('|', 'i', indexrelid, indrelid, indkey) FROM pg_index WHERE indrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws('|', 't', oid, tgname, tgenabled) FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws('|', 'p', oid, proname, md5(prosrc)) FROM pg_proc WHERE pronamespace IN (SELECT oid FROM ns)
  UNION ALL SELECT concat_ws('|', 'y', oid, typname) FROM pg_type WHERE typnamespace IN (SELECT oid FROM ns)
  UNION ALL SELECT concat_ws('|', 'e', oid, enumlabel) FROM pg_enum WHERE enumtypid IN (SELECT oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM ns))
  UNION ALL SELECT concat_ws('|', 'r', oid, ev_class, md5(ev_action::text)) FROM pg_rewrite WHERE ev_class IN (SELECT oid FROM rel)
) AS schema(item)`;

const TABLES_SQL = `SELECT c.oid::regclass::text FROM pg_class c
  WHERE c.relkind = 'r' AND c.relnamespace IN (${USER_NAMESPACES}) ORDER BY c.oid`;

const SEQUENCES_SQL = `SELECT c.oid::regclass::text FROM pg_class c
  WHERE c.relkind = 'S' AND c.relnamespace IN (${USER_NAMESPACES}) ORDER BY c.oid`;

const FOREIGN_KEYS_SQL = `SELECT confrelid::regclass::text, conrelid::regclass::text FROM pg_constraint
  WHERE contype = 'f' AND connamespace IN (${USER_NAMESPACES})`;

/**
 * A cheap signature of each table's visible rows: how many, the newest xmin among them and the file they live in.
 * Any committed INSERT, UPDATE, DELETE or TRUNCATE changes it; a rolled-back change does not.
 */
function tableSignatures(lease: Lease, names: readonly string[]): string[] {
  if (names.length === 0) return [];
  const selects = names.map((name) => `SELECT concat_ws('|', count(*), max(xmin::text::bigint), pg_relation_filenode('${name.replaceAll("'", "''")}')) FROM ${name}`);
  return lease.run(selects.join(' UNION ALL ')).map(([signature]) => signature ?? '');
}

export function schemaFingerprint(lease: Lease): string {
  return lease.run(FINGERPRINT_SQL)[0]?.[0] ?? '';
}

/** The COPY TO STDOUT data of one query, as sent in its CopyData messages. */
function copyOut(lease: Lease, sql: string): Uint8Array {
  const output = lease.exec(query(sql));
  const error = readError(output);
  if (error) throw new EngineError(error);
  const chunks: Uint8Array[] = [];
  for (const { type, start, end } of eachMessage(output)) if (type === Backend.CopyData) chunks.push(output.subarray(start + 5, end));
  return Buffer.concat(chunks);
}

/** Reads the data of every user table and sequence; the caller holds the lease, outside any transaction. */
export function takeDataSnapshot(lease: Lease): DataSnapshot {
  const names = lease.run(TABLES_SQL).map(([name]) => name!);
  const signatures = tableSignatures(lease, names);
  const tables = names.map((name, i) => ({ name, data: copyOut(lease, `COPY ${name} TO STDOUT (FORMAT binary)`), signature: signatures[i]! }));
  const referencedBy = new Map<string, string[]>();
  for (const [referenced, referencing] of lease.run(FOREIGN_KEYS_SQL)) {
    referencedBy.set(referenced!, [...(referencedBy.get(referenced!) ?? []), referencing!]);
  }
  const sequences = lease.run(SEQUENCES_SQL).map(([name]) => {
    const [row] = lease.run(`SELECT last_value::text, is_called FROM ${name}`);
    return { name: name!, lastValue: row![0]!, isCalled: row![1] === 't' };
  });
  return { fingerprint: schemaFingerprint(lease), tables, referencedBy, sequences };
}

/**
 * Puts the snapshot's data back if the schema is still the one it was taken from; returns false (changing nothing)
 * if the schema changed. Only tables whose rows changed are reloaded, with the tables that reference them (TRUNCATE
 * must take those along). Runs in one transaction, so a failure leaves the data as it was.
 */
export async function restoreDataSnapshot(lease: Lease, snapshot: DataSnapshot): Promise<boolean> {
  if (schemaFingerprint(lease) !== snapshot.fingerprint) return false;
  const current = tableSignatures(lease, snapshot.tables.map((table) => table.name));
  const reload = new Set(snapshot.tables.filter((table, i) => table.signature !== current[i]).map((table) => table.name));
  for (const name of reload) for (const referencing of snapshot.referencedBy.get(name) ?? []) reload.add(referencing);
  const tables = snapshot.tables.filter((table) => reload.has(table.name));
  const begin = lease.exec(query('BEGIN; SET LOCAL session_replication_role = replica'));
  const beginError = readError(begin);
  if (beginError) throw new EngineError(beginError);
  try {
    // replica role: foreign keys and user triggers do not fire while the rows go back in.
    if (tables.length) lease.run(`TRUNCATE ${tables.map((table) => table.name).join(', ')}`);
    for (const table of tables) {
      if (table.data.length) await lease.copyFrom(`COPY ${table.name} FROM '/dev/blob' (FORMAT binary)`, table.data);
    }
    if (snapshot.sequences.length) {
      const setvals = snapshot.sequences.map((s) => `setval(${quoteLiteral(s.name)}, ${s.lastValue}, ${s.isCalled})`);
      lease.run(`SELECT ${setvals.join(', ')}`);
    }
    const signatures = tableSignatures(lease, tables.map((table) => table.name));
    lease.run('COMMIT');
    tables.forEach((table, i) => (table.signature = signatures[i]!));
    return true;
  } catch (error) {
    lease.exec(query('ROLLBACK'));
    throw error;
  }
}
