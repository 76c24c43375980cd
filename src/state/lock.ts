/**
 * @module
 * One process per name: a proper-lockfile lock on the name's state folder. proper-lockfile decides staleness by
 * the lock's mtime (its owner refreshes it); we also treat a lock whose recorded owner pid is dead as stale, so a
 * `kill -9`ed server can be restarted at once instead of after the staleness window.
 */
import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ErrorCode, PgdevError } from '../errors.js';
import { isPidAlive, writeFileAtomic } from './files.js';

const STALE_MS = 10_000;

export type HeldLock = {
  /** Releases the lock; safe to call more than once. */
  release(): Promise<void>;
};

function lockOptions(dir: string) {
  return { lockfilePath: path.join(dir, 'server.lock'), realpath: false, stale: STALE_MS };
}

function ownerFile(dir: string): string {
  return path.join(dir, 'server.lock.pid');
}

/**
 * Takes the lock of a state folder. `onCompromised` runs if the lock is lost while held (the folder was deleted,
 * or the process was suspended past the staleness window); the owner should shut down then.
 */
export async function acquireLock(dir: string, onCompromised: (error: Error) => void): Promise<HeldLock> {
  fs.mkdirSync(dir, { recursive: true });
  const options = lockOptions(dir);
  const owner = Number(readOwner(dir));
  if (owner && owner !== process.pid && !isPidAlive(owner)) {
    // The previous owner died without releasing: its lock is stale whatever its mtime says.
    fs.rmSync(options.lockfilePath, { recursive: true, force: true });
  }
  let releaseLock: () => Promise<void>;
  try {
    releaseLock = await lockfile.lock(dir, { ...options, onCompromised });
  } catch (cause) {
    if ((cause as { code?: string }).code === 'ELOCKED') {
      throw new PgdevError(ErrorCode.Locked, 'locked by another process', { cause });
    }
    throw cause;
  }
  // Atomic: a reader must never see the file created but still empty (pid 0 would name its own process group).
  writeFileAtomic(ownerFile(dir), String(process.pid));
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      fs.rmSync(ownerFile(dir), { force: true });
      await releaseLock().catch(() => undefined);
    },
  };
}

function readOwner(dir: string): string | undefined {
  try {
    return fs.readFileSync(ownerFile(dir), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Whether a live process holds the folder's lock right now. */
export async function isLocked(dir: string): Promise<boolean> {
  if (!fs.existsSync(dir)) return false;
  const owner = Number(readOwner(dir));
  if (owner && !isPidAlive(owner)) return false;
  return lockfile.check(dir, lockOptions(dir));
}

/** The pid recorded by the lock's owner, if that process is alive. */
export function lockOwnerPid(dir: string): number | undefined {
  const owner = Number(readOwner(dir));
  return owner && isPidAlive(owner) ? owner : undefined;
}
