/**
 * @module
 * NOTIFY across connections. The engine is one Postgres session, so a NOTIFY any connection sends comes back to the
 * connection that ran it; the gateway takes those NotificationResponses out of that answer and hands each to the
 * connections that LISTEN on its channel (the sender keeps its own only if it listens too).
 * @see https://www.postgresql.org/docs/current/sql-notify.html
 */
import { Backend, decode, int32, message } from '../engine/protocol.js';

/** Where the NotificationResponses of an answer go. */
export type FanOutTarget = {
  readonly processId: number;
  readonly listening: ReadonlySet<string>;
  /** Delivers to every other connection listening on the channel. */
  notify(channel: string, payload: string): void;
};

/** A NotificationResponse as a listening connection receives it. */
export function notification(processId: number, channel: string, payload: string): Buffer {
  return message(Backend.NotificationResponse, int32(processId), channel, payload);
}

/** The answer without the notifications others receive; `at`: where each NotificationResponse is in `out`. */
export function fanOut(out: Buffer, at: ReadonlyArray<{ start: number; end: number }>, target: FanOutTarget): Buffer {
  const kept: Buffer[] = [];
  let from = 0;
  for (const { start, end } of at) {
    kept.push(out.subarray(from, start));
    from = end;
    // Body: the sender's process id (int32), the channel, the payload.
    const channelEnd = out.indexOf(0, start + 9);
    const channel = decode(out.subarray(start + 9, channelEnd));
    const payload = decode(out.subarray(channelEnd + 1, out.indexOf(0, channelEnd + 1)));
    target.notify(channel, payload);
    if (target.listening.has(channel)) kept.push(notification(target.processId, channel, payload));
  }
  kept.push(out.subarray(from));
  return Buffer.concat(kept);
}
