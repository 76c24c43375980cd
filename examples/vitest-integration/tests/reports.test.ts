import { describe, expect, it } from 'vitest';
import { openPool, visit } from './database.js';

const pool = openPool();

describe('reports', () => {
  it('runs in a database of its own', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    console.log(`reports.test.ts: worker ${process.env.VITEST_POOL_ID}, database ${rows[0].name}`);
    expect(await visit(pool, 'reports')).toEqual(['reports']);
  });

  it('sums the money held, which no transfer changes', async () => {
    await pool.query("DELETE FROM accounts WHERE owner = 'linus'");
    const { rows } = await pool.query('SELECT sum(balance_cents)::int AS total, count(*)::int AS accounts FROM accounts');
    expect(rows[0]).toEqual({ total: 15000, accounts: 2 });
  });
});
