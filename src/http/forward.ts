/**
 * @module
 * The main process's HTTP routes that need a database (`/sql`, `/dump`, `/load`) are answered by that database's
 * process: the request is passed on to its loopback HTTP port, as it came (authorisation included), and the answer
 * streamed back. The database is the `database` query parameter, or for `/sql` the `database` field of the body.
 *
 * Every stream on the way has its errors handled: the database process may answer before it has read the whole
 * body (413, or an error) and close, the client may go away, the database process may die. Each of those ends
 * that one request, never the server.
 */
import http from 'node:http';
import { Readable, Transform, pipeline } from 'node:stream';
import { LOOPBACK } from '../daemon/server/ports.js';
import { BODY_LIMITS, declaresMoreThan, readBodyWithin, tooLarge } from './body-limit.js';

/** Reads the body of a `/sql` request within its limit: the bytes, or the 413 answer to give instead. */
export async function readSqlBody(request: Request): Promise<Uint8Array | Response> {
  return (await readBodyWithin(request, BODY_LIMITS['/sql']!)) ?? tooLarge('/sql');
}

/**
 * Passes `request` to the HTTP port of a database process and returns its answer; `body` replaces a body already
 * read, otherwise the request's body is streamed through (never held whole), within its route's limit.
 */
export async function forwardRequest(request: Request, port: number, body?: Uint8Array): Promise<Response> {
  const url = new URL(request.url);
  const limit = BODY_LIMITS[url.pathname] ?? 0;
  if (!body && request.body && declaresMoreThan(request, limit)) return tooLarge(url.pathname);
  const headers: http.OutgoingHttpHeaders = { host: `localhost:${port}` };
  for (const name of ['authorization', 'content-type', 'accept', 'origin', ...(body ? [] : ['content-length'])]) {
    const value = request.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  if (body) headers['content-length'] = body.byteLength;
  return new Promise<Response>((resolve, reject) => {
    const outgoing = http.request({ host: LOOPBACK, port, method: request.method, path: `${url.pathname}${url.search}`, headers }, (answer) => {
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined || name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
        responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      answer.on('error', () => undefined);
      resolve(new Response(Readable.toWeb(answer) as ReadableStream<Uint8Array>, { status: answer.statusCode ?? 502, headers: responseHeaders }));
    });
    // Before the answer, an error fails the request; after it (the database process answered early and closed while
    // the body was still being written: EPIPE, ECONNRESET), there is nothing left to tell.
    outgoing.on('error', reject);
    outgoing.on('socket', (socket) => socket.on('error', () => undefined));
    request.signal.addEventListener('abort', () => outgoing.destroy(), { once: true });
    if (body || !request.body) return void outgoing.end(body);
    let size = 0;
    const withinLimit = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.byteLength;
        done(size > limit ? Object.assign(new Error(`request body over ${limit} bytes`), { tooLarge: true }) : null, chunk);
      },
    });
    pipeline(Readable.fromWeb(request.body as import('node:stream/web').ReadableStream<Uint8Array>), withinLimit, outgoing, (error) => {
      if (error && 'tooLarge' in error) resolve(tooLarge(url.pathname));
    });
  });
}

/** The `database` field of a `/sql` body, if the body is a JSON object that has one (any other body is the database's to refuse). */
export function sqlBodyDatabase(body: Uint8Array): string | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(body).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && 'database' in parsed && typeof parsed.database === 'string') return parsed.database;
  } catch {
    // not JSON: the database process answers the error
  }
  return undefined;
}
