/**
 * @module
 * The installed version of a dependency, read from its package.json without loading its code (some packages do not
 * export their package.json, and loading a large one only to read its version would slow start-up).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export function packageVersion(name: string): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve(name));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const manifest = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version: string };
      if (manifest.name === name) return manifest.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the package.json of ${name}`);
    dir = parent;
  }
}
