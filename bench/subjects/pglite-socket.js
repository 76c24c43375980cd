// Reference (b): PGlite's own socket server, @electric-sql/pglite-socket, on the same PGlite as pgdev.
// Usage: node bench/subjects/pglite-socket.js --data-dir DIR --port P
// A new data directory is initialised by PGlite itself (initdb), as a pglite-socket user would get it.
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { onShutdown, parseArgs } from '../lib/args.js';

const args = parseArgs();
const db = await PGlite.create({ dataDir: args['data-dir'] });
// The default is one connection; pgbench -c 8 and the parallel case need more.
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: Number(args.port), maxConnections: 100 });
await server.start();
onShutdown(async () => {
  await server.stop();
  await db.close();
});
console.log(`DATABASE_URL=postgres://postgres:postgres@127.0.0.1:${args.port}/template1?sslmode=disable`);
console.log('ready');
