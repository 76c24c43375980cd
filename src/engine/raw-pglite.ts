/**
 * @module
 * PGlite with a leaner raw protocol call for the engine. `execProtocolRawSync` parses every answer into message
 * objects and keeps them until the next `query()` or `exec()`: under a load that only speaks the wire protocol (the
 * gateway's), that is about 1.5 kB of heap a query, never freed (100,000 queries: about 150 MB), and a tenth of the CPU
 * time of a simple query. {@link RawPGlite.execRaw} takes the answer through PGlite's streaming callback instead,
 * which bypasses that parser, and stays synchronous.
 *
 * It also notices a PANIC (a failed WAL write on a full disk, for one). Postgres' backend exits after a PANIC and the
 * postmaster restarts every process from the WAL; PGlite instead answers the PANIC and then spins for ever on the next
 * call. So after a PANIC this instance refuses every call, and tells {@link RawPGlite.onCrash}'s listener, whose
 * process must start over (see host/serve.ts).
 */
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import { Backend, eachMessage, readError, type ErrorFields } from './protocol.js';

/** Thrown by every call into an engine that has had a PANIC. */
export class EngineCrashedError extends Error {
  readonly panic: ErrorFields;
  constructor(panic: ErrorFields) {
    super(`the database engine stopped after a PANIC (${panic.code}: ${panic.message}); it restarts from its last commit`);
    this.name = 'EngineCrashedError';
    this.panic = panic;
  }
}

export class RawPGlite extends PGlite {
  #failure: unknown;
  #panic: ErrorFields | undefined;
  #onCrash: ((panic: ErrorFields) => void) | undefined;

  /** Opens a database (what `PGlite.create` does, for this class). */
  static async open(options: PGliteOptions): Promise<RawPGlite> {
    const pglite = new RawPGlite(options);
    await pglite.waitReady;
    return pglite;
  }

  /** The PANIC this instance had, if any: then it is unusable. */
  get panic(): ErrorFields | undefined {
    return this.#panic;
  }

  /** Sets the one listener told of a PANIC (once). */
  onCrash(listener: (panic: ErrorFields) => void): void {
    this.#onCrash = listener;
  }

  #crashed(panic: ErrorFields): void {
    if (this.#panic) return;
    this.#panic = panic;
    this.#onCrash?.(panic);
  }

  // Records a failure that execProtocolRawStream would otherwise only report through its promise, a tick later.
  override execProtocolRawSync(message: Uint8Array): Uint8Array {
    if (this.#panic) throw new EngineCrashedError(this.#panic);
    this.#failure = undefined;
    try {
      return super.execProtocolRawSync(message);
    } catch (error) {
      this.#failure = error ?? new Error('database engine failed');
      throw error;
    }
  }

  // PGlite's query API (the HTTP endpoint's) reports a PANIC as a thrown DatabaseError.
  override async execProtocolStream(...args: Parameters<PGlite['execProtocolStream']>): ReturnType<PGlite['execProtocolStream']> {
    try {
      return await super.execProtocolStream(...args);
    } catch (error) {
      const fields = error as Partial<ErrorFields>;
      if (fields.severity === 'PANIC') this.#crashed({ severity: 'PANIC', code: fields.code ?? 'XX000', message: (error as Error).message });
      throw error;
    }
  }

  /** Runs wire-protocol messages and returns the backend's raw answer; throws what the engine threw. */
  execRaw(message: Uint8Array): Buffer {
    const chunks: Buffer[] = [];
    // No await comes before the call in execProtocolRawStream, and none after it without syncToFs: it runs to the
    // end synchronously, so the answer is complete when it returns.
    const done = this.execProtocolRawStream(message, { syncToFs: false, onRawData: (bytes) => chunks.push(Buffer.from(bytes)) });
    if (this.#failure !== undefined) {
      done.catch(() => undefined); // rejected with the failure thrown here
      throw this.#failure;
    }
    const output = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const panic = endsWithoutReady(output) ? panicIn(output) : undefined;
    if (panic) this.#crashed(panic);
    return output;
  }
}

/** Whether backend output lacks a final ReadyForQuery: only then can it end in a PANIC (checked cheaply on every call). */
function endsWithoutReady(output: Uint8Array): boolean {
  return output.length >= 6 && output[output.length - 6] !== Backend.ReadyForQuery;
}

/** The PANIC ErrorResponse in backend output, if any. */
function panicIn(output: Uint8Array): ErrorFields | undefined {
  for (const { type, start, end } of eachMessage(output)) {
    if (type !== Backend.ErrorResponse) continue;
    const error = readError(output.subarray(start, end));
    if (error?.severity === 'PANIC') return error;
  }
  return undefined;
}
