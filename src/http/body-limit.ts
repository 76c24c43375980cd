/**
 * @module
 * The largest request bodies the HTTP routes read, and their 413 answers: shared by the database process's routes
 * (hono's bodyLimit) and the main process, which enforces them before it reads or forwards a body (forward.ts), so
 * that an oversized request is refused where it arrives. Kept free of hono so the main process loads it at start.
 */

/** Largest request body `POST /sql` reads. */
export const MAX_SQL_BODY_BYTES = 10 * 1024 * 1024;

/** Largest script `POST /load` reads. */
export const MAX_LOAD_BYTES = 1024 * 1024 * 1024;

/** The forwarded routes that take a body, and their limits. */
export const BODY_LIMITS: Readonly<Record<string, number>> = { '/sql': MAX_SQL_BODY_BYTES, '/load': MAX_LOAD_BYTES };

/** The JSON body of a 413 answer for `path` (each route keeps its own error shape). */
export function tooLargeBody(path: string): object {
  if (path === '/load') return { error: { code: 'E_LOAD_FAILED', message: `the script is larger than ${MAX_LOAD_BYTES} bytes; split it` } };
  return { error: { message: `request body too large: the limit is ${BODY_LIMITS[path] ?? MAX_SQL_BODY_BYTES} bytes` } };
}

/** The 413 answer for `path`. */
export function tooLarge(path: string): Response {
  return Response.json(tooLargeBody(path), { status: 413 });
}

/** Whether the request's declared Content-Length is over `limit` (a chunked body declares none). */
export function declaresMoreThan(request: Request, limit: number): boolean {
  const length = Number(request.headers.get('content-length'));
  return Number.isFinite(length) && length > limit;
}

/**
 * Reads the whole body, unless it is over `limit`: then stops reading at once (cancelling the stream) and answers
 * undefined. An empty or missing body is an empty array.
 */
export async function readBodyWithin(request: Request, limit: number): Promise<Uint8Array | undefined> {
  if (declaresMoreThan(request, limit)) return undefined;
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
