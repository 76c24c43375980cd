/**
 * @module
 * Requests and answers between the main process and a database's host: a process (Node's IPC channel, `fork`) or a
 * worker thread (a `MessagePort`). Either side may ask; each request names an operation and gets one answer, a value
 * or an error with its SQLSTATE. A socket travels with a request: to a process as its handle
 * (`child.send(message, socket)`), to a thread as its file descriptor (see {@link threadEndpoint}).
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, PgdevError } from '../../errors.js';
import { SqlError } from '../../gateway/backend-error.js';

/** One side's way of sending to the other, and of hearing from it. */
export type Endpoint = {
  send(message: object, socket: net.Socket | undefined, sent: (error: Error | null) => void): void;
  onMessage(receive: (message: any, socket?: net.Socket) => void): void;
  /** Called once the other side has taken `socket`: what this side does with its own copy. */
  handedOver(socket: net.Socket): void;
};

/** Node's IPC channel of a forked process (either end). The sender closes its copy of a socket once it was taken. */
export function processEndpoint(endpoint: Pick<ChildProcess, 'send' | 'on'> | NodeJS.Process): Endpoint {
  return {
    send: (message, socket, sent) => {
      if (socket) endpoint.send!(message, socket as never, { keepOpen: true }, sent);
      else endpoint.send!(message, undefined, undefined, sent);
    },
    onMessage: (receive) => void endpoint.on('message', receive),
    // Closing this copy of the descriptor leaves the connection open in the other process (no shutdown).
    handedOver: (socket) => socket.destroy(),
  };
}

const handedToThreads = new WeakSet<net.Socket>();

/**
 * Whether `socket`'s descriptor was sent to a thread. If that thread ended before answering, it may have closed the
 * descriptor (and the number may be another connection's by now): such a socket must be left alone, never written,
 * closed or offered again.
 */
export function wasHandedToThread(socket: net.Socket): boolean {
  return handedToThreads.has(socket);
}

/**
 * A `MessagePort` to or from a worker thread. Threads share the process's file descriptors, so a socket travels as
 * its descriptor and the receiving thread opens its own `net.Socket` on it: then it reads and writes the connection
 * directly, at no cost per query. The sender's socket must then never be closed (closing it would close the
 * descriptor under the receiver, or whichever connection reuses its number later): it stops reading and is kept
 * as it is, about 4.5 KB per connection (measured), until the process exits.
 */
export function threadEndpoint(port: Pick<MessagePort, 'postMessage' | 'on'>): Endpoint {
  return {
    send: (message, socket, sent) => {
      try {
        if (socket) {
          const handle = (socket as unknown as { _handle?: { fd?: number; readStop?: () => void } })._handle;
          if (typeof handle?.fd !== 'number' || handle.fd < 0) throw new Error('the connection has no file descriptor to hand over');
          socket.pause();
          handle.readStop?.();
          handedToThreads.add(socket);
          port.postMessage({ ...message, fd: handle.fd });
        } else port.postMessage(message);
        sent(null);
      } catch (error) {
        sent(error as Error);
      }
    },
    onMessage: (receive) =>
      void port.on('message', (message: { fd?: number }) => {
        if (typeof message.fd !== 'number') return receive(message);
        receive(message, new net.Socket({ fd: message.fd, readable: true, writable: true }));
      }),
    handedOver: () => undefined,
  };
}

type Request = { kind: 'request'; id: number; op: string; payload: unknown };
type Answer = { kind: 'answer'; id: number; value?: unknown; error?: WireError };
type Event = { kind: 'event'; op: string; payload: unknown };
/** An error as it crosses the channel: a message, the SQLSTATE for a client, and pgdev's error code. */
type WireError = { message: string; sqlState?: string; code?: string; detail?: string; hint?: string };

/** What one side answers: an operation's name, its payload (the function's parameter, if any) and its answer. */
export type Operations = { [op: string]: (payload?: any) => unknown };
type Payload<O extends Operations, K extends keyof O> = Parameters<O[K]> extends [] ? undefined : Parameters<O[K]>[0];
type AnswerOf<O extends Operations, K extends keyof O> = Awaited<ReturnType<O[K]>>;
type Handler = (payload: any, socket?: net.Socket) => unknown;

/**
 * One side of the boundary: it answers `Local`'s operations and asks the other side for `Remote`'s (see
 * `boundary/protocol.ts`), so that the compiler checks every name, payload and answer on both sides.
 */
export class Channel<Local extends Operations, Remote extends Operations> {
  #endpoint: Endpoint;
  #nextId = 1;
  #pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  #handlers = new Map<string, Handler>();
  #closedError: Error | undefined;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
    endpoint.onMessage((message: Request | Answer | Event, socket?: net.Socket) => void this.#receive(message, socket));
  }

  /** Answers requests named `op` with `handler`'s value (or its error); events named `op` call it too. */
  handle<K extends keyof Local & string>(
    op: K,
    handler: (payload: Payload<Local, K>, socket?: net.Socket) => AnswerOf<Local, K> | Promise<AnswerOf<Local, K>>,
  ): void {
    this.#handlers.set(op, handler as Handler);
  }

  /**
   * Sends a request and resolves with its answer. A `socket` goes with it, and this side keeps its own copy until the
   * answer (then see {@link Endpoint.handedOver}); if no answer comes (the other side died with the request), the
   * socket is still this side's, to offer elsewhere or to refuse with an error.
   */
  request<K extends keyof Remote & string>(op: K, payload?: Payload<Remote, K>, socket?: net.Socket): Promise<AnswerOf<Remote, K>> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    const id = this.#nextId++;
    return new Promise<AnswerOf<Remote, K>>((resolve, reject) => {
      this.#pending.set(id, {
        resolve: (value) => {
          if (socket) this.#endpoint.handedOver(socket);
          resolve(value);
        },
        reject,
      });
      const message: Request = { kind: 'request', id, op, payload: payload ?? null };
      const sent = (error: Error | null) => {
        if (!error) return;
        this.#pending.delete(id);
        reject(error);
      };
      this.#endpoint.send(message, socket, sent);
    });
  }

  /** Sends a one-way message: an operation of the other side's that answers nothing. */
  emit<K extends keyof Remote & string>(op: K, ...[payload]: Payload<Remote, K> extends undefined ? [] : [Payload<Remote, K>]): void {
    if (this.#closedError) return;
    const event: Event = { kind: 'event', op, payload: payload ?? null };
    this.#endpoint.send(event, undefined, () => undefined);
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
      this.#endpoint.send(answer, undefined, () => undefined);
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
