/**
 * @module
 * Reads a SQL script the way psql does, for `pgdev load`: statements end at a `;` outside quotes, comments and
 * dollar-quoted bodies; a backslash outside those starts a psql meta-command that runs to the end of its line; the
 * statement `COPY ... FROM stdin` is followed by its data lines up to a line `\.`.
 *
 * Written here rather than taken from a SQL splitter library: the one that handles dollar quotes and COPY data
 * (dbgate-query-splitter) knows nothing of psql meta-commands, which pg_dump writes (`\connect`, `\restrict`), and
 * a line of COPY data must never be read as one.
 * @see https://www.postgresql.org/docs/current/app-psql.html#APP-PSQL-META-COMMANDS
 */

export type ScriptItem =
  | { readonly kind: 'statement'; readonly sql: string; readonly line: number }
  | { readonly kind: 'copy'; readonly sql: string; readonly line: number; readonly data: string }
  | { readonly kind: 'meta'; readonly command: string; readonly args: string; readonly line: number };

/** A script psql itself could not read: an unterminated quote, comment or COPY block. */
export class ScriptSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
    this.name = 'ScriptSyntaxError';
  }
}

const COPY_FROM_STDIN = /^copy\b[\s\S]*\bfrom\s+stdin\b/i;
const ROUTINE = /^create\s+(or\s+replace\s+)?(function|procedure)\b/i;
const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/** Splits a script into statements, COPY blocks with their data, and meta-commands, with the line each starts on. */
export function parseScript(text: string): ScriptItem[] {
  const items: ScriptItem[] = [];
  let pos = 0;
  let line = 1;
  let start = -1; // where the current statement's first token is, or -1 before it
  let startLine = 0;
  let buffer = '';
  let chunkFrom = 0; // the part of text since the last meta-command, not yet copied into buffer
  let atomicDepth = 0; // BEGIN/CASE ... END nesting in a CREATE FUNCTION body written BEGIN ATOMIC ... END

  const advanceTo = (to: number) => {
    for (let i = pos; i < to; i++) if (text.charCodeAt(i) === 10) line++;
    pos = to;
  };
  const beginToken = () => {
    if (start < 0) {
      start = pos;
      startLine = line;
      chunkFrom = pos;
      buffer = '';
    }
  };
  const endOfLine = (from: number) => {
    const at = text.indexOf('\n', from);
    return at < 0 ? text.length : at;
  };

  while (pos < text.length) {
    const ch = text[pos]!;
    const next = text[pos + 1];
    if (ch === '\n' || ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f') {
      advanceTo(pos + 1);
    } else if (ch === '-' && next === '-') {
      advanceTo(endOfLine(pos));
    } else if (ch === '/' && next === '*') {
      const from = line;
      let depth = 0;
      let i = pos;
      for (; i < text.length; i++) {
        if (text[i] === '/' && text[i + 1] === '*') depth++, i++;
        else if (text[i] === '*' && text[i + 1] === '/' && --depth === 0) break;
      }
      if (i >= text.length) throw new ScriptSyntaxError('unterminated /* comment', from);
      advanceTo(i + 2);
    } else if (ch === "'" || ch === '"') {
      beginToken();
      const from = line;
      const backslashes = ch === "'" && pos > 0 && /[eE]/.test(text[pos - 1]!) && (pos < 2 || !IDENT_CHAR.test(text[pos - 2]!));
      let i = pos + 1;
      for (; i < text.length; i++) {
        if (backslashes && text[i] === '\\') i++;
        else if (text[i] === ch) {
          if (text[i + 1] === ch) i++;
          else break;
        }
      }
      if (i >= text.length) throw new ScriptSyntaxError(`unterminated quoted ${ch === "'" ? 'string' : 'identifier'}`, from);
      advanceTo(i + 1);
    } else if (ch === '$' && (pos === 0 || !IDENT_CHAR.test(text[pos - 1]!)) && DOLLAR_TAG.test(text.slice(pos, pos + 64))) {
      beginToken();
      const tag = DOLLAR_TAG.exec(text.slice(pos, pos + 64))![0];
      const end = text.indexOf(tag, pos + tag.length);
      if (end < 0) throw new ScriptSyntaxError(`unterminated dollar-quoted string ${tag}`, line);
      advanceTo(end + tag.length);
    } else if (ch === '\\') {
      // A meta-command: psql runs it at once and keeps the statement being typed, if any, in its buffer.
      const eol = endOfLine(pos);
      const [command = '', ...rest] = text.slice(pos + 1, eol).trim().split(/\s+/);
      if (start >= 0) buffer += text.slice(chunkFrom, pos);
      items.push({ kind: 'meta', command, args: rest.join(' '), line });
      advanceTo(eol);
      chunkFrom = pos;
    } else if (ch === ';' && atomicDepth > 0) {
      advanceTo(pos + 1);
    } else if (ch === ';') {
      if (start < 0) {
        advanceTo(pos + 1); // an empty statement
        continue;
      }
      const sql = (buffer + text.slice(chunkFrom, pos)).trim();
      advanceTo(pos + 1);
      start = -1;
      atomicDepth = 0;
      if (!COPY_FROM_STDIN.test(sql)) {
        items.push({ kind: 'statement', sql, line: startLine });
        continue;
      }
      // The data starts on the next line and ends with a line `\.`.
      advanceTo(endOfLine(pos) + 1 > text.length ? text.length : endOfLine(pos) + 1);
      const dataLine = line;
      const rows: string[] = [];
      for (;;) {
        if (pos >= text.length) throw new ScriptSyntaxError(`the data of the COPY on line ${startLine} has no end marker \\. (the script may be cut short)`, dataLine);
        const eol = endOfLine(pos);
        const row = text.slice(pos, eol).replace(/\r$/, '');
        advanceTo(Math.min(eol + 1, text.length));
        if (row === '\\.') break;
        rows.push(row);
      }
      items.push({ kind: 'copy', sql, line: startLine, data: rows.length ? `${rows.join('\n')}\n` : '' });
    } else {
      beginToken();
      let i = pos + 1;
      while (i < text.length && !/[\s;'"$\\/-]/.test(text[i]!)) i++;
      const word = text.slice(pos, i).toLowerCase();
      if (word === 'begin' || word === 'case' || (word === 'end' && atomicDepth > 0)) {
        // As psql does: a function body in SQL-standard form holds semicolons of its own.
        if (ROUTINE.test(text.slice(start, pos))) atomicDepth += word === 'end' ? -1 : 1;
      }
      advanceTo(i);
    }
  }
  if (start >= 0) {
    const sql = (buffer + text.slice(chunkFrom)).trim();
    if (sql) items.push({ kind: 'statement', sql, line: startLine });
  }
  return items;
}
