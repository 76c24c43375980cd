/**
 * @module
 * PGlite's WebAssembly, compiled once per process and shared by every engine (main, shadow, after a reset). It has
 * no other imports, so that the CLI can begin compiling (on V8's background threads) before it loads the rest.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

let pgliteModule: Promise<WebAssembly.Module> | undefined;

export function compiledPglite(): Promise<WebAssembly.Module> {
  pgliteModule ??= fs.promises
    .readFile(fileURLToPath(new URL('pglite.wasm', pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')))))
    .then((bytes) => WebAssembly.compile(bytes));
  return pgliteModule;
}
