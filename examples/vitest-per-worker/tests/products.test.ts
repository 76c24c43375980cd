import { describe, expect, it } from 'vitest';
import { rowCounts, useWorkerDatabase } from './worker-database.js';

const { name, pool } = useWorkerDatabase();

// Every count below is exact: with a database shared between workers, customers.test.ts and orders.test.ts, running
// at the same time, would change them (and orders.test.ts's new order would keep the USB cable from being deleted).
describe('products', () => {
  it('starts from the seed, in a database of its own', async () => {
    const { rows } = await pool.query('SELECT current_database() AS name');
    expect(rows[0].name).toBe(name);
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 4, orders: 2, order_items: 3 });
  });

  it('adds three products', async () => {
    await pool.query(
      "INSERT INTO products (sku, name, price_cents) VALUES ('HS-01', 'Headset', 5900), ('WC-01', 'Webcam', 3900), ('DK-01', 'Dock', 12900)",
    );
    expect((await rowCounts(pool)).products).toBe(7);
  });

  it('deletes every product nobody ordered', async () => {
    const { rows } = await pool.query(
      'DELETE FROM products p WHERE NOT EXISTS (SELECT 1 FROM order_items i WHERE i.product_id = p.id) RETURNING sku',
    );
    expect(rows.map((row) => row.sku).sort()).toEqual(['CB-USB', 'DK-01', 'HS-01', 'WC-01']);
    expect(await rowCounts(pool)).toEqual({ customers: 3, products: 3, orders: 2, order_items: 3 });
  });

  it('cannot delete a product that was ordered (23503)', async () => {
    await expect(pool.query("DELETE FROM products WHERE sku = 'KB-01'")).rejects.toMatchObject({ code: '23503' });
    expect((await rowCounts(pool)).products).toBe(3);
  });
});
