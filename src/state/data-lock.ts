/**
 * @module
 * One engine per data directory. The database process that opens a directory holds `<dir>.lock` for as long as it
 * lives: a file created exclusively, naming its pid and that process's start time. The start time is what makes
 * the record sure: a pid alone may have been reused by an unrelated process since. A lock whose owner is gone is
 * stale and taken over; one whose owner still runs (a database process of an earlier server, finishing a
 * statement) is waited for, then that process is stopped. A held directory is never opened.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { isPidAlive } from './files.js';

/** How long a new owner waits for the holder to go by itself (an orphan stops within a second) before stopping it. */
const HOLDER_GRACE_MS = 3_000;
const POLL_MS = 50;

/** `thread`: the worker thread of the process that hosts the database (0: its main thread). */
type Owner = { readonly pid: number; readonly started: string; readonly thread?: number };

export type HeldDataDir = {
  /** Gives the directory up; safe to call more than once. */
  release(): void;
};

export function dataLockFile(dir: string): string {
  return `${dir}.lock`;
}

/**
 * Takes the lock of a data directory, waiting for (and past {@link HOLDER_GRACE_MS}, stopping) a live holder.
 * `log` gets one line when a holder had to be waited for or stopped.
 */
export async function holdDataDir(dir: string, log: (line: string) => void): Promise<HeldDataDir> {
  const file = dataLockFile(dir);
  const me: Owner = { pid: process.pid, started: processStartTime(process.pid) ?? '', thread: threadId };
  let waitedFor: Owner | undefined;
  let since = Date.now();
  let stopped = false;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // Written whole, then linked into place: a reader never sees the lock without its owner.
  const written = `${file}.${process.pid}.${threadId}.tmp`;
  fs.writeFileSync(written, JSON.stringify(me));
  for (;;) {
    try {
      fs.linkSync(written, file);
      fs.rmSync(written, { force: true });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        fs.rmSync(written, { force: true });
        throw error;
      }
    }
    const holder = readOwner(file);
    // A lock of this very process is an earlier thread's that hosted the database: the server starts the next host of
    // a database only once the last one has ended, whether or not it had time to release.
    if (!holder || holder.pid === process.pid || !isOwnerAlive(holder)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (waitedFor?.pid !== holder.pid) {
      waitedFor = holder;
      since = Date.now();
    } else if (Date.now() - since >= HOLDER_GRACE_MS && !stopped) {
      stopped = true;
      try {
        process.kill(holder.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  if (waitedFor) {
    const seconds = ((Date.now() - since) / 1000).toFixed(1);
    log(`its data directory was still held by an earlier database process (pid ${waitedFor.pid}), which ${stopped ? `did not stop within ${HOLDER_GRACE_MS / 1000} s and was stopped` : `stopped after ${seconds} s`}`);
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    const owner = readOwner(file);
    if (owner?.pid === me.pid && owner.thread === me.thread) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { release };
}

function readOwner(file: string): Owner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Owner>;
    return typeof owner.pid === 'number' && typeof owner.started === 'string' ? { pid: owner.pid, started: owner.started, thread: owner.thread ?? 0 } : undefined;
  } catch {
    return undefined; // missing or unreadable: nobody holds it
  }
}

function isOwnerAlive(owner: Owner): boolean {
  if (!isPidAlive(owner.pid)) return false;
  const started = processStartTime(owner.pid);
  // Where the start time cannot be read, a live pid is taken as the holder: waiting is safer than sharing.
  return started === undefined || owner.started === '' || started === owner.started;
}

/** When a process started, as the system records it (Linux: clock ticks since boot; elsewhere `ps`'s lstart). */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    // no /proc (macOS)
  }
  try {
    return execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
