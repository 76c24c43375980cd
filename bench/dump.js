/**
 * @module
 * `npm run bench:dump`: how long `pgdev dump` takes on a running server, how long it holds the database, and how long
 * a client that queries during the dump waits. Two databases: the example schema (examples/prisma) with a few seed
 * rows, and one table of 10,000 rows. Each is dumped BENCH_RUNS times (default 5) through the HTTP route that
 * `pgdev dump` uses; medians are printed. Run `npm run build` first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { median } from './lib/stats.js';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-bench-dump-'));
process.env.XDG_DATA_HOME = home;
const { startServer } = await import('../dist/index.js');

const EXAMPLE = fs.readFileSync(new URL('../examples/prisma/migrations/0001_init.sql', import.meta.url), 'utf8');
const SEED = `INSERT INTO users (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 20) g;
INSERT INTO posts (title, published, author_id) SELECT 'Post ' || g, g % 2 = 0, 1 + g % 20 FROM generate_series(1, 50) g;`;
const TEN_K = `CREATE TABLE items (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, price numeric(10, 2), tags text[], meta jsonb, created_at timestamptz DEFAULT now());
INSERT INTO items (name, price, tags, meta) SELECT 'item ' || g, g / 7.0, ARRAY['a', 'b' || g], jsonb_build_object('g', g) FROM generate_series(1, 10000) g;`;

async function measure(label, setup) {
  const server = await startServer({ name: `bench-dump-${label.replace(/[^a-z0-9]+/gi, '-')}`, persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  try {
    await client.query(setup);
    const key = new URL(server.prismaPostgresUrl.replace('prisma+postgres:', 'http:')).searchParams.get('api_key');
    const totals = [];
    const held = [];
    const waits = [];
    let bytes = 0;
    for (let run = 0; run < runs; run++) {
      let dumping = true;
      let longestWait = 0;
      // A client querying all along: its longest wait is what the dump costs the others.
      const prober = (async () => {
        while (dumping) {
          const started = performance.now();
          await client.query('SELECT 1');
          longestWait = Math.max(longestWait, performance.now() - started);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const started = performance.now();
      const response = await fetch(`${server.httpUrl}/dump`, { headers: { authorization: `Bearer ${key}` } });
      bytes = (await response.arrayBuffer()).byteLength;
      totals.push(performance.now() - started);
      held.push(Number(/dur=(\d+)/.exec(response.headers.get('server-timing'))[1]));
      dumping = false;
      await prober;
      waits.push(longestWait);
    }
    const ms = (values) => `${Math.round(median(values))} ms`;
    console.log(`| ${label} | ${(bytes / 1024).toFixed(0)} KiB | ${ms(totals)} | ${ms(held)} | ${ms(waits)} |`);
  } finally {
    await client.end();
    await server.close();
  }
}

try {
  console.log(`pgdev dump, median of ${runs} runs (${os.cpus().length} CPUs, Node ${process.version})\n`);
  console.log('| database | dump size | dump time (HTTP, whole) | database held | longest wait of a querying client |');
  console.log('| --- | --- | --- | --- | --- |');
  await measure('example schema + 70 rows', `${EXAMPLE}\n${SEED}`);
  await measure('one table of 10,000 rows', TEN_K);
} finally {
  fs.rmSync(home, { recursive: true, force: true });
}
