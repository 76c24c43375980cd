// Reference (a): in-process PGlite, the same version as pgdev, running the same statements with no network:
// the limit for any PGlite server. A long-lived child process (so its memory and CPU are measured like a server's),
// driven by JSON lines on stdin; each answer is one `RESULT {...}` line on stdout.
// Usage: node bench/subjects/inproc.js --data-dir DIR
// A new data directory is initialised by PGlite itself (initdb), as a plain PGlite user would get it.
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { PGlite } from '@electric-sql/pglite';
import { parseArgs } from '../lib/args.js';
import { errorIn, extendedQuery, simpleQuery } from '../lib/pgwire.js';
import * as W from '../lib/workload.js';

const args = parseArgs();
const pg = await PGlite.create({ dataDir: args['data-dir'] });
await pg.query('SELECT 1');
console.log('ready');

/**
 * The wire-protocol bytes a TCP client would send, answered as pgdev's engine answers them (RawPGlite.execRaw):
 * through execProtocolRawStream's callback, synchronously, with no promise awaited and no parsing. The leanest way
 * to run a statement in PGlite, so the limit for any PGlite server. (execProtocolRawSync, which pgdev used before,
 * also parses every answer and keeps the result until the next query().)
 */
function rawExec(message) {
  const chunks = [];
  void pg.execProtocolRawStream(message, { syncToFs: false, onRawData: (bytes) => chunks.push(Buffer.from(bytes)) });
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** Runs one statement with the chosen API; returns an error message or undefined. 'query' is the everyday pg.query(). */
async function run(api, sql) {
  if (api === 'raw') return errorIn(rawExec(simpleQuery(sql)));
  try {
    await pg.query(sql);
    return undefined;
  } catch (error) {
    return error.message;
  }
}

const ops = {
  async 'pgbench-init'({ scale = 1 }) {
    for (const sql of W.pgbenchInitSql(scale)) await pg.exec(sql);
    return {};
  },
  /** pgbench's loop in one session: `script` is 'select' (-S) or 'tpcb'; counts transactions with an error. */
  async pgbench({ script, seconds, api, scale = 1 }) {
    const makeTxn = script === 'select' ? W.selectOnlyTxn : W.tpcbTxn;
    const end = performance.now() + seconds * 1000;
    let txns = 0;
    let failures = 0;
    const started = performance.now();
    while (performance.now() < end) {
      let failed;
      for (const sql of makeTxn(scale)) failed = (await run(api, sql)) ?? failed;
      if (failed) {
        failures++;
        await run(api, 'ROLLBACK');
      } else txns++;
    }
    return { tps: txns / ((performance.now() - started) / 1000), txns, failures };
  },
  /** `n` sequential `SELECT $1::int`, each timed. */
  async 'select-seq'({ n, api, warmup = 200 }) {
    const lat = [];
    for (let i = 0; i < n + warmup; i++) {
      const t = performance.now();
      if (api === 'raw') {
        const error = errorIn(rawExec(extendedQuery('SELECT $1::int', [i])));
        if (error) throw new Error(error);
      } else await pg.query('SELECT $1::int', [i]);
      if (i >= warmup) lat.push(performance.now() - t);
    }
    return { lat };
  },
  async 'bulk-reset'() {
    await pg.exec(W.BULK_RESET_SQL);
    return {};
  },
  /** BEGIN; one INSERT of `rows` rows; COMMIT, timed as a whole. */
  async 'bulk-insert'({ rows, api }) {
    const sql = W.bulkInsertSql(rows);
    const t = performance.now();
    for (const statement of ['BEGIN', sql, 'COMMIT']) {
      const error = await run(api, statement);
      if (error) throw new Error(error);
    }
    return { ms: performance.now() - t };
  },
  /** The same rows through COPY FROM a blob: PGlite's in-process equivalent of COPY FROM STDIN. */
  async 'bulk-copy'({ rows }) {
    const blob = new Blob([W.bulkCopyText(rows)]);
    const t = performance.now();
    await pg.query(`COPY ${W.BULK_TABLE} (id, name, value) FROM '/dev/blob'`, [], { blob });
    return { ms: performance.now() - t };
  },
  async close() {
    await pg.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

// One command at a time, in order.
const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const { id, op, ...params } = JSON.parse(line);
    try {
      const result = await ops[op](params);
      process.stdout.write(`RESULT ${JSON.stringify({ id, ok: true, result })}\n`);
    } catch (error) {
      process.stdout.write(`RESULT ${JSON.stringify({ id, ok: false, error: String(error?.message ?? error) })}\n`);
    }
  });
});
lines.on('close', () => chain.then(() => pg.close()).then(() => process.exit(0)));
process.on('SIGTERM', () => pg.close().finally(() => process.exit(0)));
