/**
 * @module
 * Where pgdev is installed (the folder of its package.json) and its version, found by walking up from this file:
 * the same answer whether it runs from `src/` under vitest, from `dist/`, or bundled into `dist/cli` or
 * `dist/daemon/host`, at different depths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): { root: string; version: string } {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'pgdev') return { root: dir, version: manifest.version ?? '0.0.0' };
    }
    if (path.dirname(dir) === dir) throw new Error(`pgdev's package.json was not found above ${from}`);
  }
}

const found = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));

/** The folder holding pgdev's package.json, `bin/`, `dist/` and `template/`. */
export const PACKAGE_ROOT: string = found.root;
/** The version of pgdev itself. */
export const PGDEV_VERSION: string = found.version;
