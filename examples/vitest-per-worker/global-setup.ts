/**
 * Runs once, in vitest's main process, before any worker starts:
 *
 * 1. finds a server: the one in DATABASE_URL (any Postgres), or else an in-memory pgdev started here on free ports;
 * 2. builds the template database `app_template`: every migrations/*.sql file in name order, then seed.sql;
 * 3. hands the server's URL and the template's name to the workers (`provide`, read with `inject`).
 *
 * Each worker then clones the template into a database of its own (tests/worker-database.ts). After the run the
 * teardown drops the worker databases and the template, and stops pgdev if it started it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startServer } from 'pgdev';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL of the server, to any of its databases: used only to create and drop databases. */
    adminUrl: string;
    /** The migrated and seeded database every worker database is cloned from. */
    templateDatabase: string;
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
const TEMPLATE = 'app_template';
/** The names tests/worker-database.ts gives the worker databases: app_test_1, app_test_2, ... */
const WORKER_DATABASE = /^app_test_\d+$/;

/** The same server, another database: only the path of the URL changes. */
function urlOfDatabase(url: string, database: string): string {
  const other = new URL(url);
  other.pathname = `/${database}`;
  return other.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  let adminUrl = process.env.DATABASE_URL;
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  if (adminUrl) {
    console.log(`using the server in DATABASE_URL (${new URL(adminUrl).host})`);
  } else {
    server = await startServer({
      // A name of its own, so it never collides with a `default` server you keep running for development.
      name: `vitest-per-worker-${process.pid}`,
      persistence: 'memory',
      port: 0,
      databasePort: 0,
      shadowDatabasePort: 0,
    });
    adminUrl = server.databaseUrl;
    console.log(`started pgdev server ${server.name} on port ${server.ports.database}`);
  }

  try {
    // A fresh template on every run, so a changed migration or seed is always picked up. TEMPLATE template0: start
    // empty on any Postgres (real Postgres would otherwise copy template1).
    await withClient(adminUrl, async (admin) => {
      await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE}`);
      await admin.query(`CREATE DATABASE ${TEMPLATE} TEMPLATE template0`);
    });
    const migrations = fs.readdirSync(path.join(here, 'migrations')).filter((file) => file.endsWith('.sql')).sort();
    await withClient(urlOfDatabase(adminUrl, TEMPLATE), async (template) => {
      for (const file of migrations) await template.query(fs.readFileSync(path.join(here, 'migrations', file), 'utf8'));
      await template.query(fs.readFileSync(path.join(here, 'seed.sql'), 'utf8'));
    });
    // The connection to the template is closed now: Postgres clones a database only while nobody is connected to it.
    console.log(`template ${TEMPLATE}: ${migrations.length} migration(s) and the seed applied`);
  } catch (error) {
    await server?.close();
    throw error;
  }

  project.provide('adminUrl', adminUrl);
  project.provide('templateDatabase', TEMPLATE);

  return async () => {
    try {
      await withClient(adminUrl, async (admin) => {
        const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database ORDER BY datname');
        const workers = rows.map((row) => row.datname).filter((name) => WORKER_DATABASE.test(name));
        // WITH (FORCE) (Postgres 13+): a worker that crashed may have left a connection open.
        for (const name of [...workers, TEMPLATE]) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        console.log(`dropped ${workers.length} worker database(s) (${workers.join(', ')}) and ${TEMPLATE}`);
      });
    } finally {
      await server?.close();
    }
  };
}
