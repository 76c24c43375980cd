/**
 * @module
 * A new data directory is an exact copy of the template, its WAL segment written without the zeros at its end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyTemplateFor, ensureTemplate } from './template.js';

function filesUnder(root: string, relative = ''): string[] {
  return fs.readdirSync(path.join(root, relative), { withFileTypes: true }).flatMap((entry) => {
    const name = path.join(relative, entry.name);
    return entry.isDirectory() ? [`${name}/`, ...filesUnder(root, name)] : [name];
  });
}

describe('copyTemplateFor', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-template-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('copies every file and folder of the template, byte for byte, replacing what was there', async () => {
    const template = await ensureTemplate();
    const target = path.join(dir, 'db');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'left-over'), 'from a copy cut short');
    const fileSystem = copyTemplateFor(template, target);
    await fileSystem.initialSyncFs(); // what PGlite awaits before it looks at the files
    const expected = filesUnder(template.dir).sort();
    expect(filesUnder(target).sort()).toEqual(expected);
    for (const name of expected.filter((entry) => !entry.endsWith('/'))) {
      expect(fs.readFileSync(path.join(target, name)).equals(fs.readFileSync(path.join(template.dir, name))), name).toBe(true);
    }
  });

  it('leaves the zeros at the end of a WAL segment as a hole', async () => {
    const template = await ensureTemplate();
    const target = path.join(dir, 'db');
    await copyTemplateFor(template, target).initialSyncFs();
    const segment = fs.readdirSync(path.join(target, 'pg_wal')).find((name) => /^[0-9A-F]{24}$/.test(name))!;
    const stat = fs.statSync(path.join(target, 'pg_wal', segment));
    expect(stat.size).toBe(16 * 1024 * 1024);
    expect(stat.blocks * 512).toBeLessThan(stat.size);
  });
});
