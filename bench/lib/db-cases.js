/**
 * The multi-database cases of issue 11 ("databases for real"), and those of issues 18 (databases created at once, a
 * test suite's workers) and 19 (cancel latency), run by bench/run.js; see bench/README.md.
 *
 * Each case starts its own servers on fresh data (not the long-lived servers of the load cases, which stay frozen
 * meanwhile): pgdev through its CLI, @prisma/dev where the case compares with it, and a real PostgreSQL (a real
 * server's figures on the same machine, for scale): the one at BENCH_POSTGRES_URL, else a throw-away cluster that
 * run.js starts once for all these cases.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import * as D from './databases.js';
import { cancelRequest } from './pgwire.js';
import { groupCpuSeconds, signalGroup, spawnGroup, stopGroup } from './proc.js';
import { percentile } from './stats.js';
import { Instance, randomName, REPO } from './subjects.js';
import * as tcp from './tcp.js';

const SUBJECTS_DIR = fileURLToPath(new URL('../subjects/', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tag = () => crypto.randomBytes(3).toString('hex');

export const DB_CASES = [
  'two-db-s4', 'sleep-isolation', 'clone', 'create4', 'workers4', 'suite-workers', 'cancel-latency', 'ready-warm-inproc', 'rss-databases',
];
/** The cases that also run on PostgreSQL, column (d). */
export const POSTGRES_CASES = ['two-db-s4', 'sleep-isolation', 'clone', 'create4', 'workers4', 'suite-workers', 'cancel-latency'];

/**
 * Table rows of these cases (same shape as run.js's METRICS). `target`: the issue's figure, checked in the
 * "Targets" list under the table: { column, op: '>=' | '<=', value, ratioTo? } (ratioTo: pgdev ÷ that column).
 */
export function dbMetrics({ workerTxns, quick }) {
  const suiteTests = quick ? 100 : 300;
  return [
    { id: 'two-db-one', caseId: 'two-db-s4', label: 'pgbench -S -c 4, one database alone (TPS)', better: 'higher', fmt: 'int' },
    { id: 'two-db-sum', caseId: 'two-db-s4', label: 'pgbench -S -c 4 on each of 2 databases at once, sum (TPS)', better: 'higher', fmt: 'int' },
    { id: 'two-db-cores', caseId: 'two-db-s4', label: "  the server's CPU with 2 databases busy (cores)", better: 'higher', fmt: 'x2c', noRatio: true },
    { id: 'two-db-ratio', caseId: 'two-db-s4', label: '  2 databases ÷ 1 alone', better: 'higher', fmt: 'x2', noRatio: true, target: { column: 'pgdev', op: '>=', value: 1.5 } },
    { id: 'sleep-p50', caseId: 'sleep-isolation', label: 'db B SELECT 1 while db A runs pg_sleep(5), p50', better: 'lower', fmt: 'msf' },
    { id: 'sleep-p99', caseId: 'sleep-isolation', label: 'db B SELECT 1 while db A runs pg_sleep(5), p99', better: 'lower', fmt: 'msf', target: { column: 'pgdev', op: '<=', value: 5 } },
    { id: 'sleep-base-p99', caseId: 'sleep-isolation', label: '  the same without the sleep, p99', better: 'lower', fmt: 'msf' },
    { id: 'sleep-connect-max', caseId: 'sleep-isolation', label: '  new connection to B + SELECT 1 during the sleep, max', better: 'lower', fmt: 'msf' },
    { id: 'sleep-base-connect-max', caseId: 'sleep-isolation', label: '  the same without the sleep, max', better: 'lower', fmt: 'msf' },
    { id: 'sleep-health-max', caseId: 'sleep-isolation', label: '  GET /health during the sleep, max', better: 'lower', fmt: 'msf', target: { column: 'pgdev', op: '<=', value: 50 } },
    { id: 'sleep-base-health-max', caseId: 'sleep-isolation', label: '  the same without the sleep, max', better: 'lower', fmt: 'msf' },
    { id: 'clone-tpl', caseId: 'clone', label: `CREATE DATABASE TEMPLATE (${D.CLONE_TABLES} tables, ${D.CLONE_ROWS / 1000}k rows) to SELECT 1`, better: 'lower', fmt: 'ms', target: { column: 'pgdev', op: '<=', value: 300 } },
    { id: 'clone-tpl-create', caseId: 'clone', label: '  of which CREATE DATABASE itself', better: 'lower', fmt: 'ms' },
    { id: 'clone-empty', caseId: 'clone', alsoIn: ['create4'], label: 'CREATE DATABASE (empty) to SELECT 1', better: 'lower', fmt: 'ms' },
    { id: 'clone-empty-create', caseId: 'clone', alsoIn: ['create4'], label: '  of which CREATE DATABASE itself', better: 'lower', fmt: 'ms' },
    { id: 'create4', caseId: 'create4', label: '4 x CREATE DATABASE at once, each to SELECT 1 (wall)', better: 'lower', fmt: 'ms', target: { column: 'pgdev', op: '<=', value: 1.5, ratioTo: 'postgres', issue: 18 } },
    { id: 'create4-create', caseId: 'create4', label: '  of which the 4 CREATE DATABASE', better: 'lower', fmt: 'ms' },
    { id: 'workers4-own', caseId: 'workers4', label: `4 workers x ${workerTxns} txns, own database each (wall)`, better: 'lower', fmt: 'ms' },
    { id: 'workers4-shared', caseId: 'workers4', label: `4 workers x ${workerTxns} txns, one shared database (wall)`, better: 'lower', fmt: 'ms' },
    { id: 'workers4-ratio', caseId: 'workers4', label: '  own databases ÷ shared', better: 'lower', fmt: 'x2', noRatio: true },
    { id: 'workers4-vs-prisma', caseId: 'workers4', label: "  pgdev own ÷ @prisma/dev's best layout", better: 'lower', fmt: 'x2', noRatio: true },
    { id: 'suite-own', caseId: 'suite-workers', label: `test suite, 4 workers x ${suiteTests} tests, own database each (tests/s)`, better: 'higher', fmt: 'int', target: { column: 'pgdev', op: '>=', value: 0.8, ratioTo: 'postgres', issue: 18 } },
    { id: 'suite-shared', caseId: 'suite-workers', label: `test suite, 4 workers x ${suiteTests} tests, one shared database (tests/s)`, better: 'higher', fmt: 'int' },
    { id: 'suite-ratio', caseId: 'suite-workers', label: '  own databases ÷ shared, in tests/s', better: 'higher', fmt: 'x2', noRatio: true, target: { column: 'pgdev', op: '>=', value: 1.3, issue: 18 } },
    { id: 'suite-one', caseId: 'suite-workers', label: `test suite, 1 worker x ${4 * suiteTests} tests, own database (tests/s)`, better: 'higher', fmt: 'int' },
    { id: 'cancel-sleep-p50', caseId: 'cancel-latency', label: 'cancel of pg_sleep(10): CancelRequest to 57014, p50', better: 'lower', fmt: 'msf' },
    { id: 'cancel-sleep-p99', caseId: 'cancel-latency', label: 'cancel of pg_sleep(10): CancelRequest to 57014, p99', better: 'lower', fmt: 'msf', target: { column: 'pgdev', op: '<=', value: 100, issue: 19 } },
    { id: 'cancel-cpu-p50', caseId: 'cancel-latency', label: 'cancel of count(*) over 100M rows: CancelRequest to 57014, p50', better: 'lower', fmt: 'msf' },
    { id: 'cancel-cpu-p99', caseId: 'cancel-latency', label: 'cancel of count(*) over 100M rows: CancelRequest to 57014, p99', better: 'lower', fmt: 'msf', target: { column: 'pgdev', op: '<=', value: 100, issue: 19 } },
    { id: 'timeout-over-p50', caseId: 'cancel-latency', label: 'statement_timeout = 300 on pg_sleep(10): overshoot, p50', better: 'lower', fmt: 'msf' },
    { id: 'timeout-over-p99', caseId: 'cancel-latency', label: 'statement_timeout = 300 on pg_sleep(10): overshoot, p99', better: 'lower', fmt: 'msf' },
    { id: 'rwi', caseId: 'ready-warm-inproc', label: 'warm restart to ready; (a): PGlite.create on a copy of the same data', better: 'lower', fmt: 'ms', target: { column: 'pgdev', op: '<=', value: 1.1, ratioTo: 'inproc' } },
    { id: 'rss-main-shadow', caseId: 'rss-databases', label: 'RSS of the process tree, main + shadow used', better: 'lower', fmt: 'mib' },
    { id: 'pss-main-shadow', caseId: 'rss-databases', label: '  PSS of the process tree', better: 'lower', fmt: 'mib' },
    { id: 'hwm-main-shadow', caseId: 'rss-databases', label: '  peak RSS (VmHWM summed over the tree)', better: 'lower', fmt: 'mib' },
    { id: 'rss-per-db', caseId: 'rss-databases', label: 'RSS per extra open database', better: 'lower', fmt: 'mib' },
    { id: 'pss-per-db', caseId: 'rss-databases', label: '  PSS per extra open database', better: 'lower', fmt: 'mib' },
  ];
}

/**
 * ctx: { record(metric, column, sample), recordError(metrics, column, error), note, log, quick, runs, readyRuns,
 *        seconds, subjects, pgdevMode, newDir(label), freezeLive(), postgresUrl, selected(caseId) }
 */
export async function runDbCase(id, ctx) {
  ctx.freezeLive();
  switch (id) {
    case 'two-db-s4':
      return caseTwoDb(ctx);
    case 'sleep-isolation':
      return caseSleepIsolation(ctx);
    case 'clone':
      return caseClone(ctx);
    case 'create4':
      return caseCreate4(ctx);
    case 'workers4':
      return caseWorkers4(ctx);
    case 'suite-workers':
      return caseSuiteWorkers(ctx);
    case 'cancel-latency':
      return caseCancelLatency(ctx);
    case 'ready-warm-inproc':
      return caseReadyWarmInproc(ctx);
    case 'rss-databases':
      return caseRssDatabases(ctx);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Servers of a case

/**
 * Starts the servers a case runs on: `kinds` among 'pgdev', 'prisma', 'postgres' (only those available), each on
 * fresh data. Resolves [{ column, label, adminUrl, inst?, healthUrl?, shadowUrl?, created: [] }].
 */
async function startTargets(ctx, kinds, metrics) {
  const targets = [];
  for (const kind of kinds) {
    if (kind === 'postgres') {
      if (ctx.postgresUrl) targets.push({ column: 'postgres', label: '(d) PostgreSQL', adminUrl: ctx.postgresUrl, created: [] });
      continue;
    }
    const subject = ctx.subjects.find((s) => s.id === kind);
    if (!subject) continue;
    if (kind === 'pgdev' && ctx.pgdevMode.mode !== 'cli') {
      ctx.note(`${metrics[0]}: pgdev not measured (needs the CLI, bin/pgdev.js; it runs ${ctx.pgdevMode.mode})`);
      continue;
    }
    const inst = new Instance(subject, ctx.newDir(`${metrics[0]}-${kind}`), randomName());
    try {
      await inst.start();
    } catch (error) {
      ctx.recordError(metrics, kind, error);
      ctx.note(`${subject.label}: ${metrics[0]}: could not start: ${error.message.slice(0, 240)}`);
      fs.rmSync(inst.dir, { recursive: true, force: true });
      continue;
    }
    targets.push({
      column: kind,
      label: subject.label,
      inst,
      adminUrl: D.urlFor(inst.url, 'postgres'),
      shadowUrl: D.urlFor(inst.url, 'postgres').replace(`:${inst.ports.db}/`, `:${inst.ports.shadow}/`),
      healthUrl: kind === 'pgdev' ? `http://127.0.0.1:${inst.ports.http}/health` : undefined,
      created: [],
    });
  }
  return targets;
}

async function stopTargets(targets) {
  for (const t of targets) {
    if (t.inst) {
      await t.inst.stop().catch(() => undefined);
      fs.rmSync(t.inst.dir, { recursive: true, force: true });
    } else await D.dropDatabases(t.adminUrl, t.created);
  }
}

/** Thaws `target`'s server and freezes the other servers of the case (SIGSTOP), as run.js does for the load cases. */
function focusTarget(targets, target) {
  for (const t of targets) if (t.inst?.alive) signalGroup(t.inst.pgid, t === target ? 'SIGCONT' : 'SIGSTOP');
}

const RUN_LIMIT_MS = 300_000;

/** Runs `fn(target, run)` for `runs` runs, the targets in an order rotated each run; a failure ends that target's runs. */
async function eachRun(ctx, targets, runs, metrics, fn) {
  const failed = new Set();
  for (let run = 0; run < runs; run++) {
    const order = targets.map((_, i) => targets[(i + run) % targets.length]);
    for (const target of order) {
      if (failed.has(target)) continue;
      focusTarget(targets, target);
      try {
        if (target.inst && !target.inst.alive) throw new Error(`server is not running: ${target.inst.tail()}`);
        // A time limit per run, which also keeps the event loop alive: a promise that no socket or timer will ever
        // settle would otherwise end the bench silently.
        let timer;
        await Promise.race([
          fn(target, run),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new tcp.Hung(`${metrics[0]} run`, RUN_LIMIT_MS)), RUN_LIMIT_MS);
          }),
        ]).finally(() => clearTimeout(timer));
      } catch (error) {
        failed.add(target);
        const status = ctx.recordError(metrics, target.column, error);
        ctx.note(`${target.label}: ${metrics[0]} ${status}: ${String(error.message).slice(0, 300)}`);
      }
    }
    ctx.log(`${metrics[0]}: run ${run + 1}/${runs} done`);
  }
  focusTarget(targets, undefined);
  for (const t of targets) if (t.inst?.alive) signalGroup(t.inst.pgid, 'SIGCONT');
}

/**
 * One untimed CREATE DATABASE, connection and DROP on each target first, so that the first timed run does not pay
 * for a server's first database (files read, code loaded); a failure is kept in `t.setupError`.
 */
async function warmUp(targets) {
  for (const t of targets) {
    focusTarget(targets, t);
    try {
      await timeCreate(t, `bench_${tag()}_warm`);
    } catch (error) {
      t.setupError = error;
    }
  }
}

/** Creates databases on a target (remembered for clean-up on an external server). */
async function create(target, specs) {
  target.created.push(...specs.map((s) => s.name));
  await D.createDatabases(target.adminUrl, specs);
}

/** Drops databases (FORCE), and forgets them. */
async function drop(target, names) {
  await D.dropDatabases(target.adminUrl, names);
  target.created = target.created.filter((n) => !names.includes(n));
}

// ---------------------------------------------------------------------------------------------------------------
// two-db-s4: two databases of one server, each under pgbench -S -c 4 at once, against one alone

async function caseTwoDb(ctx) {
  const metrics = ['two-db-one', 'two-db-sum', 'two-db-cores', 'two-db-ratio'];
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  const timeoutMs = (ctx.seconds + 30) * 1000;
  try {
    for (const t of targets) {
      focusTarget(targets, t);
      try {
        const [a, b] = [`bench_${tag()}_a`, `bench_${tag()}_b`];
        await create(t, [{ name: a }, { name: b }]);
        t.urls = [D.urlFor(t.adminUrl, a), D.urlFor(t.adminUrl, b)];
        const started = performance.now();
        await Promise.all(t.urls.map((url) => tcp.pgbenchInit(url, 300_000)));
        ctx.log(`${t.label}: pgbench -i -s 1 of 2 databases at once: ${((performance.now() - started) / 1000).toFixed(1)} s`);
      } catch (error) {
        t.setupError = error;
      }
    }
    await eachRun(ctx, targets, ctx.runs, metrics, async (t, run) => {
      if (t.setupError) throw t.setupError;
      const s4 = (url) => tcp.pgbench(url, { script: 'select', clients: 4, seconds: ctx.seconds, timeoutMs });
      // The server's CPU use (its whole process tree, in cores) while pgbench runs: where the cores go.
      const cores = {};
      const withCpu = async (key, work) => {
        const cpu0 = t.inst ? groupCpuSeconds(t.inst.pgid) : 0;
        const t0 = performance.now();
        const result = await work();
        if (t.inst) cores[key] = (groupCpuSeconds(t.inst.pgid) - cpu0) / ((performance.now() - t0) / 1000);
        return result;
      };
      const alone = async () => withCpu('one', () => s4(t.urls[0]));
      const both = async () => withCpu('two', () => Promise.all(t.urls.map(s4)));
      let one;
      let two;
      if (run % 2 === 0) {
        one = await alone();
        two = await both();
      } else {
        two = await both();
        one = await alone();
      }
      const failures = one.failures + two[0].failures + two[1].failures;
      if (failures) ctx.note(`${t.label}: two-db-s4: ${failures} failed pgbench transactions`);
      const sum = two[0].tps + two[1].tps;
      ctx.record('two-db-one', t.column, { value: one.tps });
      ctx.record('two-db-sum', t.column, { value: sum });
      ctx.record('two-db-ratio', t.column, { value: sum / one.tps });
      ctx.log(
        `two-db-s4 ${t.label}: one ${one.tps.toFixed(0)} TPS, two ${two[0].tps.toFixed(0)} + ${two[1].tps.toFixed(0)} TPS` +
          (t.inst ? `; the server used ${cores.one.toFixed(2)} cores alone, ${cores.two.toFixed(2)} with two` : ''),
      );
      if (t.inst) ctx.record('two-db-cores', t.column, { value: cores.two });
    });
  } finally {
    await stopTargets(targets);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// sleep-isolation: database B, new connections and /health while database A runs SELECT pg_sleep(5)

const SLEEP_S = 5;

async function caseSleepIsolation(ctx) {
  const metrics = ['sleep-p50', 'sleep-p99', 'sleep-base-p99', 'sleep-connect-max', 'sleep-base-connect-max', 'sleep-health-max', 'sleep-base-health-max'];
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  try {
    await eachRun(ctx, targets, ctx.runs, metrics, async (t) => {
      if (!t.dbs) {
        t.dbs = [`bench_${tag()}_sleep_a`, `bench_${tag()}_sleep_b`];
        await create(t, t.dbs.map((name) => ({ name })));
      }
      const [urlA, urlB] = t.dbs.map((name) => D.urlFor(t.adminUrl, name));
      const { base, during, sleepMs } = await sleepRun(t, urlA, urlB);
      const max = (xs) => Math.max(...xs);
      ctx.record('sleep-p50', t.column, { value: percentile(during.lat, 50) });
      ctx.record('sleep-p99', t.column, { value: percentile(during.lat, 99) });
      ctx.record('sleep-base-p99', t.column, { value: percentile(base.lat, 99) });
      for (const [metric, r, when] of [['sleep-base-connect-max', base, 'without the sleep'], ['sleep-connect-max', during, 'during the sleep']]) {
        if (r.connectError) {
          const status = ctx.recordError([metric], t.column, r.connectError);
          ctx.note(`${t.label}: sleep-isolation: a new connection to B ${when} ${status} (${r.connects.length} answered before): ${r.connectError.message}`);
        } else ctx.record(metric, t.column, { value: max(r.connects) });
      }
      if (t.healthUrl) {
        ctx.record('sleep-health-max', t.column, { value: max(during.health) });
        ctx.record('sleep-base-health-max', t.column, { value: max(base.health) });
      }
      const line = (r) =>
        `${r.lat.length} SELECT 1 on B, p50 ${percentile(r.lat, 50).toFixed(2)} ms, p99 ${percentile(r.lat, 99).toFixed(2)} ms, max ${max(r.lat).toFixed(1)} ms; ` +
        `${r.connects.length} connects, max ${max(r.connects).toFixed(1)} ms` +
        (t.healthUrl ? `; ${r.health.length} /health, p50 ${percentile(r.health, 50).toFixed(1)} ms, max ${max(r.health).toFixed(1)} ms` : '');
      ctx.log(`sleep-isolation ${t.label}: without the sleep: ${line(base)}`);
      ctx.log(`sleep-isolation ${t.label}: during the sleep: ${line(during)}; pg_sleep returned after ${(sleepMs / 1000).toFixed(2)} s`);
    });
  } finally {
    await stopTargets(targets);
  }
}

async function sleepRun(t, urlA, urlB) {
  const a = new pg.Client({ connectionString: urlA, connectionTimeoutMillis: 15_000 });
  const b = new pg.Client({ connectionString: urlB, connectionTimeoutMillis: 15_000 });
  for (const c of [a, b]) c.on('error', () => undefined);
  try {
    await a.connect();
    await b.connect();
    for (let i = 0; i < 50; i++) await b.query('SELECT 1');
    if (t.healthUrl) for (let i = 0; i < 3; i++) await D.timedGet(t.healthUrl);
    // The same measurements without the sleep first: what the machine gives when nothing blocks.
    const base = await measureLoops(t, b, urlB, performance.now() + BASELINE_MS);
    const sleepStart = performance.now();
    let sleepEnd;
    const sleeping = a.query(`SELECT pg_sleep(${SLEEP_S})`).then(() => (sleepEnd = performance.now()));
    sleeping.catch(() => undefined);
    // Let the sleep start, then measure until half a second before it ends.
    await sleep(150);
    const during = await measureLoops(t, b, urlB, sleepStart + (SLEEP_S - 0.5) * 1000);
    const loopsEnd = performance.now();
    await sleeping;
    if (sleepEnd < loopsEnd) {
      // Every sample must have been taken while A was sleeping; otherwise the case measured nothing.
      throw new Error(`pg_sleep(${SLEEP_S}) on A ended before the measurements did (${((sleepEnd - sleepStart) / 1000).toFixed(2)} s after it was sent)`);
    }
    return { base, during, sleepMs: sleepEnd - sleepStart };
  } finally {
    await D.endClient(a);
    await D.endClient(b);
  }
}

const BASELINE_MS = 2000;
const CONNECT_LIMIT_MS = 5000;

/**
 * Until `until`: `SELECT 1` back to back on `b`; a new connection to B + `SELECT 1` every 200 ms; `GET /health`
 * every 50 ms (pgdev). Resolves the latencies (ms) { lat, connects, health }.
 */
async function measureLoops(t, b, urlB, until) {
  const lat = [];
  const connects = [];
  const health = [];
  let connectError;
  const loops = [
    (async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await b.query('SELECT 1');
        lat.push(performance.now() - t0);
      }
    })(),
    (async () => {
      // A connection that does not answer is reported on its own row; the other loops go on.
      try {
        while (performance.now() < until) {
          const t0 = performance.now();
          await D.withClient(urlB, CONNECT_LIMIT_MS, 'a new connection to B + SELECT 1', (c) => c.query('SELECT 1'));
          connects.push(performance.now() - t0);
          await sleep(200);
        }
      } catch (error) {
        connectError = error;
      }
    })(),
    (async () => {
      while (t.healthUrl && performance.now() < until) {
        health.push(await D.timedGet(t.healthUrl, 15_000));
        await sleep(50);
      }
    })(),
  ];
  const results = await Promise.allSettled(loops);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return { lat, connects, health, connectError };
}

// ---------------------------------------------------------------------------------------------------------------
// clone: CREATE DATABASE … TEMPLATE t (10 tables, 10,000 rows) and plain CREATE DATABASE, to a database that answers

async function caseClone(ctx) {
  const metrics = ['clone-tpl', 'clone-tpl-create', 'clone-empty', 'clone-empty-create'];
  const runs = ctx.quick ? 3 : 5;
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  try {
    for (const t of targets) {
      focusTarget(targets, t);
      try {
        t.template = `bench_${tag()}_tpl`;
        await create(t, [{ name: t.template }]);
        await D.withClient(D.urlFor(t.adminUrl, t.template), 120_000, 'seed the template', async (c) => {
          for (const sql of D.cloneTemplateSql()) await c.query(sql);
          const n = Number((await c.query(D.cloneCountSql())).rows[0].n);
          if (n !== D.CLONE_ROWS) throw new Error(`template holds ${n} rows, expected ${D.CLONE_ROWS}`);
        });
      } catch (error) {
        t.setupError = error;
      }
    }
    await eachRun(ctx, targets, runs, metrics, async (t, run) => {
      if (t.setupError) throw t.setupError;
      const order = run % 2 === 0 ? ['clone-tpl', 'clone-empty'] : ['clone-empty', 'clone-tpl'];
      for (const metric of order) {
        const name = `bench_${tag()}_${metric === 'clone-tpl' ? 'clone' : 'empty'}`;
        const { ms, createMs } = await timeCreate(t, name, metric === 'clone-tpl' ? t.template : undefined);
        ctx.record(metric, t.column, { value: ms });
        ctx.record(`${metric}-create`, t.column, { value: createMs });
        ctx.log(`clone ${t.label}: ${metric} ${ms.toFixed(0)} ms (CREATE DATABASE returned after ${createMs.toFixed(0)} ms)`);
      }
    });
  } finally {
    await stopTargets(targets);
  }
}

/** ms from sending CREATE DATABASE (on an open connection) to a new connection to it answering SELECT 1. */
async function timeCreate(t, name, template) {
  const admin = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: 15_000 });
  admin.on('error', () => undefined);
  await D.within(admin.connect(), 30_000, 'a new connection to the default database');
  let ms;
  let createMs;
  try {
    await D.within(admin.query('SELECT 1'), 30_000, 'SELECT 1 on a new connection to the default database');
    t.created.push(name);
    const t0 = performance.now();
    await D.within(admin.query(D.createDatabaseSql(name, template)), 60_000, D.createDatabaseSql(name, template));
    createMs = performance.now() - t0;
    await D.withClient(D.urlFor(t.adminUrl, name), 60_000, `connect to ${name}`, async (c) => {
      await c.query('SELECT 1');
      ms = performance.now() - t0;
      const current = (await c.query('SELECT current_database() AS d')).rows[0].d;
      if (current !== name) throw new D.NotOwnDatabase(name, current);
      if (template) {
        const n = Number((await c.query(D.cloneCountSql())).rows[0].n);
        if (n !== D.CLONE_ROWS) throw new Error(`the clone of ${template} holds ${n} rows, expected ${D.CLONE_ROWS}`);
      } else {
        const n = Number((await c.query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n);
        if (n !== 0) throw new Error(`a database created without TEMPLATE holds ${n} tables, expected none`);
      }
    });
  } finally {
    await D.endClient(admin);
  }
  await drop(t, [name]);
  return { ms, createMs };
}

// ---------------------------------------------------------------------------------------------------------------
// create4: four databases created at once, each then connected to (issue 18)

const CREATE_AT_ONCE = 4;

async function caseCreate4(ctx) {
  const metrics = ['create4', 'create4-create'];
  // The plain CREATE DATABASE row is the clone case's; measured here too when that case does not run.
  const single = !ctx.selected('clone');
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  try {
    await warmUp(targets);
    await eachRun(ctx, targets, ctx.runs, single ? [...metrics, 'clone-empty', 'clone-empty-create'] : metrics, async (t, run) => {
      if (t.setupError) throw t.setupError;
      const order = run % 2 === 0 ? ['four', 'one'] : ['one', 'four'];
      for (const what of order) {
        if (what === 'four') {
          const { ms, createMs } = await createAtOnce(t, CREATE_AT_ONCE);
          ctx.record('create4', t.column, { value: ms });
          ctx.record('create4-create', t.column, { value: createMs });
          ctx.log(`create4 ${t.label}: ${CREATE_AT_ONCE} at once ${ms.toFixed(0)} ms (the last CREATE DATABASE returned after ${createMs.toFixed(0)} ms)`);
        } else if (single) {
          const { ms, createMs } = await timeCreate(t, `bench_${tag()}_empty`);
          ctx.record('clone-empty', t.column, { value: ms });
          ctx.record('clone-empty-create', t.column, { value: createMs });
          ctx.log(`create4 ${t.label}: one alone ${ms.toFixed(0)} ms (CREATE DATABASE returned after ${createMs.toFixed(0)} ms)`);
        }
      }
    });
  } finally {
    await stopTargets(targets);
  }
}

/**
 * `n` connections to the default database (open and warm) each send CREATE DATABASE at the same moment, then connect
 * to their new database and run SELECT 1. Resolves ms from the sends to the last SELECT 1 answer (`ms`) and to the
 * last CREATE DATABASE answer (`createMs`); then (untimed) checks each database is its own and drops them.
 */
async function createAtOnce(t, n) {
  const names = Array.from({ length: n }, (_, i) => `bench_${tag()}_x${i}`);
  const clients = [];
  const open = async (url, what) => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
    c.on('error', () => undefined);
    clients.push(c);
    await D.within(c.connect(), 30_000, what);
    return c;
  };
  try {
    const admins = [];
    for (let i = 0; i < n; i++) admins.push(await open(t.adminUrl, 'a new connection to the default database'));
    await Promise.all(admins.map((c) => D.within(c.query('SELECT 1'), 30_000, 'SELECT 1 on the default database')));
    t.created.push(...names);
    const created = [];
    const answered = [];
    const t0 = performance.now();
    const fresh = await Promise.all(
      names.map(async (name, i) => {
        await D.within(admins[i].query(D.createDatabaseSql(name)), 60_000, `${D.createDatabaseSql(name)} (${n} at once)`);
        created.push(performance.now() - t0);
        const c = await open(D.urlFor(t.adminUrl, name), `connect to ${name}`);
        await D.within(c.query('SELECT 1'), 30_000, `SELECT 1 on ${name}`);
        answered.push(performance.now() - t0);
        return c;
      }),
    );
    for (const [i, c] of fresh.entries()) {
      const current = (await c.query('SELECT current_database() AS d')).rows[0].d;
      if (current !== names[i]) throw new D.NotOwnDatabase(names[i], current);
    }
    return { ms: Math.max(...answered), createMs: Math.max(...created) };
  } finally {
    await Promise.all(clients.map((c) => D.endClient(c)));
    await drop(t, names);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// workers4: 4 workers with a database each (cloned from a seeded template) against 4 workers sharing one

async function caseWorkers4(ctx) {
  const metrics = ['workers4-own', 'workers4-shared', 'workers4-ratio', 'workers4-vs-prisma'];
  const targets = await startTargets(ctx, ['pgdev', 'prisma', 'postgres'], metrics);
  try {
    for (const t of targets) {
      focusTarget(targets, t);
      try {
        t.template = `bench_${tag()}_wtpl`;
        try {
          await create(t, [{ name: t.template }]);
          t.ownDatabases = true;
        } catch (error) {
          // A server without databases (today's @prisma/dev): its 4 workers share its one database.
          t.ownDatabases = false;
          ctx.record('workers4-own', t.column, { status: 'n/a', error: String(error.message).slice(0, 500) });
          ctx.note(`${t.label}: workers4: no database of its own per worker (${String(error.message).slice(0, 200)}); its 4 workers share its one database`);
        }
        const seedUrl = t.ownDatabases ? D.urlFor(t.adminUrl, t.template) : t.adminUrl;
        await D.withClient(seedUrl, 120_000, 'seed the workers template', async (c) => {
          await c.query('DROP TABLE IF EXISTS comments, posts, authors CASCADE');
          for (const sql of D.workerSchemaSql()) await c.query(sql);
        });
      } catch (error) {
        t.setupError = error;
      }
    }
    await eachRun(ctx, targets, ctx.runs, metrics, async (t, run) => {
      if (t.setupError) throw t.setupError;
      const layouts = run % 2 === 0 ? ['own', 'shared'] : ['shared', 'own'];
      const wall = {};
      for (const layout of layouts) {
        let urls;
        let names = [];
        if (!t.ownDatabases) {
          if (layout === 'own') continue;
          urls = Array(4).fill(t.adminUrl);
        } else {
          names = layout === 'own' ? [0, 1, 2, 3].map((i) => `bench_${tag()}_w${i}`) : [`bench_${tag()}_wshared`];
          const started = performance.now();
          await create(t, names.map((name) => ({ name, template: t.template })));
          ctx.log(`workers4 ${t.label}: ${names.length} clone(s) of the seeded template in ${(performance.now() - started).toFixed(0)} ms (not counted)`);
          urls = layout === 'own' ? names.map((n) => D.urlFor(t.adminUrl, n)) : Array(4).fill(D.urlFor(t.adminUrl, names[0]));
        }
        wall[layout] = await runWorkers(urls, ctx.workerTxns);
        ctx.record(`workers4-${layout}`, t.column, { value: wall[layout] });
        ctx.log(`workers4 ${t.label}: ${layout} ${wall[layout].toFixed(0)} ms`);
        if (names.length) await drop(t, names);
      }
      if (wall.own !== undefined && wall.shared !== undefined) ctx.record('workers4-ratio', t.column, { value: wall.own / wall.shared });
      t.walls ??= [];
      t.walls.push(wall);
    });
    // pgdev's own-database layout against the best layout @prisma/dev offers, run by run.
    const pgdev = targets.find((t) => t.column === 'pgdev');
    const prisma = targets.find((t) => t.column === 'prisma');
    if (pgdev?.walls && prisma?.walls) {
      for (let i = 0; i < Math.min(pgdev.walls.length, prisma.walls.length); i++) {
        const best = Math.min(...Object.values(prisma.walls[i]));
        if (pgdev.walls[i].own !== undefined) ctx.record('workers4-vs-prisma', 'pgdev', { value: pgdev.walls[i].own / best });
      }
    }
  } finally {
    await stopTargets(targets);
  }
}

/** 4 worker threads, each streaming `transactions` transactions on its URL; wall time (ms) from 'go' to the last done. */
async function runWorkers(urls, transactions, timeoutMs = 240_000) {
  const runTag = tag();
  const data = urls.map((url, i) => ({ url, transactions, tag: `${runTag}-${i}` }));
  return (await runWorkerThreads(data, `${urls.length} workers x ${transactions} transactions`, timeoutMs)).wall;
}

/** Worker threads of txn-worker.js, one per workerData: { wall: ms from 'go' to the last done, results: their messages }. */
async function runWorkerThreads(data, what, timeoutMs) {
  const workers = data.map((workerData) => new Worker(new URL('./txn-worker.js', import.meta.url), { workerData }));
  const next = (w) =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`worker exited (${code})`)));
    });
  let timer;
  try {
    return await Promise.race([
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new tcp.Hung(what, timeoutMs)), timeoutMs);
      }),
      (async () => {
        const connected = await Promise.all(workers.map(next));
        const bad = connected.find((m) => m.error);
        if (bad) throw new Error(`worker: ${bad.error}`);
        const done = workers.map(next);
        const t0 = performance.now();
        for (const w of workers) w.postMessage('go');
        const results = await Promise.all(done);
        const wall = performance.now() - t0;
        const failed = results.find((m) => m.error);
        if (failed) throw new Error(`worker: ${failed.error}`);
        return { wall, results };
      })(),
    ]);
  } finally {
    clearTimeout(timer);
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// suite-workers: a test suite's load, 4 workers each in a database of its own (made in the worker's timed setup)
// against 4 workers sharing one database (a schema each); and 1 worker running all the tests (issue 18)

async function caseSuiteWorkers(ctx) {
  const metrics = ['suite-own', 'suite-shared', 'suite-ratio', 'suite-one'];
  const tests = ctx.quick ? 100 : 300;
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  try {
    await warmUp(targets);
    await eachRun(ctx, targets, ctx.runs, metrics, async (t, run) => {
      if (t.setupError) throw t.setupError;
      const layouts = [['own', 'shared', 'one'], ['shared', 'one', 'own'], ['one', 'own', 'shared']][run % 3];
      const rate = {};
      for (const layout of layouts) {
        rate[layout] = await suiteRun(ctx, t, layout, layout === 'one' ? 4 * tests : tests);
        ctx.record(`suite-${layout}`, t.column, { value: rate[layout] });
      }
      ctx.record('suite-ratio', t.column, { value: rate.own / rate.shared });
    });
  } finally {
    await stopTargets(targets);
  }
}

/**
 * One layout of suite-workers: 'own' (4 workers, each creating its database), 'shared' (4 workers in one database
 * made beforehand, a schema each) or 'one' (1 worker, creating its database). Resolves tests/s, setup included; the
 * databases are dropped after (untimed).
 */
async function suiteRun(ctx, t, layout, tests) {
  const runTag = tag();
  const workers = layout === 'one' ? 1 : 4;
  let shared;
  if (layout === 'shared') {
    shared = `bench_${runTag}_suite`;
    await create(t, [{ name: shared }]);
  }
  const data = Array.from({ length: workers }, (_, i) => {
    const own = layout === 'shared' ? undefined : `bench_${runTag}_w${i}`;
    if (own) t.created.push(own);
    return {
      mode: 'suite',
      adminUrl: t.adminUrl,
      url: D.urlFor(t.adminUrl, own ?? shared),
      createDatabase: own,
      schema: own ? undefined : `w${i}`,
      tests,
      tag: `${runTag}-${i}`,
    };
  });
  try {
    const { wall, results } = await runWorkerThreads(data, `${workers} worker(s) x ${tests} tests`, 240_000);
    const rate = (workers * tests) / (wall / 1000);
    const setup = Math.max(...results.map((r) => r.setupMs));
    ctx.log(`suite-workers ${t.label}: ${layout} ${rate.toFixed(0)} tests/s (${(wall / 1000).toFixed(2)} s, of which the slowest worker's setup ${setup.toFixed(0)} ms)`);
    return rate;
  } finally {
    await drop(t, shared ? [shared] : data.map((d) => d.createDatabase));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// cancel-latency: a CancelRequest to the 57014 error, for a sleeping and a CPU-bound statement; statement_timeout's
// overshoot (issue 19)

const CANCEL_AFTER_MS = 200;
const STATEMENT_TIMEOUT_MS = 300;
const SLEEP_SQL = 'SELECT pg_sleep(10)';
const CPU_SQL = 'SELECT count(*) FROM generate_series(1, 100000000)';

async function caseCancelLatency(ctx) {
  const metrics = ['cancel-sleep-p50', 'cancel-sleep-p99', 'cancel-cpu-p50', 'cancel-cpu-p99', 'timeout-over-p50', 'timeout-over-p99'];
  const runs = ctx.quick ? 8 : 20;
  const targets = await startTargets(ctx, ['pgdev', 'postgres'], metrics);
  try {
    await eachRun(ctx, targets, runs, metrics, async (t) => {
      t.samples ??= { sleep: [], cpu: [], timeout: [] };
      const c = new pg.Client({ connectionString: t.adminUrl, connectionTimeoutMillis: 15_000 });
      c.on('error', () => undefined);
      try {
        await D.within(c.connect(), 30_000, 'a new connection to the default database');
        await D.within(c.query('SELECT 1'), 30_000, 'SELECT 1');
        const sleep = await timeCancel(t, c, SLEEP_SQL);
        const cpu = await timeCancel(t, c, CPU_SQL);
        const over = await timeoutOvershoot(c);
        t.samples.sleep.push(sleep);
        t.samples.cpu.push(cpu);
        t.samples.timeout.push(over);
        ctx.log(`cancel-latency ${t.label}: pg_sleep ${sleep.toFixed(1)} ms, count(*) ${cpu.toFixed(1)} ms, statement_timeout overshoot ${over.toFixed(1)} ms`);
      } finally {
        await D.endClient(c);
      }
    });
    for (const t of targets) {
      if (!t.samples?.sleep.length) continue;
      for (const [key, metric] of [['sleep', 'cancel-sleep'], ['cpu', 'cancel-cpu'], ['timeout', 'timeout-over']]) {
        ctx.record(`${metric}-p50`, t.column, { value: percentile(t.samples[key], 50) });
        ctx.record(`${metric}-p99`, t.column, { value: percentile(t.samples[key], 99) });
      }
    }
  } finally {
    await stopTargets(targets);
  }
}

/**
 * Sends `sql` on `c`, and CANCEL_AFTER_MS later a CancelRequest with c's pid and secret key on a new connection to
 * the same server. Resolves ms from opening that connection to the 57014 error arriving on `c`.
 */
async function timeCancel(t, c, sql) {
  const result = c.query(sql).then(
    () => {
      throw new Error(`${sql} was not cancelled: it ran to its end`);
    },
    (error) => {
      if (error.code !== '57014') throw error;
      return performance.now();
    },
  );
  result.catch(() => undefined);
  await sleep(CANCEL_AFTER_MS);
  const { hostname, port } = new URL(t.adminUrl);
  const sent = performance.now();
  sendCancel(hostname, Number(port), c.processID, c.secretKey);
  const at = await D.within(result, 30_000, `the 57014 error of ${sql} after a CancelRequest`);
  if (at < sent) throw new Error(`${sql} failed before the CancelRequest was sent`);
  return at - sent;
}

/** Writes a CancelRequest on a connection of its own; the server closes it (destroyed after 5 s regardless). */
function sendCancel(host, port, pid, secretKey) {
  const socket = net.connect({ host, port });
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.write(cancelRequest(pid, secretKey)));
  setTimeout(() => socket.destroy(), 5000).unref();
}

/** `SET statement_timeout` then pg_sleep(10): ms beyond the timeout from sending the statement to its 57014 error. */
async function timeoutOvershoot(c) {
  await c.query(`SET statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
  try {
    const t0 = performance.now();
    const at = await D.within(
      c.query(SLEEP_SQL).then(
        () => {
          throw new Error(`${SLEEP_SQL} ran to its end despite statement_timeout = ${STATEMENT_TIMEOUT_MS}`);
        },
        (error) => {
          if (error.code !== '57014') throw error;
          return performance.now();
        },
      ),
      30_000,
      `the 57014 error of ${SLEEP_SQL} with statement_timeout = ${STATEMENT_TIMEOUT_MS}`,
    );
    return at - t0 - STATEMENT_TIMEOUT_MS;
  } finally {
    await c.query('RESET statement_timeout');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ready-warm-inproc: pgdev's warm restart against in-process PGlite opening a copy of the same data

async function caseReadyWarmInproc(ctx) {
  const metrics = ['rwi'];
  const pgdevSubject = ctx.subjects.find((s) => s.id === 'pgdev');
  if (!pgdevSubject || ctx.pgdevMode.mode !== 'cli') {
    ctx.note('ready-warm-inproc: not measured (needs the pgdev CLI, bin/pgdev.js)');
    return;
  }
  const runs = Math.max(ctx.readyRuns, ctx.quick ? 3 : 5);
  const inst = new Instance(pgdevSubject, ctx.newDir('rwi-pgdev'), randomName());
  const copy = path.join(ctx.newDir('rwi-inproc'), 'pgdata');
  try {
    await inst.start();
    await inst.stop();
    const dataDir = findDefaultDataDir(path.join(inst.dir, 'pgdev', 'servers', inst.name));
    fs.cpSync(dataDir, copy, { recursive: true });
    ctx.log(`ready-warm-inproc: in-process PGlite opens a copy of ${path.relative(inst.dir, dataDir)}`);
    // One untimed start of each first: the files are then in the page cache for both.
    await inst.start({ pollMs: 2 });
    await inst.stop();
    await openInproc(copy);
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? ['pgdev', 'inproc'] : ['inproc', 'pgdev'];
      for (const column of order) {
        try {
          let ms;
          if (column === 'pgdev') {
            ms = await inst.start({ pollMs: 2 });
            await inst.stop();
          } else ms = await openInproc(copy);
          ctx.record('rwi', column, { value: ms });
          ctx.log(`ready-warm-inproc ${column === 'pgdev' ? 'pgdev' : 'in-process PGlite'}: ${ms.toFixed(0)} ms`);
        } catch (error) {
          const status = ctx.recordError(metrics, column, error);
          ctx.note(`ready-warm-inproc ${column} ${status}: ${String(error.message).slice(0, 240)}`);
        }
      }
    }
  } catch (error) {
    ctx.recordError(metrics, 'pgdev', error);
    ctx.note(`ready-warm-inproc failed: ${String(error.message).slice(0, 240)}`);
  } finally {
    await inst.stop().catch(() => undefined);
    fs.rmSync(inst.dir, { recursive: true, force: true });
  }
}

/**
 * The data directory of a pgdev server's default database: state v2 keeps each database under
 * `databases/<id>/pgdata` (listed in databases.json), v1 had `pgdata` at the top.
 */
export function findDefaultDataDir(serverDir) {
  const v1 = path.join(serverDir, 'pgdata');
  if (fs.existsSync(path.join(v1, 'PG_VERSION'))) return v1;
  const found = [];
  const walk = (dir, depth) => {
    if (depth > 4) return;
    if (fs.existsSync(path.join(dir, 'PG_VERSION'))) {
      found.push(dir);
      return;
    }
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name), depth + 1);
  };
  walk(serverDir, 0);
  if (found.length === 1) return found[0];
  try {
    // More than one: the default database's folder, by its id in databases.json.
    const list = JSON.parse(fs.readFileSync(path.join(serverDir, 'databases.json'), 'utf8'));
    const entries = Array.isArray(list) ? list : (list.databases ?? []);
    const main = entries.find((d) => (d.endpoint ?? d.port ?? 'main') === 'main' && (d.default || d.name === 'postgres'));
    const dir = main && found.find((f) => f.includes(`${path.sep}${main.id}${path.sep}`));
    if (dir) return dir;
  } catch {}
  if (found.length === 0) throw new Error(`no data directory (PG_VERSION) under ${serverDir}`);
  throw new Error(`cannot tell the default database among ${found.map((f) => path.relative(serverDir, f)).join(', ')}`);
}

/** Spawns bench/subjects/pglite-open.js: ms from spawn to its `ready` line; waits for it to exit. */
async function openInproc(dataDir, timeoutMs = 60_000) {
  const t0 = performance.now();
  const child = spawnGroup(process.execPath, [path.join(SUBJECTS_DIR, 'pglite-open.js'), '--data-dir', dataDir], { cwd: REPO });
  try {
    const readyAt = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new tcp.Hung('PGlite.create', timeoutMs)), timeoutMs);
      child.onLine((line) => {
        if (line === 'ready') {
          clearTimeout(timer);
          resolve(performance.now());
        }
      });
      child.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`pglite-open exited before ready (${JSON.stringify(e)}): ${child.logTail.slice(-3).join(' | ')}`));
      });
    });
    await Promise.race([child.exited, sleep(15_000)]);
    return readyAt - t0;
  } finally {
    await stopGroup(child, 2000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// rss-databases: memory of the server's process tree with main and shadow used, and per extra open database

const EXTRA_DATABASES = 4;

async function caseRssDatabases(ctx) {
  const metrics = ['rss-main-shadow', 'pss-main-shadow', 'hwm-main-shadow', 'rss-per-db', 'pss-per-db'];
  const targets = await startTargets(ctx, ['pgdev', 'prisma'], metrics);
  const clients = [];
  const use = async (url) => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
    c.on('error', () => undefined);
    clients.push(c);
    const db = new URL(url).pathname.slice(1);
    await D.within(c.connect(), 30_000, `a new connection to ${db}`);
    for (const sql of [
      'DROP TABLE IF EXISTS bench_rss',
      'CREATE TABLE bench_rss (id integer PRIMARY KEY, name text NOT NULL)',
      "INSERT INTO bench_rss SELECT g, 'name ' || g FROM generate_series(1, 1000) g",
      'SELECT count(*), max(name) FROM bench_rss',
    ]) {
      await D.within(c.query(sql), 30_000, `${sql.split(' (')[0]} on ${db} (port ${new URL(url).port})`);
    }
  };
  try {
    await eachRun(ctx, targets, 1, metrics, async (t) => {
      const pid = t.inst.pgid;
      const idle = D.treeMemory(pid);
      await use(t.adminUrl);
      await use(t.shadowUrl);
      await sleep(500);
      const both = D.treeMemory(pid);
      ctx.record('rss-main-shadow', t.column, { value: both.rss });
      ctx.record('pss-main-shadow', t.column, { value: both.pss });
      ctx.record('hwm-main-shadow', t.column, { value: both.hwm });
      ctx.log(
        `rss-databases ${t.label}: just started ${mib(idle.rss)} (${idle.processes} processes); main + shadow used: RSS ${mib(both.rss)}, ` +
          `PSS ${mib(both.pss)}, peak ${mib(both.hwm)} (${both.processes} processes)`,
      );
      if (t.column !== 'pgdev') return;
      const names = Array.from({ length: EXTRA_DATABASES }, (_, i) => `bench_${tag()}_rss${i}`);
      try {
        await create(t, names.map((name) => ({ name })));
        for (const name of names) await use(D.urlFor(t.adminUrl, name));
      } catch (error) {
        const status = ctx.recordError(['rss-per-db', 'pss-per-db'], t.column, error);
        ctx.note(`${t.label}: rss-per-db ${status}: ${String(error.message).slice(0, 300)}`);
        return;
      }
      await sleep(500);
      const more = D.treeMemory(pid);
      ctx.record('rss-per-db', t.column, { value: (more.rss - both.rss) / EXTRA_DATABASES });
      ctx.record('pss-per-db', t.column, { value: (more.pss - both.pss) / EXTRA_DATABASES });
      ctx.note(
        `rss-databases: pgdev with main, shadow and ${EXTRA_DATABASES} more databases open: RSS ${mib(more.rss)}, PSS ${mib(more.pss)}, ` +
          `${more.processes} processes (main + shadow only: ${both.processes}; just started: ${idle.processes})`,
      );
    });
  } finally {
    await Promise.all(clients.map((c) => D.endClient(c)));
    await stopTargets(targets);
  }
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
