/**
 * @module
 * A hand-made Postgres wire client for tests that need exact control of the bytes: building frontend messages and
 * reading backend ones, with no driver in between.
 */
import net from 'node:net';

export type BackendMessage = { type: string; body: Buffer };

export function parseMessages(data: Buffer): BackendMessage[] {
  const messages: BackendMessage[] = [];
  let at = 0;
  while (at + 5 <= data.length) {
    const length = data.readUInt32BE(at + 1);
    messages.push({ type: String.fromCharCode(data[at]!), body: data.subarray(at + 5, at + 1 + length) });
    at += 1 + length;
  }
  return messages;
}

export function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    fields[String.fromCharCode(body[at]!)] = body.subarray(at + 1, end).toString('utf8');
    at = end + 1;
  }
  return fields;
}

export function startupPacket(): Buffer {
  const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, params]);
}

/** One frontend message: a type letter and body parts (strings are sent NUL-terminated). */
export function frontend(type: string, ...parts: Array<string | Buffer>): Buffer {
  const body = Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(`${part}\0`) : part)));
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeUInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

export const parse = (name: string, sql: string) => frontend('P', name, sql, Buffer.from([0, 0]));
/** Bind with no parameters and text results. */
export const bind = (portal: string, statement: string) => frontend('B', portal, statement, Buffer.from([0, 0, 0, 0, 0, 0]));
export const execute = (portal: string) => frontend('E', portal, Buffer.from([0, 0, 0, 0]));
export const sync = () => frontend('S');
export const flush = () => frontend('H');
export const simpleQuery = (sql: string) => frontend('Q', sql);

/** The text of each column of a DataRow. */
export function dataRow(body: Buffer): Array<string | null> {
  const values: Array<string | null> = [];
  let at = 2;
  for (let i = 0; i < body.readInt16BE(0); i++) {
    const length = body.readInt32BE(at);
    at += 4;
    values.push(length < 0 ? null : body.subarray(at, at + length).toString('utf8'));
    if (length > 0) at += length;
  }
  return values;
}

export class WireClient {
  #socket: net.Socket;
  #received = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Connects and completes the startup, up to the first ReadyForQuery. */
  static async connect(port: number): Promise<WireClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new WireClient(socket);
    socket.write(startupPacket());
    await client.untilReady();
    return client;
  }

  /** Sends messages and resolves with every backend message up to and including the next ReadyForQuery. */
  async request(...messages: Buffer[]): Promise<BackendMessage[]> {
    this.#socket.write(Buffer.concat(messages));
    return this.untilReady();
  }

  async untilReady(timeoutMs = 10_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const messages = parseMessages(this.#received);
      const ready = messages.findIndex((m) => m.type === 'Z');
      if (ready >= 0) {
        const consumed = messages.slice(0, ready + 1).reduce((sum, m) => sum + 5 + m.body.length, 0);
        this.#received = this.#received.subarray(consumed);
        return messages.slice(0, ready + 1);
      }
      if (Date.now() > deadline) throw new Error('no ReadyForQuery in time');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Sends messages without waiting for an answer (the rest of a pipeline comes later). */
  send(...messages: Buffer[]): void {
    this.#socket.write(Buffer.concat(messages));
  }

  end(): void {
    this.#socket.end(frontend('X'));
  }
}
