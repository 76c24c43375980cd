/**
 * @module
 * The api_key of a `prisma+postgres://` URL: base64url of JSON. Prisma's tools read `databaseUrl`, `name` and
 * `shadowDatabaseUrl` from it; pgdev adds a random `secret` so that knowing the name and ports is not enough.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { HttpError } from './errors.js';

export type ApiKey = {
  readonly databaseUrl: string;
  readonly name: string;
  readonly shadowDatabaseUrl: string;
  readonly secret: string;
};

export function encodeApiKey(key: ApiKey): string {
  const { databaseUrl, name, shadowDatabaseUrl, secret } = key;
  return Buffer.from(JSON.stringify({ databaseUrl, name, shadowDatabaseUrl, secret })).toString('base64url');
}

/** The secret inside an api_key, or undefined if the key is not one of ours. */
export function apiKeySecret(apiKey: string): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(apiKey, 'base64url').toString('utf8')) as { secret?: unknown };
    return typeof parsed.secret === 'string' ? parsed.secret : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `apiKey` carries `secret`, compared in constant time. */
export function isAuthorised(apiKey: string | undefined, secret: string): boolean {
  const given = apiKey ? apiKeySecret(apiKey) : undefined;
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const UNAUTHORISED = 'unauthorised: send "Authorization: Bearer <api_key>" with the api_key of this server\'s prisma+postgres:// URL';

/**
 * The bearer check of every route that needs the api_key (hono's bearer-auth). Whatever is wrong (no header, another
 * scheme, a malformed or wrong key), the answer is the same 401, so that it reveals nothing; `refuse` builds it
 * (by default {@link UNAUTHORISED} in the one error shape).
 */
export function apiKeyAuth(secret: string, refuse: (c: Context) => Response | never = refuseUnauthorised): MiddlewareHandler {
  const message = (c: Context) => refuse(c);
  return bearerAuth({
    verifyToken: (token) => isAuthorised(token, secret),
    noAuthenticationHeader: { message },
    invalidAuthenticationHeader: { message },
    invalidToken: { message },
  });
}

function refuseUnauthorised(): never {
  throw new HttpError(401, UNAUTHORISED, { headers: { 'WWW-Authenticate': 'Bearer' } });
}

/** The bearer token of an `Authorization` header, or undefined if there is none or it is malformed. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer +([A-Za-z0-9_\-+/=.]+) *$/i);
  return match?.[1];
}
