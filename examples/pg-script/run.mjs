// A plain `pg` script: use the pgdev server named "default" if one runs (`npx pgdev -d`), else start one for the
// duration of the script (in memory, on free ports) and close it at the end.
//
// Run from the repository root:  node examples/pg-script/run.mjs
import pg from 'pg';
import { getServer, startServer } from 'pgdev';

const name = process.env.PGDEV_NAME ?? 'default';
const running = getServer(name);
const server = running ?? (await startServer({ name, persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0 }));
console.log(running ? `using the running pgdev server "${name}"` : `started pgdev server "${name}" for this script`);
console.log(`DATABASE_URL=${server.databaseUrl}`);

const client = new pg.Client({ connectionString: server.databaseUrl });
await client.connect();
try {
  // A temporary table: gone when this connection closes, so a shared server is left as it was.
  await client.query('CREATE TEMP TABLE fruit (name text PRIMARY KEY, price numeric(6, 2) NOT NULL)');
  await client.query('INSERT INTO fruit VALUES ($1, $2), ($3, $4), ($5, $6)', ['apple', 1.2, 'banana', 0.5, 'cherry', 4.75]);
  const { rows } = await client.query('SELECT name, price::text AS price FROM fruit WHERE price > $1 ORDER BY name', [1]);
  for (const row of rows) console.log(`${row.name}: ${row.price}`);
  const { rows: [version] } = await client.query('SELECT version()');
  console.log(version.version.split(' on ')[0]);
} finally {
  await client.end();
  if (!running) {
    await server.close();
    console.log(`closed pgdev server "${name}"`);
  }
}
