/**
 * A stand-in for postgres.js's tests/test.js with the same exports (`t`, `nt`, `ot`, `t.timeout`) and the same
 * semantics for one test (a per-test timeout on the test function, then `[expected, got]` compared with `===`),
 * except where the run starts and how it ends. Upstream, the first failure marks every later test as ignored;
 * here the process saves its results and exits at the first failure, and the runner starts the suite again on a
 * fresh server from the next test ($PGDEV_SUITES_FROM, a position in the order tests are declared), so that one
 * failure neither hides the tests after it nor breaks them with what it left behind (a table, a running statement).
 * Each result is written to $PGDEV_SUITES_RESULTS as soon as it is known.
 *
 * $PGDEV_SUITES_SET_ASIDE (JSON: name -> reason) lists tests not to run; $PGDEV_SUITES_GREP runs only the tests
 * whose name contains it.
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import util from 'node:util';

const OUT = process.env.PGDEV_SUITES_RESULTS;
const SET_ASIDE = JSON.parse(process.env.PGDEV_SUITES_SET_ASIDE || '{}');
const GREP = process.env.PGDEV_SUITES_GREP;
const FROM = Number(process.env.PGDEV_SUITES_FROM || 0);
// Once every test has ended, the process gets this long to exit by itself before it is ended.
const EXIT_GRACE_MS = 3000;

const results = [];
let only = false;
let chain = Promise.resolve();
let registered = 0;
let ended = 0;

const save = () => OUT && fs.writeFileSync(OUT, JSON.stringify(results, null, 1));

export const nt = () => undefined;
export const ot = (...rest) => ((only = true), test(true, ...rest));
export const t = (...rest) => test(false, ...rest);
t.timeout = 5;

async function test(o, name, options, fn) {
  typeof options !== 'object' && ((fn = options), (options = {}));
  // The caller's line, found as upstream finds it (stack: Error, test, t, the test file).
  const line = Number(new Error().stack.split('\n')[3].match(':([0-9]+):')[1]);

  await 1;
  if (only && !o) return;

  const entry = { name, line, status: 'never finished' };
  results.push(entry);
  if (Object.hasOwn(SET_ASIDE, name)) {
    Object.assign(entry, { status: 'set aside', reason: SET_ASIDE[name] });
    return save();
  }
  if (results.length - 1 < FROM) {
    entry.status = 'earlier run';
    return save();
  }
  if (GREP && !name.includes(GREP)) {
    entry.status = 'not selected';
    return save();
  }
  registered++;
  save();
  chain = chain.then(async () => {
    const started = performance.now();
    let timer;
    try {
      const x = await Promise.race([
        new Promise((_, reject) => (timer = setTimeout(() => reject('Timed out'), (options.timeout || t.timeout) * 1000))),
        fn(),
      ]);
      clearTimeout(timer);
      if (!Array.isArray(x)) throw new Error('Test should return result array');
      const [expected, got] = await Promise.all(x);
      if (expected !== got) throw new Error(util.inspect(expected) + ' != ' + util.inspect(got));
      entry.status = 'pass';
    } catch (error) {
      entry.status = 'fail';
      entry.error = error instanceof Error ? `${error.code ? `${error.code} ` : ''}${error.message}` : util.inspect(error);
    }
    entry.ms = Math.round(performance.now() - started);
    save();
    if (entry.status === 'fail') {
      process.stderr.write(`failed: ${name} (line ${line}): ${entry.error}\n`);
      process.exit(0);
    }
    if (++ended === registered) setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
  });
}
