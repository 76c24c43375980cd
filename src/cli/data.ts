/**
 * @module
 * `pgdev dump` and `pgdev load`: plain SQL out of a server's database and back in, on a running or stopped server.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { dumpServer, loadServer } from '../daemon/client/data.js';
import { readAll } from '../daemon/client/request.js';
import { serverNames } from '../daemon/client/registry.js';
import { diskFullError, isDiskFull } from '../engine/load.js';
import { pgdevCommand } from '../command-name.js';
import { ErrorCode, PgdevError } from '../errors.js';
import { formatSize } from './output.js';

export type DumpCliOptions = { database?: string; file?: string; schemaOnly?: boolean; dataOnly?: boolean; targetVersion?: number };

export async function dump(name: string, options: DumpCliOptions): Promise<void> {
  const started = performance.now();
  const { body, heldMs } = await dumpServer(name, options);
  if (!options.file) {
    await pipeline(body, process.stdout, { end: false }).catch((error: unknown) => {
      if (isErrno(error) && error.code === 'EPIPE') return; // the reader had enough (`pgdev dump | head`)
      throw isDiskFull(error) ? diskFullError('writing the dump to standard output', error) : error;
    });
    return;
  }
  const file = options.file;
  try {
    await pipeline(body, fs.createWriteStream(file));
  } catch (error) {
    // Never leave half a dump that looks whole; a device (/dev/full, a pipe) is not ours to remove.
    if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) fs.rmSync(file, { force: true });
    if (isDiskFull(error)) throw diskFullError(`writing ${file}`, error);
    if (isErrno(error)) throw new PgdevError(ErrorCode.DumpFailed, `cannot write ${file}: ${error.message}`, { cause: error });
    throw error;
  }
  const size = fs.statSync(file).size;
  const held = heldMs === undefined ? '' : `; the database was held for ${heldMs} ms`;
  process.stderr.write(`pgdev: dumped ${options.database ?? 'postgres'} of "${name}" to ${file} (${formatSize(size)}) in ${Math.round(performance.now() - started)} ms${held}\n`);
}

export type LoadCliOptions = { database?: string };

/** `pgdev load [name] file`: one argument is the file (of the server `default`), two are the name and the file. */
export async function load(args: string[], options: LoadCliOptions): Promise<void> {
  if (args.length > 2) throw new PgdevError(ErrorCode.LoadFailed, `give a server name and one file: \`${pgdevCommand()} load [name] file.sql\` (or - for standard input)`);
  const [name, file] = args.length === 2 ? [args[0]!, args[1]!] : ['default', args[0]!];
  const source = file === '-' ? 'standard input' : file;
  let script: Buffer;
  try {
    script = file === '-' ? await readAll(process.stdin) : fs.readFileSync(file);
  } catch (error) {
    if (isErrno(error) && error.code === 'ENOENT') {
      // `pgdev load devtest`: the name of a server, taken as the file because it is alone.
      if (args.length === 1 && serverNames().includes(file)) {
        throw new PgdevError(ErrorCode.NotFound, `"${file}" is a server, not a file: give the SQL file to load into it, \`${pgdevCommand()} load ${file} file.sql\` (or - for standard input)`);
      }
      throw new PgdevError(ErrorCode.NotFound, `no file ${file}; give the path of a SQL file, or - for standard input`);
    }
    if (isErrno(error) && error.code === 'EISDIR') throw new PgdevError(ErrorCode.NotSql, `${file} is a directory, not a SQL script (a directory-format dump? turn it into SQL with \`pg_restore -f dump.sql ${file}\`)`);
    throw error;
  }
  const started = performance.now();
  const database = options.database ?? 'postgres';
  const result = await loadServer(name, script, {
    database: options.database,
    source,
    onStarted: () => process.stderr.write(`pgdev: loading ${source} into ${database} of "${name}"...\n`),
  });
  for (const note of result.notes) process.stderr.write(`pgdev: note: ${note}\n`);
  const rows = result.copiedRows ? `, ${result.copiedRows} row${result.copiedRows === 1 ? '' : 's'} copied` : '';
  const statements = `${result.statements} statement${result.statements === 1 ? '' : 's'}`;
  process.stdout.write(`loaded ${source} into ${database} of "${name}": ${statements}${rows}, in ${Math.round(performance.now() - started)} ms (the database was held for ${result.heldMs} ms)\n`);
}

function isErrno(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string';
}

