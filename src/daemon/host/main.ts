/**
 * @module
 * The entry of a database's host: a process of its own (`fork`), or a worker thread of the server (the default; see
 * `server/database-hosts.ts`). It starts as a spare: pgdev's modules load (and in a process, PGlite's WebAssembly
 * compiles on V8's background threads; a thread is given the server's compiled module), then it waits for the main
 * process to give it a database (`start`), and serves it (`host/serve.ts`).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { compiledPglite, useCompiledPglite, type CompiledPglite } from '../../engine/wasm.js';
import { rememberTimeoutTable } from '../../engine/interrupts.js';
import { useSharedBusyPoll } from '../../engine/busy-poll.js';
import type { DatabaseThreadData, WatcherMessage } from '../boundary/protocol.js';

const thread = !isMainThread && (workerData as DatabaseThreadData | undefined)?.pgdev === 'database-thread' ? (workerData as DatabaseThreadData) : undefined;
if (!thread && (process.env.PGDEV_DATABASE_PROCESS !== 'spare' || !process.send)) {
  process.stderr.write('pgdev: this is an internal program of pgdev, started by the pgdev server\n');
  process.exit(2);
}

// A thread is sent the server's compiled module (its code is shared with every thread): wanted before it serves.
const compiledModule = thread ? new Promise<CompiledPglite>((resolve) => parentPort!.once('message', resolve)) : undefined;
if (thread) {
  rememberTimeoutTable(thread.timeoutTable);
  useSharedBusyPoll(thread.busyPoll);
} else {
  void compiledPglite();
}
// In a process, first of all: the thread that stops it if its server goes, whatever the engine is doing then. A
// thread needs none: it ends with its server's process, and the server's main thread interrupts its statements.
const watcher = thread ? undefined : new Worker(new URL('./watcher.js', import.meta.url));
watcher?.unref();
const watching = watcher ? new Promise((resolve) => watcher.once('message', resolve)) : Promise.resolve();
const { Channel, processEndpoint, threadEndpoint } = await import('../boundary/channel.js');
const { serve, openAhead } = await import('./serve.js');
type HostSide = import('./serve.js').DatabaseHostSide;
type HostChannel = import('../boundary/protocol.js').HostChannel;
const channel: HostChannel = new Channel(thread ? threadEndpoint(thread.port) : processEndpoint(process));

let host: HostSide;
let started = () => {};
if (thread) {
  host = {
    engineOpened: (target) => channel.emit('engine', target),
    leave: () => channel.emit('leaving'),
    exit: (code) => {
      thread.port.close();
      process.exit(code); // in a worker: ends this thread
    },
    onServerGone: () => undefined,
  };
} else {
  // A spare whose server went away has nothing to wait for.
  const exitUnused = () => process.exit(0);
  process.once('disconnect', exitUnused);
  started = () => process.off('disconnect', exitUnused);
  host = {
    engineOpened: (target) => watcher!.postMessage({ target } satisfies WatcherMessage),
    leave: () => process.disconnect(),
    exit: (code) => process.exit(code),
    onServerGone: (stop) => void process.on('disconnect', stop),
  };
  // Ctrl-C in a terminal reaches the whole process group: the main process decides when this one closes.
  process.on('SIGINT', () => undefined);
}
let openedAhead: Promise<import('./serve.js').OpenedAhead | undefined> | undefined;
let givenDatabase = false;
channel.handle('openAhead', async ({ dataDir }) => {
  if (givenDatabase) return; // too late: it serves a database already
  openedAhead = openAhead(dataDir).catch(() => undefined);
  await openedAhead;
});
channel.handle('start', async (config) => {
  givenDatabase = true;
  started();
  return serve(config, channel, host, await openedAhead);
});
await watching;
if (compiledModule) useCompiledPglite(await compiledModule);
channel.emit('spare');
