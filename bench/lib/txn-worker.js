/**
 * One test-suite worker of case `workers4` (a worker thread): on its own connection, a stream of small transactions
 * on the schema of databases.js's workerSchemaSql(), as an ORM-backed test does: 5 rows inserted across 3 tables
 * with foreign keys, 3 selects with joins, one update. Only ids of its own rows are written, so workers sharing one
 * database never wait for each other's row locks.
 *   workerData: { url, transactions, tag }
 * Posts 'connected' once connected, waits for 'go', then posts { ms, transactions } (or { error }).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { WORKER_SEED } from './databases.js';

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

const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
client.on('error', () => undefined);
try {
  await client.connect();
  await client.query('SELECT 1');
  parentPort.postMessage({ connected: true });
  await new Promise((resolve) => parentPort.once('message', resolve));
  const t = performance.now();
  for (let i = 0; i < transactions; i++) await transaction(client, i);
  parentPort.postMessage({ ms: performance.now() - t, transactions });
} catch (error) {
  parentPort.postMessage({ error: String(error?.message ?? error) });
} finally {
  await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
}
