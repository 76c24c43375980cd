/**
 * @module
 * Keeps a CPU awake for a moment after each answer the engine gives, so that the client's next query, a fraction
 * of a millisecond later, finds a CPU that is running instead of one that has to be woken.
 *
 * Why: a server that waits on the network between a client's queries lets its CPU go idle, and the operating system
 * (or, in a virtual machine, the hypervisor) puts it to sleep. Waking it costs more than PGlite takes to answer: on
 * the 2-core VM in `bench/RESULTS.md`, pgbench -S with one client ran 2,400 transactions/s, PGlite itself taking
 * 160-190 µs per query, against 45 µs and 12,000 transactions/s while another program kept the CPUs busy.
 *
 * How: a worker thread at the lowest priority (nice 19, so that any real work takes the CPU from it) spins until
 * {@link DEFAULT_BUSY_POLL_MICROS} after the last answer, then sleeps in `Atomics.wait` until the next one. CPU is
 * spent only while clients are querying: once they stop, within a millisecond, none is (see the `idle-cpu` case of
 * the benchmark). Linux only (elsewhere a thread's priority cannot be lowered without the whole process's), and
 * only with at least two CPUs. `PGDEV_BUSY_POLL_US=0` turns it off; another number sets the window.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/** How long the CPU is kept awake after an answer: longer than a client takes to send its next query. */
export const DEFAULT_BUSY_POLL_MICROS = 1000;

const SLEEPING = 0;
const SPINNING = 1;

// The worker: sleeps while the state is SLEEPING, spins while the deadline is ahead. A touch that lands between its
// last look at the deadline and going to sleep is caught by the second look.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
if (workerData.lowerPriority) require('node:os').setPriority(0, 19);
const state = new Int32Array(workerData.buffer, 0, 1);
const deadline = new BigInt64Array(workerData.buffer, 8, 1);
const ahead = () => process.hrtime.bigint() < Atomics.load(deadline, 0);
for (;;) {
  Atomics.wait(state, 0, ${SLEEPING});
  while (ahead());
  Atomics.store(state, 0, ${SLEEPING});
  if (ahead()) Atomics.store(state, 0, ${SPINNING});
}
`;

export type BusyPoll = {
  /** Marks an answer just given: the CPU is kept awake for the window from now. */
  touch(): void;
  /** What another thread of the process needs to touch this poller ({@link useSharedBusyPoll}); starts its spinner. */
  share(): SharedBusyPoll;
  /** Whether the worker is spinning right now (for tests). */
  readonly spinning: boolean;
  /** Stops the worker for good. */
  stop(): Promise<void>;
};

export type BusyPollOptions = {
  /** The window in microseconds; 0 disables. Default: `PGDEV_BUSY_POLL_US`, else {@link DEFAULT_BUSY_POLL_MICROS}. */
  readonly micros?: number;
};

/** The window from `PGDEV_BUSY_POLL_US`, or the default; 0 where busy polling cannot help (one CPU, not Linux). */
export function busyPollMicros(env: NodeJS.ProcessEnv = process.env): number {
  if (process.platform !== 'linux' || os.availableParallelism() < 2) return 0;
  const value = env.PGDEV_BUSY_POLL_US;
  if (value === undefined || value === '') return DEFAULT_BUSY_POLL_MICROS;
  const micros = Number(value);
  return Number.isFinite(micros) && micros > 0 ? Math.min(micros, 100_000) : 0;
}

/** A poller's state, which every thread of the process can touch: one spinner is enough for all their engines. */
export type SharedBusyPoll = { readonly buffer: SharedArrayBuffer; readonly micros: number };

export function createBusyPoll(options: BusyPollOptions = {}): BusyPoll {
  const micros = options.micros ?? busyPollMicros();
  const buffer = new SharedArrayBuffer(16);
  let worker: Worker | undefined;
  let stopped = micros <= 0;

  const start = () => {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { buffer, lowerPriority: process.platform === 'linux' },
      // The spin loop allocates nothing: a small heap keeps the thread's memory small.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
      stdout: true,
      stderr: true,
    });
    worker.unref();
    worker.on('error', () => (stopped = true)); // busy polling is an optimisation: without it, answers still flow
  };

  const toucher = touchOnly({ buffer, micros });
  return {
    touch() {
      if (stopped) return;
      if (!worker) start();
      toucher.touch();
    },
    share() {
      if (!stopped && !worker) start();
      return { buffer, micros: stopped ? 0 : micros };
    },
    get spinning() {
      return toucher.spinning;
    },
    async stop() {
      stopped = true;
      await worker?.terminate();
      worker = undefined;
    },
  };
}

/** Touches a poller whose spinner another thread runs. */
function touchOnly({ buffer, micros }: SharedBusyPoll): Pick<BusyPoll, 'touch' | 'spinning'> {
  const state = new Int32Array(buffer, 0, 1);
  const deadline = new BigInt64Array(buffer, 8, 1);
  const windowNs = BigInt(Math.round(micros * 1000));
  return {
    touch() {
      if (micros <= 0) return;
      Atomics.store(deadline, 0, process.hrtime.bigint() + windowNs);
      if (Atomics.compareExchange(state, 0, SLEEPING, SPINNING) === SLEEPING) Atomics.notify(state, 0);
    },
    get spinning() {
      return Atomics.load(state, 0) === SPINNING;
    },
  };
}

let shared: BusyPoll | undefined;

/** The process's one busy poller, shared by every engine (main, shadow, HTTP, database threads): one CPU kept awake is enough. */
export function processBusyPoll(): BusyPoll {
  shared ??= createBusyPoll();
  return shared;
}

/** In a database thread: its engines touch the poller of the server's main thread instead of starting their own. */
export function useSharedBusyPoll(poll: SharedBusyPoll): void {
  const toucher = touchOnly(poll);
  shared = {
    touch: () => toucher.touch(),
    share: () => poll,
    get spinning() {
      return toucher.spinning;
    },
    stop: () => Promise.resolve(), // the spinner is the main thread's
  };
}
