/**
 * @module
 * Asking a running server over its HTTP endpoint, with the api_key from its `server.json`: what the CLI does for the
 * commands that need the server's own state (dump, load, sessions).
 */
import http from 'node:http';
import type { Readable } from 'node:stream';
import { ErrorCode, PgdevError } from '../../errors.js';
import type { ServerRecord } from '../../state/files.js';

/**
 * A request to a running server's HTTP endpoint with its api_key. A 2xx answer is returned as a stream; an error
 * answer becomes the PgdevError the server reported.
 */
export type ServerRequest = {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: Uint8Array;
  /** Called once the body is sent. */
  readonly onSent?: () => void;
  /** The error code of a failure the server did not name. */
  readonly failure: ErrorCode;
};

export function requestServer(server: ServerRecord, { method, path, body, onSent, failure }: ServerRequest): Promise<http.IncomingMessage> {
  const apiKey = new URL(server.urls.prismaPostgresUrl.replace(/^prisma\+postgres:/, 'http:')).searchParams.get('api_key') ?? '';
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: server.ports.http, method, path, headers: { host: `localhost:${server.ports.http}`, authorization: `Bearer ${apiKey}`, 'content-type': 'application/sql' } },
      (response) => {
        if ((response.statusCode ?? 500) < 300) return resolve(response);
        readAll(response).then((bytes) => reject(serverError(server, bytes, failure)), reject);
      },
    );
    request.on('error', (cause) =>
      reject(new PgdevError(ErrorCode.NotRunning, `cannot reach server "${server.name}" on port ${server.ports.http}: ${cause.message}`, { cause })),
    );
    request.end(body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength), () => onSent?.());
  });
}

function serverError(server: ServerRecord, bytes: Buffer, fallback: ErrorCode): PgdevError {
  let error: { code?: string; message?: string } | string | undefined;
  try {
    error = (JSON.parse(bytes.toString('utf8')) as { error?: { code?: string; message?: string } | string }).error;
  } catch {
    error = bytes.toString('utf8').slice(0, 200);
  }
  const message = typeof error === 'string' ? error : (error?.message ?? 'no reason given');
  const code = typeof error === 'object' ? Object.values(ErrorCode).find((known) => known === error.code) : undefined;
  return code ? new PgdevError(code, message) : new PgdevError(fallback, `server "${server.name}" answered: ${message}`);
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A server's JSON answer. */
export async function readJson<T>(response: Readable): Promise<T> {
  return JSON.parse((await readAll(response)).toString('utf8')) as T;
}
