/**
 * @module
 * Connections that never start up (issue 22): a socket that connects to a database port and sends nothing (or half a
 * startup message) is closed after the startup timeout (Postgres' authentication_timeout, 60 s; shortened here) with a
 * FATAL saying why, and any number of them cannot shut real clients out: 200 used to (ECONNRESET for everyone after),
 * as the router's connection cap counted them.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_STARTING } from '../src/daemon/server/router.js';
import { startTarget, withClient, within, type DbTarget } from './support/databases.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { errorFields, parseMessages } from './support/wire.js';

useTemporaryDataHome('pgdev-router-startup-');

/** A socket to `port` that sends `bytes` (nothing by default) and records what it receives and when it closes. */
async function silentSocket(port: number, bytes = Buffer.alloc(0)) {
  const socket = net.connect(port, '127.0.0.1');
  let received = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  if (bytes.length > 0) socket.write(bytes);
  return { socket, closed, received: () => received };
}

/** The FATAL fields a closed socket received. */
function fatal(received: Buffer): Record<string, string> {
  const error = parseMessages(received).find((message) => message.type === 'E');
  expect(error, 'an ErrorResponse').toBeDefined();
  return errorFields(error!.body);
}

describe('database port: connections that never start up', { timeout: 120_000 }, () => {
  let target: DbTarget;
  let quick: DbTarget;

  beforeAll(async () => {
    target = await startTarget({ name: 'flooded' });
    quick = await startTarget({ name: 'quick', startupTimeoutMs: 1_000 });
  });
  afterAll(async () => {
    await target?.close();
    await quick?.close();
  });

  it('lets a real client in past hundreds of silent connections, closing the oldest beyond the limit', async () => {
    const count = DEFAULT_MAX_STARTING + 50;
    const silent = [];
    for (let i = 0; i < count; i++) silent.push(await silentSocket(target.port));
    try {
      const answer = await withClient(target.url(), async (client) => (await client.query('SELECT 42 AS answer')).rows);
      expect(answer).toEqual([{ answer: 42 }]);
      // The first 50 made room for the later ones, each told why; the rest still wait.
      await Promise.all(silent.slice(0, 50).map((connection) => connection.closed));
      expect(fatal(silent[0]!.received())).toMatchObject({
        S: 'FATAL',
        C: '53300',
        M: 'too many connections are waiting to start up: the one waiting longest was closed',
      });
      expect(silent.at(-1)!.socket.destroyed).toBe(false);
    } finally {
      for (const connection of silent) connection.socket.destroy();
    }
  });

  it('closes a connection that sends no startup message in time, with a FATAL saying why', async () => {
    const silent = await silentSocket(quick.port);
    const partial = await silentSocket(quick.port, Buffer.from([0, 0, 0, 40, 0, 3, 0, 0]));
    await within(Promise.all([silent.closed, partial.closed]), 20_000, 'the silent connections to be closed');
    for (const connection of [silent, partial]) {
      expect(fatal(connection.received())).toMatchObject({ S: 'FATAL', C: '08P01', M: 'no startup message within 1 s: connection closed' });
    }
  });

  it('leaves a connection alone once it has started up, however long it then idles', async () => {
    await withClient(quick.url(), async (client) => {
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });
});
