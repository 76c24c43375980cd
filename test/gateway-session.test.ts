/**
 * @module
 * Proves that session state belongs to the connection that made it: SET / RESET / set_config (search_path, TimeZone,
 * application_name) are seen only by that connection, a new connection starts from defaults, a startup `options`
 * setting applies to its connection alone, and a temporary table is dropped when its connection closes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { waitFor } from './support/wait.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'session' });
});

afterAll(async () => {
  await server?.close();
});

type Settings = { search_path: string; timezone: string; application_name: string };

async function settings(client: pg.Client): Promise<Settings> {
  const { rows } = await client.query<Settings>(
    "SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS timezone, current_setting('application_name') AS application_name",
  );
  return rows[0]!;
}

function client(options: pg.ClientConfig = {}): pg.Client {
  const c = new pg.Client({ connectionString: server.url, ...options });
  c.on('error', () => undefined);
  return c;
}

describe('gateway: session state', () => {
  it('SET, RESET and set_config stay with the connection that made them; a new connection starts from defaults', async () => {
    const a = client();
    const b = client();
    const c = client();
    try {
      await Promise.all([a.connect(), b.connect()]);
      const defaults = await settings(b);
      // PGlite starts its backend with search_path=public (not Postgres' '"$user", public') and TimeZone UTC.
      expect(defaults.search_path).toBe('public');
      expect(defaults.timezone).toBe('UTC');
      expect(defaults.application_name).toBe('');
      expect(await settings(a)).toEqual(defaults);
      const otherZone = 'Asia/Tokyo';

      await a.query('CREATE SCHEMA IF NOT EXISTS sess_schema');
      await a.query('SET search_path TO sess_schema, public');
      await a.query(`SET TimeZone TO '${otherZone}'`);
      await a.query("SELECT set_config('application_name', 'conn-a', false)");
      const changed: Settings = { search_path: 'sess_schema, public', timezone: otherZone, application_name: 'conn-a' };

      // Interleave the two connections several times: each keeps its own settings.
      for (let i = 0; i < 3; i++) {
        const [sa, sb] = await Promise.all([settings(a), settings(b)]);
        expect(sa).toEqual(changed);
        expect(sb).toEqual(defaults);
      }
      // The setting has its effect, not just its value: unqualified names resolve in A's search_path only.
      await a.query('DROP TABLE IF EXISTS sess_schema.where_am_i; CREATE TABLE where_am_i (x int)');
      const placed = await b.query<{ schema: string }>(
        "SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'where_am_i'",
      );
      expect(placed.rows).toEqual([{ schema: 'sess_schema' }]);
      await expect(b.query('SELECT * FROM where_am_i')).rejects.toMatchObject({ code: '42P01' });
      const stamp = "SELECT to_char(timestamptz '2024-01-01 00:00:00+00', 'YYYY-MM-DD HH24:MI') AS t";
      expect((await b.query(stamp)).rows).toEqual([{ t: '2024-01-01 00:00' }]);
      expect((await a.query(stamp)).rows).toEqual([{ t: '2024-01-01 09:00' }]);

      // A new connection starts from defaults even while A keeps its settings.
      await c.connect();
      expect(await settings(c)).toEqual(defaults);

      await a.query('RESET TimeZone');
      expect(await settings(a)).toEqual({ ...changed, timezone: defaults.timezone });
      await a.query('RESET ALL');
      expect(await settings(a)).toEqual(defaults);
      expect(await settings(b)).toEqual(defaults);
    } finally {
      await Promise.all([a, b, c].map((x) => x.end().catch(() => undefined)));
    }
  });

  it("a startup option (options: '-c search_path=foo') applies to that connection only", async () => {
    const withOption = client({ options: '-c search_path=foo' });
    const plain = client();
    try {
      await Promise.all([withOption.connect(), plain.connect()]);
      const [mine, theirs] = await Promise.all([
        withOption.query<{ search_path: string }>('SHOW search_path'),
        plain.query<{ search_path: string }>('SHOW search_path'),
      ]);
      expect(mine.rows).toEqual([{ search_path: 'foo' }]);
      expect(theirs.rows).toEqual([{ search_path: 'public' }]);
      expect((await withOption.query('SHOW search_path')).rows).toEqual([{ search_path: 'foo' }]);
    } finally {
      await Promise.all([withOption, plain].map((x) => x.end().catch(() => undefined)));
    }
  });

  it('a temporary table is dropped when the connection that created it closes', async () => {
    const a = client();
    const b = client();
    try {
      await a.connect();
      await a.query('CREATE TEMP TABLE sess_tmp (x int)');
      await a.query('INSERT INTO sess_tmp VALUES (1), (2)');
      expect((await a.query('SELECT count(*)::int AS n FROM sess_tmp')).rows).toEqual([{ n: 2 }]);
      await a.end();
      await waitFor(() => server.gateway.connections === 0, 'A to be torn down');

      await b.connect();
      expect((await b.query("SELECT to_regclass('pg_temp.sess_tmp') IS NULL AS gone")).rows).toEqual([{ gone: true }]);
      await expect(b.query('SELECT * FROM sess_tmp')).rejects.toMatchObject({ code: '42P01' });
      // The name is free again for a new connection's own temporary table.
      await b.query('CREATE TEMP TABLE sess_tmp (y text)');
      expect((await b.query('SELECT count(*)::int AS n FROM sess_tmp')).rows).toEqual([{ n: 0 }]);
    } finally {
      await Promise.all([a, b].map((x) => x.end().catch(() => undefined)));
    }
  });

  it('temporary views and sequences (not only tables) are dropped when their connection closes', async () => {
    const a = client();
    const b = client();
    try {
      await a.connect();
      await a.query('CREATE TEMP SEQUENCE sess_seq');
      await a.query('CREATE TEMP VIEW sess_view AS SELECT 1 AS one');
      await a.end();
      await waitFor(() => server.gateway.connections === 0, 'A to be torn down');

      await b.connect();
      const gone = await b.query("SELECT to_regclass('pg_temp.sess_seq') IS NULL AS seq, to_regclass('pg_temp.sess_view') IS NULL AS view");
      expect(gone.rows).toEqual([{ seq: true, view: true }]);
    } finally {
      await Promise.all([a, b].map((x) => x.end().catch(() => undefined)));
    }
  });

  it('a temporary table is invisible to other connections while its creator is connected; each may use the same name', async () => {
    const a = client();
    const b = client();
    try {
      await Promise.all([a.connect(), b.connect()]);
      await a.query('CREATE TEMP TABLE sess_private (x int)');
      await a.query('INSERT INTO sess_private VALUES (1)');
      expect((await b.query("SELECT to_regclass('sess_private') IS NULL AS invisible")).rows).toEqual([{ invisible: true }]);
      await b.query("CREATE TEMP TABLE sess_private (y text); INSERT INTO sess_private VALUES ('b1'), ('b2')");
      // Each connection sees its own table, as often as they take turns.
      for (let turn = 0; turn < 3; turn++) {
        expect((await a.query('SELECT x FROM sess_private')).rows).toEqual([{ x: 1 }]);
        expect((await b.query('SELECT y FROM sess_private ORDER BY y')).rows).toEqual([{ y: 'b1' }, { y: 'b2' }]);
      }
      await a.end();
      await waitFor(() => server.gateway.connections === 1, 'A to be torn down');
      expect((await b.query('SELECT count(*)::int AS n FROM sess_private')).rows).toEqual([{ n: 2 }]);
    } finally {
      await Promise.all([a, b].map((x) => x.end().catch(() => undefined)));
    }
  });
});
