/**
 * @module
 * Where each named server keeps its state. The root honours XDG_DATA_HOME (through env-paths),
 * so a test suite isolates itself by pointing that variable at a temporary folder.
 */
import path from 'node:path';
import envPaths from 'env-paths';
import { ErrorCode, PgdevError } from '../errors.js';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Throws unless `name` is a usable server name: letters, digits, `-`, `_` and `.`, at most 63 characters. */
export function validateName(name: string): string {
  if (!NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new PgdevError(
      ErrorCode.InvalidName,
      `invalid server name "${name}"; use letters, digits, "-", "_" and "." (at most 63, not starting with a symbol)`,
    );
  }
  return name;
}

/** The folder holding every server's state, read afresh each call so tests can change XDG_DATA_HOME. */
export function stateRoot(): string {
  return path.join(envPaths('pgdev', { suffix: '' }).data, 'servers');
}

/** The one error for a state folder that cannot be created or written. */
export function dataDirError(root: string, cause: unknown): PgdevError {
  return new PgdevError(ErrorCode.DataDir, `cannot write to the data directory ${root}; fix its permissions or set XDG_DATA_HOME`, { cause });
}

export type ServerPaths = {
  readonly root: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly serverFile: string;
  readonly logFile: string;
  /** What the last shutdown had to cut short (`daemon/server/server.ts`), read by `pgdev stop`. */
  readonly stopFile: string;
  readonly lockTarget: string;
  readonly tlsKeyFile: string;
  readonly tlsCertFile: string;
};

export function serverPaths(name: string): ServerPaths {
  const root = path.join(stateRoot(), validateName(name));
  return {
    root,
    dataDir: path.join(root, 'databases', '5'), // the default database's (state/databases.ts)
    configFile: path.join(root, 'config.json'),
    serverFile: path.join(root, 'server.json'),
    logFile: path.join(root, 'server.log'),
    stopFile: path.join(root, 'last-stop.json'),
    lockTarget: root,
    tlsKeyFile: path.join(root, 'tls-key.pem'),
    tlsCertFile: path.join(root, 'tls-cert.pem'),
  };
}
