/**
 * @module
 * What the HTTP routes are given: the server's name, URLs and secret, and its databases. A route that needs a
 * database (`/sql`, `/dump`, `/load`) asks it through {@link DatabaseRequests}: over the channel to the database's
 * host in the server, on an engine in this thread in unit tests.
 */
import type { DatabaseRequests } from '../engine/requests.js';
import type { SessionReport } from '../gateway/backends.js';
import type { ServerUrls } from '../state/files.js';

export type HttpContext = {
  readonly name: string;
  readonly version: string;
  readonly urls: ServerUrls;
  /** The random per-server secret every authorised request must carry in its api_key. */
  readonly secret: string;
  /** Whether the default database answers; the others are opened on demand. */
  isReady(): boolean;
  /** A database by the name a request gives (absent: the default one); rejects with E_UNKNOWN_DATABASE. */
  database(name?: string): Promise<DatabaseRequests>;
  /** Every wire connection of every database (`GET /sessions`, `pgdev sessions`). */
  sessions?(): Array<SessionReport & { database: string }> | Promise<Array<SessionReport & { database: string }>>;
  /** The main port's databases and their sizes on disk (`GET /databases`, `pgdev ls`). */
  databases?(): Array<{ name: string; sizeBytes: number }>;
};
