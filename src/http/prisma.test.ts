import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { Engine } from '../engine/engine.js';
import { encodeApiKey } from './api-key.js';
import { createHttpApp, type HttpContext } from './app.js';
import { PRISMA_EXECUTOR_VERSION, canServeClient, shutdownPrismaExecutor, versionMismatchMessage } from './prisma.js';

const secret = 'prisma-unit-secret-0123456789';
// Nothing listens here: these tests never reach the database, only the executor's mounting and pgdev's checks.
const databaseUrl = 'postgres://postgres:postgres@localhost:1/template1?sslmode=disable';
const apiKey = encodeApiKey({ databaseUrl, name: 'default', shadowDatabaseUrl: databaseUrl, secret });

let engine: Engine;
let context: HttpContext;
let app: Hono;

beforeAll(async () => {
  engine = await Engine.open({ label: 'main' });
  context = {
    name: 'default',
    version: '0.0.0-test',
    secret,
    urls: { databaseUrl, shadowDatabaseUrl: databaseUrl, prismaPostgresUrl: `prisma+postgres://localhost:51213/?api_key=${apiKey}`, httpUrl: 'http://localhost:51213' },
    engine,
    isReady: () => true,
  };
  app = createHttpApp(context);
}, 60_000);

afterAll(async () => {
  await shutdownPrismaExecutor(context);
  await engine?.close();
});

function prismaRequest(path: string, headers: Record<string, string> = {}, method = path === '/connection-info' ? 'GET' : 'POST'): Promise<Response> {
  return Promise.resolve(
    app.request(path, {
      method,
      body: method === 'POST' ? JSON.stringify({}) : undefined,
      headers: {
        host: 'localhost:51213',
        authorization: `Bearer ${apiKey}`,
        'prisma-engine-hash': PRISMA_EXECUTOR_VERSION,
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

  it('refuses a client of another version, naming both versions and the TCP URL', async () => {
    for (const version of ['6.19.0', '7.0.0', '8.0.0']) {
      const response = await prismaRequest('/query', { 'prisma-engine-hash': version });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: string };
      expect(body.error).toBe(versionMismatchMessage(version, databaseUrl));
      expect(body.error).toContain(`Prisma Client ${version}`);
      expect(body.error).toContain(PRISMA_EXECUTOR_VERSION);
      expect(body.error).toContain(databaseUrl);
    }
  });

  it('refuses a request without a client version', async () => {
    const response = await app.request('/query', {
      method: 'POST',
      body: '{}',
      headers: { host: 'localhost', authorization: `Bearer ${apiKey}` },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(/unknown version/);
  });

  it('refuses a non-loopback Host or Origin before anything else', async () => {
    expect((await prismaRequest('/query', { host: 'evil.com' })).status).toBe(403);
    const response = await prismaRequest('/query', { origin: 'https://evil.com' });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('canServeClient', () => {
  it('accepts the same major and minor version, and dev builds', () => {
    expect(canServeClient('7.10.0', '7.10.0')).toBe(true);
    expect(canServeClient('7.10.3', '7.10.0')).toBe(true);
    expect(canServeClient('7.10.0-dev.4', '7.10.0')).toBe(true);
    expect(canServeClient('0.0.0', '7.10.0')).toBe(true);
  });

  it('refuses other minor or major versions and garbage', () => {
    expect(canServeClient('7.9.0', '7.10.0')).toBe(false);
    expect(canServeClient('7.1.0', '7.10.0')).toBe(false);
    expect(canServeClient('6.10.0', '7.10.0')).toBe(false);
    expect(canServeClient(undefined, '7.10.0')).toBe(false);
    expect(canServeClient('latest', '7.10.0')).toBe(false);
  });
});
