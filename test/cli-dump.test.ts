/**
 * @module
 * `pgdev dump` and `pgdev load` end to end, with real servers and real clients: the round trip (example schema and a
 * schema with every kind of object) from a running server into a stopped one and into a shadow database, the HTTP
 * route, what a dump does to connected clients, COPY blocks and meta-commands, and every error a user can hit.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, REPO, cleanupCli, createDataHome, createScratchDir, query, runCli, serverPorts, startForeground, waitFor, type DataHome } from './support/cli.js';

afterEach(cleanupCli);

const EXAMPLE_SCHEMA = path.join(REPO, 'examples', 'prisma', 'migrations', '0001_init.sql');
const RICH_SCHEMA = path.join(REPO, 'test', 'fixtures', 'rich-schema.sql');
const EXAMPLE_SEED = `INSERT INTO users (email, name, created_at) VALUES ('ann@example.com', 'Ann', '2024-01-02 03:04:05.678+00'), ('bob@example.com', 'Bob', '2024-02-03 04:05:06+00');
INSERT INTO posts (title, published, author_id) VALUES ('Hello', true, 1), ('Draft', false, 1), ('Gone', false, 2);
DELETE FROM posts WHERE title = 'Gone';
`;

async function startServer(home: DataHome, name: string) {
  const { ports, args } = await serverPorts();
  const server = await startForeground(['-n', name, ...args], { env: home.env });
  return { server, ports };
}

async function pgdev(home: DataHome, args: string[], input?: string) {
  return runCli(args, { env: home.env, input });
}

/** Every table's rows, and the position of every sequence, in a stable order. */
async function contents(port: number): Promise<string> {
  const tables = await query<{ name: string }>(port, "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname IN ('public', 'rich') ORDER BY 1");
  const parts: string[] = [];
  for (const { name } of tables) parts.push(`${name}: ${JSON.stringify(await query(port, `SELECT * FROM ${name} ORDER BY 1`))}`);
  const sequences = await query(port, 'SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2');
  return `${parts.join('\n')}\n${JSON.stringify(sequences)}`;
}

describe('pgdev dump and load', () => {
  it('round trip: a running server dumped, loaded into a stopped server and a shadow database, gives the same schema and rows', async () => {
    const home = createDataHome();
    const source = await startServer(home, 'source');
    for (const script of [EXAMPLE_SCHEMA, RICH_SCHEMA]) {
      const loaded = await pgdev(home, ['load', 'source', script]);
      expect(loaded.stderr).toBe(`pgdev: loading ${script} into postgres of "source"...\n`);
      expect(loaded.status).toBe(0);
    }
    expect((await pgdev(home, ['load', 'source', '-'], EXAMPLE_SEED)).stdout).toMatch(/^loaded standard input into postgres of "source": 3 statements, in \d+ ms/);

    // A connection's prepared statement and settings outlive a dump taken while it is connected.
    const client = new pg.Client({ host: '127.0.0.1', port: source.ports.database, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      await client.query('SET search_path = rich');
      expect((await client.query({ name: 'count-books', text: 'SELECT count(*)::int AS n FROM books' })).rows).toEqual([{ n: 2 }]);
      const dumpFile = path.join(home.home, 'dump.sql');
      const dumped = await pgdev(home, ['dump', 'source', '-f', dumpFile]);
      expect(dumped.stderr).toMatch(new RegExp(`^pgdev: dumped postgres of "source" to ${dumpFile} \\(\\d+ KiB\\) in \\d+ ms; the database was held for \\d+ ms\\n$`));
      expect((await client.query({ name: 'count-books', text: 'SELECT count(*)::int AS n FROM books' })).rows).toEqual([{ n: 2 }]);
      expect((await client.query('SHOW search_path')).rows).toEqual([{ search_path: 'rich' }]);
      expect((await client.query('SELECT now() = statement_timestamp() AS outside_transaction')).rows).toEqual([{ outside_transaction: true }]);

      const sql = fs.readFileSync(dumpFile, 'utf8');
      expect(sql).toContain('-- PostgreSQL database dump');
      expect(sql).toContain("CREATE TYPE rich.mood AS ENUM (\n    'sad',\n    'ok',\n    'happy'\n);");
      expect(sql).toContain('BEGIN ATOMIC');
      expect(sql).not.toMatch(/^\\(un)?restrict/m);

      // Into a server that exists but is stopped: its data directory is opened under its lock.
      const target = await startServer(home, 'target');
      await target.server.stop();
      expect((await pgdev(home, ['load', 'target', dumpFile])).status).toBe(0);
      const restarted = await startServer(home, 'target');
      expect(await contents(restarted.ports.database)).toBe(await contents(source.ports.database));
      const [sourceDump, targetDump] = await Promise.all([pgdev(home, ['dump', 'source']), pgdev(home, ['dump', 'target'])]);
      expect(targetDump.stdout).toBe(sourceDump.stdout);

      // What is behind the rows works: identity, sequence, trigger, functions, view, the cycle's deferred check.
      expect(await query(restarted.ports.database, "INSERT INTO rich.books (author_id, title) VALUES (2, 'Third') RETURNING id")).toEqual([{ id: '4' }]);
      expect(await query(restarted.ports.database, "SELECT nextval('rich.ticket_seq')::int AS n")).toEqual([{ n: 115 }]);
      expect(await query(restarted.ports.database, "UPDATE rich.books SET title = 'Fourth' WHERE id = 4 RETURNING updated_at IS NOT NULL AS touched")).toEqual([{ touched: true }]);
      expect(await query(restarted.ports.database, 'SELECT rich.book_count(2)::int AS n, rich.title_key(\'AbC\') AS k')).toEqual([{ n: 1, k: 'abc' }]);
      expect(await query(restarted.ports.database, 'SELECT * FROM rich.author_books ORDER BY name')).toEqual([{ name: 'Ann', books: '1' }, { name: 'Bob', books: '1' }]);
      await expect(query(restarted.ports.database, 'UPDATE rich.authors SET best_book_id = 99')).rejects.toThrow(/authors_best_book_fk/);

      // Into the shadow database of a running server, and out of it again.
      expect((await pgdev(home, ['load', 'target', '--database', 'shadow', dumpFile])).status).toBe(0);
      const shadowDump = await pgdev(home, ['dump', 'target', '--database', 'shadow', '--schema-only']);
      const schemaDump = await pgdev(home, ['dump', 'source', '--schema-only']);
      expect(shadowDump.stdout).toBe(schemaDump.stdout);
      expect(schemaDump.stdout).not.toContain('INSERT INTO');
      const dataDump = await pgdev(home, ['dump', 'source', '--data-only']);
      expect(dataDump.stdout).toContain('INSERT INTO rich.authors');
      expect(dataDump.stdout).not.toContain('CREATE TABLE');
    } finally {
      await client.end();
    }
  });

  it('serves the dump over HTTP to the api_key holder, streamed', async () => {
    const home = createDataHome();
    const { server, ports } = await startServer(home, 'web');
    await query(ports.database, 'CREATE TABLE web_rows AS SELECT g AS id FROM generate_series(1, 5000) g');
    const apiKey = new URL(server.urls.prismaPostgresUrl.replace('prisma+postgres:', 'http:')).searchParams.get('api_key');
    const url = `http://localhost:${ports.http}/dump`;
    expect((await fetch(url)).status).toBe(401);
    const response = await fetch(`${url}?database=template1`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/sql; charset=utf-8');
    expect(response.headers.get('server-timing')).toMatch(/^held;dur=\d+$/);
    let chunks = 0;
    let text = '';
    for await (const chunk of response.body!) {
      chunks++;
      text += Buffer.from(chunk).toString('utf8');
    }
    expect(chunks).toBeGreaterThan(1);
    expect(text).toContain('INSERT INTO public.web_rows VALUES (5000);');
    expect(text).toContain('SET transaction_timeout = 0;\n');
    // For Postgres 15 and 16, which refuse the setting transaction_timeout (new in 17) that pg_dump 18 writes.
    const older = await fetch(`${url}?targetVersion=15&schemaOnly=1`, { headers: { authorization: `Bearer ${apiKey}` } });
    const olderText = await older.text();
    expect(olderText).toContain('SET lock_timeout = 0;\n');
    expect(olderText).not.toContain('transaction_timeout');
    const unknown = await fetch(`${url}?database=nope`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'E_UNKNOWN_DATABASE', message: 'unknown database "nope"; this server has postgres (also called template1) and shadow' } });
  });

  it('loads COPY blocks with their data and skips the meta-commands pg_dump writes', async () => {
    const home = createDataHome();
    const { ports } = await startServer(home, 'copy');
    const script = [
      '--',
      '-- PostgreSQL database dump',
      '--',
      '\\restrict kSJ3n9',
      '-- Dumped from database version 17.2',
      '-- Dumped by pg_dump version 17.2',
      'SET statement_timeout = 0;',
      "SELECT pg_catalog.set_config('search_path', '', false);",
      'CREATE TABLE public.copied (id integer NOT NULL, note text, tags text[]);',
      'COPY public.copied (id, note, tags) FROM stdin;',
      '1\tfirst\t{a,b}',
      '2\t\\N\t{}',
      '3\ttab\\there\t{"x y"}',
      '\\.',
      '\\connect other',
      '\\unrestrict kSJ3n9',
      '',
    ].join('\n');
    const file = path.join(home.home, 'copy.sql');
    fs.writeFileSync(file, script);
    const result = await pgdev(home, ['load', 'copy', file]);
    expect(result.stderr).toBe(`pgdev: loading ${file} into postgres of "copy"...\npgdev: note: line 15: skipped \\connect other (everything loads into database postgres)\n`);
    expect(result.stdout).toMatch(new RegExp(`^loaded ${file} into postgres of "copy": 4 statements, 3 rows copied, in \\d+ ms`));
    // Unqualified: the script's empty search_path did not outlive the load.
    expect(await query(ports.database, 'SELECT * FROM copied ORDER BY id')).toEqual([
      { id: 1, note: 'first', tags: ['a', 'b'] },
      { id: 2, note: null, tags: [] },
      { id: 3, note: 'tab\there', tags: ['x y'] },
    ]);
  });

  it('an interrupted load is rolled back whole, and the server carries on', async () => {
    const home = createDataHome();
    const { ports } = await startServer(home, 'halt');
    const lines = ['CREATE TABLE big (id integer PRIMARY KEY);'];
    for (let i = 1; i <= 40_000; i++) lines.push(`INSERT INTO big VALUES (${i});`);
    const file = path.join(home.home, 'big.sql');
    fs.writeFileSync(file, lines.join('\n'));
    const child = spawn(process.execPath, [BIN, 'load', 'halt', file], { cwd: REPO, env: home.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    await waitFor(() => stderr.includes('loading'), 30_000, 'the load to start');
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    expect(await query(ports.database, "SELECT to_regclass('big') AS big")).toEqual([{ big: null }]);
    expect(await query(ports.database, 'SELECT 1 AS alive')).toEqual([{ alive: 1 }]);
  });

  it('says what is wrong, in one line, and loads nothing', async () => {
    const home = createDataHome();
    const { ports } = await startServer(home, 'errs');
    const write = (name: string, content: string | Buffer) => {
      const file = path.join(home.home, name);
      fs.writeFileSync(file, content);
      return file;
    };
    const failing = async (args: string[], message: string) => {
      const result = await pgdev(home, args);
      expect(result.stderr.split('\n').filter((line) => !line.startsWith('pgdev: loading '))).toEqual([`pgdev: ${message}`, '']);
      expect(result.status).toBe(1);
    };

    const bad = write('bad.sql', "CREATE TABLE partial (id integer);\nINSERT INTO partial VALUES (1);\n\nINSERT INTO partial\n  VALUES ('x');\n");
    await failing(['load', 'errs', bad], `${bad} line 4: invalid input syntax for type integer: "x" (SQLSTATE 22P02) in \`INSERT INTO partial ...\`; nothing was loaded`);
    expect(await query(ports.database, "SELECT to_regclass('partial') AS partial")).toEqual([{ partial: null }]);

    const cut = write('cut.sql', 'CREATE TABLE cut (id integer);\nCOPY cut (id) FROM stdin;\n1\n2\n');
    await failing(['load', 'errs', cut], `${cut} line 3: the data of the COPY on line 2 has no end marker \\. (the script may be cut short); nothing was loaded`);

    const png = write('image.png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'));
    await failing(['load', 'errs', png], `${png} is not a SQL script (it holds binary data, or text that is not UTF-8); give a plain SQL file such as \`pgdev dump\` or \`pg_dump\` writes`);
    const gz = write('dump.sql.gz', zlib.gzipSync('SELECT 1;'));
    await failing(['load', 'errs', gz], `${gz} is gzip-compressed, not SQL; decompress it first (\`gunzip -c ${gz} | pgdev load -\`)`);
    const archive = write('dump.custom', Buffer.concat([Buffer.from('PGDMP'), Buffer.from([1, 16, 0])]));
    await failing(['load', 'errs', archive], `${archive} is a pg_dump archive (custom or directory format), not SQL; turn it into SQL with \`pg_restore -f dump.sql ${archive}\`, or dump with plain format (-Fp)`);
    const notes = write('notes.txt', '-- just a comment\n');
    await failing(['load', 'errs', notes], `${notes} holds no SQL statement; give a plain SQL file such as \`pgdev dump\` or \`pg_dump\` writes`);

    const newer = write('newer.sql', '--\n-- Dumped from database version 19.1\n-- Dumped by pg_dump version 19.1\n\nCREATE TABLE newer (id integer);\n');
    await failing(['load', 'errs', newer], `${newer} was dumped by pg_dump 19.1, newer than the Postgres 18.6 pgdev runs, and may use SQL it cannot read; dump with a pg_dump of version 18 or older`);
    const meta = write('meta.sql', 'SELECT 1;\n\\i other.sql\n');
    await failing(['load', 'errs', meta], `${meta} line 2: psql meta-command \\i is not supported; remove it (pgdev load reads what pg_dump writes); nothing was loaded`);

    await failing(['dump', 'errs', '--database', 'nope'], 'unknown database "nope"; this server has postgres (also called template1) and shadow');
    await failing(['load', 'errs', '--database', 'nope', bad], 'unknown database "nope"; this server has postgres (also called template1) and shadow');
    await failing(['dump', 'nope'], 'no server named "nope"; see `pgdev ls`');
    await failing(['load', 'nope', bad], 'no server named "nope"; see `pgdev ls`');
    await failing(['load', 'errs', path.join(home.home, 'missing.sql')], `no file ${path.join(home.home, 'missing.sql')}; give the path of a SQL file, or - for standard input`);
    // Issue 21: a server's name alone is not read as a missing file.
    await failing(['load', 'errs'], '"errs" is a server, not a file: give the SQL file to load into it, `pgdev load errs file.sql` (or - for standard input)');
    await failing(['load', 'nothing-here'], 'no file nothing-here; give the path of a SQL file, or - for standard input');
    await failing(['dump', 'errs', '--schema-only', '--data-only'], 'choose one of --schema-only and --data-only, or neither for both');
    // A full disk, as /dev/full simulates it: every write fails with ENOSPC.
    if (fs.existsSync('/dev/full')) await failing(['dump', 'errs', '-f', '/dev/full'], 'no space left on the disk while writing /dev/full; free some space (or write elsewhere) and try again');
    expect(await query(ports.database, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).toEqual([{ n: 0 }]);
    // One statement is one statement, not "1 statements".
    expect((await pgdev(home, ['load', 'errs', '-'], 'SELECT 1;\n')).stdout).toMatch(/^loaded standard input into postgres of "errs": 1 statement, in \d+ ms/);
  });

  it('refuses the shadow database of a stopped server and a server that lives in memory only', async () => {
    const home = createDataHome();
    const { server } = await startServer(home, 'idle');
    await server.stop();
    const result = await pgdev(home, ['dump', 'idle', '--database', 'shadow']);
    expect(result.stderr).toBe('pgdev: the shadow database of "idle" exists only while the server runs; start it with `pgdev start idle`\n');
    const scratch = createScratchDir();
    fs.mkdirSync(path.join(scratch, 'pgdev', 'servers', 'ghost'), { recursive: true });
    const ghost = await runCli(['dump', 'ghost'], { env: { ...home.env, XDG_DATA_HOME: scratch } });
    expect(ghost.stderr).toBe('pgdev: server "ghost" has no database on disk (it ran in memory); start it and try again\n');
    expect(ghost.status).toBe(1);
  });
});
