/**
 * @module
 * Recognises `CREATE DATABASE`, `DROP DATABASE` and `ALTER DATABASE` in a statement. The engine never runs them:
 * each database is its own engine, so the session hands them to the server (see `src/daemon/server/databases.ts`).
 * They are always top-level single statements, so a small tokenizer is enough.
 * @see https://www.postgresql.org/docs/current/sql-createdatabase.html
 */

export type DatabaseCommand =
  | { readonly kind: 'create'; readonly name: string; readonly template?: string; readonly options: Readonly<Record<string, string>> }
  | { readonly kind: 'drop'; readonly name: string; readonly ifExists: boolean; readonly force: boolean }
  | { readonly kind: 'rename'; readonly name: string; readonly newName: string }
  /** ALTER DATABASE ... OWNER TO: the role (a name, or CURRENT_USER / SESSION_USER as written). */
  | { readonly kind: 'owner'; readonly name: string; readonly owner: string }
  /** Any other ALTER DATABASE (SET, OWNER TO, ...): accepted, and without effect (see the README). */
  | { readonly kind: 'alter'; readonly name: string };

/** What a statement that starts like a database command but cannot be read is answered with. */
export type DatabaseCommandSyntaxError = { readonly syntaxError: string };

type Token = { readonly text: string; readonly kind: 'word' | 'quoted' | 'string' | 'number' | 'symbol' };

const STARTS = /^\s*(?:(?:--[^\n]*\n|\/\*[\s\S]*?\*\/)\s*)*(create|drop|alter)\s+database\b/i;

/** The command a statement is, `undefined` for any other statement, or a syntax error. */
export function parseDatabaseCommand(sql: string): DatabaseCommand | DatabaseCommandSyntaxError | undefined {
  if (!STARTS.test(sql)) return undefined;
  const tokens = tokenize(sql);
  if (!tokens) return { syntaxError: 'unterminated quoted string or comment' };
  while (tokens.at(-1)?.text === ';') tokens.pop();
  if (tokens.some((token) => token.text === ';')) return undefined; // several statements: the engine refuses them as Postgres does
  const reader = new Reader(tokens);
  try {
    const verb = reader.keyword();
    reader.expect('database');
    if (verb === 'create') return readCreate(reader);
    if (verb === 'drop') return readDrop(reader);
    return readAlter(reader);
  } catch (error) {
    if (error instanceof SyntaxProblem) return { syntaxError: error.message };
    throw error;
  }
}

export function isSyntaxError(parsed: DatabaseCommand | DatabaseCommandSyntaxError): parsed is DatabaseCommandSyntaxError {
  return 'syntaxError' in parsed;
}

/** The command tag Postgres answers each command with. */
export function commandTag(command: DatabaseCommand): string {
  return command.kind === 'create' ? 'CREATE DATABASE' : command.kind === 'drop' ? 'DROP DATABASE' : 'ALTER DATABASE';
}

function readCreate(reader: Reader): DatabaseCommand {
  const name = reader.name();
  const options: Record<string, string> = {};
  reader.accept('with');
  while (!reader.done) {
    let option = reader.keyword();
    if (option === 'connection') {
      reader.expect('limit');
      option = 'connection limit';
    }
    reader.accept('=');
    options[option] = reader.value();
  }
  const { template, ...rest } = options;
  return { kind: 'create', name, options: rest, ...(template === undefined || template === 'DEFAULT' ? {} : { template }) };
}

function readDrop(reader: Reader): DatabaseCommand {
  let ifExists = false;
  if (reader.accept('if')) {
    reader.expect('exists');
    ifExists = true;
  }
  const name = reader.name();
  let force = false;
  if (!reader.done) {
    reader.accept('with');
    reader.expect('(');
    do {
      const option = reader.keyword();
      if (option !== 'force') throw new SyntaxProblem(`unrecognized DROP DATABASE option "${option}"`);
      force = true;
    } while (reader.accept(','));
    reader.expect(')');
  }
  reader.end();
  return { kind: 'drop', name, ifExists, force };
}

function readAlter(reader: Reader): DatabaseCommand {
  const name = reader.name();
  if (reader.accept('rename')) {
    reader.expect('to');
    const newName = reader.name();
    reader.end();
    return { kind: 'rename', name, newName };
  }
  if (reader.accept('owner')) {
    reader.expect('to');
    const owner = reader.name();
    reader.end();
    return { kind: 'owner', name, owner };
  }
  if (reader.done) throw new SyntaxProblem('syntax error at end of input');
  return { kind: 'alter', name };
}

class SyntaxProblem extends Error {}

class Reader {
  #tokens: Token[];
  #at = 0;
  constructor(tokens: Token[]) {
    this.#tokens = tokens;
  }

  get done(): boolean {
    return this.#at >= this.#tokens.length;
  }

  #peek(): Token | undefined {
    return this.#tokens[this.#at];
  }

  #unexpected(): SyntaxProblem {
    const token = this.#peek();
    return new SyntaxProblem(token ? `syntax error at or near "${token.text}"` : 'syntax error at end of input');
  }

  keyword(): string {
    const token = this.#peek();
    if (token?.kind !== 'word') throw this.#unexpected();
    this.#at++;
    return token.text.toLowerCase();
  }

  /** An identifier: folded to lower case unless quoted. */
  name(): string {
    const token = this.#peek();
    if (token?.kind === 'word') {
      this.#at++;
      return token.text.toLowerCase();
    }
    if (token?.kind === 'quoted') {
      this.#at++;
      return token.text;
    }
    throw this.#unexpected();
  }

  /** An option's value: a name, a string, a number or DEFAULT (kept as `DEFAULT`). */
  value(): string {
    const token = this.#peek();
    if (!token || token.kind === 'symbol') throw this.#unexpected();
    this.#at++;
    if (token.kind === 'word') return token.text.toLowerCase() === 'default' ? 'DEFAULT' : token.text.toLowerCase();
    return token.text;
  }

  accept(text: string): boolean {
    const token = this.#peek();
    if (!token || (token.kind !== 'word' && token.kind !== 'symbol') || token.text.toLowerCase() !== text) return false;
    this.#at++;
    return true;
  }

  expect(text: string): void {
    if (!this.accept(text)) throw this.#unexpected();
  }

  end(): void {
    if (!this.done) throw this.#unexpected();
  }
}

/** Splits SQL into tokens, dropping whitespace and comments; `undefined` if a quote or comment is not closed. */
function tokenize(sql: string): Token[] | undefined {
  const tokens: Token[] = [];
  let at = 0;
  while (at < sql.length) {
    const rest = sql.slice(at);
    const space = /^(?:\s+|--[^\n]*(?:\n|$))/.exec(rest);
    if (space) {
      at += space[0].length;
      continue;
    }
    if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', at + 2);
      if (end < 0) return undefined;
      at = end + 2;
      continue;
    }
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      let text = '';
      let index = at + 1;
      for (;;) {
        const close = sql.indexOf(quote, index);
        if (close < 0) return undefined;
        text += sql.slice(index, close);
        if (sql[close + 1] === quote) {
          text += quote;
          index = close + 2;
          continue;
        }
        at = close + 1;
        break;
      }
      tokens.push({ text, kind: quote === '"' ? 'quoted' : 'string' });
      continue;
    }
    const word = /^[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*/.exec(rest);
    if (word) {
      tokens.push({ text: word[0], kind: 'word' });
      at += word[0].length;
      continue;
    }
    const number = /^-?\d+(?:\.\d+)?/.exec(rest);
    if (number) {
      tokens.push({ text: number[0], kind: 'number' });
      at += number[0].length;
      continue;
    }
    tokens.push({ text: rest[0]!, kind: 'symbol' });
    at += 1;
  }
  return tokens;
}
