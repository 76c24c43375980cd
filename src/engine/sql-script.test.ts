/**
 * @module
 * The script reader behind `pgdev load`: statements, quotes, COPY data and meta-commands, with their lines.
 */
import { describe, expect, it } from 'vitest';
import { parseScript, ScriptSyntaxError } from './sql-script.js';

describe('parseScript', () => {
  it('splits statements and keeps semicolons inside quotes, comments and function bodies', () => {
    const items = parseScript(
      [
        '-- a comment; not a statement',
        "SELECT 'a;b', \"x;y\", E'it\\'s;';",
        '/* one /* nested; */ comment */ CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;',
        'CREATE FUNCTION g() RETURNS int LANGUAGE sql',
        'BEGIN ATOMIC',
        '  SELECT CASE WHEN true THEN 1 END;',
        'END;',
        'SELECT $1 FROM t',
      ].join('\n'),
    );
    expect(items).toEqual([
      { kind: 'statement', sql: "SELECT 'a;b', \"x;y\", E'it\\'s;'", line: 2 },
      { kind: 'statement', sql: 'CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql', line: 3 },
      { kind: 'statement', sql: 'CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 END;\nEND', line: 4 },
      { kind: 'statement', sql: 'SELECT $1 FROM t', line: 8 },
    ]);
  });

  it('reads COPY data up to \\. and never takes a data line for a meta-command', () => {
    const items = parseScript('\\restrict abc\nCOPY public.t (id, note) FROM stdin;\n1\t\\N\n2\ttwo\\tparts\n\\.\n\\unrestrict abc\nSELECT 1;\n');
    expect(items).toEqual([
      { kind: 'meta', command: 'restrict', args: 'abc', line: 1 },
      { kind: 'copy', sql: 'COPY public.t (id, note) FROM stdin', line: 2, data: '1\t\\N\n2\ttwo\\tparts\n' },
      { kind: 'meta', command: 'unrestrict', args: 'abc', line: 6 },
      { kind: 'statement', sql: 'SELECT 1', line: 7 },
    ]);
  });

  it('reports what psql could not read, with its line', () => {
    expect(() => parseScript("SELECT 1;\nSELECT 'open")).toThrow(new ScriptSyntaxError('unterminated quoted string', 2));
    try {
      parseScript('SELECT 1;\nCOPY t FROM stdin;\n1\n2\n');
      expect.unreachable();
    } catch (error) {
      expect((error as ScriptSyntaxError).message).toBe('the data of the COPY on line 2 has no end marker \\. (the script may be cut short)');
      expect((error as ScriptSyntaxError).line).toBe(3);
    }
  });
});
