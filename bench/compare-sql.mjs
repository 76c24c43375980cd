// POST /sql round trips of two pgdev checkouts, interleaved in one run (as compare.sh does for pgbench):
//   node bench/compare-sql.mjs OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]
// Each checkout must be built. Each server runs detached with its own XDG_DATA_HOME on free ports; each round sends
// 1,000 sequential `SELECT $1::int` requests to one, then to the other, and prints p50 and p99 in ms.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [oldCheckout, newCheckout, roundsArg] = process.argv.slice(2);
if (!oldCheckout || !newCheckout) {
  console.error('usage: node bench/compare-sql.mjs OLD_CHECKOUT NEW_CHECKOUT [ROUNDS]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const REQUESTS = 1_000;

function pgdev(side, args) {
  return execFileSync(process.execPath, [path.join(side.checkout, 'bin', 'pgdev.js'), ...args], { env: side.env }).toString().trim();
}

const sides = [
  { name: 'old', checkout: oldCheckout },
  { name: 'new', checkout: newCheckout },
];
for (const side of sides) {
  side.home = fs.mkdtempSync(path.join(os.tmpdir(), 'compare-sql-'));
  side.env = { ...process.env, XDG_DATA_HOME: side.home };
  pgdev(side, ['-n', 'compare', '-d', '--port', '0', '--db-port', '0', '--shadow-db-port', '0']);
  const url = new URL(pgdev(side, ['url', 'compare', '--http']).replace('prisma+postgres:', 'http:'));
  side.endpoint = `http://localhost:${url.port}/sql`;
  side.apiKey = url.searchParams.get('api_key');
}

async function roundTrips(side, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const response = await fetch(side.endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${side.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT $1::int AS x', params: [i] }),
    });
    await response.json();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n * 0.5)], p99: times[Math.floor(n * 0.99)] };
}

try {
  for (const side of sides) await roundTrips(side, 200); // warm-up
  console.log('round side p50_ms p99_ms');
  for (let round = 1; round <= rounds; round++) {
    for (const side of sides) {
      const { p50, p99 } = await roundTrips(side, REQUESTS);
      console.log(round, side.name, p50.toFixed(3), p99.toFixed(3));
    }
  }
} finally {
  for (const side of sides) {
    pgdev(side, ['stop', 'compare']);
    fs.rmSync(side.home, { recursive: true, force: true });
  }
}
