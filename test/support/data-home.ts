/**
 * @module
 * A temporary XDG_DATA_HOME for the tests of one file that start servers in-process, so they never touch the user's
 * data: set before the file's tests, restored and deleted after them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';

/** Registers the hooks; the returned function gives the folder (valid once the tests run). */
export function useTemporaryDataHome(prefix: string): () => string {
  const saved = process.env.XDG_DATA_HOME;
  let home = '';
  beforeAll(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    process.env.XDG_DATA_HOME = home;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.XDG_DATA_HOME;
    else process.env.XDG_DATA_HOME = saved;
    fs.rmSync(home, { recursive: true, force: true });
  });
  return () => home;
}
