import { describe, expect, it } from 'vitest';
import { rowCounts, useWorkerDatabase } from './worker-database.js';

const { name, pool } = useWorkerDatabase();

// Every count below is exact: with a database shared between workers, orders.test.ts and products.test.ts, running
// at the same time, would change them.
describe('customers', () => {
  it('starts from the seed, in a database of its own', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    expect(rows[0].name).toBe(name);
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 4, orders: 2, order_items: 3 });
  });

  it('inserts customers; the ids carry on from the seed, in its own sequence', async () => {
    const { rows } = await pool.query(
      "INSERT INTO customers (email, name) VALUES ('barbara@example.com', 'Barbara'), ('edsger@example.com', 'Edsger') RETURNING id",
    );
    expect(rows.map((row) => row.id)).toEqual([4, 5]);
    expect((await rowCounts(pool)).customers).toBe(5);
  });

  it('deletes a customer, and their orders and items with them', async () => {
    await pool.query("DELETE FROM customers WHERE email = 'ada@example.com'");
    expect(await rowCounts(pool)).toEqual({ customers: 4, products: 4, orders: 1, order_items: 1 });
  });
});
