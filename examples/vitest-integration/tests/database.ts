/** A pg.Pool on this worker's database, which pgdev/vitest cloned before the file ran (its URL is in DATABASE_URL). */
import pg from 'pg';
import { afterAll } from 'vitest';

export function openPool(): pg.Pool {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  pool.on('error', () => undefined); // a connection ended by the server is dropped; the pool opens another
  afterAll(() => pool.end());
  return pool;
}

/** Records that `testFile` ran in this database, and returns every test file that did. */
export async function visit(pool: pg.Pool, testFile: string): Promise<string[]> {
  await pool.query('INSERT INTO visits (test_file) VALUES ($1)', [testFile]);
  const { rows } = await pool.query<{ test_file: string }>('SELECT test_file FROM visits ORDER BY test_file');
  return rows.map((row) => row.test_file);
}
