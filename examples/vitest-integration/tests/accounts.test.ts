import { describe, expect, it } from 'vitest';
import { workerDatabase } from 'pgdev/vitest';
import { openPool, visit } from './database.js';

const pool = openPool();

describe('accounts', () => {
  it('runs in a database of its own, named after its worker', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    expect(rows[0].name).toBe(workerDatabase().name);
    expect(rows[0].name).toBe(`pgdev_vitest_${process.env.VITEST_POOL_ID}`);
    console.log(`accounts.test.ts: worker ${process.env.VITEST_POOL_ID}, database ${rows[0].name}`);
    // The other files write here too, at the same time or earlier in this worker: none of it is seen.
    expect(await visit(pool, 'accounts')).toEqual(['accounts']);
  });

  it('starts from the seed', async () => {
    const { rows } = await pool.query('SELECT owner, balance_cents FROM accounts ORDER BY id');
    expect(rows).toEqual([
      { owner: 'ada', balance_cents: 10000 },
      { owner: 'grace', balance_cents: 5000 },
      { owner: 'linus', balance_cents: 0 },
    ]);
  });

  it('opens an account; ids carry on from the seed', async () => {
    const { rows } = await pool.query("INSERT INTO accounts (owner, balance_cents) VALUES ('barbara', 700) RETURNING id");
    expect(rows[0].id).toBe(4);
  });
});
