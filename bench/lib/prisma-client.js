/**
 * Prisma Client 7 `findUnique` by id, through the generated client of examples/prisma (generated there if missing,
 * as examples/prisma/run.mjs does): over TCP with @prisma/adapter-pg, and over HTTP with `accelerateUrl`
 * (a `prisma+postgres://` URL) where the server has one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { runCommand } from './proc.js';
import { Hung } from './tcp.js';

export async function loadPrismaClient(repo) {
  const example = path.join(repo, 'examples', 'prisma');
  const index = path.join(example, 'generated', 'client', 'index.js');
  const cli = path.join(repo, 'node_modules', 'prisma', 'build', 'index.js');
  if (!fs.existsSync(index)) {
    if (!fs.existsSync(cli)) return { reason: 'no generated client in examples/prisma and no prisma CLI to generate it' };
    const r = await runCommand(process.execPath, [cli, 'generate', '--schema', path.join(example, 'schema.prisma')], {
      env: { PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false' },
      timeoutMs: 180_000,
    });
    if (r.code !== 0 || !fs.existsSync(index)) return { reason: `prisma generate failed: ${r.stderr.trim().split('\n').slice(-1)[0]}` };
  }
  try {
    const mod = await import(pathToFileURL(index).href);
    const { PrismaClient } = mod.default ?? mod;
    const { PrismaPg } = await import('@prisma/adapter-pg');
    const migration = fs.readFileSync(path.join(example, 'migrations', '0001_init.sql'), 'utf8');
    return { PrismaClient, PrismaPg, migration };
  } catch (error) {
    return { reason: `cannot load the generated client: ${error.message}` };
  }
}

export const USERS = 100;

/** The example's tables, fresh, with USERS users. */
export async function prepareSchema(url, migration) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('DROP TABLE IF EXISTS posts, users CASCADE');
    await client.query(migration);
    await client.query(`INSERT INTO users (email, name) SELECT 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, ${USERS}) g`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `n` sequential findUnique by id after `warmup` untimed ones: latencies in ms. Always disconnects. */
export async function findUniqueLatencies(makeClient, { n, warmup = 100, timeoutMs }) {
  const prisma = makeClient();
  let timer;
  try {
    return await Promise.race([
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Hung(`Prisma Client findUnique x${n}`, timeoutMs)), timeoutMs);
      }),
      (async () => {
        const lat = [];
        for (let i = 0; i < warmup + n; i++) {
          const id = 1 + (i % USERS);
          const t = performance.now();
          const user = await prisma.user.findUnique({ where: { id } });
          if (i >= warmup) lat.push(performance.now() - t);
          if (user?.id !== id) throw new Error(`findUnique(${id}) returned ${JSON.stringify(user)}`);
        }
        return { lat };
      })(),
    ]);
  } finally {
    clearTimeout(timer);
    await Promise.race([prisma.$disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
  }
}
