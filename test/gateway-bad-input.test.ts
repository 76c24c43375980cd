/**
 * @module
 * Proves that bad input on one connection is that connection's problem alone: garbage bytes, a startup packet
 * announcing an absurd length, an unknown message type after a valid startup and a message announcing 300 MiB each
 * get an ErrorResponse with SQLSTATE 08P01 and a closed socket, while a client connected before keeps working and
 * committed data stays intact.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { errorFields, parseMessages, startupPacket } from './support/wire.js';

let server: TestGateway;
let survivor: pg.Client;

beforeAll(async () => {
  server = await startTestGateway({ label: 'bad-input' });
  survivor = new pg.Client(server.url);
  survivor.on('error', () => undefined);
  await survivor.connect();
  await survivor.query('DROP TABLE IF EXISTS bad_kept; CREATE TABLE bad_kept (id int, label text)');
  await survivor.query("INSERT INTO bad_kept VALUES (1, 'one'), (2, 'two')");
});

afterAll(async () => {
  await survivor?.end().catch(() => undefined);
  await server?.close();
});

/**
 * Opens a raw socket, optionally completes a hand-made startup (up to ReadyForQuery), sends `bad`, and resolves with
 * everything the server sent after that once the server has closed the connection.
 */
function sendBad(bad: Buffer, { startup = false } = {}): Promise<{ afterBad: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let sentAt = -1;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server did not close the connection; received ${JSON.stringify(received.toString('latin1'))}`));
    }, 10_000);
    const sendNow = () => {
      sentAt = received.length;
      socket.write(bad);
    };
    socket.on('connect', () => {
      if (startup) socket.write(startupPacket());
      else sendNow();
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (sentAt < 0 && parseMessages(received).some((m) => m.type === 'Z')) sendNow();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ afterBad: received.subarray(Math.max(sentAt, 0)), closed: true });
    });
  });
}

async function expectProtocolViolation(bad: Buffer, options: { startup?: boolean } = {}): Promise<Record<string, string>> {
  const { afterBad, closed } = await sendBad(bad, options);
  expect(closed).toBe(true);
  expect(afterBad[0]).toBe('E'.charCodeAt(0));
  const messages = parseMessages(afterBad);
  expect(messages.map((m) => m.type)).toEqual(['E']);
  const fields = errorFields(messages[0]!.body);
  expect(fields.C).toBe('08P01');
  expect(fields.S).toBe('FATAL');
  return fields;
}

async function expectOthersUnaffected(): Promise<void> {
  expect((await survivor.query('SELECT id, label FROM bad_kept ORDER BY id')).rows).toEqual([
    { id: 1, label: 'one' },
    { id: 2, label: 'two' },
  ]);
  const fresh = new pg.Client(server.url);
  await fresh.connect();
  try {
    expect((await fresh.query('SELECT count(*)::int AS n FROM bad_kept')).rows).toEqual([{ n: 2 }]);
  } finally {
    await fresh.end();
  }
}

describe('gateway: bad input', () => {
  it('garbage bytes (an HTTP request) get 08P01 and a closed connection; others carry on', async () => {
    await expectProtocolViolation(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    await expectProtocolViolation(Buffer.alloc(64, 0xff));
    await expectOthersUnaffected();
  });

  it('a startup packet announcing a length of 0x7fffffff gets 08P01 and a closed connection; others carry on', async () => {
    const packet = Buffer.alloc(8);
    packet.writeUInt32BE(0x7fffffff, 0);
    packet.writeInt32BE(196608, 4);
    await expectProtocolViolation(packet);
    await expectOthersUnaffected();
  });

  it('a Terminate before the startup packet closes the connection without a word, as Postgres does', async () => {
    const { afterBad, closed } = await sendBad(Buffer.from([0x58 /* 'X' */, 0, 0, 0, 4]));
    expect(closed).toBe(true);
    expect(afterBad.toString('latin1')).toBe('');
    await expectOthersUnaffected();
  });

  it('an unknown message type after a valid startup gets 08P01 and a closed connection; others carry on', async () => {
    const fields = await expectProtocolViolation(Buffer.from([0x79 /* 'y' */, 0, 0, 0, 4]), { startup: true });
    expect(fields.M).toBe('invalid frontend message type 121');
    await expectOthersUnaffected();
  });

  it('a message announcing 300 MiB gets 08P01 and a closed connection without the server waiting for it; others carry on', async () => {
    const header = Buffer.alloc(5);
    header[0] = 0x51; // 'Q'
    header.writeUInt32BE(300 * 1024 * 1024 + 4, 1);
    await expectProtocolViolation(Buffer.concat([header, Buffer.from('SELECT 1')]), { startup: true });
    await expectOthersUnaffected();
  });

  it('a Bind whose names are not NUL-terminated gets 08P01 (not an internal error); others carry on', async () => {
    const body = Buffer.from('portal-without-end');
    const bind = Buffer.concat([Buffer.from([0x42 /* 'B' */]), Buffer.alloc(4), body]);
    bind.writeUInt32BE(4 + body.length, 1);
    const fields = await expectProtocolViolation(bind, { startup: true });
    expect(fields.M).toBe('invalid message: unterminated string');
    await expectOthersUnaffected();
  });
});
