/**
 * @module
 * Oversized HTTP requests (issue 22): a body over a route's limit gets 413 with a message saying the limit, and the
 * server stays up for the next request. The main process passes `/sql` and `/load` on to a database process; it
 * used to read the whole body, forward it, and crash on the EPIPE when the database process had already answered 413.
 * The server runs as its own process, so that a crash is a failed assertion, not a lost test runner.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LOAD_BYTES, MAX_SQL_BODY_BYTES } from '../src/http/body-limit.js';
import { cleanupCli, createDataHome, serverPorts, startForeground, type ForegroundServer } from './support/cli.js';

describe('HTTP bodies over the limit', { timeout: 120_000 }, () => {
  let server: ForegroundServer;
  let base: string;
  let authorization: string;

  beforeAll(async () => {
    const home = createDataHome();
    const { ports, args } = await serverPorts();
    server = await startForeground(['-n', 'limits', ...args], { env: home.env });
    base = `http://localhost:${ports.http}`;
    authorization = `Bearer ${new URL(server.urls.prismaPostgresUrl).searchParams.get('api_key')}`;
  });
  afterAll(cleanupCli);

  /** The server is up and its default database answers /sql. */
  const expectServerAnswers = async () => {
    expect(server.child.exitCode).toBeNull();
    const response = await fetch(`${base}/sql`, { method: 'POST', headers: { authorization }, body: JSON.stringify({ query: 'SELECT 1 AS one' }) });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ rows: [{ one: 1 }] });
  };

  const oversizedSql = () => JSON.stringify({ query: 'SELECT 1', padding: 'x'.repeat(MAX_SQL_BODY_BYTES + 1024 * 1024) });

  it('answers 413 to a /sql body over 10 MiB, then answers the next request', async () => {
    for (let round = 0; round < 2; round++) {
      const response = await fetch(`${base}/sql`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: oversizedSql() });
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({ error: { message: `request body too large: the limit is ${MAX_SQL_BODY_BYTES} bytes` } });
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServerAnswers();
  });

  it('answers 413 to a chunked /sql body over the limit, then answers the next request', async () => {
    const bytes = new TextEncoder().encode(oversizedSql());
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(offset, (offset += 256 * 1024)));
      },
    });
    const response = await fetch(`${base}/sql`, { method: 'POST', headers: { authorization }, body, duplex: 'half' } as RequestInit);
    expect(response.status).toBe(413);
    expect((await response.json()).error.message).toMatch(/^request body too large/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServerAnswers();
  });

  it('answers 413 to a /load that declares more than 1 GiB at once, before the body is sent', async () => {
    // Only the headers and a little of the body are sent: the answer must not wait for (or hold) the rest.
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(new URL(base).port), '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('\r\n\r\n') && text.includes('}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
      socket.write(
        `POST /load HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\nContent-Type: application/sql\r\nContent-Length: ${MAX_LOAD_BYTES + 1}\r\n\r\n` +
          'SELECT 1;\n'.repeat(1000),
      );
      setTimeout(() => reject(new Error(`no answer to the oversized /load; got: ${text}`)), 20_000).unref();
    });
    expect(answer).toMatch(/^HTTP\/1.1 413/);
    expect(answer).toContain(`"message":"the script is larger than ${MAX_LOAD_BYTES} bytes; split it"`);
    await expectServerAnswers();
  });
});
