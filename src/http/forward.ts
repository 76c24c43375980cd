/**
 * @module
 * The main process's HTTP routes that need a database (`/sql`, `/dump`, `/load`) are answered by that database's
 * process: the request is passed on to its loopback HTTP port, as it came (authorisation included), and the answer
 * streamed back. The database is the `database` query parameter, or for `/sql` the `database` field of the body.
 */
import http from 'node:http';
import { Readable } from 'node:stream';
import { LOOPBACK } from '../daemon/ports.js';

/** Passes `request` to the HTTP port of a database process and returns its answer; `body` replaces a body already read. */
export async function forwardRequest(request: Request, port: number, body?: Uint8Array): Promise<Response> {
  const url = new URL(request.url);
  const headers: http.OutgoingHttpHeaders = { host: `localhost:${port}` };
  for (const name of ['authorization', 'content-type', 'accept', 'origin']) {
    const value = request.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  const payload = body ?? (request.body ? new Uint8Array(await request.arrayBuffer()) : undefined);
  if (payload) headers['content-length'] = payload.byteLength;
  return new Promise<Response>((resolve, reject) => {
    const outgoing = http.request({ host: LOOPBACK, port, method: request.method, path: `${url.pathname}${url.search}`, headers }, (answer) => {
      const responseHeaders = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value === undefined || name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
        responseHeaders.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      resolve(new Response(Readable.toWeb(answer) as ReadableStream<Uint8Array>, { status: answer.statusCode ?? 502, headers: responseHeaders }));
    });
    outgoing.on('error', reject);
    request.signal.addEventListener('abort', () => outgoing.destroy(), { once: true });
    outgoing.end(payload);
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
