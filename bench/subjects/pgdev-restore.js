// Measures pgdev's snapshot/restore against re-running migrations and seed (issue 6): 10 tables of 1,000 rows in an
// in-memory server started through the public API. Prints one JSON line of medians. Run by bench/run.js (case
// "restore"); XDG_DATA_HOME is the bench's temporary folder.
import pg from 'pg';
import { startServer } from '../../dist/index.js';

const RUNS = Number(process.env.RESTORE_RUNS ?? 5);
const TABLES = 10;
const ROWS = 1_000;

const migration = Array.from({ length: TABLES }, (_, t) => `
  CREATE TABLE table_${t} (id integer PRIMARY KEY, name text NOT NULL, amount numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX table_${t}_name ON table_${t} (name);`).join('\n');

async function migrateAndSeed(client) {
  await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
  await client.query(migration);
  for (let t = 0; t < TABLES; t++) {
    const values = [];
    const params = [];
    for (let id = 1; id <= ROWS; id++) {
      values.push(`($${params.length + 1}, $${params.length + 2}, $${params.length + 3})`);
      params.push(id, `row ${t}-${id}`, (id % 1000) / 10);
    }
    await client.query(`INSERT INTO table_${t} (id, name, amount) VALUES ${values.join(', ')}`, params);
  }
}

const time = async (work) => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const server = await startServer({ name: 'bench-restore', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => {} });
const client = new pg.Client(server.databaseUrl);
client.on('error', () => {});
await client.connect();
try {
  const migrate = [];
  for (let i = 0; i < RUNS; i++) migrate.push(await time(() => migrateAndSeed(client)));
  const snapshot = await time(() => server.snapshot('seeded'));
  const restoreData = [];
  for (let i = 0; i < RUNS; i++) {
    // What a test does between two restores: write to a few tables.
    await client.query("TRUNCATE table_0; UPDATE table_1 SET name = 'changed'; DELETE FROM table_2 WHERE id % 2 = 0");
    restoreData.push(await time(() => server.restore('seeded')));
  }
  const count = await client.query('SELECT count(*)::int AS n FROM table_0');
  if (count.rows[0].n !== ROWS) throw new Error(`restore left ${count.rows[0].n} rows in table_0, expected ${ROWS}`);
  process.stdout.write(`${JSON.stringify({ migrate: median(migrate), restoreData: median(restoreData), snapshot })}\n`);
} finally {
  await client.end().catch(() => {});
  await server.close();
}
