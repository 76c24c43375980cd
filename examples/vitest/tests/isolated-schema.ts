/**
 * Per-file isolation on one shared server: every test file gets a schema of its own, and every connection of its
 * pool has `search_path` set to that schema (a startup option), so unqualified table names never clash between
 * files, even when several files run at the same time in different workers.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

export type IsolatedDatabase = { readonly pool: pg.Pool; readonly schema: string };

export function useIsolatedSchema(prefix: string): IsolatedDatabase {
  const databaseUrl = inject('databaseUrl');
  const schema = `${prefix}_${randomBytes(4).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, options: `-c search_path=${schema}`, max: 2 });
  pool.on('error', () => undefined);

  beforeAll(async () => {
    await pool.query(`CREATE SCHEMA ${schema}`);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
  });
  return { pool, schema };
}
