/**
 * @module
 * The entry of a database process. It starts as a spare: PGlite's WebAssembly compiles (on V8's background threads)
 * while the rest of pgdev loads, then it waits for the main process to give it a database (`start`), and serves it
 * (`database-serve.ts`). Loading and compiling ahead of need is what lets a database open in PGlite's own start time.
 */
import { Worker } from 'node:worker_threads';
import { compiledPglite } from '../engine/wasm.js';

if (process.env.PGDEV_DATABASE_PROCESS !== 'spare' || !process.send) {
  process.stderr.write('pgdev: this is an internal program of pgdev, started by the pgdev server\n');
  process.exit(2);
}
void compiledPglite();
// First of all, the thread that stops this process if its server goes, whatever the engine is doing then.
const watcher = new Worker(new URL('./database-watcher.js', import.meta.url));
watcher.unref();
const watching = new Promise((resolve) => watcher.once('message', resolve));
const { Channel } = await import('./ipc.js');
const { serve } = await import('./database-serve.js');
const channel = new Channel(process);
// A spare whose server went away has nothing to wait for.
const exitUnused = () => process.exit(0);
process.once('disconnect', exitUnused);
channel.handle('start', (config: import('./database-serve.js').DatabaseProcessConfig) => {
  process.off('disconnect', exitUnused);
  return serve(config, channel, watcher);
});
await watching;
channel.emit('spare');
