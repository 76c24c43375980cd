/**
 * @module
 * What the HTTP routes are given: the server's name, URLs and secret, and either a database's engine (a database's
 * host answers `/sql`, `/dump` and `/load` itself) or a way to pass those on to the database's host (the server).
 */
import type { Engine } from '../engine/engine.js';
import type { SessionReport } from '../gateway/backends.js';
import type { ServerUrls } from '../state/files.js';

export type BaseContext = {
  readonly name: string;
  readonly version: string;
  readonly urls: ServerUrls;
  /** The random per-server secret every authorised request must carry in its api_key. */
  readonly secret: string;
  /** Whether the default database answers; the others are opened on demand. */
  isReady(): boolean;
  /** Every wire connection of every database (`GET /sessions`, `pgdev sessions`). */
  sessions?(): Array<SessionReport & { database: string }> | Promise<Array<SessionReport & { database: string }>>;
};

/** The HTTP routes of one database process: its engine answers `/sql`, `/dump` and `/load`. */
export type EngineHttpContext = BaseContext & {
  readonly engine: Engine;
  /** The engine behind a database name; rejects with E_UNKNOWN_DATABASE. */
  database(name?: string): Promise<Engine>;
};

/** The main process's HTTP routes: `/sql`, `/dump` and `/load` are passed on to the database's process. */
export type ForwardingHttpContext = BaseContext & {
  /** Answers an authorised request for a database with that database's process (see forward.ts). */
  forward(request: Request): Promise<Response>;
  /** The main port's databases and their sizes on disk (`GET /databases`, `pgdev ls`). */
  databases(): Array<{ name: string; sizeBytes: number }>;
};

export type HttpContext = EngineHttpContext | ForwardingHttpContext;
