/**
 * @module
 * The api_key of a `prisma+postgres://` URL: base64url of JSON. Prisma's tools read `databaseUrl`, `name` and
 * `shadowDatabaseUrl` from it; pgdev adds a random `secret` so that knowing the name and ports is not enough.
 */
import { timingSafeEqual } from 'node:crypto';

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
