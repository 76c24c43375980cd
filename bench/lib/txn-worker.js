/**
 * One test-suite worker (a worker thread), in one of two modes.
 *
 * Case `workers4` (workerData: { url, transactions, tag }): on its own connection, a stream of small transactions
 * on the schema of databases.js's workerSchemaSql(), as an ORM-backed test does: 5 rows inserted across 3 tables
 * with foreign keys, 3 selects with joins, one update. Only ids of its own rows are written, so workers sharing one
 * database never wait for each other's row locks. Posts 'connected' once connected, waits for 'go', then posts
 * { ms, transactions } (or { error }).
 *
 * Case `suite-workers` (workerData: { mode: 'suite', adminUrl, url, createDatabase?, schema?, tests, tag }): a test
 * runner's worker, its setup included. Posts 'connected' once loaded (not connected), waits for 'go', then:
 * `CREATE DATABASE createDatabase` on a connection to `adminUrl` (when given), a connection to `url`, `CREATE SCHEMA
 * schema` and `SET search_path` to it (when given: workers sharing a database keep their tables apart), the three
 * tables of databases.js's workerTablesSql(), then `tests` tests: one transaction each, 3 rows inserted with foreign
 * keys (an author, a post, a comment), 3 selects with joins, 1 update; every TESTS_PER_FILE tests (a new test file)
 * a TRUNCATE of its tables. Posts { ms, setupMs (to the tables made), tests } (or { error }).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createDatabaseSql, WORKER_SEED, workerTablesSql } from './databases.js';

const TESTS_PER_FILE = 20;
const { url, transactions, tag } = workerData;
const rand = (n) => 1 + Math.floor(Math.random() * n);

async function transaction(client, i) {
  await client.query('BEGIN');
  const author = (await client.query('INSERT INTO authors (email, name) VALUES ($1, $2) RETURNING id', [`${tag}-${i}@example.com`, `Author ${tag} ${i}`]))
    .rows[0].id;
  const posts = [];
  for (let p = 0; p < 2; p++) {
    posts.push((await client.query('INSERT INTO posts (author_id, title) VALUES ($1, $2) RETURNING id', [author, `Post ${tag} ${i}.${p}`])).rows[0].id);
  }
  for (const post of posts) {
    await client.query('INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, $3)', [post, rand(WORKER_SEED.authors), `Comment on ${post}`]);
  }
  const own = await client.query('SELECT p.id, p.title, a.name FROM posts p JOIN authors a ON a.id = p.author_id WHERE p.author_id = $1 ORDER BY p.id', [author]);
  if (own.rows.length !== 2) throw new Error(`expected 2 posts of author ${author}, got ${own.rows.length}`);
  await client.query(
    `SELECT c.id, c.body, p.title, a.name FROM comments c JOIN posts p ON p.id = c.post_id JOIN authors a ON a.id = c.author_id
     WHERE c.post_id = $1 ORDER BY c.id`,
    [rand(WORKER_SEED.posts)],
  );
  await client.query(
    `SELECT a.id, a.name, count(DISTINCT p.id) AS posts, count(c.id) AS comments FROM authors a
     JOIN posts p ON p.author_id = a.id LEFT JOIN comments c ON c.post_id = p.id WHERE a.id = $1 GROUP BY a.id, a.name`,
    [rand(WORKER_SEED.authors)],
  );
  const updated = await client.query('UPDATE posts SET views = views + 1 WHERE id = $1', [posts[0]]);
  if (updated.rowCount !== 1) throw new Error(`update of post ${posts[0]} touched ${updated.rowCount} rows`);
  await client.query('COMMIT');
}

/** One test of `suite-workers`: only rows it made itself, so that a TRUNCATE between files leaves nothing dangling. */
async function suiteTest(client, i) {
  await client.query('BEGIN');
  const author = (await client.query('INSERT INTO authors (email, name) VALUES ($1, $2) RETURNING id', [`${tag}-${i}@example.com`, `Author ${tag} ${i}`]))
    .rows[0].id;
  const post = (await client.query('INSERT INTO posts (author_id, title) VALUES ($1, $2) RETURNING id', [author, `Post ${tag} ${i}`])).rows[0].id;
  await client.query('INSERT INTO comments (post_id, author_id, body) VALUES ($1, $2, $3)', [post, author, `Comment ${tag} ${i}`]);
  const own = await client.query('SELECT p.id, p.title, a.name FROM posts p JOIN authors a ON a.id = p.author_id WHERE p.author_id = $1', [author]);
  if (own.rows.length !== 1) throw new Error(`expected 1 post of author ${author}, got ${own.rows.length}`);
  const comments = await client.query(
    `SELECT c.id, c.body, p.title, a.name FROM comments c JOIN posts p ON p.id = c.post_id JOIN authors a ON a.id = c.author_id
     WHERE c.post_id = $1`,
    [post],
  );
  if (comments.rows.length !== 1) throw new Error(`expected 1 comment on post ${post}, got ${comments.rows.length}`);
  await client.query(
    `SELECT a.id, a.name, count(DISTINCT p.id) AS posts, count(c.id) AS comments FROM authors a
     JOIN posts p ON p.author_id = a.id LEFT JOIN comments c ON c.post_id = p.id WHERE a.id = $1 GROUP BY a.id, a.name`,
    [author],
  );
  const updated = await client.query('UPDATE posts SET views = views + 1 WHERE id = $1', [post]);
  if (updated.rowCount !== 1) throw new Error(`update of post ${post} touched ${updated.rowCount} rows`);
  await client.query('COMMIT');
}

const clients = [];
const connect = async (to) => {
  const client = new pg.Client({ connectionString: to, connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined);
  clients.push(client);
  await client.connect();
  return client;
};
const go = () => new Promise((resolve) => parentPort.once('message', resolve));

try {
  if (workerData.mode === 'suite') {
    const { adminUrl, createDatabase, schema, tests } = workerData;
    parentPort.postMessage({ connected: true });
    await go();
    const t = performance.now();
    if (createDatabase) {
      const admin = await connect(adminUrl);
      await admin.query(createDatabaseSql(createDatabase));
      clients.splice(clients.indexOf(admin), 1);
      await admin.end();
    }
    const client = await connect(url);
    if (schema) {
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(`SET search_path = ${schema}`);
    }
    for (const sql of workerTablesSql()) await client.query(sql);
    const setupMs = performance.now() - t;
    for (let i = 0; i < tests; i++) {
      if (i > 0 && i % TESTS_PER_FILE === 0) await client.query('TRUNCATE comments, posts, authors');
      await suiteTest(client, i);
    }
    parentPort.postMessage({ ms: performance.now() - t, setupMs, tests });
  } else {
    const client = await connect(url);
    await client.query('SELECT 1');
    parentPort.postMessage({ connected: true });
    await go();
    const t = performance.now();
    for (let i = 0; i < transactions; i++) await transaction(client, i);
    parentPort.postMessage({ ms: performance.now() - t, transactions });
  }
} catch (error) {
  parentPort.postMessage({ error: String(error?.message ?? error) });
} finally {
  await Promise.all(clients.map((client) => Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))])));
}
