/**
 * @module
 * PGlite's WebAssembly, compiled once per process and shared by every engine (main, shadow, after a reset). It has
 * no other imports, so that the CLI can begin compiling (on V8's background threads) before it loads the rest.
 *
 * The module is compiled to import a *shared* memory (issue 19): its import's limits flag is rewritten from 1
 * (a maximum) to 3 (a maximum, shared) in the bytes, so that another thread can write Postgres' interrupt flags
 * while the engine's thread is busy running a statement (see `interrupts.ts`).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** PGlite's module and what `interrupts.ts` needs to know of its code. */
export type CompiledPglite = {
  readonly module: WebAssembly.Module;
  /** Function indices (as stack traces print them, `wasm-function[N]`) of Postgres' latch waits. */
  readonly waitFunctions: ReadonlySet<number>;
};

/** The exported functions a statement waits in (`pg_sleep`, lock waits, ...): all go through `WaitEventSetWait`. */
const WAIT_EXPORTS = ['WaitLatch', 'WaitLatchOrSocket', 'WaitEventSetWait'];

const Section = { Import: 2, Export: 7 } as const;
const ImportKind = { Function: 0, Table: 1, Memory: 2, Global: 3, Tag: 4 } as const;
const LIMITS_HAS_MAXIMUM = 1;
const LIMITS_SHARED = 2;

let pgliteModule: Promise<CompiledPglite> | undefined;

export function compiledPglite(): Promise<CompiledPglite> {
  pgliteModule ??= fs.promises
    .readFile(fileURLToPath(new URL('pglite.wasm', pathToFileURL(createRequire(import.meta.url).resolve('@electric-sql/pglite')))))
    .then(async (bytes) => {
      const waitFunctions = shareMemoryImport(bytes);
      return { module: await WebAssembly.compile(bytes), waitFunctions };
    });
  return pgliteModule;
}

/**
 * Uses a module compiled by another thread (a database thread is given the server's): threads of one process share
 * its compiled code, so a thread opens a database without compiling PGlite again.
 */
export function useCompiledPglite(compiled: CompiledPglite): void {
  pgliteModule = Promise.resolve(compiled);
}

/**
 * Marks the module's imported memory shared, in place, and returns the function indices of {@link WAIT_EXPORTS}.
 * Throws if the module has no imported memory with a maximum (a PGlite build this code does not know).
 * @see https://webassembly.github.io/spec/core/binary/modules.html
 */
export function shareMemoryImport(bytes: Uint8Array): Set<number> {
  const reader = new Reader(bytes, 8); // after the magic number and version
  let shared = false;
  let importedFunctions = 0;
  const waitFunctions = new Set<number>();
  while (reader.offset < bytes.length) {
    const id = reader.byte();
    const size = reader.u32();
    const end = reader.offset + size;
    if (id === Section.Import) {
      for (let count = reader.u32(); count > 0; count--) {
        const module = reader.name();
        const name = reader.name();
        const kind = reader.byte();
        if (kind === ImportKind.Memory) {
          const flags = bytes[reader.offset]!;
          if (module === 'env' && name === 'memory' && (flags & LIMITS_HAS_MAXIMUM) !== 0) {
            bytes[reader.offset] = flags | LIMITS_SHARED;
            shared = true;
          }
          reader.limits();
          continue;
        }
        if (kind === ImportKind.Function) importedFunctions++;
        if (!reader.skipImport(kind)) throw new Error(`pglite.wasm: unknown import kind ${kind}`);
      }
    } else if (id === Section.Export) {
      for (let count = reader.u32(); count > 0; count--) {
        const name = reader.name();
        const kind = reader.byte();
        const index = reader.u32();
        if (kind === ImportKind.Function && WAIT_EXPORTS.includes(name)) waitFunctions.add(index);
      }
    }
    reader.offset = end;
  }
  if (!shared) throw new Error('pglite.wasm imports no memory with a maximum: this PGlite version cannot be interrupted');
  if (importedFunctions === 0) throw new Error('pglite.wasm: no imports found');
  return waitFunctions;
}

/**
 * A side module (`.so`, loaded by `dlopen`: plpgsql, the encoding conversions) imports the memory without a
 * maximum and unshared; it cannot link to the shared one until its import says shared, with that maximum. Returns
 * the rewritten module, or undefined if it imports no such memory.
 */
export function shareSideModuleMemory(bytes: Uint8Array, maximumPages: number): Uint8Array | undefined {
  const reader = new Reader(bytes, 8);
  while (reader.offset < bytes.length) {
    const sectionStart = reader.offset;
    const id = reader.byte();
    const size = reader.u32();
    const payloadStart = reader.offset;
    const end = payloadStart + size;
    if (id !== Section.Import) {
      reader.offset = end;
      continue;
    }
    for (let count = reader.u32(); count > 0; count--) {
      const module = reader.name();
      const name = reader.name();
      const kind = reader.byte();
      if (kind === ImportKind.Memory) {
        const limitsStart = reader.offset;
        const flags = bytes[limitsStart]!;
        reader.byte();
        const minimum = reader.u32();
        if (flags & LIMITS_HAS_MAXIMUM) reader.u32();
        if (module !== 'env' || name !== 'memory' || flags & LIMITS_SHARED) return undefined;
        const limits = [LIMITS_HAS_MAXIMUM | LIMITS_SHARED, ...leb128(minimum), ...leb128(maximumPages)];
        const payload = Buffer.concat([bytes.subarray(payloadStart, limitsStart), Uint8Array.from(limits), bytes.subarray(reader.offset, end)]);
        return Buffer.concat([bytes.subarray(0, sectionStart), Uint8Array.of(id, ...leb128(payload.length)), payload, bytes.subarray(end)]);
      }
      if (!reader.skipImport(kind)) return undefined;
    }
    return undefined;
  }
  return undefined;
}

function leb128(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0);
  return bytes;
}

class Reader {
  readonly #bytes: Uint8Array;
  offset: number;
  constructor(bytes: Uint8Array, offset: number) {
    this.#bytes = bytes;
    this.offset = offset;
  }
  byte(): number {
    return this.#bytes[this.offset++]!;
  }
  u32(): number {
    let result = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
  }
  name(): string {
    const length = this.u32();
    const text = Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset + this.offset, length).toString('utf8');
    this.offset += length;
    return text;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & LIMITS_HAS_MAXIMUM) this.u32();
  }
  /** Skips the description of an import that is not a memory; false for a kind this code does not know. */
  skipImport(kind: number): boolean {
    if (kind === ImportKind.Function) this.u32();
    else if (kind === ImportKind.Table) {
      this.byte();
      this.limits();
    } else if (kind === ImportKind.Global) {
      this.byte();
      this.byte();
    } else if (kind === ImportKind.Tag) {
      this.byte();
      this.u32();
    } else return false;
    return true;
  }
}
