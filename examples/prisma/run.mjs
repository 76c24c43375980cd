// Prisma Client on pgdev, end to end: start an in-memory server from code, create the schema with a SQL migration
// file (applied with `pg`), seed and query through Prisma Client with @prisma/adapter-pg, print, close.
//
// Run from the repository root:  node examples/prisma/run.mjs
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { startServer } from 'pgdev';

const here = path.dirname(fileURLToPath(import.meta.url));

// 1. Prisma Client, generated from schema.prisma into ./generated/client (again whenever the schema changed).
//    `prisma generate` needs no database and no schema engine, hence PRISMA_SCHEMA_ENGINE_BINARY=/bin/false.
const schema = path.join(here, 'schema.prisma');
const generatedSchema = path.join(here, 'generated', 'client', 'schema.prisma');
const upToDate = fs.existsSync(generatedSchema) && fs.readFileSync(generatedSchema, 'utf8') === fs.readFileSync(schema, 'utf8');
if (!upToDate) {
  const generate = spawnSync(
    process.execPath,
    [path.join(here, '..', '..', 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', schema],
    { cwd: here, env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (generate.status !== 0) throw new Error('prisma generate failed');
}
const { PrismaClient } = (await import('./generated/client/index.js')).default;

// 2. A throw-away database: in memory, free ports, gone when closed.
const server = await startServer({ name: `prisma-example-${process.pid}`, persistence: 'memory', port: 0, databasePort: 0, shadowDatabasePort: 0 });
console.log(`pgdev server ${server.name} is up: ${server.databaseUrl}`);

let prisma;
try {
  // 3. Migrations: every migrations/*.sql file, in name order, with plain `pg`.
  const client = new pg.Client({ connectionString: server.databaseUrl });
  await client.connect();
  const migrations = fs.readdirSync(path.join(here, 'migrations')).filter((file) => file.endsWith('.sql')).sort();
  for (const file of migrations) {
    await client.query(fs.readFileSync(path.join(here, 'migrations', file), 'utf8'));
    console.log(`applied migration ${file}`);
  }
  await client.end();

  // 4. Seed and query through Prisma Client over the driver adapter.
  prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: server.databaseUrl }) });

  await prisma.user.create({
    data: {
      email: 'ada@example.com',
      name: 'Ada',
      posts: { create: [{ title: 'Notes on the Analytical Engine', published: true }, { title: 'Draft: Bernoulli numbers' }] },
    },
  });
  await prisma.user.create({
    data: { email: 'grace@example.com', name: 'Grace', posts: { create: [{ title: 'Compilers', published: true }] } },
  });
  console.log(`seeded ${await prisma.user.count()} users and ${await prisma.post.count()} posts`);

  const authors = await prisma.user.findMany({
    orderBy: { name: 'asc' },
    include: { posts: { where: { published: true }, orderBy: { title: 'asc' } } },
  });
  for (const author of authors) console.log(`${author.name} <${author.email}>: ${author.posts.map((post) => post.title).join('; ')}`);

  const drafts = await prisma.post.findMany({ where: { published: false }, select: { title: true, author: { select: { name: true } } } });
  console.log(`drafts: ${drafts.map((post) => `${post.title} (${post.author.name})`).join(', ')}`);

  const [published] = await prisma.$transaction([
    prisma.post.updateMany({ where: { published: false }, data: { published: true } }),
    prisma.user.update({ where: { email: 'grace@example.com' }, data: { name: 'Grace Hopper' } }),
  ]);
  console.log(`published ${published.count} draft(s); ${await prisma.post.count({ where: { published: true } })} posts are public now`);

  const rows = await prisma.$queryRaw`SELECT u.name, count(p.id)::int AS posts FROM users u JOIN posts p ON p.author_id = u.id GROUP BY u.name ORDER BY u.name`;
  console.log(`posts per author: ${rows.map((row) => `${row.name}=${row.posts}`).join(', ')}`);
} finally {
  await prisma?.$disconnect();
  await server.close();
  console.log('pgdev server closed');
}
