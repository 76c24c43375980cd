import { describe, expect, it } from 'vitest';
import { rowCounts, useWorkerDatabase } from './worker-database.js';

const { name, pool } = useWorkerDatabase();

// Every count below is exact: with a database shared between workers, customers.test.ts (which deletes Ada and her
// order) and products.test.ts, running at the same time, would change them.
describe('orders', () => {
  it('starts from the seed, in a database of its own', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    expect(rows[0].name).toBe(name);
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 4, orders: 2, order_items: 3 });
  });

  it('places an order with three items in one transaction', async () => {
    const client = await pool.connect();
    let orderId: number;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query("INSERT INTO orders (customer_id) SELECT id FROM customers WHERE email = 'linus@example.com' RETURNING id");
      orderId = rows[0].id;
      await client.query(
        `INSERT INTO order_items (order_id, product_id, quantity)
         SELECT $1, id, quantity FROM products JOIN (VALUES ('KB-01', 2), ('MS-01', 2), ('CB-USB', 4)) AS wanted (sku, quantity) USING (sku)`,
        [orderId],
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(orderId).toBe(3);
    const { rows } = await pool.query(
      'SELECT sum(i.quantity * p.price_cents)::int AS total FROM order_items i JOIN products p ON p.id = i.product_id WHERE i.order_id = $1',
      [orderId],
    );
    expect(rows[0].total).toBe(2 * 4900 + 2 * 1900 + 4 * 900);
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 4, orders: 3, order_items: 6 });
  });

  it('cancels every order of one customer', async () => {
    await pool.query("DELETE FROM orders WHERE customer_id = (SELECT id FROM customers WHERE email = 'grace@example.com')");
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 4, orders: 2, order_items: 5 });
  });
});
