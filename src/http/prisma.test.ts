import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRequests } from '../engine/requests.js';
import type { Hono } from 'hono';
import { Engine } from '../engine/engine.js';
import { unreachableRegistry, useStandInRegistry, type StandInRegistry } from '../../test/support/npm-registry.js';
import { encodeApiKey } from './api-key.js';
import { createHttpApp } from './app.js';
import type { HttpContext } from './context.js';
import { BUNDLED_EXECUTOR_VERSION, EXECUTOR_PACKAGE } from './executors.js';
import { shutdownPrismaExecutor, unservableMessage } from './prisma.js';

const secret = 'prisma-unit-secret-0123456789';
// Nothing listens here: these tests never reach the database, only the executor's mounting and pgdev's checks.
const databaseUrl = 'postgres://postgres:postgres@localhost:1/template1?sslmode=disable';
const apiKey = encodeApiKey({ databaseUrl, name: 'default', shadowDatabaseUrl: databaseUrl, secret });

let engine: Engine;
let context: HttpContext;
let app: Hono;
// Executors of other versions come from a stand-in registry into a temporary cache: 7.7.0 and 7.12.0-dev.1 are
// published there but are not real executors (they cannot start); nothing else is.
let registry: StandInRegistry;
let cacheHome: string;

beforeAll(async () => {
  const notAnExecutor = 'exports.parseSize = exports.parseDuration = () => 0; exports.Server = { create() { throw new Error("not an executor"); } };';
  registry = await useStandInRegistry(EXECUTOR_PACKAGE, [
    { version: '7.7.0', source: notAnExecutor },
    { version: '7.12.0-dev.1', source: notAnExecutor },
  ]);
  cacheHome = registry.cacheHome;
  engine = await Engine.open({ label: 'main' });
  context = {
    name: 'default',
    version: '0.0.0-test',
    secret,
    urls: { databaseUrl, shadowDatabaseUrl: databaseUrl, prismaPostgresUrl: `prisma+postgres://localhost:51213/?api_key=${apiKey}`, httpUrl: 'http://localhost:51213' },
    database: async () => engineRequests(() => engine),
    isReady: () => true,
  };
  app = createHttpApp(context);
}, 60_000);

afterAll(async () => {
  await shutdownPrismaExecutor(context);
  await engine?.close();
  await registry?.restore();
});

function prismaRequest(path: string, headers: Record<string, string> = {}, method = path === '/connection-info' ? 'GET' : 'POST'): Promise<Response> {
  return Promise.resolve(
    app.request(path, {
      method,
      body: method === 'POST' ? JSON.stringify({}) : undefined,
      headers: {
        host: 'localhost:51213',
        authorization: `Bearer ${apiKey}`,
        'prisma-engine-hash': BUNDLED_EXECUTOR_VERSION,
        'content-type': 'application/json',
        ...headers,
      },
    }),
  );
}

describe('Prisma routes', () => {
  it('hands an authorised request of a matching client to the executor', async () => {
    const response = await prismaRequest('/connection-info', { origin: 'http://localhost:3000' });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect(await response.json()).toMatchObject({ provider: 'postgres', connectionInfo: { supportsRelationJoins: true } });
  });

  it('lets the executor validate its own request bodies', async () => {
    const response = await prismaRequest('/query');
    expect(response.status).toBe(400);
  });

  for (const path of ['/connection-info', '/query', '/transaction/start', '/transaction/abc/query', '/transaction/abc/commit', '/transaction/abc/rollback']) {
    it(`answers 401 on ${path} without a valid api_key, as an error Prisma Client reads (P6002)`, async () => {
      // The last: an api_key as `prisma dev` makes it, without pgdev's secret (a URL kept in .env from prisma dev).
      const fromPrismaDev = Buffer.from(JSON.stringify({ databaseUrl, name: 'default', shadowDatabaseUrl: databaseUrl })).toString('base64url');
      for (const authorization of ['', 'Bearer nope', `Bearer ${encodeApiKey({ databaseUrl, name: 'default', shadowDatabaseUrl: databaseUrl, secret: 'wrong' })}`, `Bearer ${fromPrismaDev}`]) {
        const response = await prismaRequest(path, { authorization });
        expect(response.status).toBe(401);
        const body = (await response.json()) as { error: string; code: string };
        expect(body.code).toBe('P6002');
        expect(body.error).not.toMatch(/default|localhost|5121|template1/);
      }
    });
  }

  it('refuses a client whose version has no published executor, naming its version and the TCP URL', async () => {
    for (const version of ['6.19.0', '7.4.1', '8.0.0']) {
      const response = await prismaRequest('/query', { 'prisma-engine-hash': version });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: string; code: string };
      expect(body.code).toBe('P6000');
      expect(body.error).toBe(unservableMessage(version, databaseUrl, 'not-published'));
      expect(body.error).toContain(`Prisma Client ${version} cannot use this pgdev server over HTTP`);
      expect(body.error).toContain(BUNDLED_EXECUTOR_VERSION);
      expect(body.error).toContain(databaseUrl);
    }
  });

  it('tells a client whose executor cannot be fetched how to pre-fetch it, or to use the TCP URL', async () => {
    process.env.npm_config_registry = unreachableRegistry;
    try {
      const response = await prismaRequest('/query', { 'prisma-engine-hash': '7.5.0' });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: string; code: string };
      expect(body.error).toBe(
        'Prisma Client 7.5.0 cannot use this pgdev server over HTTP: the query plan executor for Prisma 7.5.x is not on this machine ' +
          'and the npm registry cannot be reached; run `pgdev prisma-executors --fetch 7.5` once online, or connect over TCP with ' +
          `@prisma/adapter-pg and the database URL ${databaseUrl}`,
      );
      // The failure is remembered for a while: the next request is answered at once, without asking the registry.
      process.env.npm_config_registry = registry.url;
      expect((await prismaRequest('/query', { 'prisma-engine-hash': '7.5.1' })).status).toBe(503);
    } finally {
      process.env.npm_config_registry = registry.url;
    }
  });

  it('says so when the cache folder cannot be written', async () => {
    const file = path.join(cacheHome, 'a-file');
    fs.writeFileSync(file, '');
    process.env.XDG_CACHE_HOME = file;
    try {
      const response = await prismaRequest('/query', { 'prisma-engine-hash': '7.8.0' });
      expect(response.status).toBe(503);
      expect(((await response.json()) as { error: string }).error).toBe(
        `Prisma Client 7.8.0 cannot use this pgdev server over HTTP: the query plan executor for Prisma 7.8.x is not on this machine and ` +
          `pgdev cannot write its cache folder ${path.join(file, 'pgdev', 'prisma-executors')}; fix its permissions or set XDG_CACHE_HOME, ` +
          `or connect over TCP with @prisma/adapter-pg and the database URL ${databaseUrl}`,
      );
    } finally {
      process.env.XDG_CACHE_HOME = cacheHome;
    }
  });

  it('fetches the executor of another minor on its first request, and says so when it cannot start', async () => {
    const response = await prismaRequest('/query', { 'prisma-engine-hash': '7.7.0' });
    expect(registry.downloads).toBe(1);
    expect(fs.existsSync(path.join(cacheHome, 'pgdev', 'prisma-executors', '7.7.0', 'pgdev-fetched.json'))).toBe(true);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: 'the query plan executor 7.7.0 could not start: not an executor', code: 'P6008' });
  });

  it('fetches the executor of a prerelease client under its own version when its minor has no release', async () => {
    const response = await prismaRequest('/query', { 'prisma-engine-hash': '7.12.0-dev.1' });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: 'the query plan executor 7.12.0-dev.1 could not start: not an executor', code: 'P6008' });
    expect((await prismaRequest('/query', { 'prisma-engine-hash': '7.12.0-dev.2' })).status).toBe(503);
    expect(registry.downloads).toBe(2);
  });

  it('refuses a non-loopback Host or Origin before anything else', async () => {
    expect((await prismaRequest('/query', { host: 'evil.com' })).status).toBe(403);
    const response = await prismaRequest('/query', { origin: 'https://evil.com' });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});
