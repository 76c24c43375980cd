/**
 * One database per vitest worker, cloned from the migrated and seeded template that global-setup.ts built.
 *
 * The database is named after the worker's slot, `app_test_<VITEST_POOL_ID>` (1 to maxWorkers), so workers running
 * at the same time never share one. vitest's forks pool starts a fresh process for every test file, so each file
 * gets a fresh clone: dropped first if the slot's previous file (or a crashed run) left one behind. global-setup.ts
 * drops them all after the run.
 */
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

export type WorkerDatabase = { readonly name: string; readonly pool: pg.Pool };

export function useWorkerDatabase(): WorkerDatabase {
  const adminUrl = inject('adminUrl');
  const template = inject('templateDatabase');
  const name = `app_test_${process.env.VITEST_POOL_ID ?? '1'}`;
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  pool.on('error', () => undefined);

  beforeAll(async () => {
    // Plain SQL, so this works on any Postgres. The connection goes to the admin URL's database, not to the template:
    // Postgres refuses to clone a database somebody is connected to.
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    } finally {
      await admin.end();
    }
  });
  afterAll(async () => {
    await pool.end();
  });
  return { name, pool };
}

/** `SELECT count(*)` of each table, as numbers. */
export async function rowCounts(pool: pg.Pool): Promise<Record<'customers' | 'products' | 'orders' | 'order_items', number>> {
  const { rows } = await pool.query(`SELECT
    (SELECT count(*)::int FROM customers) AS customers,
    (SELECT count(*)::int FROM products) AS products,
    (SELECT count(*)::int FROM orders) AS orders,
    (SELECT count(*)::int FROM order_items) AS order_items`);
  return rows[0];
}
