import { beforeAll, describe, expect, it } from 'vitest';
import { useIsolatedSchema } from './isolated-schema.js';

const { pool, schema } = useIsolatedSchema('todos');

beforeAll(async () => {
  // The same table name as tests/notes.test.ts uses: each file has its own schema, so they never clash.
  await pool.query('CREATE TABLE items (id serial PRIMARY KEY, title text NOT NULL, done boolean NOT NULL DEFAULT false)');
});

describe('todos', () => {
  it('inserts and reads back rows in its own schema', async () => {
    await pool.query("INSERT INTO items (title) VALUES ('write tests'), ('ship it')");
    const { rows } = await pool.query('SELECT title FROM items ORDER BY id');
    expect(rows.map((row) => row.title)).toEqual(['write tests', 'ship it']);
    const { rows: [where] } = await pool.query("SELECT relnamespace::regnamespace::text AS schema FROM pg_class WHERE oid = 'items'::regclass");
    expect(where.schema).toBe(schema);
  });

  it('sees only its own rows', async () => {
    await pool.query("UPDATE items SET done = true WHERE title = 'write tests'");
    const { rows } = await pool.query('SELECT count(*)::int AS total, count(*) FILTER (WHERE done)::int AS done FROM items');
    expect(rows[0]).toEqual({ total: 2, done: 1 });
  });
});
