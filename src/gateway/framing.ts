/**
 * @module
 * Cuts a client's byte stream into protocol messages, refusing the absurd before buffering it: a length field
 * that is too small or larger than the limit is a protocol violation, reported without waiting for the bytes.
 * @see https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
 */

/** Postgres itself refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_LENGTH = 10_000;
/** The largest regular message accepted; Postgres allows 1 GiB, a development server needs far less. */
export const MAX_MESSAGE_LENGTH = 256 * 1024 * 1024;

export class FramingError extends Error {}

/** A Terminate sent before the startup packet: Postgres closes such a connection without a word. */
export class EarlyTerminate extends FramingError {}

const TERMINATE = 0x58; // 'X'

export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Before the startup packet is through, messages carry no type byte. */
  startup = true;
  readonly #maxLength: number;

  constructor(maxLength = MAX_MESSAGE_LENGTH) {
    this.#maxLength = maxLength;
  }

  /** Bytes received but not yet returned as messages. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next whole message, or undefined until more bytes arrive. Throws {@link FramingError} on a bad length. */
  next(): Buffer | undefined {
    const header = this.startup ? 4 : 5;
    if (this.#buffered < header) return undefined;
    const head = this.#peek(header);
    const length = head.readUInt32BE(header - 4);
    const limit = this.startup ? MAX_STARTUP_LENGTH : this.#maxLength;
    // 'X' then a length of 4 reads as a startup length of 0x58000000, so the first byte alone identifies it.
    if (this.startup && head[0] === TERMINATE) throw new EarlyTerminate('terminate before startup');
    if (length < (this.startup ? 8 : 4)) throw new FramingError(`invalid message length ${length}`);
    if (length > limit) throw new FramingError(`message length ${length} exceeds the limit of ${limit} bytes`);
    const total = header - 4 + length;
    if (this.#buffered < total) return undefined;
    return this.#take(total);
  }

  /** Every byte received and not yet returned, taken out of the reader. */
  takeRest(): Buffer {
    const rest = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#buffered = 0;
    return rest;
  }

  #peek(count: number): Buffer {
    if (this.#chunks[0]!.length >= count) return this.#chunks[0]!;
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #take(count: number): Buffer {
    const first = this.#peek(count);
    const taken = first.subarray(0, count);
    if (first.length === count) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(count);
    this.#buffered -= count;
    return taken;
  }
}
