/**
 * Helpers of the multi-database cases (issue 11): database URLs, CREATE/DROP DATABASE over a plain connection, the
 * seeded schemas, and memory summed over a server's process tree (pgdev runs one OS process per open database).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { treePids } from './proc.js';
import { Hung } from './tcp.js';

/** The same server URL, on database `name`. */
export function urlFor(url, name) {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

/** Connects one client, runs `fn(client)` within `timeoutMs`, and always ends the client. */
export async function withClient(url, timeoutMs, what, fn) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined);
  let timer;
  try {
    return await Promise.race([
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Hung(what, timeoutMs)), timeoutMs);
      }),
      (async () => {
        await client.connect();
        return fn(client);
      })(),
    ]);
  } finally {
    clearTimeout(timer);
    await endClient(client);
  }
}

/** `promise`, or a Hung error naming `what` after `ms`. */
export async function within(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Hung(what, ms)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends a client, waiting at most 2 s for the server's goodbye. */
export async function endClient(client) {
  await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  try {
    client.connection?.stream?.destroy();
  } catch {}
}

const ident = (name) => `"${name.replace(/"/g, '""')}"`;

export const createDatabaseSql = (name, template) => `CREATE DATABASE ${ident(name)}${template ? ` TEMPLATE ${ident(template)}` : ''}`;

/** DROP DATABASE IF EXISTS … WITH (FORCE), on an admin connection (ignores failures: clean-up only). */
export async function dropDatabases(adminUrl, names) {
  if (names.length === 0) return;
  await withClient(adminUrl, 60_000, 'DROP DATABASE', async (client) => {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`).catch(() => undefined);
  }).catch(() => undefined);
}

/**
 * Creates databases on an admin connection, then checks that each one is really its own: a connection to it reports
 * it as current_database(). Throws a clear error where every name reaches one database (PGlite servers without
 * database support accept CREATE DATABASE but connect every name to the same data).
 */
export async function createDatabases(adminUrl, specs, timeoutMs = 120_000) {
  await withClient(adminUrl, timeoutMs, 'CREATE DATABASE', async (client) => {
    for (const { name, template } of specs) await client.query(createDatabaseSql(name, template));
  });
  for (const { name } of specs) await checkIsOwnDatabase(urlFor(adminUrl, name), name);
}

export async function checkIsOwnDatabase(url, name) {
  const current = await withClient(url, 30_000, `connect to ${name}`, async (c) => (await c.query('SELECT current_database() AS d')).rows[0].d);
  if (current !== name) throw new NotOwnDatabase(name, current);
}

export class NotOwnDatabase extends Error {
  constructor(name, current) {
    super(`CREATE DATABASE ${name} succeeded, but a connection to "${name}" reaches current_database() = "${current}": no separate databases`);
    this.name = 'NotOwnDatabase';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The clone template: 10 tables, 10,000 rows in all.

export const CLONE_TABLES = 10;
export const CLONE_ROWS = 10_000;

export function cloneTemplateSql() {
  const perTable = CLONE_ROWS / CLONE_TABLES;
  const out = [];
  for (let t = 0; t < CLONE_TABLES; t++) {
    out.push(
      `CREATE TABLE table_${t} (id integer PRIMARY KEY, name text NOT NULL, amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
      `CREATE INDEX table_${t}_name ON table_${t} (name)`,
      `INSERT INTO table_${t} (id, name, amount) SELECT g, 'row ${t}-' || g, (g % 1000) / 10.0 FROM generate_series(1, ${perTable}) g`,
    );
  }
  return out;
}

export const cloneCountSql = () =>
  `SELECT ${Array.from({ length: CLONE_TABLES }, (_, t) => `(SELECT count(*) FROM table_${t})`).join(' + ')} AS n`;

// ---------------------------------------------------------------------------------------------------------------
// The workers' schema: three tables with foreign keys, seeded; see bench/lib/txn-worker.js for the transactions.

export const WORKER_SEED = { authors: 100, posts: 500, comments: 2000 };

/** The workers' three tables and their indexes, empty (case `suite-workers` creates them in each worker's setup). */
export function workerTablesSql() {
  return [
    'CREATE TABLE authors (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL)',
    `CREATE TABLE posts (id serial PRIMARY KEY, author_id integer NOT NULL REFERENCES authors (id), title text NOT NULL,
       views integer NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now())`,
    'CREATE INDEX posts_author ON posts (author_id)',
    `CREATE TABLE comments (id serial PRIMARY KEY, post_id integer NOT NULL REFERENCES posts (id),
       author_id integer NOT NULL REFERENCES authors (id), body text NOT NULL)`,
    'CREATE INDEX comments_post ON comments (post_id)',
  ];
}

/** The tables, seeded (case `workers4`'s template). */
export function workerSchemaSql() {
  const { authors, posts, comments } = WORKER_SEED;
  return [
    ...workerTablesSql(),
    `INSERT INTO authors (email, name) SELECT 'seed' || g || '@example.com', 'Seed ' || g FROM generate_series(1, ${authors}) g`,
    `INSERT INTO posts (author_id, title) SELECT 1 + g % ${authors}, 'Post ' || g FROM generate_series(1, ${posts}) g`,
    `INSERT INTO comments (post_id, author_id, body) SELECT 1 + g % ${posts}, 1 + (g * 7) % ${authors}, 'Comment ' || g FROM generate_series(1, ${comments}) g`,
    'ANALYZE',
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Memory of a process tree

function kb(file, field) {
  try {
    const match = fs.readFileSync(file, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Memory of a process tree, in bytes: `rss` (VmRSS summed: pages shared between the processes, such as Node's own
 * code, count once per process), `pss` (proportional set size: shared pages split between the processes that map
 * them, so the sum is what the tree really holds), `hwm` (VmHWM summed: each process's own peak) and `processes`.
 */
export function treeMemory(pid) {
  const pids = treePids(pid);
  let rss = 0;
  let pss = 0;
  let hwm = 0;
  for (const p of pids) {
    rss += kb(`/proc/${p}/status`, 'VmRSS');
    hwm += kb(`/proc/${p}/status`, 'VmHWM');
    pss += kb(`/proc/${p}/smaps_rollup`, 'Pss');
  }
  return { rss: rss * 1024, pss: pss * 1024, hwm: hwm * 1024, processes: pids.length };
}

/** One GET, timed (ms); throws on a non-2xx answer. */
export async function timedGet(url, timeoutMs = 5000) {
  const t = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return performance.now() - t;
}
