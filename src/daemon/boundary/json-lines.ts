/**
 * @module
 * One JSON value a line over a stream: the interrupt line between the main process and a database process's
 * watcher thread speaks it both ways.
 */
import type { Readable } from 'node:stream';

/** Calls `handle` with each line's value as lines arrive on `stream`. */
export function onJsonLines<T>(stream: Readable, handle: (value: T) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      handle(JSON.parse(line) as T);
    }
  });
}
