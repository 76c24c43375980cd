#!/usr/bin/env node
// pgdev's benchmark: `npm run bench`. See bench/README.md.
//   BENCH_QUICK=1            a ~2 minute smoke run (1 run per case, shorter load)
//   BENCH_ONLY=a,b           only these cases (ids in bench/README.md)
//   BENCH_SUBJECTS=pgdev,socket   only these subjects (pgdev, inproc, socket, prisma)
//   BENCH_RUNS, BENCH_SECONDS     runs per case and pgbench duration
//   BENCH_PGDEV=internal     start pgdev through its internal API instead of bin/pgdev.js
//   BENCH_FREEZE=0           do not SIGSTOP the subjects that are not being measured
//   BENCH_POSTGRES_URL=postgres://…  also run the multi-database cases on this (real) PostgreSQL, column (d)
//   BENCH_POSTGRES=0         without BENCH_POSTGRES_URL: do not start a throw-away PostgreSQL for column (d)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { diskUsage, groupCpuSeconds, groupRss, killAllGroups, mainThreadCpuSeconds, runCommand, signalGroup } from './lib/proc.js';
import { median, percentile } from './lib/stats.js';
import { detectPgdev, ensureBenchDeps, ensurePrismaDev, freePorts, Instance, makeSubjects, randomName, REPO, versions } from './lib/subjects.js';
import * as tcp from './lib/tcp.js';
import { findUniqueLatencies, loadPrismaClient, prepareSchema } from './lib/prisma-client.js';
import { DB_CASES, dbMetrics, POSTGRES_CASES, runDbCase } from './lib/db-cases.js';
import { installedPostgresBin, startPostgres } from './suites/servers.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = Number(process.env.BENCH_RUNS ?? (QUICK ? 1 : 3));
const READY_RUNS = Number(process.env.BENCH_READY_RUNS ?? (QUICK ? 1 : 3));
const DETACH_RUNS = Math.min(READY_RUNS, 2);
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 2 : 4));
const IDLE_LOAD_S = QUICK ? 2 : 5;
const IDLE_WATCH_S = Number(process.env.BENCH_IDLE_SECONDS ?? (QUICK ? 5 : 10));
const SEQ_N = QUICK ? 2000 : 5000;
const PAR_CONNECTIONS = 10;
const PAR_PER_CONNECTION = QUICK ? 100 : 500;
const BULK_ROWS = 10_000;
const PRISMA_N = QUICK ? 300 : 1000;
const PRISMA_WARMUP = 100;
const FREEZE = process.env.BENCH_FREEZE !== '0';
const WORKER_TXNS = Number(process.env.BENCH_WORKER_TXNS ?? (QUICK ? 100 : 200));
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL;
const OWN_POSTGRES = !POSTGRES_URL && process.env.BENCH_POSTGRES !== '0';
const OUT_DIR = fileURLToPath(new URL('./out/', import.meta.url));

const CASES = [
  'ready', 'detach', 'pgbench-s1', 'pgbench-s8', 'tpcb-c4', 'pg-seq', 'pg-par', 'insert-10k', 'copy-10k', 'prisma-client',
  'idle-cpu', 'peak-rss', 'restore', ...DB_CASES,
];
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()).filter(Boolean) : CASES;
for (const id of only) if (!CASES.includes(id)) throw new Error(`unknown case "${id}" in BENCH_ONLY; known: ${CASES.join(', ')}`);
const selected = (id) => only.includes(id);
/** A row shows when its case runs, or one of the cases that also measure it (`alsoIn`). */
const shown = (metric) => selected(metric.caseId) || (metric.alsoIn ?? []).some(selected);

const log = (line) => process.stderr.write(`[bench ${((performance.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);
const T0 = performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Results: results[metric][column] = [sample, ...], a sample being { value } or { status: 'failed' | 'hung', error }.

const COLUMNS = [
  { id: 'pgdev', head: 'pgdev' },
  { id: 'inproc', head: '(a) in-proc raw' },
  { id: 'inprocq', head: "(a') in-proc pg.query" },
  { id: 'socket', head: '(b) pglite-socket' },
  { id: 'prisma', head: '(c) @prisma/dev' },
  { id: 'postgres', head: '(d) PostgreSQL' },
];

/** Table rows, in order. `better`: which way is good; `fmt`: how to print a value. */
const METRICS = [
  { id: 'ready-fresh', caseId: 'ready', label: 'time to ready, fresh name', better: 'lower', fmt: 'ms' },
  { id: 'ready-warm', caseId: 'ready', label: 'time to ready, warm restart', better: 'lower', fmt: 'ms' },
  { id: 'detach-fresh', caseId: 'detach', label: 'pgdev -d wall time, fresh name', better: 'lower', fmt: 'ms' },
  { id: 'detach-warm', caseId: 'detach', label: 'pgdev -d wall time, warm', better: 'lower', fmt: 'ms' },
  { id: 'rss-ready', caseId: 'ready', label: 'RSS just after a fresh start', better: 'lower', fmt: 'mib' },
  { id: 'disk', caseId: 'ready', label: 'disk size of a fresh server', better: 'lower', fmt: 'mib' },
  { id: 'pgbench-s1', caseId: 'pgbench-s1', label: 'pgbench -S, 1 client (TPS)', better: 'higher', fmt: 'int' },
  { id: 'pgbench-s1-fail', caseId: 'pgbench-s1', label: '  failed transactions', better: 'lower', fmt: 'count', noRatio: true },
  { id: 'pgbench-s8', caseId: 'pgbench-s8', label: 'pgbench -S, 8 clients (TPS)', better: 'higher', fmt: 'int' },
  { id: 'pgbench-s8-fail', caseId: 'pgbench-s8', label: '  failed transactions', better: 'lower', fmt: 'count', noRatio: true },
  { id: 'tpcb-c4', caseId: 'tpcb-c4', label: 'pgbench TPC-B, 4 clients (TPS)', better: 'higher', fmt: 'int' },
  { id: 'tpcb-c4-fail', caseId: 'tpcb-c4', label: '  failed transactions', better: 'lower', fmt: 'count', noRatio: true },
  { id: 'seq-p50', caseId: 'pg-seq', label: `pg: ${SEQ_N} seq. SELECT $1, p50`, better: 'lower', fmt: 'msf' },
  { id: 'seq-p99', caseId: 'pg-seq', label: `pg: ${SEQ_N} seq. SELECT $1, p99`, better: 'lower', fmt: 'msf' },
  { id: 'par-qps', caseId: 'pg-par', label: `pg: ${PAR_CONNECTIONS} conns in parallel (q/s)`, better: 'higher', fmt: 'int' },
  { id: 'par-p50', caseId: 'pg-par', label: `pg: ${PAR_CONNECTIONS} conns in parallel, p50`, better: 'lower', fmt: 'msf' },
  { id: 'insert-10k', caseId: 'insert-10k', label: `INSERT ${BULK_ROWS / 1000}k rows, 1 statement, 1 txn`, better: 'lower', fmt: 'ms' },
  { id: 'copy-10k', caseId: 'copy-10k', label: `COPY FROM STDIN, ${BULK_ROWS / 1000}k rows`, better: 'lower', fmt: 'ms' },
  { id: 'prisma-tcp', caseId: 'prisma-client', label: 'Prisma findUnique, TCP adapter-pg, p50', better: 'lower', fmt: 'msf' },
  { id: 'prisma-http', caseId: 'prisma-client', label: 'Prisma findUnique, HTTP accelerateUrl, p50', better: 'lower', fmt: 'msf' },
  { id: 'prisma-http-ratio', caseId: 'prisma-client', label: '  HTTP p50 ÷ TCP p50', better: 'lower', fmt: 'times', noRatio: true },
  { id: 'prisma-tcp-cpu', caseId: 'prisma-client', label: 'Prisma findUnique, server main-thread CPU/query, TCP', better: 'lower', fmt: 'msf' },
  { id: 'prisma-http-cpu', caseId: 'prisma-client', label: 'Prisma findUnique, server main-thread CPU/query, HTTP', better: 'lower', fmt: 'msf' },
  { id: 'idle-cpu', caseId: 'idle-cpu', label: `CPU burnt in ${IDLE_WATCH_S} s after load stops`, better: 'lower', fmt: 'cpu', noRatio: true },
  { id: 'peak-rss', caseId: 'peak-rss', label: 'peak RSS of the server, whole run', better: 'lower', fmt: 'mib' },
  { id: 'restore-migrate', caseId: 'restore', label: '10 tables x 1k rows: re-run migrations+seed', better: 'lower', fmt: 'ms', noRatio: true },
  { id: 'restore-data', caseId: 'restore', label: '10 tables x 1k rows: restore(label)', better: 'lower', fmt: 'ms', noRatio: true },
  ...dbMetrics({ workerTxns: WORKER_TXNS, quick: QUICK }),
];

const results = Object.fromEntries(METRICS.map((m) => [m.id, Object.fromEntries(COLUMNS.map((c) => [c.id, []]))]));
const notes = [];
const note = (line) => {
  if (!notes.includes(line)) notes.push(line);
  log(`note: ${line}`);
};

function record(metric, column, sample) {
  results[metric][column].push(sample);
}

function recordError(metrics, column, error) {
  const status = error instanceof tcp.Hung ? 'hung' : 'failed';
  for (const m of metrics) record(m, column, { status, error: String(error?.message ?? error).slice(0, 500) });
  return status;
}

// ---------------------------------------------------------------------------------------------------------------
// Subjects

const pgdevMode = await detectPgdev();
let subjects = makeSubjects(pgdevMode);
if (process.env.BENCH_SUBJECTS) {
  const keep = process.env.BENCH_SUBJECTS.split(',');
  subjects = subjects.filter((s) => keep.includes(s.id));
}
if (subjects.some((s) => s.id === 'socket')) {
  const socket = await ensureBenchDeps(log);
  if (!socket.ok) subjects.find((s) => s.id === 'socket').unavailable = socket.reason;
}
if (subjects.some((s) => s.id === 'prisma')) {
  const prisma = await ensurePrismaDev(log);
  if (!prisma.ok) subjects.find((s) => s.id === 'prisma').unavailable = prisma.reason;
}
for (const s of subjects) if (s.unavailable) note(`${s.label}: unavailable: ${s.unavailable}`);
subjects = subjects.filter((s) => !s.unavailable);
const activeColumns = new Set(subjects.map((s) => s.id));
if (activeColumns.has('inproc')) activeColumns.add('inprocq');
if (POSTGRES_URL && POSTGRES_CASES.some(selected)) activeColumns.add('postgres');
if (selected('ready-warm-inproc') && activeColumns.has('pgdev')) activeColumns.add('inproc'); // the case runs its own in-process PGlite

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-bench-'));
/** Detached pgdev servers (not in a process group of ours) that may still be running: [dir, name]. */
const detached = new Set();
process.on('exit', () => {
  for (const [dir, name] of detached) killDetached(dir, name);
  killAllGroups();
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});
const newDir = (label) => fs.mkdtempSync(path.join(tmpRoot, `${label}-`));

/** Rotates the order of subjects from one run to the next, so that none is always measured first. */
const rotated = (list, run) => list.map((_, i) => list[(i + run) % list.length]);

// ---------------------------------------------------------------------------------------------------------------
// Long-lived servers for the load cases, frozen (SIGSTOP) while another one is measured.

const live = new Map(); // subject id -> Instance

function focus(active) {
  if (!FREEZE) return;
  for (const inst of live.values()) if (inst.alive) signalGroup(inst.pgid, inst === active ? 'SIGCONT' : 'SIGSTOP');
}

function thawAll() {
  for (const inst of live.values()) if (inst.alive) signalGroup(inst.pgid, 'SIGCONT');
}

async function startLive(subject) {
  const inst = new Instance(subject, newDir(`live-${subject.id}`), randomName());
  live.set(subject.id, inst);
  try {
    const ms = await inst.start();
    log(`${subject.label} started (${ms.toFixed(0)} ms)`);
    inst.pgbenchReady = undefined;
  } catch (error) {
    inst.startError = error;
    note(`${subject.label}: could not start for the load cases: ${error.message}`);
  }
  return inst;
}

/** pgbench tables, created once per server with server-side generation (`-I dtGvp`: no COPY involved). */
async function ensurePgbench(inst) {
  if (inst.pgbenchReady) return;
  if (inst.pgbenchError) throw inst.pgbenchError;
  focus(inst);
  const t = performance.now();
  try {
    if (inst.subject.kind === 'inproc') await inst.call('pgbench-init', { scale: 1 }, 300_000);
    else await tcp.pgbenchInit(inst.url, 300_000);
    inst.pgbenchReady = true;
    log(`${inst.subject.label}: pgbench -i -s 1 done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  } catch (error) {
    inst.pgbenchError = error;
    note(`${inst.subject.label}: pgbench -i failed: ${error.message}`);
    throw error;
  }
}

/**
 * Measures one sample of a load case on one subject: focuses it, runs `fn(inst)`, records its metrics or its
 * failure, and restarts the server if it died or hung (so that the next cases still run on it).
 */
async function measure(subjectId, column, metrics, fn) {
  const inst = live.get(subjectId);
  if (!inst || inst.startError) {
    recordError(metrics, column, new Error('server did not start'));
    return;
  }
  focus(inst);
  try {
    if (!inst.alive) throw new Error(`server is not running: ${inst.tail()}`);
    const values = await fn(inst);
    for (const [metric, value] of Object.entries(values)) record(metric, column, { value });
  } catch (error) {
    const status = recordError(metrics, column, error);
    note(
      `${COLUMNS.find((c) => c.id === column).head}: ${metrics[0]} ${status}: ${String(error.message).slice(0, 240)}` +
        (inst.alive ? '' : ` (server had exited: ${inst.tail(2)})`),
    );
    inst.sampleRss();
    try {
      log(`${inst.subject.label}: restarting after "${status}" (data kept)`);
      await inst.restart();
      focus(inst);
    } catch (restartError) {
      inst.startError = restartError;
      note(`${inst.subject.label}: restart failed: ${restartError.message}`);
    }
  } finally {
    inst.sampleRss();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cases

async function caseReady() {
  for (let run = 0; run < READY_RUNS; run++) {
    for (const subject of rotated(subjects, run)) {
      const inst = new Instance(subject, newDir(`ready-${subject.id}`), randomName());
      try {
        const fresh = await inst.start();
        record('ready-fresh', subject.id, { value: fresh });
        record('rss-ready', subject.id, { value: groupRss(inst.pgid) });
        await inst.stop();
        record('disk', subject.id, { value: diskUsage(inst.dir) });
        const warm = await inst.start();
        record('ready-warm', subject.id, { value: warm });
        log(`ready ${subject.label}: fresh ${fresh.toFixed(0)} ms, warm ${warm.toFixed(0)} ms`);
      } catch (error) {
        const freshDone = results['ready-fresh'][subject.id].length > run;
        const status = recordError(freshDone ? ['ready-warm'] : ['ready-fresh', 'ready-warm'], subject.id, error);
        note(`${subject.label}: ${freshDone ? 'warm' : 'fresh'} start ${status}: ${error.message.slice(0, 240)}`);
      } finally {
        await inst.stop();
        fs.rmSync(inst.dir, { recursive: true, force: true });
      }
    }
  }
}

async function caseDetach() {
  if (!activeColumns.has('pgdev')) return;
  if (pgdevMode.mode !== 'cli' || !pgdevMode.detach) {
    note('pgdev -d: not measured (needs bin/pgdev.js with --detach)');
    return;
  }
  for (let run = 0; run < DETACH_RUNS; run++) {
    const dir = newDir('detach');
    const name = randomName();
    const env = { XDG_DATA_HOME: dir };
    const ports = await freePorts(3);
    const args = [pgdevMode.bin, '-d', '--name', name, '--port', String(ports[0]), '--db-port', String(ports[1]), '--shadow-db-port', String(ports[2])];
    const url = `postgres://postgres:postgres@127.0.0.1:${ports[1]}/template1?sslmode=disable`;
    const entry = [dir, name];
    detached.add(entry);
    try {
      for (const metric of ['detach-fresh', 'detach-warm']) {
        const r = await runCommand(process.execPath, args, { env, timeoutMs: 60_000 });
        if (r.timedOut) throw new tcp.Hung('pgdev -d', 60_000);
        if (r.code !== 0) throw new Error(`pgdev -d exited ${r.code}: ${tcp.lastLines(r.stderr + r.stdout)}`);
        await tcp.waitForSelect1(url, { deadlineMs: 10_000 });
        record(metric, 'pgdev', { value: r.ms });
        const stop = await runCommand(process.execPath, [pgdevMode.bin, 'stop', name], { env, timeoutMs: 30_000 });
        if (stop.code !== 0) throw new Error(`pgdev stop exited ${stop.code}: ${tcp.lastLines(stop.stderr + stop.stdout)}`);
      }
    } catch (error) {
      const status = recordError(['detach-fresh', 'detach-warm'].filter((m) => results[m].pgdev.length <= run), 'pgdev', error);
      note(`pgdev -d ${status}: ${error.message.slice(0, 240)}`);
    } finally {
      await runCommand(process.execPath, [pgdevMode.bin, 'stop', name], { env, timeoutMs: 30_000 });
      killDetached(dir, name);
      detached.delete(entry);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** pgdev only: restore of a snapshot against re-running the migrations and seed (bench/subjects/pgdev-restore.js). */
async function caseRestore() {
  if (!activeColumns.has('pgdev')) return;
  const dir = newDir('restore');
  try {
    const script = fileURLToPath(new URL('./subjects/pgdev-restore.js', import.meta.url));
    const r = await runCommand(process.execPath, [script], { env: { XDG_DATA_HOME: dir, RESTORE_RUNS: QUICK ? '3' : '5' }, timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`restore bench exited ${r.code}: ${tcp.lastLines(r.stderr + r.stdout)}`);
    const { migrate, restoreData } = JSON.parse(r.stdout.trim().split('\n').at(-1));
    record('restore-migrate', 'pgdev', { value: migrate });
    record('restore-data', 'pgdev', { value: restoreData });
    note(`restore(label) after writes to 3 of 10 tables: ${(migrate / restoreData).toFixed(1)} x faster than re-running the migrations and seed`);
  } catch (error) {
    recordError(['restore-migrate', 'restore-data'], 'pgdev', error);
    note(`restore case failed: ${error.message.slice(0, 240)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kills a detached server that `pgdev stop` did not stop, from the pid in its server.json. */
function killDetached(dir, name) {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'pgdev', 'servers', name, 'server.json'), 'utf8'));
    if (info.pid) process.kill(info.pid, 'SIGKILL');
  } catch {}
}

/** Load cases: `tcpFn(inst)` and `inprocFn(inst, api)` return { metric: value }. */
async function loadCase(metrics, { tcpFn, inprocFn, inprocQuery = true, inprocNote, runs = RUNS }) {
  // Once a subject fails or hangs in a case, the table says so and its remaining runs of that case are skipped.
  const failedBefore = (column) => results[metrics[0]][column].some((s) => s.status !== undefined);
  for (let run = 0; run < runs; run++) {
    for (const subject of rotated(subjects, run)) {
      if (subject.kind === 'inproc') {
        if (!inprocFn) continue;
        if (!failedBefore('inproc')) await measure('inproc', 'inproc', metrics, (inst) => inprocFn(inst, 'raw'));
        if (inprocQuery && !failedBefore('inprocq')) await measure('inproc', 'inprocq', metrics, (inst) => inprocFn(inst, 'query'));
      } else if (!failedBefore(subject.id)) {
        await measure(subject.id, subject.id, metrics, tcpFn);
      }
    }
    log(`${metrics[0]}: run ${run + 1}/${runs} done`);
  }
  if (inprocNote) note(inprocNote);
}

const latencyStats = ({ lat }, p50, p99) => ({ [p50]: percentile(lat, 50), ...(p99 ? { [p99]: percentile(lat, 99) } : {}) });

async function casePgbench(metric, { script, clients }) {
  const failMetric = `${metric}-fail`;
  const timeoutMs = (SECONDS + 90) * 1000;
  await loadCase([metric, failMetric], {
    tcpFn: async (inst) => {
      await ensurePgbench(inst);
      const r = await tcp.pgbench(inst.url, { script, clients, seconds: SECONDS, timeoutMs });
      if (r.note) note(`${inst.subject.label}: ${metric}: ${r.note}`);
      return { [metric]: r.tps, [failMetric]: r.failures };
    },
    inprocFn: async (inst, api) => {
      await ensurePgbench(inst);
      focus(inst);
      const r = await inst.call('pgbench', { script, seconds: SECONDS, api }, timeoutMs);
      return { [metric]: r.tps, [failMetric]: r.failures };
    },
  });
}

async function runCase(id) {
  const started = performance.now();
  log(`case ${id} ...`);
  switch (id) {
    case 'ready':
      await caseReady();
      break;
    case 'detach':
      await caseDetach();
      break;
    case 'restore':
      await caseRestore();
      break;
    case 'pgbench-s1':
      await casePgbench('pgbench-s1', { script: 'select', clients: 1 });
      break;
    case 'pgbench-s8':
      await casePgbench('pgbench-s8', { script: 'select', clients: 8 });
      note('pgbench -S with 8 clients: in-process PGlite is one session, so (a) runs the same loop as with 1 client.');
      break;
    case 'tpcb-c4':
      await casePgbench('tpcb-c4', { script: 'tpcb', clients: 4 });
      note('TPC-B with 4 clients: (a) runs the same script in one session.');
      break;
    case 'pg-seq':
      await loadCase(['seq-p50', 'seq-p99'], {
        tcpFn: async (inst) => latencyStats(await tcp.selectSeq(inst.url, { n: SEQ_N, timeoutMs: 180_000 }), 'seq-p50', 'seq-p99'),
        inprocFn: async (inst, api) => latencyStats(await inst.call('select-seq', { n: SEQ_N, api }, 180_000), 'seq-p50', 'seq-p99'),
      });
      break;
    case 'pg-par':
      await loadCase(['par-qps', 'par-p50'], {
        tcpFn: async (inst) => {
          const r = await tcp.selectParallel(inst.url, { connections: PAR_CONNECTIONS, perConnection: PAR_PER_CONNECTION, timeoutMs: 180_000 });
          return { 'par-qps': r.qps, 'par-p50': percentile(r.lat, 50) };
        },
        inprocNote: 'pg: 10 connections in parallel: not applicable to in-process PGlite (one session).',
      });
      break;
    case 'insert-10k':
      await loadCase(['insert-10k'], {
        tcpFn: async (inst) => ({ 'insert-10k': (await tcp.bulkInsert(inst.url, { rows: BULK_ROWS, timeoutMs: 120_000 })).ms }),
        inprocFn: async (inst, api) => {
          await inst.call('bulk-reset', {}, 60_000);
          return { 'insert-10k': (await inst.call('bulk-insert', { rows: BULK_ROWS, api }, 120_000)).ms };
        },
      });
      break;
    case 'copy-10k':
      await loadCase(['copy-10k'], {
        tcpFn: async (inst) => ({ 'copy-10k': (await tcp.bulkCopy(inst.url, { rows: BULK_ROWS, timeoutMs: 60_000 })).ms }),
        inprocFn: async (inst, api) => {
          if (api !== 'raw') throw new Error('n/a');
          await inst.call('bulk-reset', {}, 60_000);
          return { 'copy-10k': (await inst.call('bulk-copy', { rows: BULK_ROWS }, 60_000)).ms };
        },
        inprocQuery: false,
        inprocNote: "COPY: (a) is PGlite's in-process equivalent, pg.query(\"COPY ... FROM '/dev/blob'\", [], { blob }).",
      });
      break;
    case 'prisma-client':
      await casePrismaClient();
      break;
    case 'idle-cpu':
      await loadCase(['idle-cpu'], {
        tcpFn: async (inst) => {
          await ensurePgbench(inst);
          await tcp.pgbench(inst.url, { script: 'select', clients: 4, seconds: IDLE_LOAD_S, timeoutMs: (IDLE_LOAD_S + 90) * 1000 });
          return { 'idle-cpu': await cpuAfterLoad(inst) };
        },
        inprocFn: async (inst, api) => {
          await ensurePgbench(inst);
          await inst.call('pgbench', { script: 'select', seconds: IDLE_LOAD_S, api }, (IDLE_LOAD_S + 90) * 1000);
          return { 'idle-cpu': await cpuAfterLoad(inst) };
        },
        inprocQuery: false,
        runs: 1,
      });
      break;
    case 'peak-rss':
      for (const inst of live.values()) {
        const column = inst.subject.id;
        if (inst.startError && !inst.peakRss) continue;
        record('peak-rss', column, { value: inst.sampleRss() });
        if (inst.restarts) note(`${inst.subject.label}: peak RSS is the highest of ${inst.restarts + 1} server processes (restarted after failures).`);
      }
      break;
  }
  log(`case ${id} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

let prismaSkipped;
async function casePrismaClient() {
  const prisma = await loadPrismaClient(REPO);
  if (prisma.reason) {
    prismaSkipped = prisma.reason;
    note(`Prisma Client findUnique: skipped (${prisma.reason}).`);
    return;
  }
  const stats = ({ lat }) => percentile(lat, 50);
  // The CPU time of the server's main thread per query (the server process leads its group), over the warm-up and
  // the timed queries: less sensitive than latency to other work on the machine, and without helper threads (pgdev's
  // busy polling spins for a while after each answer).
  const withCpu = async (inst, run) => {
    const before = mainThreadCpuSeconds(inst.pgid);
    const result = await run();
    return { p50: stats(result), cpuMs: ((mainThreadCpuSeconds(inst.pgid) - before) * 1000) / (PRISMA_N + PRISMA_WARMUP) };
  };
  await loadCase(['prisma-tcp', 'prisma-tcp-cpu'], {
    tcpFn: async (inst) => {
      if (!inst.prismaSchema) {
        await prepareSchema(inst.url, prisma.migration);
        inst.prismaSchema = true;
      }
      const overTcp = await withCpu(inst, () =>
        findUniqueLatencies(() => new prisma.PrismaClient({ adapter: new prisma.PrismaPg({ connectionString: inst.url }) }), {
          n: PRISMA_N,
          warmup: PRISMA_WARMUP,
          timeoutMs: 120_000,
        }),
      );
      const column = inst.subject.id;
      if (!inst.ppgUrl) {
        if (!inst.noHttpNoted) note(`${inst.subject.label}: Prisma over HTTP: n/a (no prisma+postgres:// endpoint)`);
        inst.noHttpNoted = true;
      } else if (!results['prisma-http'][column].some((s) => s.status)) {
        try {
          if (!inst.prismaHttpStarted) {
            // The first request loads and starts the server's query plan executor (about half a second): not a query's cost.
            await findUniqueLatencies(() => new prisma.PrismaClient({ accelerateUrl: inst.ppgUrl }), { n: 1, warmup: 0, timeoutMs: 120_000 });
            inst.prismaHttpStarted = true;
          }
          const overHttp = await withCpu(inst, () =>
            findUniqueLatencies(() => new prisma.PrismaClient({ accelerateUrl: inst.ppgUrl }), { n: PRISMA_N, warmup: PRISMA_WARMUP, timeoutMs: 120_000 }),
          );
          record('prisma-http', column, { value: overHttp.p50 });
          record('prisma-http-cpu', column, { value: overHttp.cpuMs });
          record('prisma-http-ratio', column, { value: overHttp.p50 / overTcp.p50 });
        } catch (error) {
          const status = recordError(['prisma-http', 'prisma-http-cpu', 'prisma-http-ratio'], column, error);
          note(`${inst.subject.label}: Prisma over HTTP ${status}: ${String(error.message).split('\n').filter(Boolean).slice(-2).join(' ').slice(0, 360)}`);
        }
      }
      return { 'prisma-tcp': overTcp.p50, 'prisma-tcp-cpu': overTcp.cpuMs };
    },
    inprocNote: 'Prisma Client: not measured in-process (no PGlite driver adapter installed).',
  });
}

/** CPU seconds the server's process group burns in the IDLE_WATCH_S seconds after the load stopped. */
async function cpuAfterLoad(inst) {
  const before = groupCpuSeconds(inst.pgid);
  await sleep(IDLE_WATCH_S * 1000);
  return groupCpuSeconds(inst.pgid) - before;
}

// ---------------------------------------------------------------------------------------------------------------
// Table

function fmtValue(value, fmt) {
  switch (fmt) {
    case 'ms':
      return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
    case 'msf':
      return value < 1 ? `${value.toFixed(3)} ms` : value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`;
    case 'mib':
      return `${Math.round(value / 2 ** 20)} MiB`;
    case 'int':
      return Math.round(value).toLocaleString('en-US');
    case 'count':
      return String(Math.round(value));
    case 'cpu':
      return `${value.toFixed(2)} s`;
    case 'times':
      return `${value.toFixed(1)} ×`;
    case 'x2':
      return `${value.toFixed(2)} ×`;
    case 'x2c':
      return value.toFixed(2);
    default:
      return String(value);
  }
}

/** One cell: the median of the successful samples, else why there is none. */
function summarise(samples) {
  const ok = samples.filter((s) => s.status === undefined).map((s) => s.value);
  const bad = samples.filter((s) => s.status !== undefined);
  if (samples.length === 0) return { text: '' };
  if (ok.length === 0) return { text: bad.some((s) => s.status === 'hung') ? 'hung' : bad.every((s) => s.status === 'n/a') ? 'n/a' : 'failed' };
  const value = median(ok);
  const failed = bad.filter((s) => s.status !== 'n/a');
  return { value, partial: failed.length ? `${ok.length}/${ok.length + failed.length} ok` : undefined };
}

function buildRows() {
  const rows = [];
  for (const metric of METRICS) {
    if (!shown(metric)) continue;
    const cells = {};
    for (const c of COLUMNS) cells[c.id] = activeColumns.has(c.id) ? summarise(results[metric.id][c.id]) : { text: '' };
    const skipped = metric.caseId === 'prisma-client' && prismaSkipped;
    const allEmpty = COLUMNS.every((c) => cells[c.id].value === undefined && !cells[c.id].text);
    if (allEmpty && !skipped) continue;
    rows.push({ metric, cells });
  }
  return rows;
}

function renderTable(rows) {
  const refs = ['inproc', 'socket', 'prisma', 'postgres'].filter((id) => activeColumns.has(id));
  const head = ['case', ...COLUMNS.filter((c) => activeColumns.has(c.id)).map((c) => c.head), ...refs.map((r) => `pgdev/${COLUMNS.find((c) => c.id === r).head.split(' ')[0]}`)];
  const body = rows.map(({ metric, cells }) => {
    const arrow = metric.better === 'higher' ? '↑' : '↓';
    const line = [`${metric.label} ${metric.noRatio ? '' : arrow}`.trimEnd()];
    for (const c of COLUMNS) {
      if (!activeColumns.has(c.id)) continue;
      const cell = cells[c.id];
      if (metric.caseId === 'prisma-client' && prismaSkipped) line.push('skipped');
      else if (cell.value !== undefined) line.push(fmtValue(cell.value, metric.fmt) + (cell.partial ? ` (${cell.partial})` : ''));
      else line.push(cell.text || 'n/a');
    }
    for (const r of refs) {
      const a = cells.pgdev.value;
      const b = cells[r].value;
      line.push(!metric.noRatio && a !== undefined && b !== undefined && b !== 0 ? `${(a / b).toFixed(2)}` : '');
    }
    return line;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const fmtRow = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' │ ');
  return [fmtRow(head), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...body.map(fmtRow)].join('\n');
}

/** The issues' figures (11 unless a target says `issue`): each target, pgdev's figure (the median), and whether it is met. */
function renderTargets() {
  const lines = [];
  for (const metric of METRICS) {
    const target = metric.target;
    if (!target || !shown(metric)) continue;
    const a = summarise(results[metric.id][target.column]).value;
    const b = target.ratioTo ? summarise(results[metric.id][target.ratioTo]).value : undefined;
    const value = target.ratioTo ? (a !== undefined && b ? a / b : undefined) : a;
    const what = `${metric.label.trim()}${target.ratioTo ? `, pgdev ÷ ${COLUMNS.find((c) => c.id === target.ratioTo).head}` : ''}`;
    const wanted = `${target.op === '>=' ? '≥' : '≤'} ${target.ratioTo || metric.fmt === 'x2' ? `${target.value} ×` : fmtValue(target.value, metric.fmt)}`;
    const got = value === undefined ? 'no figure' : target.ratioTo ? `${value.toFixed(2)} ×` : fmtValue(value, metric.fmt);
    const met = value === undefined ? '-' : (target.op === '>=' ? value >= target.value : value <= target.value) ? 'met' : 'NOT MET';
    lines.push({ issue: target.issue ?? 11, line: `${what}: ${got} (target ${wanted}): ${met}` });
  }
  const issues = [...new Set(lines.map((l) => l.issue))];
  const head = `Targets (issue${issues.length > 1 ? 's' : ''} ${issues.join(', ')})`;
  return lines.length ? `${head}:\n${lines.map((l) => `- ${issues.length > 1 ? `[${l.issue}] ` : ''}${l.line}`).join('\n')}` : '';
}

// ---------------------------------------------------------------------------------------------------------------
// Main

const meta = {
  date: new Date().toISOString(),
  quick: QUICK,
  runs: RUNS,
  readyRuns: READY_RUNS,
  pgbenchSeconds: SECONDS,
  idleWatchSeconds: IDLE_WATCH_S,
  freeze: FREEZE,
  cases: only,
  pgdev: pgdevMode.mode,
  versions: versions(),
  loadavgAtStart: os.loadavg(),
};

const dbContext = {
  record,
  recordError,
  note,
  log,
  quick: QUICK,
  runs: RUNS,
  readyRuns: READY_RUNS,
  seconds: SECONDS,
  workerTxns: WORKER_TXNS,
  subjects,
  pgdevMode,
  newDir,
  postgresUrl: POSTGRES_URL,
  selected,
  freezeLive: () => focus(undefined),
};

/**
 * Column (d) without BENCH_POSTGRES_URL: a throw-away cluster of the installed PostgreSQL (bench/suites/servers.js,
 * as `npm run suites -- --against postgres` starts it; never installed from here), stopped and removed at the end.
 */
let ownPostgres;
async function startOwnPostgres() {
  const bin = installedPostgresBin();
  if (!bin) {
    note('(d) PostgreSQL: not run (no server binaries in /usr/lib/postgresql/*/bin; or set BENCH_POSTGRES_URL)');
    return;
  }
  try {
    ownPostgres = await startPostgres(log, { bin });
  } catch (error) {
    note(`(d) PostgreSQL: could not start a throw-away cluster: ${String(error.message).split('\n')[0].slice(0, 240)}`);
    return;
  }
  const { PGHOST, PGPORT } = ownPostgres.env;
  dbContext.postgresUrl = `postgres://postgres:postgres@${PGHOST}:${PGPORT}/postgres?sslmode=disable`;
  meta.versions.postgres = ownPostgres.version;
  activeColumns.add('postgres');
}

let exitCode = 0;
try {
  log(`pgdev via ${pgdevMode.mode}; subjects: ${subjects.map((s) => s.id).join(', ')}; cases: ${only.join(', ')}; ${RUNS} run(s), pgbench ${SECONDS} s`);
  if (selected('ready')) await runCase('ready');
  if (selected('detach')) await runCase('detach');
  const loadCases = ['pgbench-s1', 'pgbench-s8', 'tpcb-c4', 'pg-seq', 'pg-par', 'insert-10k', 'copy-10k', 'prisma-client', 'idle-cpu'].filter(selected);
  if (loadCases.length || selected('peak-rss')) {
    for (const subject of subjects) {
      await startLive(subject);
      focus(live.get(subject.id)); // freeze the ones already started
    }
    for (const id of loadCases) await runCase(id);
  }
  if (selected('peak-rss')) await runCase('peak-rss');
  if (selected('restore')) await runCase('restore');
  if (OWN_POSTGRES && POSTGRES_CASES.some(selected)) await startOwnPostgres();
  for (const id of DB_CASES.filter(selected)) {
    const started = performance.now();
    log(`case ${id} ...`);
    await runDbCase(id, dbContext);
    log(`case ${id} done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
} catch (error) {
  exitCode = 1;
  note(`bench aborted: ${error?.stack ?? error}`);
} finally {
  thawAll();
  await Promise.all([...live.values()].map((inst) => inst.stop().catch(() => undefined)));
  await ownPostgres?.stop().catch(() => undefined);
  killAllGroups();
  fs.rmSync(tmpRoot, { recursive: true, force: true });
}

meta.loadavgAtEnd = os.loadavg();
const rows = buildRows();
const table = renderTable(rows);
const v = meta.versions;
const header = [
  `pgdev bench — ${meta.date} — ${v.cpus} × ${v.cpu}, ${v.memGiB} GiB, Linux ${v.kernel}`,
  `pgdev ${pgdevMode.mode === 'cli' ? 'CLI (bin/pgdev.js)' : 'internal API (dist/, main database only)'} on Node ${v.node}; PGlite ${v.pglite}; ` +
    `pglite-socket ${v.pgliteSocket ?? '-'}; @prisma/dev ${v.prismaDev ?? '-'} (PGlite ${v.prismaDevPglite ?? '-'}) on Node ${v.node22 ?? '-'}; ${v.pgbench ?? 'no pgbench'}` +
    (v.postgres ? `; (d) ${v.postgres}, a throw-away cluster` : POSTGRES_URL ? '; (d) BENCH_POSTGRES_URL' : ''),
  `${QUICK ? 'QUICK run: ' : ''}medians of ${RUNS} run(s) per load case (${READY_RUNS} for start-up, ${DETACH_RUNS} for -d); pgbench ${SECONDS} s each; ` +
    `ratios are pgdev ÷ reference (↑ higher is better, ↓ lower is better); clients connect with sslmode=disable.`,
  `load average at start ${meta.loadavgAtStart.map((x) => x.toFixed(1)).join(' ')}, at end ${meta.loadavgAtEnd.map((x) => x.toFixed(1)).join(' ')}` +
    ' (other work on the machine makes the figures noisy).',
];
console.log(`\n${header.join('\n')}\n\n${table}\n`);
const targets = renderTargets();
if (targets) console.log(`${targets}\n`);
if (notes.length) console.log(`Notes:\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

fs.mkdirSync(OUT_DIR, { recursive: true });
const outFile = path.join(OUT_DIR, `bench-${meta.date.replace(/[:.]/g, '-')}${QUICK ? '-quick' : ''}.json`);
fs.writeFileSync(
  outFile,
  `${JSON.stringify(
    {
      meta,
      columns: COLUMNS.filter((c) => activeColumns.has(c.id)),
      rows: rows.map(({ metric, cells }) => ({
        id: metric.id,
        label: metric.label,
        better: metric.better,
        cells: Object.fromEntries(Object.entries(cells).filter(([id]) => activeColumns.has(id))),
      })),
      samples: results,
      notes,
      table,
      targets,
    },
    null,
    2,
  )}\n`,
);
fs.writeFileSync(path.join(OUT_DIR, 'latest.json'), fs.readFileSync(outFile));
log(`results written to ${path.relative(REPO, outFile)}; total ${((performance.now() - T0) / 1000).toFixed(0)} s`);
process.exit(exitCode);
