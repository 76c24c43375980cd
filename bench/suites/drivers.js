/**
 * Runs each driver's suite against `servers.current` (its connection in `env`, as PG* variables; `servers.fresh()`
 * replaces it with a new one), and returns one result per node-postgres test file or per postgres.js test:
 * { id, status, ms, detail }, status being pass, fail, timeout, never finished or set aside.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../lib/proc.js';
import { lastLines } from '../lib/tcp.js';
import { removeDir, temporaryDir } from './servers.js';
import { NODE_POSTGRES_SET_ASIDE, POSTGRESJS_SET_ASIDE } from './set-aside.js';

const FILE_TIMEOUT_MS = 120_000;
const POSTGRESJS_TIMEOUT_MS = 20 * 60_000;
const REGISTER = fileURLToPath(new URL('./postgresjs/register.js', import.meta.url));

function integrationFiles(dir, prefix = 'test/integration') {
  return fs
    .readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = `${prefix}/${entry.name}`;
      if (entry.isDirectory()) return integrationFiles(dir, rel);
      return entry.name.endsWith('-tests.js') ? [rel] : [];
    })
    .sort();
}

function checkSetAside(names, setAside, suite) {
  const stale = Object.keys(setAside).filter((name) => !names.includes(name));
  if (stale.length) throw new Error(`${suite}: set-aside entries that match no test of the pinned commit: ${stale.join(', ')}`);
}

/**
 * node-postgres: every `packages/pg/test/integration/**\/*-tests.js`, each as `node FILE` (as its Makefile does),
 * one after the other on one server, and on a fresh server after a file that did not pass.
 */
export async function runNodePostgres(repoDir, servers, { grep, log, logDir }) {
  const pgDir = path.join(repoDir, 'packages', 'pg');
  const files = integrationFiles(pgDir);
  checkSetAside(files, NODE_POSTGRES_SET_ASIDE, 'node-postgres');
  const results = [];
  let restart = false;
  for (const file of files) {
    if (Object.hasOwn(NODE_POSTGRES_SET_ASIDE, file)) {
      results.push({ id: file, status: 'set aside', detail: NODE_POSTGRES_SET_ASIDE[file] });
      continue;
    }
    if (grep && !file.includes(grep)) continue;
    if (restart) await servers.fresh();
    const r = await runCommand(process.execPath, [file], { cwd: pgDir, env: servers.current.env, timeoutMs: FILE_TIMEOUT_MS });
    keepLog(logDir, file, r);
    const status = r.timedOut ? 'timeout' : r.code === 0 ? 'pass' : 'fail';
    const detail = status === 'pass' ? undefined : failureLine(`${r.stdout}\n${r.stderr}`);
    results.push({ id: file, status, ms: Math.round(r.ms), detail });
    // What a failed file leaves behind (a statement still running, a table) must not fail the files after it.
    restart = status !== 'pass';
    log(`  ${status.padEnd(7)} ${(r.ms / 1000).toFixed(1).padStart(5)} s  ${file}${detail ? `  (${detail})` : ''}`);
  }
  return results;
}

const firstLine = (text) => text?.split('\n')[0].slice(0, 200);

/** Keeps a run's whole output, for reading a failure by hand. */
function keepLog(logDir, name, r) {
  if (!logDir) return;
  const file = path.join(logDir, `${name.replaceAll('/', '_')}.log`);
  fs.mkdirSync(logDir, { recursive: true });
  fs.writeFileSync(file, `exit ${r.code}${r.timedOut ? ' (time limit)' : ''}, ${Math.round(r.ms)} ms\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

/** The most telling line of a failed file's output: the first error or assertion message. */
function failureLine(output) {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
  const hit = lines.find((l) => /^(Error|AssertionError|Message|TypeError|error:)|did not complete|Expected/.test(l));
  return (hit ?? lastLines(output, 1)).slice(0, 200);
}

/**
 * postgres.js: `node tests/index.js` with its runner replaced (postgresjs/harness.js). The harness stops at a
 * failure; the suite then starts again on a fresh server from the next test, until every test has a result.
 */
export async function runPostgresjs(repoDir, servers, { grep, log, logDir }) {
  const tmp = temporaryDir('pgdev-suites-pjs-');
  const final = [];
  try {
    for (let from = 0, round = 1; ; round++) {
      if (from > 0) await servers.fresh();
      const out = path.join(tmp, `round-${round}.json`);
      const r = await runCommand(process.execPath, ['--import', REGISTER, 'tests/index.js'], {
        cwd: repoDir,
        env: {
          ...servers.current.env,
          PGDEV_SUITES_RESULTS: out,
          PGDEV_SUITES_FROM: String(from),
          PGDEV_SUITES_SET_ASIDE: JSON.stringify(POSTGRESJS_SET_ASIDE),
          PGDEV_SUITES_GREP: grep ?? '',
        },
        timeoutMs: POSTGRESJS_TIMEOUT_MS,
      });
      keepLog(logDir, `postgres.js-${round}`, r);
      let tests = [];
      try {
        tests = JSON.parse(fs.readFileSync(out, 'utf8'));
      } catch {}
      if (!tests.length) throw new Error(`postgres.js: the suite ran no test (exit ${r.code}): ${lastLines(`${r.stdout}\n${r.stderr}`, 4)}`);
      if (from === 0) checkSetAside(tests.map((x) => x.name), POSTGRESJS_SET_ASIDE, 'postgres.js');
      // Everything up to the first test left unfinished is final; a test still unfinished when the process ended
      // (it crashed or hung) gets that as its result, and the next round starts after it.
      let next = tests.length;
      for (let i = from; i < tests.length; i++) {
        const test = tests[i];
        if (test.status === 'never finished') {
          const how = r.timedOut ? 'the suite was ended after its time limit' : `the suite exited ${r.code}: ${lastLines(r.stderr, 1)}`;
          final[i] = { ...test, error: how };
          next = i + 1;
          break;
        }
        final[i] = test;
        if (test.status === 'fail') {
          next = i + 1;
          break;
        }
      }
      const last = final[next - 1];
      if (last && last.status !== 'pass' && last.status !== 'set aside') log(`  ${last.status.padEnd(7)} ${last.name}  (${firstLine(last.error)})`);
      if (next >= tests.length) break;
      from = next;
    }
  } finally {
    removeDir(tmp);
  }
  const seen = new Map();
  const results = [];
  for (const test of final) {
    if (!test || test.status === 'not selected') continue;
    // A few names occur twice in tests/index.js; the count tells them apart.
    const count = (seen.get(test.name) ?? 0) + 1;
    seen.set(test.name, count);
    const id = count > 1 ? `${test.name} (#${count})` : test.name;
    results.push({ id, line: test.line, status: test.status, ms: test.ms, detail: firstLine(test.error ?? test.reason) });
  }
  return results;
}
