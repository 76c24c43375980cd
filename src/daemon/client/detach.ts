/**
 * @module
 * Background servers. `spawnDetached` starts `pgdev` in a new process group with its output in the server's log
 * and waits for it to report ready (or its error) over an IPC channel, so `-d` returns only once all three ports
 * answer. `stopServer` asks a server to shut down (SIGTERM) and, past a timeout, forces it (SIGKILL).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../package-root.js';
import { ErrorCode, PgdevError, isPgdevError } from '../../errors.js';
import { isPidAlive, type ServerRecord } from '../../state/files.js';
import { lockOwnerPid } from '../../state/lock.js';
import { dataDirError, serverPaths } from '../../state/paths.js';
import { readRunning } from './registry.js';

const BIN = path.join(PACKAGE_ROOT, 'bin', 'pgdev.js');

/** What the detached child sends its parent: progress lines, then once ready with its record, or the reason it failed. */
export type DetachedReport = { ready: ServerRecord } | { error: string; code?: string } | { progress: string };

export const START_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 10_000;

/** Starts `pgdev` in the background; `onProgress` gets the lines the server says while it starts. */
export async function spawnDetached(name: string, args: string[], onProgress: (line: string) => void = () => undefined): Promise<ServerRecord> {
  const paths = serverPaths(name);
  const existedBefore = fs.existsSync(paths.root);
  let logFd: number;
  try {
    fs.mkdirSync(paths.root, { recursive: true });
    logFd = fs.openSync(paths.logFile, 'a');
  } catch (cause) {
    throw dataDirError(paths.root, cause);
  }
  const child = spawn(process.execPath, [BIN, ...args, '--name', name], {
    detached: true,
    stdio: ['ignore', logFd, logFd, 'ipc'],
    env: { ...process.env, PGDEV_DETACHED: '1' },
  });
  fs.closeSync(logFd);
  try {
    return await new Promise<ServerRecord>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new PgdevError(ErrorCode.StartFailed, `server "${name}" did not become ready in ${START_TIMEOUT_MS / 1000} s; see ${paths.logFile}`));
      }, START_TIMEOUT_MS);
      child.on('message', (report: DetachedReport) => {
        if ('progress' in report) return onProgress(report.progress);
        clearTimeout(timer);
        if ('ready' in report) resolve(report.ready);
        else reject(new PgdevError((report.code as ErrorCode) ?? ErrorCode.StartFailed, report.error));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new PgdevError(ErrorCode.StartFailed, `server "${name}" exited (code ${code}) before it was ready: ${lastLogLine(paths.logFile)}`));
      });
    });
  } catch (error) {
    if (child.pid && isPidAlive(child.pid)) child.kill('SIGKILL');
    // A server that never became ready leaves nothing behind (its folder held only this attempt's log), unless
    // another process holds it now (two starts racing: the winner's folder stays).
    if (!existedBefore && child.pid && !isPgdevError(error, ErrorCode.Locked)) {
      await waitForExit(child.pid, STOP_TIMEOUT_MS);
      if (lockOwnerPid(paths.root) === undefined) fs.rmSync(paths.root, { recursive: true, force: true });
    }
    throw error;
  } finally {
    child.removeAllListeners();
    if (child.connected) child.disconnect();
    child.unref();
  }
}

function lastLogLine(file: string): string {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  return lines.at(-1) || 'no output';
}

/** Reports readiness (or failure) to the parent that spawned this process with `-d`, then lets go of it. */
export function reportToParent(report: DetachedReport): void {
  if (!process.send) return;
  if ('progress' in report) process.send(report);
  else process.send(report, () => process.disconnect?.());
}

/** Stops a server process: SIGTERM, then SIGKILL after `timeoutMs`. Resolves `true` if it had to be forced. */
export async function stopProcess(record: Pick<ServerRecord, 'pid'>, timeoutMs = STOP_TIMEOUT_MS): Promise<boolean> {
  try {
    process.kill(record.pid, 'SIGTERM');
  } catch {
    return false;
  }
  if (await waitForExit(record.pid, timeoutMs)) return false;
  try {
    process.kill(record.pid, 'SIGKILL');
  } catch {
    return false;
  }
  await waitForExit(record.pid, 5_000);
  return true;
}

/**
 * The running server's record; for a server still starting (its lock is held, its record not yet written), waits
 * until it is ready, so that `stop` and `rm --force` never leave a server that was starting behind them. A starting
 * server that never becomes ready is killed.
 */
export async function settledRecord(name: string, timeoutMs = START_TIMEOUT_MS): Promise<ServerRecord | undefined> {
  const root = serverPaths(name).root;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = readRunning(name);
    if (record) return record;
    const starting = lockOwnerPid(root);
    if (starting === undefined) return undefined;
    if (Date.now() > deadline) {
      await stopProcess({ pid: starting }, 0);
      return undefined;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isPidAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !isPidAlive(pid);
}
