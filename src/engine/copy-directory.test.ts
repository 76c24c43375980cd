/**
 * @module
 * copyDirectory: an exact copy (folders, files, bytes, modes), the `last` file copied after the others, and a clear
 * failure (errno code and path) for what a data directory never holds.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyDirectory } from './copy-directory.js';

describe('copyDirectory', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-copy-directory-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('copies every folder and file, byte for byte and with its mode, and `last` after the others', async () => {
    const source = path.join(dir, 'source');
    fs.mkdirSync(path.join(source, 'base', '5'), { recursive: true });
    fs.mkdirSync(path.join(source, 'empty'));
    fs.writeFileSync(path.join(source, 'PG_VERSION'), '17\n');
    fs.writeFileSync(path.join(source, 'base', '5', '1259'), Buffer.alloc(3 * 8192, 7), { mode: 0o600 });
    fs.writeFileSync(path.join(source, 'postgresql.conf'), '# settings\n', { mode: 0o644 });
    const order: string[] = [];
    const target = path.join(dir, 'target');
    await copyDirectory(source, target, {
      last: 'PG_VERSION',
      copy: async (from, to, relative) => {
        await fs.promises.copyFile(from, to);
        order.push(relative);
      },
    });
    expect(order.at(-1)).toBe('PG_VERSION');
    expect(order.sort()).toEqual(['PG_VERSION', path.join('base', '5', '1259'), 'postgresql.conf']);
    expect(fs.existsSync(path.join(target, 'empty'))).toBe(true);

    const cloned = path.join(dir, 'cloned');
    await copyDirectory(source, cloned); // the default: cloned where the file system can, else copied
    for (const name of order) {
      expect(fs.readFileSync(path.join(cloned, name)).equals(fs.readFileSync(path.join(source, name))), name).toBe(true);
      expect(fs.statSync(path.join(cloned, name)).mode, name).toBe(fs.statSync(path.join(source, name)).mode);
    }
  });

  it('fails with ENOTSUP and the path of anything that is not a file or a folder', async () => {
    const source = path.join(dir, 'source');
    fs.mkdirSync(source);
    execFileSync('mkfifo', [path.join(source, 'pipe')]);
    await expect(copyDirectory(source, path.join(dir, 'target'))).rejects.toMatchObject({ code: 'ENOTSUP', path: path.join(source, 'pipe') });
  });
});
