/**
 * @module
 * Proves LISTEN/NOTIFY across connections: a NOTIFY from one connection reaches every connection that LISTENs on
 * that channel (and only those), and after one listener UNLISTENs the others still receive notifications.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'notify' });
});

afterAll(async () => {
  await server?.close();
});

type Received = Array<{ channel: string; payload: string | undefined; processId: number }>;

function listener(): { client: pg.Client; received: Received; next(): Promise<void> } {
  const client = new pg.Client(server.url);
  client.on('error', () => undefined);
  const received: Received = [];
  const waiters: Array<() => void> = [];
  client.on('notification', (n) => {
    received.push({ channel: n.channel, payload: n.payload, processId: n.processId });
    waiters.shift()?.();
  });
  return {
    client,
    received,
    /** Resolves on the next notification. */
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
  };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)),
  ]);
}

/** What a connection received, as channel:payload strings, each distinct delivery once (routing, not counting). */
function distinct(received: Received): string[] {
  return [...new Set(received.map((n) => `${n.channel}:${n.payload}`))];
}

describe('gateway: LISTEN/NOTIFY', () => {
  it('a NOTIFY reaches every connection listening on the channel and only those; UNLISTEN stops one listener only', async () => {
    const a = listener();
    const b = listener();
    const c = listener();
    const d = listener();
    const all = [a, b, c, d];
    try {
      await Promise.all(all.map((x) => x.client.connect()));
      await a.client.query('LISTEN ch');
      await b.client.query('LISTEN ch');
      await d.client.query('LISTEN other_ch');

      const first = Promise.all([a.next(), b.next()]);
      await c.client.query("NOTIFY ch, 'hi'");
      await within(first, 5_000, 'notification for A and B');
      // A round trip on every connection after the delivery: anything sent to them has arrived by now.
      await Promise.all(all.map((x) => x.client.query('SELECT 1')));
      expect(distinct(a.received)).toEqual(['ch:hi']);
      expect(distinct(b.received)).toEqual(['ch:hi']);
      expect(c.received).toEqual([]);
      expect(d.received).toEqual([]);

      await b.client.query('UNLISTEN ch');
      const second = a.next();
      await c.client.query("SELECT pg_notify('ch', 'second')");
      await within(second, 5_000, 'second notification for A');
      await Promise.all(all.map((x) => x.client.query('SELECT 1')));
      expect(distinct(a.received)).toEqual(['ch:hi', 'ch:second']);
      expect(distinct(b.received)).toEqual(['ch:hi']);
      expect(c.received).toEqual([]);
      expect(d.received).toEqual([]);

      // D's channel works too, and a NOTIFY inside a transaction is delivered only at COMMIT.
      const third = d.next();
      await a.client.query('BEGIN');
      await a.client.query("NOTIFY other_ch, 'from a'");
      // D cannot make a round trip now (A owns the engine until COMMIT), so give a wrong early delivery time to arrive.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(d.received).toEqual([]);
      await a.client.query('COMMIT');
      await within(third, 5_000, 'notification for D');
      await Promise.all(all.map((x) => x.client.query('SELECT 1')));
      expect(distinct(d.received)).toEqual(['other_ch:from a']);
      expect(distinct(a.received)).toEqual(['ch:hi', 'ch:second']);
      expect(distinct(b.received)).toEqual(['ch:hi']);
      expect(c.received).toEqual([]);
    } finally {
      await Promise.all(all.map((x) => x.client.end().catch(() => undefined)));
    }
  });

  it('each listener receives each NOTIFY exactly once, carrying the notifying connection\'s process id', async () => {
    const a = listener();
    const b = listener();
    const c = listener();
    const all = [a, b, c];
    try {
      await Promise.all(all.map((x) => x.client.connect()));
      await a.client.query('LISTEN once_ch');
      await b.client.query('LISTEN once_ch');
      const cPid = (c.client as unknown as { processID: number }).processID;
      const aPid = (a.client as unknown as { processID: number }).processID;

      const delivered = Promise.all([a.next(), b.next()]);
      await c.client.query("NOTIFY once_ch, 'one'");
      await within(delivered, 5_000, 'notification for A and B');
      // A listener that notifies its own channel hears itself too, as on Postgres.
      const own = Promise.all([a.next(), b.next()]);
      await a.client.query("NOTIFY once_ch, 'two'");
      await within(own, 5_000, "A's own notification");
      await Promise.all(all.map((x) => x.client.query('SELECT 1')));

      const expected = [
        { channel: 'once_ch', payload: 'one', processId: cPid },
        { channel: 'once_ch', payload: 'two', processId: aPid },
      ];
      expect(a.received).toEqual(expected);
      expect(b.received).toEqual(expected);
      expect(c.received).toEqual([]);
    } finally {
      await Promise.all(all.map((x) => x.client.end().catch(() => undefined)));
    }
  });
});
