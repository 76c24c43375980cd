import { beforeAll, describe, expect, it } from 'vitest';
import { useIsolatedSchema } from './isolated-schema.js';

const { pool } = useIsolatedSchema('notes');

beforeAll(async () => {
  // The same table name as tests/todos.test.ts, with other columns: no clash, each file has its own schema.
  await pool.query('CREATE TABLE items (id serial PRIMARY KEY, body text NOT NULL, tags text[] NOT NULL)');
});

describe('notes', () => {
  it('stores arrays and filters on them', async () => {
    await pool.query('INSERT INTO items (body, tags) VALUES ($1, $2), ($3, $4), ($5, $6)', [
      'first', ['a', 'b'], 'second', ['b'], 'third', ['c'],
    ]);
    const { rows } = await pool.query("SELECT body FROM items WHERE 'b' = ANY (tags) ORDER BY id");
    expect(rows.map((row) => row.body)).toEqual(['first', 'second']);
  });

  it('runs a transaction on one pooled connection', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("DELETE FROM items WHERE body = 'third'");
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM items');
    expect(rows[0].n).toBe(3);
  });
});
