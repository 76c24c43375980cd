// pgdev through its internal API (engine + gateway), for as long as the CLI (bin/pgdev.js) cannot start a server.
// Usage: node bench/subjects/pgdev-internal.js --data-dir DIR --port P   (needs `npm run build`)
// Only the main database: the internal API has no shadow database.
import { Engine } from '../../dist/engine/engine.js';
import { createGateway } from '../../dist/gateway/gateway.js';
import { onShutdown, parseArgs } from '../lib/args.js';

const args = parseArgs();
const engine = await Engine.open({ label: 'main', dataDir: args['data-dir'] });
const gw = await createGateway({ engine, host: '127.0.0.1', port: Number(args.port) });
onShutdown(async () => {
  await gw.close();
  await engine.close();
});
console.log(`DATABASE_URL=postgres://postgres:postgres@127.0.0.1:${gw.port}/template1?sslmode=disable`);
console.log('ready');
