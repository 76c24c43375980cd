/**
 * @module
 * PGlite with a leaner raw protocol call for the engine. `execProtocolRawSync` parses every answer into message
 * objects and keeps them until the next `query()` or `exec()`: under a load that only speaks the wire protocol (the
 * gateway's), that is about 1.5 kB of heap a query, never freed (100,000 queries: about 150 MB), and a tenth of the CPU
 * time of a simple query. {@link RawPGlite.execRaw} takes the answer through PGlite's streaming callback instead,
 * which bypasses that parser, and stays synchronous.
 */
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';

export class RawPGlite extends PGlite {
  #failure: unknown;

  /** Opens a database (what `PGlite.create` does, for this class). */
  static async open(options: PGliteOptions): Promise<RawPGlite> {
    const pglite = new RawPGlite(options);
    await pglite.waitReady;
    return pglite;
  }

  // Records a failure that execProtocolRawStream would otherwise only report through its promise, a tick later.
  override execProtocolRawSync(message: Uint8Array): Uint8Array {
    this.#failure = undefined;
    try {
      return super.execProtocolRawSync(message);
    } catch (error) {
      this.#failure = error ?? new Error('database engine failed');
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
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
}
