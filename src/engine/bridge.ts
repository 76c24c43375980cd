/**
 * @module
 * A way for SQL running inside PGlite to ask the gateway a question and get the answer at once, synchronously:
 * a file system mounted at `/pgdev` in PGlite's Emscripten FS, where reading the file `/pgdev/<request>` (with
 * `pg_read_file`) calls {@link BridgeAnswer} in JavaScript and returns what it says. It costs nothing until SQL
 * reads it, and it works anywhere SQL runs: inside functions, triggers and the extended protocol.
 *
 * The per-connection backend functions (advisory locks, `pg_stat_activity`, `pg_cancel_backend`, ...) are built on it:
 * see {@link installBackendCatalog}.
 */
import type { PGlite } from '@electric-sql/pglite';

/** Answers a request read from `/pgdev/<request>`; `undefined` makes the file missing (`pg_read_file` gives NULL). */
export type BridgeAnswer = (request: string) => string | undefined;

const MOUNT = '/pgdev';
const encoder = new TextEncoder();

type FsNode = { name: string; mode: number; id: number; node_ops: unknown; stream_ops: unknown };
type FsStream = { node: FsNode; data?: Uint8Array };
type EmscriptenFs = {
  createNode(parent: FsNode | null, name: string, mode: number, dev: number): FsNode;
  hashRemoveNode(node: FsNode): void;
  mkdir(path: string): void;
  mount(type: unknown, options: object, mountpoint: string): void;
  ErrnoError: new (errno: number) => Error;
};

const ENOENT = 44; // Emscripten's errno numbering

/** Mounts the bridge in `pglite`'s file system; every read of `/pgdev/<request>` calls `answer(request)`. */
export function mountBridge(pglite: PGlite, answer: BridgeAnswer): void {
  const fs = pglite.Module.FS as unknown as EmscriptenFs;
  const stat = (node: FsNode) => {
    const now = new Date();
    return { dev: 1, ino: node.id, mode: node.mode, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, atime: now, mtime: now, ctime: now, blksize: 4096, blocks: 0 };
  };
  const createNode = (parent: FsNode | null, name: string, mode: number): FsNode => {
    const node = fs.createNode(parent, name, mode, 0);
    node.node_ops = nodeOps;
    node.stream_ops = streamOps;
    return node;
  };
  const nodeOps = {
    getattr: stat,
    setattr: () => undefined,
    // Any name is a request: its node exists only while the request is read (removed again on close).
    lookup: (parent: FsNode, name: string) => createNode(parent, name, 0o100444),
  };
  const streamOps = {
    open(stream: FsStream) {
      const text = answer(stream.node.name);
      if (text === undefined) {
        fs.hashRemoveNode(stream.node);
        throw new fs.ErrnoError(ENOENT);
      }
      stream.data = encoder.encode(text);
    },
    read(stream: FsStream, buffer: Uint8Array, offset: number, length: number, position: number) {
      const data = stream.data ?? new Uint8Array();
      const count = Math.max(0, Math.min(length, data.length - position));
      buffer.set(data.subarray(position, position + count), offset);
      return count;
    },
    llseek: (_stream: FsStream, offset: number) => offset,
    close(stream: FsStream) {
      fs.hashRemoveNode(stream.node);
    },
  };
  fs.mkdir(MOUNT);
  fs.mount({ mount: () => createNode(null, '/', 0o40555) }, {}, MOUNT);
}
