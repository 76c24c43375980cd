import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRequests } from '../engine/requests.js';
import type { Hono } from 'hono';
import { Engine, EngineSession } from '../engine/engine.js';
import { encodeApiKey } from './api-key.js';
import { createHttpApp } from './app.js';
import type { HttpContext } from './context.js';
import { MAX_SQL_BODY_BYTES, isTransactionControl } from './sql.js';

const secret = 'test-secret-0123456789abcdef';
const databaseUrl = 'postgres://postgres:postgres@localhost:51214/template1?sslmode=disable';
const shadowDatabaseUrl = 'postgres://postgres:postgres@localhost:51215/template1?sslmode=disable';
const apiKey = encodeApiKey({ databaseUrl, name: 'default', shadowDatabaseUrl, secret });

let engine: Engine;
let app: Hono;

beforeAll(async () => {
  engine = await Engine.open({ label: 'main' });
  const context: HttpContext = {
    name: 'default',
    version: '0.0.0-test',
    secret,
    urls: { databaseUrl, shadowDatabaseUrl, prismaPostgresUrl: `prisma+postgres://localhost:51213/?api_key=${apiKey}`, httpUrl: 'http://localhost:51213' },
    database: async () => engineRequests(() => engine),
    isReady: () => true,
  };
  app = createHttpApp(context);
}, 60_000);

afterAll(async () => {
  await engine?.close();
});

type Init = { body?: string; headers?: Record<string, string>; method?: string };

function request(init: Init = {}): Promise<Response> {
  return Promise.resolve(
    app.request('/sql', {
      method: init.method ?? 'POST',
      body: init.body,
      headers: { host: 'localhost:51213', authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...init.headers },
    }),
  );
}

function sql(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return request({ body: JSON.stringify(body), headers });
}

async function json(response: Response): Promise<any> {
  expect(response.headers.get('content-type')).toMatch(/application\/json/);
  return response.json();
}

describe('POST /sql: queries', () => {
  it('runs a query with params and answers rows, fields, rowCount and command', async () => {
    const response = await sql({ query: 'SELECT $1::int + 1 AS answer, $2::text AS greeting', params: [41, 'hello'] });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({
      rows: [{ answer: 42, greeting: 'hello' }],
      fields: [{ name: 'answer', dataTypeID: 23 }, { name: 'greeting', dataTypeID: 25 }],
      rowCount: 1,
      command: 'SELECT',
    });
  });

  it('runs DDL and DML and reports their command and row count', async () => {
    expect(await json(await sql({ query: 'CREATE TABLE sql_items (id serial PRIMARY KEY, name text UNIQUE NOT NULL, big bigint, data bytea, doc jsonb)' }))).toMatchObject({
      command: 'CREATE',
      rows: [],
    });
    const insert = await json(await sql({ query: "INSERT INTO sql_items (name, big, data, doc) VALUES ($1, 9007199254740993, '\\xdeadbeef', $2) RETURNING id", params: ['a', { x: [1, 2] }] }));
    expect(insert).toMatchObject({ command: 'INSERT', rowCount: 1, rows: [{ id: 1 }] });
    const update = await json(await sql({ query: 'UPDATE sql_items SET name = name WHERE id > 0' }));
    expect(update).toMatchObject({ command: 'UPDATE', rowCount: 1 });
  });

  it('keeps int8 exact (as a string), bytea as \\x hex and jsonb as JSON', async () => {
    const body = await json(await sql({ query: 'SELECT big, data, doc FROM sql_items WHERE name = $1', params: ['a'] }));
    expect(body.rows).toEqual([{ big: '9007199254740993', data: '\\xdeadbeef', doc: { x: [1, 2] } }]);
  });

  it('accepts a missing or null params', async () => {
    expect((await json(await sql({ query: 'SELECT 1 AS one', params: null }))).rows).toEqual([{ one: 1 }]);
    expect((await json(await sql({ query: 'SELECT 1 AS one' }))).rows).toEqual([{ one: 1 }]);
  });

  it('accepts curl-style bodies without a JSON content type', async () => {
    const response = await request({ body: JSON.stringify({ query: 'SELECT 2 AS two' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(response.status).toBe(200);
    expect((await response.json()).rows).toEqual([{ two: 2 }]);
  });

  it('does not let one request\'s SET reach the next', async () => {
    const before = (await json(await sql({ query: 'SHOW TimeZone' }))).rows[0].TimeZone;
    expect(before).not.toBe('Asia/Tokyo');
    for (const query of ["SET TimeZone = 'Asia/Tokyo'", "/* why */ set timezone to 'Asia/Tokyo'", "SELECT set_config('TimeZone', 'Asia/Tokyo', false)"]) {
      expect((await sql({ query })).status).toBe(200);
      expect((await json(await sql({ query: 'SHOW TimeZone' }))).rows[0].TimeZone, query).toBe(before);
    }
  });

  it('sees its own SET within a batch', async () => {
    const { results } = await json(await sql({ queries: [{ query: "SET LOCAL TimeZone = 'Asia/Tokyo'" }, { query: 'SHOW TimeZone' }] }));
    expect(results[1].rows[0].TimeZone).toBe('Asia/Tokyo');
  });

  it('drops the temporary tables, views and sequences a request creates', async () => {
    const response = await sql({
      queries: [
        { query: 'CREATE TEMP TABLE sql_scratch (id serial PRIMARY KEY, v text)' },
        { query: 'CREATE TEMP VIEW sql_scratch_view AS SELECT v FROM sql_scratch' },
        { query: 'CREATE TEMP SEQUENCE sql_scratch_seq' },
        { query: 'INSERT INTO sql_scratch (v) VALUES ($1)', params: ['kept for the request'] },
        { query: 'SELECT v FROM sql_scratch_view' },
      ],
    });
    expect(response.status).toBe(200);
    expect((await json(response)).results[4].rows).toEqual([{ v: 'kept for the request' }]);
    const after = await json(await sql({ query: "SELECT to_regclass('pg_temp.sql_scratch') AS t, to_regclass('pg_temp.sql_scratch_view') AS v, to_regclass('pg_temp.sql_scratch_seq') AS s" }));
    expect(after.rows).toEqual([{ t: null, v: null, s: null }]);
  });

  it('refuses commands on the shared session (LISTEN, UNLISTEN, DISCARD, DEALLOCATE, PREPARE)', async () => {
    for (const query of ['LISTEN jobs', 'UNLISTEN *', 'DISCARD ALL', 'DEALLOCATE ALL', 'PREPARE q AS SELECT 1']) {
      const response = await sql({ query });
      expect(response.status, query).toBe(400);
      expect((await json(response)).error.message).toMatch(/TCP database URL/);
    }
    expect((await sql({ queries: [{ query: 'SELECT 1' }, { query: 'listen x' }] })).status).toBe(400);
  });

  it('does not let a request leave a transaction open', async () => {
    const response = await sql({ query: 'BEGIN' });
    expect(response.status).toBe(400);
    expect((await json(response)).error.code).toBe('25000');
    const status = await json(await sql({ query: 'SELECT 1 AS ok' }));
    expect(status.rows).toEqual([{ ok: 1 }]);
    const lease = await engine.acquire(new EngineSession());
    try {
      expect(lease.transactionStatus()).toBe(0x49);
    } finally {
      lease.release();
    }
  });
});

describe('POST /sql: batches', () => {
  it('runs queries in one transaction and answers results', async () => {
    const response = await sql({
      queries: [
        { query: 'CREATE TABLE sql_batch (id int PRIMARY KEY, name text)' },
        { query: 'INSERT INTO sql_batch VALUES ($1, $2), ($3, $4)', params: [1, 'one', 2, 'two'] },
        { query: 'SELECT name FROM sql_batch ORDER BY id' },
        { query: 'SELECT txid_current() = txid_current() AS same' },
      ],
    });
    expect(response.status).toBe(200);
    const { results } = await json(response);
    expect(results).toHaveLength(4);
    expect(results[1]).toMatchObject({ command: 'INSERT', rowCount: 2 });
    expect(results[2]).toMatchObject({ command: 'SELECT', rows: [{ name: 'one' }, { name: 'two' }], fields: [{ name: 'name', dataTypeID: 25 }] });
  });

  it('is all or nothing: an error rolls back every earlier statement', async () => {
    const response = await sql({
      queries: [
        { query: 'INSERT INTO sql_batch VALUES (3, $1)', params: ['three'] },
        { query: 'CREATE TABLE sql_batch_never (id int)' },
        { query: 'INSERT INTO sql_batch VALUES (1, $1)', params: ['duplicate'] },
      ],
    });
    expect(response.status).toBe(400);
    const { error } = await json(response);
    expect(error).toMatchObject({ code: '23505', index: 2 });
    expect(error.message).toMatch(/duplicate key/);
    expect(error.detail).toMatch(/Key \(id\)=\(1\) already exists/);
    const after = await json(await sql({ query: "SELECT count(*)::int AS n, to_regclass('sql_batch_never') IS NULL AS gone FROM sql_batch" }));
    expect(after.rows).toEqual([{ n: 2, gone: true }]);
  });

  it('refuses transaction control inside a batch and rolls back', async () => {
    const response = await sql({ queries: [{ query: 'INSERT INTO sql_batch VALUES (10, $1)', params: ['x'] }, { query: 'COMMIT' }] });
    expect(response.status).toBe(400);
    expect((await json(response)).error).toMatchObject({ code: '25000', index: 1 });
    expect((await json(await sql({ query: 'SELECT count(*)::int AS n FROM sql_batch WHERE id = 10' }))).rows).toEqual([{ n: 0 }]);
  });
});

describe('POST /sql: Postgres errors', () => {
  it('answers 400 with code, message, detail and position', async () => {
    const response = await sql({ query: 'SELECT * FROM no_such_table' });
    expect(response.status).toBe(400);
    expect(await json(response)).toEqual({
      error: { code: '42P01', message: 'relation "no_such_table" does not exist', detail: null, hint: null, position: 15 },
    });
  });

  it('reports syntax errors with their position', async () => {
    const { error } = await json(await sql({ query: 'SELEC 1' }));
    expect(error).toMatchObject({ code: '42601', position: 1 });
  });

  it('reports a unique violation with its detail', async () => {
    const { error } = await json(await sql({ query: "INSERT INTO sql_items (name) VALUES ('a')" }));
    expect(error).toMatchObject({ code: '23505', detail: 'Key (name)=(a) already exists.' });
  });

  it('reports a wrong parameter count as a Postgres error, not a crash', async () => {
    const response = await sql({ query: 'SELECT $1::int AS x', params: [] });
    expect(response.status).toBe(400);
    expect((await json(response)).error.code).toMatch(/^[0-9A-Z]{5}$/);
  });

  it('still serves requests after errors', async () => {
    expect((await json(await sql({ query: 'SELECT 1 AS one' }))).rows).toEqual([{ one: 1 }]);
  });
});

describe('POST /sql: bad requests', () => {
  const cases: Array<[string, Init, number, RegExp]> = [
    ['invalid JSON', { body: '{"query": ' }, 400, /invalid JSON/],
    ['an empty body', { body: '' }, 400, /empty body/],
    ['a JSON array', { body: '[1,2]' }, 400, /JSON object/],
    ['a JSON string', { body: '"SELECT 1"' }, 400, /JSON object/],
    ['no query', { body: '{}' }, 400, /missing "query"/],
    ['a query that is not a string', { body: '{"query": 1}' }, 400, /"query" must be a string/],
    ['an empty query', { body: '{"query": "  "}' }, 400, /"query" is empty/],
    ['params that are not an array', { body: '{"query": "SELECT 1", "params": {"a": 1}}' }, 400, /"params" must be an array/],
    ['queries that is not an array', { body: '{"queries": "SELECT 1"}' }, 400, /"queries" must be an array/],
    ['empty queries', { body: '{"queries": []}' }, 400, /"queries" is empty/],
    ['a queries item that is not an object', { body: '{"queries": ["SELECT 1"]}' }, 400, /queries\[0\] must be an object/],
    ['a queries item without query', { body: '{"queries": [{"query": "SELECT 1"}, {"params": []}]}' }, 400, /queries\[1\]: missing "query"/],
    ['both query and queries', { body: '{"query": "SELECT 1", "queries": [{"query": "SELECT 1"}]}' }, 400, /not both/],
    ['a non-JSON content type', { body: '{"query": "SELECT 1"}', headers: { 'content-type': 'multipart/form-data; boundary=x' } }, 415, /unsupported content type/],
    ['GET', { method: 'GET' }, 405, /use POST/],
  ];
  for (const [name, init, status, message] of cases) {
    it(`answers ${status} with a message for ${name}`, async () => {
      const response = await request(init);
      expect(response.status).toBe(status);
      const body = await json(response);
      expect(body.error.message).toMatch(message);
    });
  }

  it('answers 413 for a body over the limit, without reading it all', async () => {
    const big = JSON.stringify({ query: `SELECT '${'x'.repeat(MAX_SQL_BODY_BYTES)}'` });
    const response = await request({ body: big });
    expect(response.status).toBe(413);
    expect((await json(response)).error.message).toMatch(/too large/);
  });

  it('answers 413 for a streamed (chunked) body over the limit', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(1024 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ > 12) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const response = await app.request('/sql', {
      method: 'POST',
      body: stream,
      headers: { host: 'localhost', authorization: `Bearer ${apiKey}` },
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(413);
  });
});

describe('POST /sql: authorisation', () => {
  const wrongSecret = encodeApiKey({ databaseUrl, name: 'default', shadowDatabaseUrl, secret: 'another-secret-0123456789ab' });
  const noSecret = Buffer.from(JSON.stringify({ databaseUrl, name: 'default', shadowDatabaseUrl })).toString('base64url');
  const cases: Array<[string, Record<string, string>]> = [
    ['no Authorization header', { authorization: '' }],
    ['a non-Bearer scheme', { authorization: `Basic ${apiKey}` }],
    ['a Bearer without a key', { authorization: 'Bearer ' }],
    ['a key that is not base64 JSON', { authorization: 'Bearer not-a-key' }],
    ['a key without a secret (today\'s prisma dev key)', { authorization: `Bearer ${noSecret}` }],
    ['a key with the wrong secret', { authorization: `Bearer ${wrongSecret}` }],
  ];
  const bodies = new Set<string>();
  for (const [name, headers] of cases) {
    it(`answers 401 for ${name}, revealing nothing`, async () => {
      const response = await sql({ query: 'SELECT 1' }, headers);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      const text = await response.text();
      bodies.add(text);
      expect(bodies.size).toBe(1); // the same answer whatever is wrong
      expect(text).not.toMatch(/default|5121[345]|template1|secret/);
      expect(JSON.parse(text).error.message).toMatch(/unauthorised/);
    });
  }

  it('checks the key before reading the body', async () => {
    const response = await request({ body: '{not json', headers: { authorization: '' } });
    expect(response.status).toBe(401);
  });

  it('accepts a lower-case bearer scheme', async () => {
    expect((await sql({ query: 'SELECT 1 AS one' }, { authorization: `bearer ${apiKey}` })).status).toBe(200);
  });
});

describe('POST /sql: local only', () => {
  it('refuses a non-loopback Host with 403 (DNS rebinding)', async () => {
    for (const host of ['evil.com', 'evil.com:51213', 'localhost.evil.com', '192.168.1.10:51213']) {
      const response = await sql({ query: 'SELECT 1' }, { host });
      expect(response.status).toBe(403);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('accepts loopback Hosts', async () => {
    for (const host of ['localhost', 'localhost:51213', '127.0.0.1:51213', '[::1]:51213']) {
      expect((await sql({ query: 'SELECT 1' }, { host })).status).toBe(200);
    }
  });

  it('refuses a non-loopback Origin with 403 and never sends CORS headers', async () => {
    for (const origin of ['https://evil.com', 'http://localhost.evil.com', 'null']) {
      const response = await sql({ query: 'SELECT 1' }, { origin });
      expect(response.status).toBe(403);
      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('answers a CORS preflight without allowing anything', async () => {
    const response = await request({
      method: 'OPTIONS',
      headers: { origin: 'https://evil.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(response.headers.get('access-control-allow-headers')).toBeNull();
  });

  it('sends no Access-Control-Allow-Origin even for a loopback Origin', async () => {
    const response = await sql({ query: 'SELECT 1' }, { origin: 'http://localhost:3000' });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('HTTP errors: one shape', () => {
  const get = (path: string, headers: Record<string, string> = {}) =>
    Promise.resolve(app.request(path, { headers: { host: 'localhost:51213', authorization: `Bearer ${apiKey}`, ...headers } }));

  it('answers every refusal as {"error": {"message", ...}}: 403, 404, 401, 405 (with Allow), and a Postgres error with its fields', async () => {
    const forbidden = await get('/health', { host: 'evil.com' });
    expect(forbidden.status).toBe(403);
    expect(await json(forbidden)).toEqual({ error: { message: 'forbidden: this server answers only requests to localhost' } });

    const crossOrigin = await get('/health', { origin: 'https://evil.com' });
    expect(await json(crossOrigin)).toEqual({ error: { message: 'forbidden: cross-origin requests are refused' } });

    const missing = await get('/nowhere');
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ error: { message: 'no route GET /nowhere' } });

    const sessions = await get('/sessions', { authorization: 'Bearer wrong' });
    expect(sessions.status).toBe(401);
    expect(sessions.headers.get('www-authenticate')).toBe('Bearer');
    expect((await json(sessions)).error.message).toMatch(/^unauthorised: send "Authorization: Bearer <api_key>"/);

    const wrongMethod = await request({ method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(await json(wrongMethod)).toEqual({ error: { message: 'use POST /sql with a JSON body {"query", "params"} or {"queries": [...]}' } });

    const postgres = await sql({ query: 'SELECT * FROM no_such_table_here' });
    expect(postgres.status).toBe(400);
    expect(await json(postgres)).toEqual({
      error: { message: 'relation "no_such_table_here" does not exist', code: '42P01', detail: null, hint: null, position: 15 },
    });
  });
});

describe('transaction control detection', () => {
  it('finds BEGIN, COMMIT, ROLLBACK and friends after comments and whitespace', () => {
    for (const sql of ['COMMIT', '  commit;', '-- note\nCOMMIT', '/* a /* nested */ comment */ end', 'ROLLBACK', 'abort', 'BEGIN', 'start transaction', 'PREPARE TRANSACTION \'x\'']) {
      expect(isTransactionControl(sql), sql).toBe(true);
    }
    for (const sql of ['ROLLBACK TO SAVEPOINT a', 'SAVEPOINT a', 'RELEASE SAVEPOINT a', 'SELECT 1', "DO $$ BEGIN PERFORM 1; END $$", '/* COMMIT */ SELECT 1', 'PREPARE q AS SELECT 1']) {
      expect(isTransactionControl(sql), sql).toBe(false);
    }
  });
});
