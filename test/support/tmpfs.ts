/**
 * @module
 * A small tmpfs as XDG_DATA_HOME, to fill a disk for real (root, or a container that allows `mount`).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/** Whether this process may mount a tmpfs; says why not (once, naming `file`) where it may not. */
function canMount(file: string): boolean {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe]);
    return true;
  } catch {
    console.warn(`${file}: skipped, this user cannot mount a tmpfs to fill (run as root, or in a container that allows mount)`);
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * Mounts a tmpfs of `sizeMb` as XDG_DATA_HOME for the file's tests; `beforeUnmount` runs first at the end (close
 * the servers on it). Returns whether it can (the tests are skipped otherwise).
 */
export function useTmpfsDataHome(file: string, sizeMb: number, beforeUnmount: () => Promise<void>): boolean {
  const mountable = canMount(file);
  let mountPoint: string;
  let previousHome: string | undefined;
  beforeAll(() => {
    if (!mountable) return;
    mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-disk-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', mountPoint]);
    previousHome = process.env.XDG_DATA_HOME;
    process.env.XDG_DATA_HOME = mountPoint;
  });
  afterAll(async () => {
    if (!mountable) return;
    await beforeUnmount();
    process.env.XDG_DATA_HOME = previousHome;
    execFileSync('umount', [mountPoint]);
    fs.rmSync(mountPoint, { recursive: true, force: true });
  });
  return mountable;
}
