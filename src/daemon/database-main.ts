/**
 * @module
 * The entry of a database's host: a process of its own (`fork`), or a worker thread of the server (the default; see
 * `database-process.ts`). It starts as a spare: pgdev's modules load (and in a process, PGlite's WebAssembly
 * compiles on V8's background threads; a thread is given the server's compiled module), then it waits for the main
 * process to give it a database (`start`), and serves it (`database-serve.ts`).
 */
import { Worker, isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { compiledPglite, useCompiledPglite, type CompiledPglite } from '../engine/wasm.js';
import { rememberTimeoutTable } from '../engine/interrupts.js';
import { useSharedBusyPoll, type SharedBusyPoll } from '../engine/busy-poll.js';

/** What a database thread is started with (`workerData`); PGlite's compiled module follows as its first message. */
export type DatabaseThreadData = {
  readonly pgdev: 'database-thread';
  readonly port: MessagePort;
  /** Where an earlier engine of the module had Postgres' timeout table (see `engine/interrupts.ts`); 0: unknown. */
  readonly timeoutTable: number;
  /** The server's busy poller (`engine/busy-poll.ts`), which this thread's engine touches. */
  readonly busyPoll: SharedBusyPoll;
};

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
const watcher = thread ? undefined : new Worker(new URL('./database-watcher.js', import.meta.url));
watcher?.unref();
const watching = watcher ? new Promise((resolve) => watcher.once('message', resolve)) : Promise.resolve();
const { Channel, processEndpoint, threadEndpoint } = await import('./ipc.js');
const { serve, openAhead } = await import('./database-serve.js');
type HostSide = import('./database-serve.js').DatabaseHostSide;
type HostChannel = import('./host-protocol.js').HostChannel;
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
    engineOpened: (target) => watcher!.postMessage({ target } satisfies import('./database-watcher.js').WatcherMessage),
    leave: () => process.disconnect(),
    exit: (code) => process.exit(code),
    onServerGone: (stop) => void process.on('disconnect', stop),
  };
  // Ctrl-C in a terminal reaches the whole process group: the main process decides when this one closes.
  process.on('SIGINT', () => undefined);
}
let openedAhead: Promise<import('./database-serve.js').OpenedAhead | undefined> | undefined;
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
