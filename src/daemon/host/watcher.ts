/**
 * @module
 * The watcher thread of a database process. PGlite blocks the thread it runs on for as long as a statement runs, so
 * nothing on that thread can notice the server going away, or stop the statement. This worker thread can: it holds
 * the process's *interrupt line*, a socket pair with the server's main process (fd {@link INTERRUPT_LINE_FD}), and
 * the engine's shared memory (`engine/interrupts.ts`, sent by the process's main thread after each open).
 *
 * - The server asks, one JSON {@link InterruptRequest} a line, to cancel or terminate the statement of a connection
 *   (or whichever runs); the watcher sets the engine's interrupt flags and answers whether a statement was running.
 * - It delivers `statement_timeout`, `lock_timeout` and `transaction_timeout` when they are due.
 * - The line's end means the server is gone, however it died. The process then has {@link ORPHAN_GRACE_MS} to close
 *   by itself (an idle one does, on IPC `disconnect`; a running statement is terminated first), after which the
 *   watcher kills it: a database process must never outlive its server, or the next server would find its data
 *   directory still being written.
 */
import fs from 'node:fs';
import net from 'node:net';
import { parentPort } from 'node:worker_threads';
import { InterruptKind, interrupt, watchTimeouts, type InterruptTarget } from '../../engine/interrupts.js';
import { onJsonLines } from '../boundary/json-lines.js';
import type { InterruptAnswer, InterruptRequest, WatcherMessage } from '../boundary/protocol.js';

/** The child's file descriptor of the interrupt line: stdio index 4 of `fork` (after stdin/out/err and IPC). */
export const INTERRUPT_LINE_FD = 4;
/** How long an orphaned database process may take to close by itself before the watcher kills it. */
export const ORPHAN_GRACE_MS = 500;

if (parentPort) {
  const line = new net.Socket({ fd: INTERRUPT_LINE_FD, readable: true, writable: true });
  let target: InterruptTarget | undefined;
  let stopWatchingTimeouts: (() => void) | undefined;
  parentPort.on('message', (message: WatcherMessage) => {
    stopWatchingTimeouts?.();
    target = message.target;
    stopWatchingTimeouts = watchTimeouts(target);
  });

  let orphaned = false;
  const orphan = () => {
    if (orphaned) return;
    orphaned = true;
    if (target) interrupt(target, InterruptKind.Terminate);
    setTimeout(() => {
      fs.writeSync(2, `pgdev: database process ${process.pid}: its server is gone; stopping\n`);
      process.kill(process.pid, 'SIGKILL');
    }, ORPHAN_GRACE_MS);
  };
  onJsonLines<InterruptRequest>(line, (request) => {
    const interrupted = target !== undefined && interrupt(target, request.kind, request.processId);
    line.write(`${JSON.stringify({ id: request.id, interrupted } satisfies InterruptAnswer)}\n`);
  });
  line.on('end', orphan);
  line.on('close', orphan);
  line.on('error', orphan);
  parentPort.postMessage('watching');
}
