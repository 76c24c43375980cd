/**
 * @module
 * `pgdev ls`, `start`, `stop`, `rm` and `url`: managing servers by name or glob from any terminal.
 */
import fs from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { settledRecord, spawnDetached, stopProcess } from '../daemon/client/detach.js';
import { cutShortSince, describeServer, notRunning, readRunning, resolveNames, serverNames, type ServerListing } from '../daemon/client/registry.js';
import { DEFAULT_DATABASE, isDefaultDatabaseName } from '../state/database-names.js';
import { readJson, requestServer } from '../daemon/client/request.js';
import { ErrorCode, PgdevError } from '../errors.js';
import { ensureCertificate } from '../state/certificate.js';
import type { ServerRecord } from '../state/files.js';
import { serverPaths, validateName } from '../state/paths.js';
import { formatSize, portRange, table, urlLines, withDatabase, withVerifiedTls } from './output.js';
import { pgdevCommand } from '../command-name.js';

export async function ls(options: { json?: boolean }): Promise<void> {
  const servers = await Promise.all(serverNames().map((name) => describeServer(name)));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(servers, null, 2)}\n`);
    return;
  }
  if (servers.length === 0) {
    process.stdout.write(`no servers yet; start one with \`${pgdevCommand()}\` (or \`${pgdevCommand()} -n NAME\`)\n`);
    return;
  }
  const rows = servers.map((server) => [
    server.name,
    server.status,
    server.pid === null ? '-' : String(server.pid),
    server.ports ? `${server.ports.http}, ${server.ports.database}, ${server.ports.shadowDatabase}` : '-',
    String(server.databases.length),
    formatSize(server.sizeBytes),
    server.lastStart ?? '-',
  ]);
  process.stdout.write(table(['NAME', 'STATUS', 'PID', 'PORTS (http, db, shadow)', 'DATABASES', 'SIZE', 'LAST START'], rows));
}


export async function start(patterns: string[], options: { debug?: boolean; idleClose?: number }): Promise<void> {
  for (const name of resolveNames(patterns, { suggestCreate: true })) {
    const running = readRunning(name);
    if (running) {
      process.stdout.write(`${name} is already running on ${portRange(running.ports)} (pid ${running.pid})\n`);
      continue;
    }
    const args = [...(options.idleClose === undefined ? [] : ['--idle-close', String(options.idleClose)]), ...(options.debug ? ['--debug'] : [])];
    const record = await spawnDetached(name, args);
    process.stdout.write(`${name} started on ${portRange(record.ports)} (pid ${record.pid})\n`);
  }
}

export async function stop(patterns: string[], options: { timeout?: number } = {}): Promise<void> {
  for (const name of resolveNames(patterns)) {
    const running = await settledRecord(name);
    if (!running) {
      process.stdout.write(`${name} is not running\n`);
      continue;
    }
    const stopping = new Date();
    const forced = await stopProcess(running, options.timeout === undefined ? undefined : options.timeout * 1000);
    for (const database of cutShortSince(name, stopping)) {
      process.stderr.write(`pgdev: warning: ${name}: database "${database}" was running a statement, stopped in the middle of it; its transaction is rolled back\n`);
    }
    if (forced) process.stderr.write(`pgdev: warning: ${name} did not stop in time and was killed; its last transactions may be lost\n`);
    process.stdout.write(`${name} stopped\n`);
  }
}

export async function rm(patterns: string[], options: { force?: boolean; yes?: boolean }): Promise<void> {
  const names = resolveNames(patterns);
  const listings = await Promise.all(names.map((name) => describeServer(name)));
  const running = listings.filter((listing) => listing.status === 'running');
  if (running.length && !options.force) {
    const list = running.map((listing) => listing.name).join(', ');
    throw new PgdevError(ErrorCode.Running, `refusing to remove running server${running.length > 1 ? 's' : ''} ${list}; stop ${running.length > 1 ? 'them' : 'it'} first or pass --force`);
  }
  if (!options.yes) await confirm(listings);
  for (const listing of listings) {
    const record = await settledRecord(listing.name);
    if (record) await stopProcess(record);
    fs.rmSync(serverPaths(listing.name).root, { recursive: true, force: true });
    process.stdout.write(`${listing.name} removed\n`);
  }
}

async function confirm(listings: ServerListing[]): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new PgdevError(ErrorCode.Confirm, 'refusing to delete data without confirmation; pass -y to confirm (no terminal to ask)');
  }
  const list = listings.map((listing) => `  ${listing.name} (${formatSize(listing.sizeBytes)}${listing.status === 'running' ? ', running: will be stopped' : ''})`).join('\n');
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await prompt.question(`This deletes the data of:\n${list}\nContinue? [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new PgdevError(ErrorCode.Confirm, 'nothing removed');
  } finally {
    prompt.close();
  }
}

export type UrlOptions = { shadow?: boolean; http?: boolean; json?: boolean; tls?: boolean; database?: string };

export async function url(name: string, options: UrlOptions): Promise<void> {
  validateName(name);
  const running = readRunning(name);
  if (!running) {
    const exists = serverNames().includes(name);
    throw exists ? notRunning(name) : new PgdevError(ErrorCode.NotRunning, `no server named "${name}"; create it with \`${pgdevCommand()} -n ${name}\``);
  }
  if (options.json) return void process.stdout.write(`${JSON.stringify({ name, ...running.urls }, null, 2)}\n`);
  if (options.http) return void process.stdout.write(`${running.urls.prismaPostgresUrl}\n`);
  let chosen = options.shadow ? running.urls.shadowDatabaseUrl : running.urls.databaseUrl;
  if (options.database !== undefined) {
    // The shadow port's databases are scratch space, made and dropped by migrate: any name is taken as it is.
    if (!options.shadow) await checkDatabase(running, options.database);
    chosen = withDatabase(chosen, options.database);
  }
  if (options.tls) {
    const paths = serverPaths(name);
    await ensureCertificate(paths.tlsKeyFile, paths.tlsCertFile);
    chosen = withVerifiedTls(chosen, paths.tlsCertFile);
  }
  process.stdout.write(`${chosen}\n`);
}

/** Refuses a database name the running server's main port does not have, listing those it has. */
async function checkDatabase(running: ServerRecord, database: string): Promise<void> {
  if (isDefaultDatabaseName(database)) return;
  const response = await requestServer(running, { method: 'GET', path: '/databases', failure: ErrorCode.NotRunning });
  const names = (await readJson<{ databases: Array<{ name: string }> }>(response)).databases.map((listed) => listed.name);
  if (names.includes(database)) return;
  const others = names.filter((other) => other !== DEFAULT_DATABASE);
  throw new PgdevError(
    ErrorCode.UnknownDatabase,
    `server "${running.name}" has no database "${database}" (it has postgres, also called template1${others.map((other) => `, ${other}`).join('')}); create it first: CREATE DATABASE ${database}`,
  );
}

export { urlLines };
