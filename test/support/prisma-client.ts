/**
 * @module
 * Prisma Client generated for a test, from its own schema, into a temporary folder (removed by the test). The CLI is
 * called by its path: node_modules/.bin/prisma may be the 7.2 CLI that http-prisma.test.ts installs beside it, and
 * the schema engine is disabled (generate does not need it, and it cannot be downloaded here).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** Generates the client of `schema` (its generator writing to `./generated`); returns the folder. */
export async function generatePrismaClient(schema: string, prefix: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // A node_modules link lets the generated client resolve @prisma/client.
  fs.symlinkSync(path.resolve('node_modules'), path.join(dir, 'node_modules'), 'dir');
  fs.writeFileSync(path.join(dir, 'schema.prisma'), schema);
  await promisify(execFile)(process.execPath, [path.resolve('node_modules/prisma/build/index.js'), 'generate', '--schema', 'schema.prisma'], {
    cwd: dir,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
  return dir;
}

/** The generated client's `PrismaClient` class, typed by the caller (its types are not known at compile time). */
export async function loadPrismaClient<T>(dir: string): Promise<new (options: object) => T> {
  return ((await import(path.join(dir, 'generated', 'client.ts'))) as { PrismaClient: new (options: object) => T }).PrismaClient;
}
