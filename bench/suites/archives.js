/**
 * The two drivers' repositories at their pinned commits: taken from the archives in ../shared/suites/ (next to the
 * repository), else downloaded from GitHub, then extracted and installed once into a cache folder outside the repo.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO } from '../lib/subjects.js';
import { lastLines } from '../lib/tcp.js';
import { runCommand } from '../lib/proc.js';

export const ARCHIVES = process.env.PGDEV_SUITES_ARCHIVES ?? path.resolve(REPO, '..', 'shared', 'suites');
export const CACHE = process.env.PGDEV_SUITES_CACHE ?? path.join(os.homedir(), '.cache', 'pgdev-suites');

const INSTALL_TIMEOUT_MS = 20 * 60_000;

export const SUITES = {
  'node-postgres': {
    repo: 'brianc/node-postgres',
    commit: 'c9e57617bc92c2ded23a75345f50eadc527bd131',
    archive: 'node-postgres-c9e57617.tar.gz',
    // A yarn@1 monorepo: the workspaces' TypeScript packages (pg-protocol, ...) are built with `tsc --build`.
    install: [
      ['npx', ['-y', 'yarn@1', 'install', '--frozen-lockfile', '--ignore-scripts', '--non-interactive']],
      ['node_modules/.bin/tsc', ['--build']],
    ],
  },
  'postgres.js': {
    repo: 'porsager/postgres',
    commit: 'e7dfa14519f363229ccc3ead7b1b2f2051937efb',
    archive: 'postgres-3.4.9.tar.gz',
    install: [['npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund']]],
  },
};

const MARKER = '.pgdev-suite.json';

/** The folder of an installed suite, extracting and installing it first if needed. */
export async function ensureSuite(id, log) {
  const suite = SUITES[id];
  const dir = path.join(CACHE, `${id}-${suite.commit.slice(0, 8)}`);
  try {
    if (JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')).commit === suite.commit) return dir;
  } catch {}
  const archive = await findArchive(id, suite, log);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  log(`${id}: extracting ${archive} into ${dir}`);
  await must(runCommand('tar', ['xzf', archive, '-C', dir, '--strip-components=1'], { timeoutMs: 120_000 }), `extracting ${archive}`);
  for (const [cmd, args] of suite.install) {
    log(`${id}: ${cmd} ${args.join(' ')} (once; cached in ${dir})`);
    await must(runCommand(cmd, args, { cwd: dir, timeoutMs: INSTALL_TIMEOUT_MS }), `${cmd} ${args.join(' ')} in ${dir}`);
  }
  fs.writeFileSync(path.join(dir, MARKER), `${JSON.stringify({ commit: suite.commit, installed: new Date().toISOString() })}\n`);
  return dir;
}

async function must(promise, what) {
  const r = await promise;
  if (r.timedOut) throw new Error(`${what}: no end after ${Math.round(r.ms / 1000)} s`);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${lastLines(r.stderr || r.stdout, 3)}`);
  return r;
}

/** The shared archive if it is there, else the same commit downloaded from GitHub into the cache. */
async function findArchive(id, suite, log) {
  const shared = path.join(ARCHIVES, suite.archive);
  if (fs.existsSync(shared)) return shared;
  const downloaded = path.join(CACHE, suite.archive);
  if (fs.existsSync(downloaded)) return downloaded;
  fs.mkdirSync(CACHE, { recursive: true });
  const url = `https://codeload.github.com/${suite.repo}/tar.gz/${suite.commit}`;
  log(`${id}: ${shared} is missing; downloading ${url}`);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    fs.writeFileSync(`${downloaded}.part`, Buffer.from(await response.arrayBuffer()));
    fs.renameSync(`${downloaded}.part`, downloaded);
    return downloaded;
  } catch (error) {
    throw new Error(
      `${id}: no archive at ${shared} and the download of ${url} failed (${error.cause?.code ?? error.message}); ` +
        `put ${suite.archive} there, or point PGDEV_SUITES_ARCHIVES at a folder holding it`,
    );
  }
}
