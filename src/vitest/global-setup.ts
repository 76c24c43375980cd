/**
 * @module
 * The global setup `pgdevDatabases()` adds (vitest's main process, once per run): finds or starts the server, builds
 * the template database from the migrations and seed, serves the workers' clone and restore requests on a loopback
 * port, and at the end drops every database it made and stops the server it started.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { getServer, startServer, type PgdevServer } from '../index.js';
import type { PgdevDatabasesOptions } from './index.js';

/** The snapshot a worker database gets at its file's first `restore()`, which later ones go back to. */
const SNAPSHOT = 'pgdev-vitest';
const PREFIX = /^[a-z_][a-z0-9_]{0,40}$/;

function fail(message: string): never {
  throw new Error(`pgdev/vitest: ${message}`);
}

function urlOf(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The SQL files of a migrations folder in order: its `*.sql`, or each subfolder's `migration.sql` (Prisma's layout). */
export function migrationFiles(folder: string): string[] {
  if (!fs.existsSync(folder)) fail(`the migrations folder ${folder} does not exist; fix the migrations option`);
  return fs
    .readdirSync(folder, { withFileTypes: true })
    .map((entry) => (entry.isDirectory() ? path.join(entry.name, 'migration.sql') : entry.name))
    .filter((name) => name.endsWith('.sql') && fs.existsSync(path.join(folder, name)))
    .sort()
    .map((name) => path.join(folder, name));
}

/** Runs `command` in a shell from `cwd` with DATABASE_URL set; its output goes to this process's. */
function runCommand(command: string, cwd: string, databaseUrl: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, { cwd, shell: true, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DATABASE_URL: databaseUrl } });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`pgdev/vitest: \`${command}\` failed (${signal ?? `exit status ${code}`}); its output is above`));
    });
  });
}

/** The server to use: a postgres:// URL, a running pgdev server's name, DATABASE_URL, or a private one. */
async function findServer(given: string | undefined): Promise<{ url: string; own?: PgdevServer; label: string }> {
  if (given && /^postgres(ql)?:\/\//.test(given)) return { url: given, label: `the server at ${new URL(given).host}` };
  if (given) {
    const running = getServer(given);
    if (!running) fail(`no pgdev server "${given}" is running; start it with \`npx pgdev -d -n ${given}\`, or leave out the server option`);
    return { url: running.databaseUrl, label: `pgdev server "${given}"` };
  }
  const own = await startServer({ name: `vitest-${process.pid}`, persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0 });
  return { url: own.databaseUrl, own, label: `a private pgdev server (${own.name})` };
}

export default async function setup(project: TestProject) {
  const options: PgdevDatabasesOptions = project.getProvidedContext().pgdevDatabasesOptions ?? {};
  const root = project.config.root;
  const prefix = options.prefix ?? 'pgdev_vitest';
  if (!PREFIX.test(prefix)) fail(`prefix "${prefix}" is not a plain lower-case SQL name (a-z, 0-9, _; at most 41 characters)`);
  const template = `${prefix}_template`;
  const workerName = new RegExp(`^${prefix}_\\d+$`);
  // Mistakes in the options are reported before any server is started.
  const sqlFiles = options.migrations ? migrationFiles(path.resolve(root, options.migrations)) : [];
  const seed = options.seed ? path.resolve(root, options.seed) : undefined;
  if (seed && !fs.existsSync(seed)) fail(`the seed file ${seed} does not exist; fix the seed option`);
  const envUrl = process.env.DATABASE_URL;
  const started = performance.now();
  const server = await findServer(options.server ?? (envUrl && /^postgres(ql)?:\/\//.test(envUrl) ? envUrl : undefined));

  /** Drops the template and every worker database (of this run or a crashed one). */
  const dropAll = () =>
    withClient(server.url, async (admin) => {
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database');
      const ours = rows.map((row) => row.datname).filter((name) => workerName.test(name) || name === template);
      // WITH (FORCE) (Postgres 13+): a worker that crashed may have left a connection open.
      for (const name of ours) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      return ours.length;
    });

  let endpoint: http.Server | undefined;
  const stop = async () => {
    endpoint?.close();
    try {
      if (!server.own) await dropAll(); // a private server takes its databases with it
    } finally {
      await server.own?.close();
    }
  };

  try {
    await dropAll();
    await withClient(server.url, (admin) => admin.query(`CREATE DATABASE "${template}" TEMPLATE template0`));
    const templateUrl = urlOf(server.url, template);
    const runSql = (file: string) =>
      withClient(templateUrl, (client) => client.query(fs.readFileSync(file, 'utf8'))).catch((error: unknown) => {
        fail(`${path.relative(root, file)}: ${error instanceof Error ? error.message : String(error)}; nothing of the run was kept`);
      });
    for (const file of sqlFiles) await runSql(file);
    if (options.migrateCommand) await runCommand(options.migrateCommand, root, templateUrl);
    if (seed) await runSql(seed);
    if (options.seedCommand) await runCommand(options.seedCommand, root, templateUrl);
    const steps = [options.migrations && `${sqlFiles.length} migration file(s)`, options.migrateCommand, options.seed, options.seedCommand].filter(Boolean).join(', ');
    console.log(`pgdev/vitest: template ${template} built on ${server.label} in ${Math.round(performance.now() - started)} ms (${steps})`);

    // A snapshot costs a copy of the whole database (seconds on a busy machine): taken on a file's first restore().
    const snapshotted = new Set<string>();
    const clone = async (database: string) => {
      snapshotted.delete(database);
      if (server.own) {
        await server.own.dropDatabase(database, { force: true, ifExists: true });
        await server.own.createDatabase(database, { template });
        return;
      }
      await withClient(server.url, async (admin) => {
        await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
        await admin.query(`CREATE DATABASE "${database}" TEMPLATE "${template}"`);
      });
    };
    const restore = async (database: string) => {
      if (!server.own) return clone(database);
      if (snapshotted.has(database)) return server.own.restore(SNAPSHOT, database);
      await server.own.snapshot(SNAPSHOT, database);
      snapshotted.add(database);
    };
    const token = randomBytes(24).toString('base64url');
    // One request at a time: Postgres refuses to clone a template while another clone of it is starting.
    let queue: Promise<unknown> = Promise.resolve();
    endpoint = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        const action = request.url === '/clone' ? clone : request.url === '/restore' ? restore : undefined;
        const database = (() => {
          try {
            return String(JSON.parse(body).database);
          } catch {
            return '';
          }
        })();
        if (request.headers.authorization !== `Bearer ${token}` || !action || !workerName.test(database)) {
          response.writeHead(400).end('not a request of a pgdev/vitest worker');
          return;
        }
        const done = queue.then(() => action(database));
        queue = done.catch(() => undefined);
        done.then(
          () => response.writeHead(204).end(),
          (error: unknown) => response.writeHead(500).end(error instanceof Error ? error.message : String(error)),
        );
      });
    });
    await new Promise<void>((resolve) => endpoint!.listen(0, '127.0.0.1', resolve));
    const { port } = endpoint.address() as AddressInfo;
    project.provide('pgdevWorkerContext', { serverUrl: server.url, prefix, endpoint: `http://127.0.0.1:${port}#${token}` });
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return stop;
}
