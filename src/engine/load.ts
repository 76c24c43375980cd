/**
 * @module
 * `pgdev load`: runs a SQL script (what pg_dump writes, or psql would read) in one transaction, so that a failure
 * or an interruption leaves nothing behind. COPY FROM stdin blocks run as `COPY ... FROM '/dev/blob'` with their
 * data, as the gateway runs them (PGlite cannot read COPY data from the wire). psql meta-commands that pg_dump writes
 * are understood; others are refused rather than run as SQL.
 */
import { ErrorCode, PgdevError } from '../errors.js';
import { EngineError, type Engine, type Lease } from './engine.js';
import { parseScript, ScriptSyntaxError, type ScriptItem } from './sql-script.js';

export type LoadOptions = {
  /** What the script is called in messages (a file name, or `standard input`). */
  readonly source: string;
  /** The database's name in messages. */
  readonly database: string;
  /** Aborting rolls the load back (the client went away). */
  readonly signal?: AbortSignal;
};

export type LoadResult = {
  readonly statements: number;
  /** Rows read by COPY blocks. */
  readonly copiedRows: number;
  /** Meta-commands that were skipped, one line each, for the user to see. */
  readonly notes: readonly string[];
  /** How long the engine was held. */
  readonly heldMs: number;
};

/** Meta-commands skipped without a word: `\restrict` guards psql against a hostile dump, and pgdev runs no psql. */
const SILENT_META = new Set(['restrict', 'unrestrict']);
/** Meta-commands that change nothing here, skipped with a note. */
const NOTED_META = new Set(['connect', 'c', 'encoding', 'set', 'unset', 'pset', 'echo', 'qecho']);
/** How often, in items, a long load lets the event loop see an abort. */
const ABORT_CHECK_EVERY = 200;

/** Refuses what is not a SQL script before anything runs: an archive, compressed or binary data, or text that is not UTF-8. */
export function decodeScript(bytes: Uint8Array, source: string): string {
  const head = Buffer.from(bytes.subarray(0, 8192));
  if (head.subarray(0, 5).toString('latin1') === 'PGDMP') {
    throw new PgdevError(ErrorCode.NotSql, `${source} is a pg_dump archive (custom or directory format), not SQL; turn it into SQL with \`pg_restore -f dump.sql ${source}\`, or dump with plain format (-Fp)`);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw new PgdevError(ErrorCode.NotSql, `${source} is gzip-compressed, not SQL; decompress it first (\`gunzip -c ${source} | pgdev load -\`)`);
  }
  let text: string;
  try {
    if (head.includes(0)) throw new Error('NUL byte');
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PgdevError(ErrorCode.NotSql, `${source} is not a SQL script (it holds binary data, or text that is not UTF-8); give a plain SQL file such as \`pgdev dump\` or \`pg_dump\` writes`);
  }
  return text.replace(/^\uFEFF/, '');
}

/** Refuses a dump made by a newer pg_dump, or of a newer server, than the engine's Postgres. */
export function checkDumpVersion(text: string, engineVersion: string, source: string): void {
  const head = text.slice(0, 4096);
  const engineMajor = Number.parseInt(engineVersion, 10);
  for (const [pattern, what] of [
    [/^-- Dumped by pg_dump version (\d+)(\S*)/m, 'by pg_dump'],
    [/^-- Dumped from database version (\d+)(\S*)/m, 'from Postgres'],
  ] as const) {
    const match = pattern.exec(head);
    if (match && Number(match[1]) > engineMajor) {
      throw new PgdevError(
        ErrorCode.NewerDump,
        `${source} was dumped ${what} ${match[1]}${match[2]}, newer than the Postgres ${engineVersion} pgdev runs, and may use SQL it cannot read; dump with a pg_dump of version ${engineMajor} or older`,
      );
    }
  }
}

/** Parses, checks and runs a script in one transaction on the engine, holding it for the whole load. */
export async function loadScript(engine: Engine, text: string, options: LoadOptions): Promise<LoadResult> {
  let items: ScriptItem[];
  try {
    items = parseScript(text);
  } catch (error) {
    if (!(error instanceof ScriptSyntaxError)) throw error;
    throw new PgdevError(ErrorCode.LoadFailed, `${options.source} line ${error.line}: ${error.message}; nothing was loaded`, { cause: error });
  }
  if (!items.some((item) => item.kind !== 'meta')) {
    throw new PgdevError(ErrorCode.NotSql, `${options.source} holds no SQL statement; give a plain SQL file such as \`pgdev dump\` or \`pg_dump\` writes`);
  }
  checkDumpVersion(text, engine.serverVersion, options.source);
  const notes: string[] = [];
  for (const item of items) {
    if (item.kind !== 'meta' || SILENT_META.has(item.command)) continue;
    if (!NOTED_META.has(item.command)) {
      throw new PgdevError(ErrorCode.LoadFailed, `${options.source} line ${item.line}: psql meta-command \\${item.command} is not supported; remove it (pgdev load reads what pg_dump writes); nothing was loaded`);
    }
    notes.push(`line ${item.line}: skipped \\${item.command}${item.args ? ` ${item.args}` : ''} (everything loads into database ${options.database})`);
  }

  return engine.exclusive(async (lease) => {
    const started = performance.now();
    let statements = 0;
    let copiedRows = 0;
    lease.run('BEGIN');
    let committed = false;
    try {
      for (const [index, item] of items.entries()) {
        if (index % ABORT_CHECK_EVERY === 0 && index > 0) await new Promise((resolve) => setImmediate(resolve));
        if (options.signal?.aborted) {
          throw new PgdevError(ErrorCode.LoadFailed, `the load of ${options.source} was interrupted at line ${item.line}; it was rolled back, nothing was loaded`);
        }
        if (item.kind === 'meta') continue;
        try {
          if (item.kind === 'copy') copiedRows += await lease.copyFrom(item.sql.replace(/\bstdin\b/i, "'/dev/blob'"), Buffer.from(item.data));
          else lease.run(item.sql);
        } catch (error) {
          throw statementError(error, item, options.source);
        }
        statements++;
      }
      lease.run('COMMIT');
      committed = true;
    } finally {
      if (!committed) rollback(lease);
      lease.captureSettings(); // a dump sets search_path and more; the next lease puts its own back
    }
    return { statements, copiedRows, notes, heldMs: Math.round(performance.now() - started) };
  });
}

function rollback(lease: Lease): void {
  try {
    lease.run('ROLLBACK');
  } catch {
    // The engine is closing: nothing was committed.
  }
}

/** One line naming the line, the statement and what Postgres said. */
function statementError(error: unknown, item: ScriptItem & { sql: string }, source: string): Error {
  if (!(error instanceof EngineError)) return error instanceof Error ? error : new Error(String(error));
  const firstLine = item.sql.split('\n', 1)[0]!;
  const statement = firstLine.length > 60 ? `${firstLine.slice(0, 57)}...` : `${firstLine}${item.sql.includes('\n') ? ' ...' : ''}`;
  if (isDiskFull(error)) return diskFullError(`loading ${source}`, error);
  return new PgdevError(
    ErrorCode.LoadFailed,
    `${source} line ${item.line}: ${error.fields.message} (SQLSTATE ${error.fields.code}) in \`${statement}\`; nothing was loaded`,
    { cause: error },
  );
}

/** Whether an error is a full disk, from the file system (ENOSPC) or from Postgres (53100). */
export function isDiskFull(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (code === 'ENOSPC') return true;
  return error instanceof EngineError && error.fields.code === '53100';
}

export function diskFullError(doing: string, cause: unknown): PgdevError {
  return new PgdevError(ErrorCode.DiskFull, `no space left on the disk while ${doing}; free some space (or write elsewhere) and try again`, { cause });
}
