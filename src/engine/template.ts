/**
 * @module
 * A pre-initialised data directory, so that no server runs initdb (4-6 s in WebAssembly) at its first start:
 * `npm run build` creates it once beside the compiled code, and a new server copies it (well under a second).
 *
 * The package (`npm pack`) ships only the template's tarball, `template/pgdata.tar` (a few MB of the package's
 * gzip; the data directory beside it would double that): the first start after an install unpacks it once, under
 * the user's data folder (about 2 s). A copy of pgdev with neither (built without it) runs initdb once there
 * (about 15 s on a 2-core machine). {@link templateWork} says which, so that the server can say so before it waits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';
import { packageVersion } from '../package-version.js';
import { backendCatalogSql } from './backend-catalog.js';
import { cloneOrCopyFile, copyDirectory, type CopyFile } from './copy-directory.js';
import { stateRoot } from '../state/paths.js';
import { PACKAGE_ROOT } from '../package-root.js';

const BUNDLED = path.join(PACKAGE_ROOT, 'template');

/**
 * Settings baked into the template. Changing them needs a new TEMPLATE_VERSION, so templates are rebuilt.
 * Postgres' default 128 MB of shared buffers doubles a small development database's memory (the OS caches the files
 * anyway); a minimum of 2 MB of WAL keeps few recycled segments around (Postgres' default keeps 80 MB).
 */
const TEMPLATE_SETTINGS = { shared_buffers: '32MB', min_wal_size: '2MB' } as const;
/**
 * WAL segments of 1 MB instead of 16: a new database's WAL is one segment, and a 16 MB one made every database cost
 * 16 MB more (an in-memory one in RAM).
 */
const INITDB_ARGS = ['--wal-segsize=1'];
/**
 * The folders of `template1` (oid 1) and `template0` (oid 4) under `base/`: each engine serves only its own database
 * (oid 5; pgdev answers the names template0 and template1 itself), so the 15 MB they hold are dropped from the
 * template. Their `pg_database` rows stay, and `pg_database_size` says NULL for them.
 */
const UNUSED_DATABASE_FOLDERS = ['1', '4'];
const TEMPLATE_VERSION = 5;

export type Template = { readonly dir: string; readonly tarball: string };

/** Files beside the data directory: the template format's version, and the PGlite that wrote it. */
const VERSION_FILE = 'TEMPLATE_VERSION';
const PGLITE_VERSION_FILE = 'PGLITE_VERSION';

function templateAt(root: string): Template {
  return { dir: path.join(root, 'pgdata'), tarball: path.join(root, 'pgdata.tar') };
}

function isComplete(template: Template): boolean {
  return fs.existsSync(path.join(template.dir, 'PG_VERSION')) && isUnpackable(template);
}

/** Whether the format's version and PGlite's written beside the data are this pgdev's. */
function isCurrent(template: Template): boolean {
  const read = (file: string) => {
    try {
      return fs.readFileSync(path.join(path.dirname(template.dir), file), 'utf8');
    } catch {
      return undefined;
    }
  };
  return read(VERSION_FILE) === String(TEMPLATE_VERSION) && read(PGLITE_VERSION_FILE) === PGLITE_VERSION;
}

/** Whether `template` holds a tarball this pgdev can open: its format's version and its PGlite's are ours. */
function isUnpackable(template: Template): boolean {
  return fs.existsSync(template.tarball) && isCurrent(template);
}

/**
 * Makes a template in a staging folder with `fill` (which writes its data directory and tarball) and renames it
 * to `root`; safe against a concurrent maker.
 */
async function makeTemplate(root: string, fill: (staging: Template) => Promise<void>): Promise<Template> {
  const target = templateAt(root);
  if (isComplete(target)) return target;
  const staging = `${root}.${process.pid}.tmp`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    await fill(templateAt(staging));
    fs.writeFileSync(path.join(staging, VERSION_FILE), String(TEMPLATE_VERSION));
    fs.writeFileSync(path.join(staging, PGLITE_VERSION_FILE), PGLITE_VERSION);
    fs.mkdirSync(path.dirname(root), { recursive: true });
    fs.rmSync(root, { recursive: true, force: true }); // an outdated template
    fs.renameSync(staging, root);
  } catch (error) {
    fs.rmSync(staging, { recursive: true, force: true });
    // Another process finished first: use theirs.
    if (!isComplete(target)) throw error;
  }
  return target;
}

/**
 * Removes from a data directory that was shut down cleanly what no database made from it needs: the unused databases'
 * folders, and every WAL segment but the one holding the last checkpoint (a clean shutdown's: nothing before it is
 * replayed, and segments after it are only recycled ones, made again when needed).
 */
function pruneDataDir(dir: string): void {
  for (const oid of UNUSED_DATABASE_FOLDERS) fs.rmSync(path.join(dir, 'base', oid), { recursive: true, force: true });
  const control = fs.readFileSync(path.join(dir, 'global', 'pg_control'));
  // ControlFileData (src/include/catalog/pg_control.h): state at byte 16 (1: shut down), checkPoint at byte 32.
  if (control.readUInt32LE(16) !== 1) throw new Error('the template was not shut down cleanly');
  const checkpoint = control.readBigUInt64LE(32);
  const walDir = path.join(dir, 'pg_wal');
  const segments = fs.readdirSync(walDir).filter((name) => /^[0-9A-F]{24}$/.test(name));
  const segmentSize = BigInt(fs.statSync(path.join(walDir, segments[0]!)).size);
  const perLogId = 0x1_0000_0000n / segmentSize;
  const segment = checkpoint / segmentSize;
  const suffix = `${hex8(segment / perLogId)}${hex8(segment % perLogId)}`;
  const kept = segments.find((name) => name.endsWith(suffix));
  if (!kept) throw new Error(`the template's WAL segment ${suffix} is missing`);
  for (const name of segments) if (name !== kept) fs.rmSync(path.join(walDir, name));
  // Of the kept segment, Postgres reads the first page (its header) and the checkpoint record's pages; the rest is
  // older records or a recycled segment's stale bytes. Zeroed, they become holes in every copy (copySparse).
  const file = path.join(walDir, kept);
  const data = fs.readFileSync(file);
  const checkpointPage = Number(checkpoint % segmentSize) - (Number(checkpoint % segmentSize) % BLOCK);
  data.fill(0, BLOCK, checkpointPage);
  data.fill(0, Math.min(checkpointPage + 2 * BLOCK, data.length));
  fs.writeFileSync(file, data);
}

function hex8(value: bigint): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

/** Runs initdb once into `root`, writing the directory and its tarball. */
export function buildTemplate(root: string, options: { wasmModule?: WebAssembly.Module } = {}): Promise<Template> {
  return makeTemplate(root, async (built) => {
    const pg = await PGlite.create({ dataDir: built.dir, initDbStartParams: INITDB_ARGS, pgliteWasmModule: options.wasmModule });
    try {
      // Written to postgresql.auto.conf, so every database made from the template has them.
      for (const [name, value] of Object.entries(TEMPLATE_SETTINGS)) await pg.exec(`ALTER SYSTEM SET ${name} = '${value}'`);
      // Installing the per-connection backend functions takes about 0.6 s: done here once, not in every database.
      await pg.exec(backendCatalogSql());
    } finally {
      await pg.close();
    }
    pruneDataDir(built.dir);
    // The tarball (for in-memory databases) is made from the pruned folder, by PGlite, which alone knows its format.
    const reopened = await PGlite.create({ dataDir: built.dir, pgliteWasmModule: options.wasmModule });
    try {
      const tarball = await reopened.dumpDataDir('none');
      fs.writeFileSync(built.tarball, Buffer.from(await tarball.arrayBuffer()));
    } finally {
      await reopened.close();
    }
    pruneDataDir(built.dir);
  });
}

/**
 * Makes the data directory from a packaged tarball in `root`: PGlite opens the tarball into the folder and shuts
 * down cleanly, which leaves what {@link buildTemplate} leaves (the tarball itself was taken before its shutdown).
 */
function unpackTemplate(packaged: Template, root: string, options: { wasmModule?: WebAssembly.Module }): Promise<Template> {
  return makeTemplate(root, async (unpacked) => {
    fs.copyFileSync(packaged.tarball, unpacked.tarball);
    const loadDataDir = new Blob([fs.readFileSync(packaged.tarball)]);
    const pg = await PGlite.create({ dataDir: unpacked.dir, loadDataDir, pgliteWasmModule: options.wasmModule });
    await pg.close();
    pruneDataDir(unpacked.dir);
  });
}

/** The template made on this machine when pgdev came without a complete one: under the user's data folder. */
function localTemplateRoot(): string {
  return path.join(path.dirname(stateRoot()), `template-pglite-${PGLITE_VERSION}`);
}

/** What {@link ensureTemplate} has to do before the first database can open. */
export const TemplateWork = { None: 'none', Unpack: 'unpack', Build: 'build' } as const;
export type TemplateWork = (typeof TemplateWork)[keyof typeof TemplateWork];

export function templateWork(): TemplateWork {
  const bundled = templateAt(BUNDLED);
  if (isComplete(bundled) || isComplete(templateAt(localTemplateRoot()))) return TemplateWork.None;
  return isUnpackable(bundled) ? TemplateWork.Unpack : TemplateWork.Build;
}

/**
 * The template to start new databases from: the one built beside the code, else one made once under the user's
 * data folder, from the packaged tarball if there is one, else by initdb.
 */
export async function ensureTemplate(options: { wasmModule?: Promise<WebAssembly.Module> } = {}): Promise<Template> {
  const bundled = templateAt(BUNDLED);
  if (isComplete(bundled)) return bundled;
  const root = localTemplateRoot();
  if (isComplete(templateAt(root))) return templateAt(root);
  const wasmModule = await options.wasmModule;
  return isUnpackable(bundled) ? unpackTemplate(bundled, root, { wasmModule }) : buildTemplate(root, { wasmModule });
}

/**
 * A new data directory in `dataDir`, copied from the template while PGlite loads: the copy runs on libuv's thread
 * pool, and PGlite waits for it only when it first needs the files (after instantiating its WebAssembly, which takes
 * the main thread about as long). `PG_VERSION` is copied last, so a copy cut short is never taken for a database.
 */
export function copyTemplateFor(template: Template, dataDir: string): NodeFS {
  fs.rmSync(dataDir, { recursive: true, force: true });
  const copy: CopyFile = (from, to, relative) => (path.dirname(relative) === 'pg_wal' ? copySparse(from, to) : cloneOrCopyFile(from, to, relative));
  const copied = copyDirectory(template.dir, dataDir, { copy, last: 'PG_VERSION' });
  copied.catch(() => undefined); // awaited in initialSyncFs; not an unhandled rejection meanwhile
  return new (class extends NodeFS {
    override async initialSyncFs(): Promise<void> {
      await copied;
      await super.initialSyncFs();
    }
  })(dataDir);
}

const BLOCK = 8192;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/**
 * Copies a file but not its blocks of zeros, which become holes: the template's WAL segment (1 MB) is zeros but for
 * a few pages (pruneDataDir).
 */
async function copySparse(from: string, to: string): Promise<void> {
  const data = await fs.promises.readFile(from);
  const file = await fs.promises.open(to, 'w');
  try {
    for (let offset = 0; offset < data.length; offset += BLOCK) {
      const block = data.subarray(offset, offset + BLOCK);
      if (!block.equals(ZERO_BLOCK.subarray(0, block.length))) await file.write(block, 0, block.length, offset);
    }
    await file.truncate(data.length);
  } finally {
    await file.close();
  }
}

/** The PGlite version in use: a template is only valid for the PGlite that wrote it. */
export const PGLITE_VERSION: string = packageVersion('@electric-sql/pglite');

// Run as a script (the build), not when bundled into a program of its own (then import.meta.url is the bundle's).
const thisFile = fileURLToPath(import.meta.url);
if (process.argv[1] && thisFile === path.resolve(process.argv[1]) && path.basename(thisFile) === 'template.js') {
  const started = Date.now();
  await buildTemplate(BUNDLED);
  console.log(`pgdev: database template ready in ${BUNDLED} (${Date.now() - started} ms)`);
}
