/**
 * Child processes of the bench: every server is spawned in its own process group, so that it and anything it starts
 * can be stopped, frozen (SIGSTOP) while another subject is measured, and killed whatever happens to the bench.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';

const groups = new Set();

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {}

export function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process group the bench started and has not reaped yet. */
export function killAllGroups() {
  for (const pgid of groups) {
    signalGroup(pgid, 'SIGCONT');
    signalGroup(pgid, 'SIGKILL');
  }
  groups.clear();
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllGroups);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      killAllGroups();
      process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[signal]);
    });
  }
}

/**
 * Spawns `cmd` as the leader of a new process group. Keeps the last lines of its output in `child.logTail`;
 * `child.onLine(fn)` sees every stdout line.
 */
export function spawnGroup(cmd, args, { env, cwd, stdin = 'ignore' } = {}) {
  hookExit();
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, detached: true, stdio: [stdin, 'pipe', 'pipe'] });
  if (child.pid) groups.add(child.pid);
  child.logTail = [];
  const listeners = [];
  child.onLine = (fn) => listeners.push(fn);
  const keep = (line) => {
    child.logTail.push(line);
    if (child.logTail.length > 40) child.logTail.shift();
  };
  for (const [stream, name] of [[child.stdout, 'out'], [child.stderr, 'err']]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        keep(`${name}: ${line}`);
        if (name === 'out') for (const fn of listeners) fn(line);
      }
    });
  }
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('error', (error) => keep(`spawn error: ${error.message}`));
  return child;
}

export const isRunning = (child) => child.exitCode === null && child.signalCode === null;

/** SIGTERM to the leader (after SIGCONT), SIGKILL to the whole group after `timeoutMs` or once the leader is gone. */
export async function stopGroup(child, timeoutMs = 10_000) {
  const pgid = child.pid;
  if (!pgid) return;
  signalGroup(pgid, 'SIGCONT');
  if (isRunning(child)) {
    try {
      child.kill('SIGTERM');
    } catch {}
    const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs, 'timeout'));
    await Promise.race([child.exited, timer]);
  }
  signalGroup(pgid, 'SIGKILL');
  groups.delete(pgid);
  await Promise.race([child.exited, new Promise((r) => setTimeout(r, 2000))]);
}

/** Runs a command to completion with a time limit; resolves { code, stdout, stderr, timedOut, ms }. */
export function runCommand(cmd, args, { env, cwd, timeoutMs = 60_000 } = {}) {
  hookExit();
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) groups.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => (stderr += `spawn error: ${error.message}`));
    child.once('close', (code) => {
      clearTimeout(timer);
      signalGroup(child.pid, 'SIGKILL');
      groups.delete(child.pid);
      resolve({ code, stdout, stderr, timedOut, ms: performance.now() - started });
    });
  });
}

/**
 * The pids of a process group (scanning /proc), and of every descendant of its leader even where one moved to a group
 * of its own (a server's per-database child processes, for instance).
 */
export function groupPids(pgid) {
  const pids = new Set();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid) pids.add(Number(entry));
  }
  if (pids.has(pgid)) for (const pid of treePids(pgid)) pids.add(pid);
  return [...pids];
}

function childrenOf(pid) {
  const out = [];
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) if (child) out.push(Number(child));
    } catch {}
  }
  return out;
}

/** `pid` and all its descendants (the `children` files of `/proc/<pid>/task/<tid>/`, recursively). */
export function treePids(pid) {
  const seen = new Set();
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    if (seen.has(p)) continue;
    seen.add(p);
    queue.push(...childrenOf(p));
  }
  return [...seen];
}

function readStat(pid, file = `/proc/${pid}/stat`) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pgrp: Number(fields[2]), utime: Number(fields[11]), stime: Number(fields[12]) };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by the live processes of a group. */
export function groupCpuSeconds(pgid) {
  let ticks = 0;
  for (const pid of groupPids(pgid)) {
    const stat = readStat(pid);
    if (stat) ticks += stat.utime + stat.stime;
  }
  return ticks / CLK_TCK;
}

/**
 * CPU seconds used so far by a process's main thread only (where a Node server runs JavaScript and PGlite): unlike
 * {@link groupCpuSeconds}, it leaves out helper threads such as pgdev's busy-polling one.
 */
export function mainThreadCpuSeconds(pid) {
  const stat = readStat(pid, `/proc/${pid}/task/${pid}/stat`);
  return stat ? (stat.utime + stat.stime) / CLK_TCK : 0;
}

function statusKb(pid, field) {
  try {
    const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Peak resident memory (VmHWM) summed over the live processes of a group, in bytes. */
export function groupPeakRss(pgid) {
  return groupPids(pgid).reduce((sum, pid) => sum + statusKb(pid, 'VmHWM'), 0) * 1024;
}

/** Current resident memory (VmRSS) summed over the group, in bytes. */
export function groupRss(pgid) {
  return groupPids(pgid).reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0) * 1024;
}

/** Bytes on disk under `dir` (du -sk). */
export function diskUsage(dir) {
  try {
    return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]) * 1024;
  } catch {
    return undefined;
  }
}
