/**
 * @module
 * What the CLI prints: the URLs exactly as `prisma dev` does (so `.env` files carry over), and errors as one line.
 */
import { pgdevCommand } from '../command-name.js';
import { isPgdevError } from '../errors.js';
import type { Ports, ServerUrls } from '../state/files.js';

/**
 * The URLs as `.env` lines. The prisma+postgres:// one goes in DATABASE_URL too when Prisma Client is given it as
 * `accelerateUrl` (as Prisma's docs for local Prisma Postgres name it): it is printed as a comment, so that pasting
 * all three lines into `.env` keeps the postgres:// URL that `prisma migrate dev` and every other client need. The
 * last comment says how Node clients get a TLS URL that works (`pgdev url --tls`).
 */
export function urlLines(urls: ServerUrls, name: string): string {
  const server = name === 'default' ? '' : ` ${name}`;
  return [
    `DATABASE_URL=${urls.databaseUrl}`,
    `SHADOW_DATABASE_URL=${urls.shadowDatabaseUrl}`,
    `# for Prisma Client's accelerateUrl (HTTP) instead: ${httpUrlLine(urls)}`,
    `# TLS from Node (pg, Prisma's adapter-pg), where sslmode=require fails on the self-signed certificate: ${pgdevCommand()} url${server} --tls`,
  ].join('\n');
}

/**
 * The URL of another database of the same port (the printed URLs name `template1`, the default database).
 */
export function withDatabase(url: string, database: string): string {
  return url.replace('/template1?', `/${encodeURIComponent(database)}?`);
}

/**
 * A URL that connects over TLS and verifies the server's self-signed certificate against the copy in its state
 * folder. node-postgres (and so Prisma's adapter-pg) takes `sslmode=require` as `verify-full`, which a self-signed
 * certificate fails ("self-signed certificate"); libpq clients take this URL too.
 */
export function withVerifiedTls(url: string, certFile: string): string {
  const file = encodeURIComponent(certFile).replaceAll('%2F', '/');
  return url.replace('sslmode=disable', `sslmode=verify-full&sslrootcert=${file}`);
}

export function httpUrlLine(urls: ServerUrls): string {
  return `DATABASE_URL=${urls.prismaPostgresUrl}`;
}

export function portRange(ports: Ports): string {
  const sorted = [ports.http, ports.database, ports.shadowDatabase];
  const consecutive = sorted[1] === sorted[0]! + 1 && sorted[2] === sorted[1]! + 1;
  return consecutive ? `ports ${sorted[0]}-${sorted[2]}` : `ports ${sorted.join(', ')}`;
}

export function formatSize(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** Prints an error as one line (a stack only with --debug) and sets a failing exit code. */
export function reportError(error: unknown, debug: boolean): void {
  if (isPgdevError(error)) {
    process.stderr.write(`pgdev: ${error.message}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`pgdev: unexpected error: ${message}${debug ? '' : ' (run with --debug for details)'}\n`);
  }
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
}
