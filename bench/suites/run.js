#!/usr/bin/env node
/**
 * Runs the integration suites of node-postgres and postgres.js, unchanged, against a fresh pgdev (default) or a
 * throw-away real PostgreSQL (`--against postgres`), and prints a table and one line of totals. See README.md.
 *
 *   npm run suites                                   # against pgdev (this checkout's dist/)
 *   npm run suites -- --against postgres             # against Debian's PostgreSQL (installed if missing)
 *   npm run suites -- --suite postgres.js --grep cancel     # one suite, only the tests whose name has "cancel"
 *   npm run suites -- --compare                      # the last full run of each, side by side, as Markdown
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from '../lib/subjects.js';
import { ensureSuite, SUITES } from './archives.js';
import { runNodePostgres, runPostgresjs } from './drivers.js';
import { compareMarkdown, summaryLine, summaryTable } from './report.js';
import { startPgdev, startPostgres } from './servers.js';

const OUT = path.join(REPO, 'bench', 'out');
const RUNNERS = { 'node-postgres': runNodePostgres, 'postgres.js': runPostgresjs };
const TARGETS = { pgdev: startPgdev, postgres: startPostgres };
const log = (line) => console.error(line);

async function main() {
  const { values } = parseArgs({
    options: {
      against: { type: 'string', default: 'pgdev' },
      suite: { type: 'string', multiple: true },
      grep: { type: 'string' },
      compare: { type: 'boolean', default: false },
    },
  });
  if (values.compare) {
    const load = (target) => {
      const file = path.join(OUT, `suites-${target}.json`);
      if (!fs.existsSync(file)) throw new Error(`no results in ${file}: run \`npm run suites -- --against ${target}\` first`);
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    };
    console.log(compareMarkdown(load('pgdev'), load('postgres')));
    return;
  }
  const start = TARGETS[values.against];
  if (!start) throw new Error(`--against must be one of: ${Object.keys(TARGETS).join(', ')}`);
  const suites = values.suite ?? Object.keys(SUITES);
  for (const id of suites) if (!RUNNERS[id]) throw new Error(`--suite must be one of: ${Object.keys(RUNNERS).join(', ')}`);

  // The suites take their connection from PG* variables: none of the caller's may leak in.
  for (const key of Object.keys(process.env)) {
    if ((key.startsWith('PG') && !key.startsWith('PGDEV_')) || key === 'DATABASE_URL') delete process.env[key];
  }
  const dirs = {};
  for (const id of suites) dirs[id] = await ensureSuite(id, log);

  const logDir = path.join(OUT, `suites-logs-${values.against}`);
  fs.rmSync(logDir, { recursive: true, force: true });
  // The server the suites use now, and a fresh one in its place after a failure (see drivers.js).
  const servers = {
    current: await start(log),
    starts: 1,
    async fresh() {
      const old = this.current;
      this.current = undefined;
      await old.stop();
      this.current = await start(log);
      this.starts++;
    },
  };
  const run = { against: values.against, version: servers.current.version, date: new Date().toISOString(), node: process.version, suites: {} };
  try {
    for (const id of suites) {
      log(`${id}: running against ${values.against} (${servers.current.version})`);
      run.suites[id] = await RUNNERS[id](dirs[id], servers, { grep: values.grep, log, logDir });
      if (suites.indexOf(id) < suites.length - 1) await servers.fresh();
    }
  } finally {
    await servers.current?.stop();
  }
  run.serverStarts = servers.starts;
  console.log(summaryTable(run));
  if (!values.grep && suites.length === Object.keys(SUITES).length) {
    fs.mkdirSync(OUT, { recursive: true });
    fs.writeFileSync(path.join(OUT, `suites-${values.against}.json`), `${JSON.stringify(run, null, 1)}\n`);
    log(`results: bench/out/suites-${values.against}.json; each run's output: bench/out/suites-logs-${values.against}/`);
  }
  console.log(summaryLine(run));
}

main().catch((error) => {
  console.error(`suites: ${error.message}`);
  process.exitCode = 1;
});
