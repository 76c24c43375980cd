/**
 * @module
 * Copies a data directory (about a thousand files) with `copyFile` and `COPYFILE_FICLONE`: the file system clones each
 * file where it can (reflink on btrfs, xfs; APFS on macOS), and copies it where it cannot. Used for new databases from
 * the template (template.ts) and for `CREATE DATABASE ... TEMPLATE` clones. Failures are Node's errors, with their
 * errno `code` and `path`, for callers to explain (never a command line).
 */
import fs from 'node:fs';
import path from 'node:path';

/** How one file is copied (its paths, and its path inside the directory); the default clones or copies it. */
export type CopyFile = (from: string, to: string, relative: string) => Promise<void>;

export const cloneOrCopyFile: CopyFile = (from, to) => fs.promises.copyFile(from, to, fs.constants.COPYFILE_FICLONE);

/**
 * Makes `target`'s folders as in `source` (synchronously: a few dozen) and lists its files (relative paths); throws
 * ENOTSUP with the entry's path for anything that is not a file or folder (a data directory has nothing else).
 */
export function mirrorFolders(source: string, target: string): string[] {
  const files: string[] = [];
  const walk = (relative: string) => {
    fs.mkdirSync(path.join(target, relative), { recursive: relative === '' });
    for (const entry of fs.readdirSync(path.join(source, relative), { withFileTypes: true })) {
      const name = path.join(relative, entry.name);
      if (entry.isDirectory()) walk(name);
      else if (entry.isFile()) files.push(name);
      else throw Object.assign(new Error(`not a regular file or folder: ${path.join(source, name)}`), { code: 'ENOTSUP', path: path.join(source, name) });
    }
  };
  walk('');
  return files;
}

/** Copies the directory `source` to `target` (which must not exist); `last` is copied after every other file. */
export async function copyDirectory(source: string, target: string, options: { copy?: CopyFile; last?: string } = {}): Promise<void> {
  const copy = options.copy ?? cloneOrCopyFile;
  const files = mirrorFolders(source, target);
  const one = (name: string) => copy(path.join(source, name), path.join(target, name), name);
  await Promise.all(files.filter((name) => name !== options.last).map(one));
  if (options.last && files.includes(options.last)) await one(options.last);
}
