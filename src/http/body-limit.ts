/**
 * @module
 * The largest request bodies the HTTP routes read. The server enforces them as it reads (hono's bodyLimit): a
 * request that declares a larger Content-Length is refused before a byte is read, and a chunked one as soon as it
 * goes past, so no route ever holds more than its limit.
 */

/** Largest request body `POST /sql` reads. */
export const MAX_SQL_BODY_BYTES = 10 * 1024 * 1024;

/** Largest script `POST /load` reads. */
export const MAX_LOAD_BYTES = 1024 * 1024 * 1024;
