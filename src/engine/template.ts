/**
 * @module
 * A pre-initialised data directory, so that no server runs initdb (4-6 s in WebAssembly) at its first start:
 * `npm run build` creates it once beside the compiled code, and a new server copies it (well under a second).
 *
 * The package (`npm pack`) ships only the template's tarball, `template/pgdata.tar` (4.6 MB of the package's
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
import { stateRoot } from '../state/paths.js';

const BUNDLED = fileURLToPath(new URL('../../template', import.meta.url));

/** Settings baked into the template. Changing them needs a new TEMPLATE_VERSION, so templates are rebuilt. */
const TEMPLATE_SETTINGS = { shared_buffers: '32MB' } as const;
const TEMPLATE_VERSION = 4;

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

/** Runs initdb once into `root`, writing the directory and its tarball. */
export function buildTemplate(root: string, options: { wasmModule?: WebAssembly.Module } = {}): Promise<Template> {
  return makeTemplate(root, async (built) => {
    const pg = await PGlite.create({ dataDir: built.dir, pgliteWasmModule: options.wasmModule });
    try {
      // Postgres' default 128 MB of shared buffers doubles a small development database's memory; the OS caches
      // the files anyway. Written to postgresql.auto.conf, so every database made from the template has it.
      for (const [name, value] of Object.entries(TEMPLATE_SETTINGS)) await pg.exec(`ALTER SYSTEM SET ${name} = '${value}'`);
      // Installing the per-connection backend functions takes about 0.6 s: done here once, not in every database.
      await pg.exec(backendCatalogSql());
      const tarball = await pg.dumpDataDir('none');
      fs.writeFileSync(built.tarball, Buffer.from(await tarball.arrayBuffer()));
    } finally {
      await pg.close();
    }
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
  const files: string[] = [];
  const walk = (relative: string) => {
    fs.mkdirSync(path.join(dataDir, relative), { recursive: relative === '' });
    for (const entry of fs.readdirSync(path.join(template.dir, relative), { withFileTypes: true })) {
      const name = path.join(relative, entry.name);
      if (entry.isDirectory()) walk(name);
      else if (name !== 'PG_VERSION') files.push(name);
    }
  };
  walk('');
  const copy = (name: string) =>
    path.dirname(name) === 'pg_wal'
      ? copyWithZeroTail(path.join(template.dir, name), path.join(dataDir, name))
      : fs.promises.copyFile(path.join(template.dir, name), path.join(dataDir, name));
  const copied = Promise.all(files.map(copy)).then(() => copy('PG_VERSION'));
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
 * Copies a file but not its trailing zeros, which become a hole of the same length: a WAL segment is 16 MB, and
 * the template's is mostly zeros after the records initdb wrote: about 9 MB fewer bytes to write for a new server.
 */
async function copyWithZeroTail(from: string, to: string): Promise<void> {
  const data = await fs.promises.readFile(from);
  let end = data.length;
  while (end >= BLOCK && data.subarray(end - BLOCK, end).equals(ZERO_BLOCK)) end -= BLOCK;
  const file = await fs.promises.open(to, 'w');
  try {
    if (end > 0) await file.write(data, 0, end, 0);
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
