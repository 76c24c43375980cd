import { beforeEach, describe, expect, it } from 'vitest';
import { restore, workerDatabase } from 'pgdev/vitest';
import { openPool, visit } from './database.js';

const pool = openPool();

/** Moves money between two accounts in one transaction. */
async function transfer(from: string, to: string, amountCents: number): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('UPDATE accounts SET balance_cents = balance_cents - $2 WHERE owner = $1', [from, amountCents]);
    await client.query('UPDATE accounts SET balance_cents = balance_cents + $2 WHERE owner = $1', [to, amountCents]);
    await client.query(
      'INSERT INTO transfers (from_account, to_account, amount_cents) SELECT f.id, t.id, $3 FROM accounts f, accounts t WHERE f.owner = $1 AND t.owner = $2',
      [from, to, amountCents],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

async function balances(): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ owner: string; balance_cents: number }>('SELECT owner, balance_cents FROM accounts ORDER BY id');
  return Object.fromEntries(rows.map((row) => [row.owner, row.balance_cents]));
}

// Every test starts from the database as it was cloned: restore() reloads only the tables a test changed.
beforeEach(() => restore());

describe('transfers', () => {
  it('runs in a database of its own, named after its worker', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    expect(rows[0].name).toBe(workerDatabase().name);
    console.log(`transfers.test.ts: worker ${process.env.VITEST_POOL_ID}, database ${rows[0].name}`);
    expect(await visit(pool, 'transfers')).toEqual(['transfers']);
  });

  it('moves money, and records the transfer', async () => {
    await transfer('ada', 'linus', 1200);
    expect(await balances()).toEqual({ ada: 8800, grace: 5000, linus: 1200 });
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM transfers');
    expect(rows[0].n).toBe(2);
  });

  it('starts again from the seed after restore(): the previous test left nothing', async () => {
    expect(await balances()).toEqual({ ada: 10000, grace: 5000, linus: 0 });
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM transfers');
    expect(rows[0].n).toBe(1);
    expect(await visit(pool, 'transfers')).toEqual(['transfers']);
  });

  it('refuses an overdraft and changes nothing', async () => {
    await expect(transfer('linus', 'ada', 1)).rejects.toMatchObject({ code: '23514' });
    expect(await balances()).toEqual({ ada: 10000, grace: 5000, linus: 0 });
  });
});
