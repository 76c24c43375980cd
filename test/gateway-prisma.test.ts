/**
 * @module
 * Proves that Prisma Client 7 with `@prisma/adapter-pg` (a pg Pool underneath) works through the gateway: a client
 * generated from a small schema (with the schema engine disabled) creates and reads rows, runs queries concurrently,
 * commits an interactive `$transaction`, and rolls back one that throws.
 */
import fs from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { generatePrismaClient, loadPrismaClient } from './support/prisma-client.js';

const SCHEMA = `
generator client {
  provider = "prisma-client"
  output   = "./generated"
}

datasource db {
  provider = "postgresql"
}

model Account {
  id      Int    @id @default(autoincrement())
  owner   String @unique
  balance Int
}
`;

type Account = { id: number; owner: string; balance: number };
type AccountDelegate = {
  create(args: { data: Omit<Account, 'id'> }): Promise<Account>;
  findMany(args?: object): Promise<Account[]>;
  findUnique(args: { where: { owner: string } }): Promise<Account | null>;
  update(args: { where: { owner: string }; data: object }): Promise<Account>;
  count(): Promise<number>;
  deleteMany(): Promise<{ count: number }>;
};
type Client = {
  account: AccountDelegate;
  $transaction<T>(fn: (tx: { account: AccountDelegate }) => Promise<T>): Promise<T>;
  $queryRawUnsafe<T>(sql: string, ...values: unknown[]): Promise<T>;
  $disconnect(): Promise<void>;
};

let server: TestGateway;
let dir: string;
let prisma: Client;

beforeAll(async () => {
  server = await startTestGateway({ label: 'prisma' });
  dir = await generatePrismaClient(SCHEMA, 'pgdev-prisma-');
  const setup = new pg.Client(server.url);
  await setup.connect();
  try {
    await setup.query(`
      DROP TABLE IF EXISTS "Account";
      CREATE TABLE "Account" (id serial PRIMARY KEY, owner text NOT NULL UNIQUE, balance int NOT NULL);
    `);
  } finally {
    await setup.end();
  }
  const PrismaClient = await loadPrismaClient<Client>(dir);
  prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: server.url, max: 10 }) });
});

afterAll(async () => {
  await prisma?.$disconnect();
  await server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('gateway: Prisma Client 7 with @prisma/adapter-pg', () => {
  it('creates and reads rows, runs concurrent queries, commits a $transaction and rolls back one that throws', async () => {
    await prisma.account.deleteMany();
    await prisma.account.create({ data: { owner: 'alice', balance: 100 } });
    await prisma.account.create({ data: { owner: 'bob', balance: 50 } });

    const concurrent = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0 ? prisma.account.findUnique({ where: { owner: 'alice' } }).then((a) => a?.balance) : prisma.account.count(),
      ),
    );
    expect(concurrent).toEqual(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? 100 : 2)));

    await prisma.$transaction(async (tx) => {
      await tx.account.update({ where: { owner: 'alice' }, data: { balance: { decrement: 30 } } });
      await tx.account.update({ where: { owner: 'bob' }, data: { balance: { increment: 30 } } });
    });

    await expect(
      prisma.$transaction(async (tx) => {
        await tx.account.update({ where: { owner: 'alice' }, data: { balance: { decrement: 1000 } } });
        await tx.account.create({ data: { owner: 'mallory', balance: 1000 } });
        throw new Error('insufficient funds');
      }),
    ).rejects.toThrow('insufficient funds');

    const accounts = await prisma.account.findMany({ orderBy: { owner: 'asc' }, select: { owner: true, balance: true } });
    expect(accounts).toEqual([
      { owner: 'alice', balance: 70 },
      { owner: 'bob', balance: 80 },
    ]);
    expect(await prisma.$queryRawUnsafe<Array<{ total: number }>>('SELECT sum(balance)::int AS total FROM "Account"')).toEqual([{ total: 150 }]);
  });
});
