/**
 * @module
 * The watcher thread of a database process. PGlite blocks the thread it runs on for as long as a statement runs, so
 * nothing on that thread can notice the server going away. This worker thread can: it reads the process's
 * *interrupt line*, a pipe from the server's main process (fd {@link INTERRUPT_LINE_FD}), whose end (EOF) means the
 * server is gone, however it died. The process then has {@link ORPHAN_GRACE_MS} to close by itself (an idle one
 * does, on IPC `disconnect`), after which the watcher kills it: a database process must never outlive its server,
 * or the next server would find its data directory still being written.
 */
import fs from 'node:fs';
import net from 'node:net';
import { parentPort } from 'node:worker_threads';

/** The child's file descriptor of the interrupt line: stdio index 4 of `fork` (after stdin/out/err and IPC). */
export const INTERRUPT_LINE_FD = 4;
/** What the main process asks of the watcher, one JSON object a line. */
export type InterruptRequest = { readonly kind: 'cancel' | 'terminate'; readonly processId: number };

/** How long an orphaned database process may take to close by itself before the watcher kills it. */
export const ORPHAN_GRACE_MS = 500;

if (parentPort) {
  const line = new net.Socket({ fd: INTERRUPT_LINE_FD, readable: true, writable: false });
  let orphaned = false;
  const orphan = () => {
    if (orphaned) return;
    orphaned = true;
    setTimeout(() => {
      fs.writeSync(2, `pgdev: database process ${process.pid}: its server is gone; stopping\n`);
      process.kill(process.pid, 'SIGKILL');
    }, ORPHAN_GRACE_MS);
  };
  line.on('end', orphan);
  line.on('close', orphan);
  line.on('error', orphan);
  line.resume();
  parentPort.postMessage('watching');
}
