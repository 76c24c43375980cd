/** Load driven over TCP from the bench process (node-postgres, pg-copy-streams) or from pgbench. */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { runCommand } from './proc.js';
import * as W from './workload.js';

export class Hung extends Error {
  constructor(what, ms) {
    super(`${what}: no answer within ${Math.round(ms / 1000)} s`);
    this.name = 'Hung';
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function destroy(client) {
  try {
    client.connection?.stream?.destroy();
  } catch {}
  client.end().catch(() => undefined);
}

/** Connects `n` clients, runs `fn(clients)` within `timeoutMs`, and always tears the clients down. */
export async function withClients(url, n, timeoutMs, what, fn) {
  const clients = [];
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Hung(what, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([
      guard,
      (async () => {
        for (let i = 0; i < n; i++) {
          const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
          client.on('error', () => undefined);
          clients.push(client);
          await client.connect();
        }
        return fn(clients);
      })(),
    ]);
  } finally {
    clearTimeout(timer);
    for (const client of clients) destroy(client);
  }
}

/** Polls `SELECT 1` until it succeeds; resolves the time it first did, or rejects when `until` resolves first. */
export async function waitForSelect1(url, { deadlineMs, until, intervalMs = 20 }) {
  let stop;
  until?.then((reason) => (stop = reason ?? 'stopped'));
  const end = performance.now() + deadlineMs;
  let lastError;
  while (performance.now() < end) {
    if (stop) throw new Error(`server exited before it was ready (${JSON.stringify(stop)})`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, query_timeout: 5000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      const at = performance.now();
      destroy(client);
      return at;
    } catch (error) {
      lastError = error;
      destroy(client);
      await sleep(intervalMs);
    }
  }
  throw new Hung(`SELECT 1 (last error: ${lastError?.message})`, deadlineMs);
}

/** Runs pgbench; resolves { tps, failures, aborted } or throws (Hung on time-out). */
export async function pgbench(url, { script, clients, seconds, timeoutMs }) {
  const args = ['-n', '-M', 'simple', '-c', String(clients), '-j', '1', '-T', String(seconds)];
  if (script === 'select') args.push('-S');
  args.push(url);
  const r = await runCommand('pgbench', args, { timeoutMs, env: { PGCONNECT_TIMEOUT: '15' } });
  if (r.timedOut) throw new Hung(`pgbench ${args.slice(0, -1).join(' ')}`, timeoutMs);
  const out = r.stdout + r.stderr;
  const tps = out.match(/tps = ([\d.]+) \(without initial connection time\)/);
  const failed = out.match(/number of failed transactions: (\d+)/);
  const abortedClients = (out.match(/client \d+ aborted/g) ?? []).length;
  if (!tps) throw new Error(`pgbench exited ${r.code}: ${lastLines(out)}`);
  return {
    tps: Number(tps[1]),
    failures: Number(failed?.[1] ?? 0) + abortedClients,
    aborted: r.code !== 0 || /aborted/.test(out),
    note: r.code !== 0 ? lastLines(out) : undefined,
  };
}

export async function pgbenchInit(url, timeoutMs) {
  const r = await runCommand('pgbench', ['-i', '-s', '1', '-I', 'dtGvp', '-q', url], { timeoutMs, env: { PGCONNECT_TIMEOUT: '15' } });
  if (r.timedOut) throw new Hung('pgbench -i', timeoutMs);
  if (r.code !== 0) throw new Error(`pgbench -i exited ${r.code}: ${lastLines(r.stdout + r.stderr)}`);
  return r.ms;
}

export function lastLines(text, n = 2) {
  return text.trim().split('\n').filter(Boolean).slice(-n).join(' | ').slice(0, 300);
}

/** `n` sequential `SELECT $1::int` on one connection, after `warmup` untimed ones: per-query latencies in ms. */
export function selectSeq(url, { n, warmup = 200, timeoutMs }) {
  return withClients(url, 1, timeoutMs, `${n} sequential SELECT $1::int`, async ([client]) => {
    const lat = [];
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now();
      const { rows } = await client.query('SELECT $1::int AS v', [i]);
      if (i >= warmup) lat.push(performance.now() - t);
      if (rows[0].v !== i) throw new Error(`wrong answer ${rows[0].v} for ${i}`);
    }
    return { lat };
  });
}

/** `connections` clients each running `perConnection` `SELECT $1::int` at once: latencies and overall rate. */
export function selectParallel(url, { connections, perConnection, warmup = 20, timeoutMs }) {
  return withClients(url, connections, timeoutMs, `${connections} parallel connections`, async (clients) => {
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < warmup; i++) await c.query('SELECT $1::int AS v', [i]);
    }));
    const lat = [];
    const started = performance.now();
    await Promise.all(
      clients.map(async (client) => {
        for (let i = 0; i < perConnection; i++) {
          const t = performance.now();
          const { rows } = await client.query('SELECT $1::int AS v', [i]);
          lat.push(performance.now() - t);
          if (rows[0].v !== i) throw new Error(`wrong answer ${rows[0].v} for ${i}`);
        }
      }),
    );
    return { lat, qps: (connections * perConnection) / ((performance.now() - started) / 1000) };
  });
}

async function resetBulk(client) {
  await client.query(W.BULK_RESET_SQL);
}

async function checkCount(client, rows) {
  const { rows: r } = await client.query(`SELECT count(*)::int AS n FROM ${W.BULK_TABLE}`);
  if (r[0].n !== rows) throw new Error(`expected ${rows} rows, found ${r[0].n}`);
}

/** BEGIN; one INSERT of `rows` rows of literals; COMMIT: elapsed ms. */
export function bulkInsert(url, { rows, timeoutMs }) {
  const sql = W.bulkInsertSql(rows);
  return withClients(url, 1, timeoutMs, `${rows}-row INSERT`, async ([client]) => {
    await resetBulk(client);
    const t = performance.now();
    await client.query('BEGIN');
    await client.query(sql);
    await client.query('COMMIT');
    const ms = performance.now() - t;
    await checkCount(client, rows);
    return { ms };
  });
}

/** COPY FROM STDIN of `rows` rows (text format, one write): elapsed ms. */
export function bulkCopy(url, { rows, timeoutMs }) {
  const data = W.bulkCopyText(rows);
  return withClients(url, 1, timeoutMs, `COPY FROM STDIN of ${rows} rows`, async ([client]) => {
    await resetBulk(client);
    const t = performance.now();
    await new Promise((resolve, reject) => {
      const stream = client.query(copyFrom(W.COPY_SQL));
      stream.on('error', reject);
      stream.on('finish', resolve);
      stream.end(Buffer.from(data));
    });
    const ms = performance.now() - t;
    await checkCount(client, rows);
    return { ms };
  });
}
