/**
 * @module
 * What a statement may leave behind in the one engine session, shared by both front doors: session settings
 * (read back after statements that may change them) and temporary relations (dropped when their owner ends).
 */
import { HIDDEN_TEMP_PATTERN, quoteIdent, type Lease } from './engine.js';

/** Statements that may change session settings; the settings are read back after them. */
const SETTINGS_CHANGE = /(?:^|;|\*\/|\n)\s*(?:set|reset|discard)\b|\bset_config\s*\(/i;
/** Statements that may create temporary relations. */
const TEMP_CREATE = /\bcreate\s+(?:(?:global|local)\s+)?temp(?:orary)?\b|\bselect\b[^;]*\binto\s+temp(?:orary)?\b/i;

export const mayChangeSettings = (sql: string): boolean => SETTINGS_CHANGE.test(sql);
export const mayCreateTempRelations = (sql: string): boolean => TEMP_CREATE.test(sql);

/**
 * The temporary relations (name -> relkind) the current user of the engine can see: those of other sessions are
 * hidden under a prefixed name while they do not hold the engine (see {@link Engine}), and left out.
 */
export function tempRelations(lease: Lease): Map<string, string> {
  const rows = lease.run(`SELECT c.relname, c.relkind FROM pg_class c
    WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind IN ('r','p','v','m','S','f') AND c.relname !~ '${HIDDEN_TEMP_PATTERN}'`);
  return new Map(rows.map(([relation, kind]) => [relation ?? '', kind ?? 'r']));
}

const DROP_KIND: Record<string, string> = { r: 'TABLE', p: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', S: 'SEQUENCE', f: 'FOREIGN TABLE' };

/** Drops relations (name -> relkind), tables first since CASCADE takes their sequences and views along. */
export function dropRelations(lease: Lease, relations: Map<string, string>): void {
  const isTable = (kind: string) => Number(kind === 'r' || kind === 'p');
  const ordered = [...relations].sort(([, a], [, b]) => isTable(b) - isTable(a));
  for (const [relation, kind] of ordered) {
    try {
      lease.run(`DROP ${DROP_KIND[kind] ?? 'TABLE'} IF EXISTS pg_temp.${quoteIdent(relation)} CASCADE`);
    } catch {
      // Best effort: gone already, or dropped along with its table.
    }
  }
}
