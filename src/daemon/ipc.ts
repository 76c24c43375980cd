/**
 * @module
 * Requests and answers between the main process and a database process, over Node's IPC channel (`fork`). Either
 * side may ask; each request names an operation and gets one answer, a value or an error with its SQLSTATE.
 * A socket travels with a request as its handle (`child.send(message, socket)`), kept by the sender until answered.
 */
import type { ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { ErrorCode, PgdevError } from '../errors.js';
import { SqlError } from '../gateway/backend-error.js';

type Endpoint = Pick<ChildProcess, 'send' | 'on' | 'off'> | NodeJS.Process;

type Request = { kind: 'request'; id: number; op: string; payload: unknown };
type Answer = { kind: 'answer'; id: number; value?: unknown; error?: WireError };
type Event = { kind: 'event'; op: string; payload: unknown };
/** An error as it crosses the channel: a message, the SQLSTATE for a client, and pgdev's error code. */
type WireError = { message: string; sqlState?: string; code?: string; detail?: string; hint?: string };

type Handler = (payload: any, socket?: net.Socket) => unknown;

export class Channel {
  #endpoint: Endpoint;
  #nextId = 1;
  #pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  #handlers = new Map<string, Handler>();
  #closedError: Error | undefined;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
    endpoint.on('message', (message: Request | Answer | Event, socket?: net.Socket) => void this.#receive(message, socket));
  }

  /** Answers requests named `op` with `handler`'s value (or its error); events named `op` call it too. */
  handle(op: string, handler: Handler): void {
    this.#handlers.set(op, handler);
  }

  /**
   * Sends a request and resolves with its answer. A `socket` goes with it, and this side keeps its own copy until the
   * answer: then closes it (the other process has the connection); if no answer comes (the other process died with
   * the request), the socket is still this side's, to offer elsewhere or to refuse with an error.
   */
  request<T = unknown>(op: string, payload: unknown = null, socket?: net.Socket): Promise<T> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (value) => {
          // Closing this copy of the descriptor leaves the connection open in the other process (no shutdown).
          socket?.destroy();
          resolve(value);
        },
        reject,
      });
      const message: Request = { kind: 'request', id, op, payload };
      const sent = (error: Error | null) => {
        if (!error) return;
        this.#pending.delete(id);
        reject(error);
      };
      if (socket) this.#endpoint.send!(message, socket as never, { keepOpen: true }, sent);
      else this.#endpoint.send!(message, undefined, undefined, sent);
    });
  }

  /** Sends a one-way message. */
  emit(op: string, payload: unknown = null): void {
    if (this.#closedError) return;
    const event: Event = { kind: 'event', op, payload };
    this.#endpoint.send!(event, undefined, undefined, () => undefined);
  }

  /** The other side went away: every pending and later request fails with `error`. */
  close(error: Error): void {
    this.#closedError = error;
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  async #receive(message: Request | Answer | Event, socket?: net.Socket): Promise<void> {
    if (message.kind === 'answer') {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.error) pending.reject(fromWire(message.error));
      else pending.resolve(message.value);
      return;
    }
    const handler = this.#handlers.get(message.op);
    if (message.kind === 'event') {
      handler?.(message.payload, socket);
      return;
    }
    let answer: Answer;
    try {
      if (!handler) throw new Error(`no handler for ${message.op}`);
      answer = { kind: 'answer', id: message.id, value: (await handler(message.payload, socket)) ?? null };
    } catch (error) {
      answer = { kind: 'answer', id: message.id, error: toWire(error) };
    }
    if (this.#closedError) return;
    try {
      this.#endpoint.send!(answer, undefined, undefined, () => undefined);
    } catch {
      // the other side is gone
    }
  }
}

function toWire(error: unknown): WireError {
  if (error instanceof SqlError) return { message: error.message, sqlState: error.sqlState, detail: error.detail, hint: error.hint };
  if (error instanceof PgdevError) return { message: error.message, code: error.code };
  return { message: error instanceof Error ? error.message : String(error) };
}

function fromWire(error: WireError): Error {
  if (error.sqlState) return new SqlError(error.sqlState, error.message, { detail: error.detail, hint: error.hint });
  if (error.code) return new PgdevError(error.code as ErrorCode, error.message);
  return new Error(error.message);
}
