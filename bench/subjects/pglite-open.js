// Case `ready-warm-inproc`: in-process PGlite opening an existing data directory, the least any PGlite server can
// take to be ready: import PGlite, PGlite.create({ dataDir }), one SELECT 1, print `ready`, close, exit.
// Usage: node bench/subjects/pglite-open.js --data-dir DIR   (the bench times from spawn to the `ready` line)
import { PGlite } from '@electric-sql/pglite';
import { parseArgs } from '../lib/args.js';

const args = parseArgs();
const pg = await PGlite.create({ dataDir: args['data-dir'] });
await pg.query('SELECT 1');
console.log('ready');
await pg.close();
process.exit(0);
