/**
 * @module
 * Every HTTP error pgdev answers has one shape, `{"error": {"message", ...fields}}` (fields such as a pgdev error
 * `code`, or a Postgres error's `code`, `detail`, `hint`, `position` and `index`), and goes through hono's error
 * handling: a route throws {@link HttpError} (an `HTTPException`), and {@link onHttpError}, the app's `onError`,
 * answers it. Prisma's protocol is the one exception (prisma.ts): Prisma Client reads `{"error": "...", "code"}`.
 * @see https://hono.dev/docs/api/exception
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isPgdevError, type ErrorCode } from '../errors.js';

export type HttpErrorOptions = {
  /** Fields of the error object besides `message`. */
  readonly fields?: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
};

/** An error answered to the client with its status, in the one shape. */
export class HttpError extends HTTPException {
  readonly fields: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: ContentfulStatusCode, message: string, options: HttpErrorOptions = {}) {
    super(status, { message, cause: options.cause });
    this.fields = options.fields ?? {};
    this.headers = options.headers ?? {};
  }
}

/** The one shape of an error body. */
export function errorBody(message: string, fields: Readonly<Record<string, unknown>> = {}): { error: Record<string, unknown> } {
  return { error: { message, ...fields } };
}

/**
 * The app's `onError`: an {@link HttpError} or hono's own HTTPException with its status (or the response it was
 * given, as Prisma's 401 is), anything else as a 500.
 */
export function onHttpError(error: Error, c: Context): Response {
  if (error instanceof HttpError) {
    for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
    return c.json(errorBody(error.message, error.fields), error.status);
  }
  if (error instanceof HTTPException) return error.res ? error.getResponse() : c.json(errorBody(error.message || 'request refused'), error.status);
  return c.json(errorBody(`internal error: ${error.message}`), 500);
}

/** The status of a pgdev error that is the client's to see; any other pgdev error is a 400. */
const PGDEV_STATUS: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  E_UNKNOWN_DATABASE: 404,
  E_DISK_FULL: 507,
};

/** A pgdev error as the client's error, with its code in the body; anything else is left as it is (the app's 500). */
export function fromPgdevError(error: unknown): unknown {
  if (!isPgdevError(error)) return error;
  return new HttpError(PGDEV_STATUS[error.code] ?? 400, error.message, { fields: { code: error.code }, cause: error });
}
