/**
 * Prisma Client 7 against pgdev, for real: clients generated from a schema in the test setup talk to the HTTP
 * endpoint through `accelerateUrl` (a `prisma+postgres://` URL), and the same operations run over the TCP URL
 * with `@prisma/adapter-pg` must give the same results. Two Prisma versions run against the same server in the
 * same run: the latest (served by the bundled executor) and 7.2.0 (the devDependencies `@prisma/client-7-2` and
 * `prisma-7-2`), whose executor pgdev fetches from the npm registry into a temporary cache on its first request:
 * the one registry download of the run.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRequests } from '../src/engine/requests.js';
import { EngineSession } from '../src/engine/engine.js';
import { encodeApiKey } from '../src/http/api-key.js';
import { startServer } from '../src/index.js';
import { createHttpApp } from '../src/http/app.js';
import type { HttpContext } from '../src/http/context.js';
import { shutdownPrismaExecutor, unservableMessage } from '../src/http/prisma.js';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';

const repoRoot = path.resolve(import.meta.dirname, '..');

const SCHEMA = `
generator client {
  provider = "prisma-client-js"
  output   = "./generated"
}

datasource db {
  provider = "postgresql"
}

model User {
  id        Int      @id @default(autoincrement())
  email     String   @unique
  name      String?
  createdAt DateTime @default(now())
  posts     Post[]
}

model Post {
  id        Int     @id @default(autoincrement())
  title     String
  published Boolean @default(false)
  views     BigInt  @default(0)
  author    User    @relation(fields: [authorId], references: [id], onDelete: Cascade)
  authorId  Int
}
`;

const TABLES = `
CREATE TABLE "User" (
  "id" SERIAL PRIMARY KEY,
  "email" TEXT NOT NULL,
  "name" TEXT,
  "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
CREATE TABLE "Post" (
  "id" SERIAL PRIMARY KEY,
  "title" TEXT NOT NULL,
  "published" BOOLEAN NOT NULL DEFAULT false,
  "views" BIGINT NOT NULL DEFAULT 0,
  "authorId" INTEGER NOT NULL REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
`;

// The generated client's types are not known at compile time here.
type Client = any; // eslint-disable-line @typescript-eslint/no-explicit-any
type ClientConstructor = new (options: Record<string, unknown>) => Client;

type GeneratedClient = {
  PrismaClient: ClientConstructor;
  Prisma: { PrismaClientKnownRequestError: new (...args: never[]) => Error };
};

let gateway: TestGateway;
let http: ServerType;
let context: HttpContext;
let workDir: string;
let cacheHome: string;
const savedCacheHome = process.env.XDG_CACHE_HOME;
let PrismaClient: ClientConstructor;
let Prisma: GeneratedClient['Prisma'];
let prisma72: GeneratedClient;
let accelerateUrl: string;
const secret = 'prisma-test-secret-0123456789';

/**
 * Generates the client of SCHEMA with the `prisma` CLI at `cli` in `dir`, whose node_modules the generated code
 * requires its runtime from (`links`: name -> folder in this repository's node_modules, or the whole node_modules).
 */
async function generateClient(dir: string, cli: string, links: Record<string, string> | 'all'): Promise<GeneratedClient> {
  fs.mkdirSync(dir, { recursive: true });
  if (links === 'all') fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  else {
    for (const [name, target] of Object.entries(links)) {
      fs.mkdirSync(path.dirname(path.join(dir, 'node_modules', name)), { recursive: true });
      fs.symlinkSync(path.join(repoRoot, 'node_modules', target), path.join(dir, 'node_modules', name), 'dir');
    }
  }
  fs.writeFileSync(path.join(dir, 'schema.prisma'), SCHEMA);
  await promisify(execFile)(process.execPath, [path.join(repoRoot, 'node_modules', cli), 'generate', '--schema', 'schema.prisma'], {
    cwd: dir,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  });
  return createRequire(path.join(dir, 'index.js'))('./generated') as GeneratedClient;
}

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-prisma-'));
  cacheHome = path.join(workDir, 'cache');
  process.env.XDG_CACHE_HOME = cacheHome;
  const generating = Promise.all([
    generateClient(path.join(workDir, 'latest'), 'prisma/build/index.js', 'all'),
    generateClient(path.join(workDir, '7.2'), 'prisma-7-2/build/index.js', {
      '@prisma/client': '@prisma/client-7-2',
      '@prisma/client-runtime-utils': '@prisma/client-7-2/node_modules/@prisma/client-runtime-utils',
    }),
  ]);

  gateway = await startTestGateway({ label: 'main' });
  const databaseUrl = gateway.url;
  const shadowDatabaseUrl = gateway.url;
  const apiKey = encodeApiKey({ databaseUrl, name: 'prisma-test', shadowDatabaseUrl, secret });
  context = {
    name: 'prisma-test',
    version: '0.0.0-test',
    secret,
    urls: { databaseUrl, shadowDatabaseUrl, prismaPostgresUrl: '', httpUrl: '' },
    database: async () => engineRequests(() => gateway.engine),
    isReady: () => true,
  };
  const app = createHttpApp(context);
  http = await new Promise<ServerType>((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(server));
  });
  const port = (http.address() as AddressInfo).port;
  accelerateUrl = `prisma+postgres://localhost:${port}/?api_key=${apiKey}`;
  Object.assign(context, { urls: { ...context.urls, prismaPostgresUrl: accelerateUrl, httpUrl: `http://localhost:${port}` } });

  const lease = await gateway.engine.acquire(new EngineSession());
  try {
    await lease.pglite.exec(TABLES);
  } finally {
    lease.release();
  }

  let latest: GeneratedClient;
  [latest, prisma72] = await generating;
  ({ PrismaClient, Prisma } = latest);
}, 120_000);

afterAll(async () => {
  if (context) await shutdownPrismaExecutor(context);
  if (http) await new Promise((resolve) => http.close(resolve));
  await gateway?.close();
  if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  if (savedCacheHome === undefined) delete process.env.XDG_CACHE_HOME;
  else process.env.XDG_CACHE_HOME = savedCacheHome;
});

/** Runs every operation the issue lists and returns what a test would compare, with generated ids and times removed. */
async function exercise(prisma: Client, KnownError: GeneratedClient['Prisma']['PrismaClientKnownRequestError'] = Prisma.PrismaClientKnownRequestError) {
  const seen: Record<string, unknown> = {};
  await prisma.$executeRawUnsafe('TRUNCATE "Post", "User" RESTART IDENTITY CASCADE');

  // create with nested create
  const alice = await prisma.user.create({
    data: { email: 'alice@example.com', name: 'Alice', posts: { create: [{ title: 'Hello', published: true, views: 9007199254740993n }, { title: 'Draft' }] } },
    include: { posts: { orderBy: { id: 'asc' } } },
  });
  expect(alice.createdAt).toBeInstanceOf(Date);
  expect(alice.posts.map((post: { title: string }) => post.title)).toEqual(['Hello', 'Draft']);
  expect(alice.posts[0].views).toBe(9007199254740993n);
  seen.created = { ...alice, createdAt: undefined };
  await prisma.user.create({ data: { email: 'bob@example.com', name: 'Bob', posts: { create: { title: 'Bob post', published: true } } } });

  // findMany with include, where and orderBy
  seen.published = await prisma.user.findMany({
    where: { posts: { some: { published: true } } },
    include: { posts: { where: { published: true }, orderBy: { title: 'asc' } } },
    orderBy: { email: 'desc' },
    omit: { createdAt: true },
  });
  expect((seen.published as Array<{ email: string }>).map((user) => user.email)).toEqual(['bob@example.com', 'alice@example.com']);

  // update and delete
  seen.updated = await prisma.post.update({ where: { id: 2 }, data: { published: true, title: 'Published' } });
  expect(seen.updated).toMatchObject({ id: 2, title: 'Published', published: true });
  seen.deleted = await prisma.post.delete({ where: { id: 2 } });
  expect(await prisma.post.count()).toBe(2);
  seen.updateMany = await prisma.post.updateMany({ where: { published: true }, data: { views: { increment: 1 } } });
  expect(seen.updateMany).toEqual({ count: 2 });

  // batch $transaction
  const [carol, count] = await prisma.$transaction([
    prisma.user.create({ data: { email: 'carol@example.com' } }),
    prisma.user.count(),
  ]);
  expect(carol.email).toBe('carol@example.com');
  seen.batch = count;

  // interactive $transaction that commits
  seen.interactive = await prisma.$transaction(async (tx: Client) => {
    const dave = await tx.user.create({ data: { email: 'dave@example.com', name: 'Dave' } });
    await tx.post.create({ data: { title: 'By Dave', authorId: dave.id } });
    return tx.user.count();
  });
  expect(await prisma.user.findUnique({ where: { email: 'dave@example.com' }, select: { name: true } })).toEqual({ name: 'Dave' });

  // interactive $transaction that throws and rolls back
  await expect(
    prisma.$transaction(async (tx: Client) => {
      await tx.user.create({ data: { email: 'eve@example.com' } });
      expect(await tx.user.count()).toBe(5);
      throw new Error('changed my mind');
    }),
  ).rejects.toThrow('changed my mind');
  expect(await prisma.user.findUnique({ where: { email: 'eve@example.com' } })).toBeNull();

  // a Postgres error inside an interactive transaction rolls it back too
  const beforeFailed = await prisma.user.count();
  await expect(
    prisma.$transaction(async (tx: Client) => {
      await tx.user.create({ data: { email: 'frank@example.com' } });
      await tx.user.create({ data: { email: 'alice@example.com' } });
    }),
  ).rejects.toMatchObject({ code: 'P2002' });
  expect(await prisma.user.count()).toBe(beforeFailed);

  // $queryRaw
  seen.raw = await prisma.$queryRaw`SELECT email, length(email)::int AS n FROM "User" WHERE id <= ${2} ORDER BY id`;
  expect(seen.raw).toEqual([{ email: 'alice@example.com', n: 17 }, { email: 'bob@example.com', n: 15 }]);

  // unique violation -> P2002
  const duplicate = await prisma.user.create({ data: { email: 'alice@example.com' } }).catch((error: unknown) => error);
  expect(duplicate).toBeInstanceOf(KnownError);
  expect(duplicate).toMatchObject({ code: 'P2002' });
  seen.p2002 = (duplicate as { code: string }).code;

  // not found -> P2025
  const missing = await prisma.user.update({ where: { id: 999 }, data: { name: 'x' } }).catch((error: unknown) => error);
  expect(missing).toMatchObject({ code: 'P2025' });

  seen.final = await prisma.user.findMany({ orderBy: { id: 'asc' }, include: { posts: { orderBy: { id: 'asc' } } }, omit: { createdAt: true } });
  return seen;
}

const results: Record<string, unknown> = {};

describe('Prisma Client 7', () => {
  it('runs every operation over HTTP with accelerateUrl (prisma+postgres://)', async () => {
    const prisma = new PrismaClient({ accelerateUrl });
    try {
      results.http = await exercise(prisma);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('runs every operation for Prisma Client 7.2 over HTTP, with the 7.2 executor fetched from the npm registry', async () => {
    const prisma = new prisma72.PrismaClient({ accelerateUrl });
    try {
      expect(prisma._clientVersion).toBe('7.2.0');
      const started = performance.now();
      expect(await prisma.user.count()).toBeGreaterThanOrEqual(0);
      // Not an assertion (timing): the cost of the first request, which fetches, loads and starts the executor.
      console.info(`Prisma Client 7.2 first request over HTTP (fetch + load + start of executor 7.2): ${(performance.now() - started).toFixed(0)} ms`);
      results.http72 = await exercise(prisma, prisma72.Prisma.PrismaClientKnownRequestError);
    } finally {
      await prisma.$disconnect();
    }
    expect(fs.readdirSync(path.join(cacheHome, 'pgdev', 'prisma-executors')).filter((name) => !name.startsWith('.'))).toEqual(['7.2.0']);
    expect(results.http72).toEqual(results.http);
  });

  it('serves Prisma Client 7.2 and the latest at once, each with its own executor', async () => {
    const older = new prisma72.PrismaClient({ accelerateUrl });
    const newer = new PrismaClient({ accelerateUrl });
    try {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? older : newer).$transaction(async (tx: Client) => {
            const user = await tx.user.create({ data: { email: `both-${i}@example.com`, posts: { create: { title: `post ${i}` } } } });
            return tx.post.count({ where: { authorId: user.id } });
          }),
        ),
      );
      const seen = async (client: Client) =>
        client.user.findMany({ where: { email: { startsWith: 'both-' } }, include: { posts: { select: { title: true } } }, orderBy: { email: 'asc' }, omit: { createdAt: true, id: true } });
      expect(await seen(older)).toHaveLength(10);
      expect(await seen(older)).toEqual(await seen(newer));
    } finally {
      await older.$disconnect();
      await newer.$disconnect();
    }
  });

  it('gives the same results over the TCP URL with @prisma/adapter-pg', async () => {
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: gateway.url }) });
    try {
      results.tcp = await exercise(prisma);
    } finally {
      await prisma.$disconnect();
    }
    expect(results.http).toBeDefined();
    expect(results.tcp).toEqual(results.http);
  });

  it('serves HTTP and TCP clients at once, on the same database', async () => {
    const overHttp = new PrismaClient({ accelerateUrl });
    const overTcp = new PrismaClient({ adapter: new PrismaPg({ connectionString: gateway.url }) });
    try {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? overHttp : overTcp).user.create({ data: { email: `parallel-${i}@example.com` } })),
      );
      expect(await overHttp.user.count({ where: { email: { startsWith: 'parallel-' } } })).toBe(10);
      expect(await overTcp.user.count({ where: { email: { startsWith: 'parallel-' } } })).toBe(10);
    } finally {
      await overHttp.$disconnect();
      await overTcp.$disconnect();
    }
  });

  it('refuses a client whose api_key has the wrong secret with a known error', async () => {
    const wrongKey = encodeApiKey({ databaseUrl: gateway.url, name: 'prisma-test', shadowDatabaseUrl: gateway.url, secret: 'not-the-secret-0123456789' });
    const prisma = new PrismaClient({ accelerateUrl: accelerateUrl.replace(/api_key=.*/, `api_key=${wrongKey}`) });
    try {
      const error = await prisma.user.count().catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'P6002' });
      expect(String((error as Error).message)).toMatch(/unauthorised/);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('answers a request that does not say its Prisma version with the TCP URL', async () => {
    const response = await fetch(`${context.urls.httpUrl}/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${new URL(accelerateUrl).searchParams.get('api_key')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ operation: 'findMany', plan: {}, params: {} }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string };
    expect(body.error).toBe(unservableMessage(undefined, gateway.url, 'no-version'));
    expect(body.error).toContain(gateway.url);
  });
});

describe('Prisma Client 7 and /sql against a real server (startServer)', () => {
  it('serves the printed prisma+postgres:// URL and the api_key on /sql, and leaves nothing open after close', async () => {
    const savedDataHome = process.env.XDG_DATA_HOME;
    const dataHome = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-http-e2e-'));
    process.env.XDG_DATA_HOME = dataHome;
    const server = await startServer({ name: 'http-e2e', persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
    try {
      const url = new URL(server.prismaPostgresUrl);
      expect(url.protocol).toBe('prisma+postgres:');
      expect(url.hostname).toBe('localhost');
      const apiKey = url.searchParams.get('api_key');
      const sqlOver = (body: unknown, key = apiKey) =>
        fetch(`${server.httpUrl}/sql`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

      const created = await sqlOver({ queries: TABLES.split(';').filter((sql) => sql.trim()).map((query) => ({ query })) });
      expect(created.status).toBe(200);
      expect((await sqlOver({ query: 'SELECT 1' }, 'wrong')).status).toBe(401);

      const prisma = new PrismaClient({ accelerateUrl: server.prismaPostgresUrl });
      try {
        const seen = await exercise(prisma);
        if (results.http) expect(seen).toEqual(results.http);
      } finally {
        await prisma.$disconnect();
      }

      const rows = await (await sqlOver({ query: 'SELECT email FROM "User" ORDER BY id LIMIT 1' })).json();
      expect(rows).toMatchObject({ rows: [{ email: 'alice@example.com' }], command: 'SELECT', rowCount: 1 });
    } finally {
      await server.close();
      if (savedDataHome === undefined) delete process.env.XDG_DATA_HOME;
      else process.env.XDG_DATA_HOME = savedDataHome;
      fs.rmSync(dataHome, { recursive: true, force: true });
    }
    await expect(fetch(`${server.httpUrl}/health`)).rejects.toThrow();
  });
});
