/**
 * @module
 * Port choice: an explicit port wins (and a busy one is an error naming its option); otherwise a server keeps the
 * ports it had last time (a busy one is an error naming what holds it: a remembered port never moves silently,
 * since the project's `.env` points at it); a new server takes the defaults, else the next free block of three.
 */
import net from 'node:net';
import { pgdevCommand } from '../../command-name.js';
import { ErrorCode, PgdevError } from '../../errors.js';
import type { Ports } from '../../state/files.js';
import { serverOnPort } from '../client/registry.js';

export const DEFAULT_PORTS: Ports = { http: 51213, database: 51214, shadowDatabase: 51215 };
export const LOOPBACK = '127.0.0.1';

/** What a port is called where it was given: the API's option names, or the CLI's flags. */
export type PortNames = Record<keyof Ports, string>;
export const PORT_OPTIONS: PortNames = { http: 'port', database: 'databasePort', shadowDatabase: 'shadowDatabasePort' };
export const PORT_FLAGS: PortNames = { http: '--port', database: '--db-port', shadowDatabase: '--shadow-db-port' };
const ROLES: Record<keyof Ports, string> = { http: 'HTTP', database: 'database', shadowDatabase: 'shadow database' };

export type RequestedPorts = { [K in keyof Ports]?: number };

export function validatePort(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new PgdevError(ErrorCode.InvalidPort, `invalid port ${String(value)} for ${name}; use a number from 1 to 65535 (or 0 for any free port)`);
  }
  return value;
}

/** Whether a port can be listened on right now (port 0 always can). */
export function isPortFree(port: number): Promise<boolean> {
  if (port === 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: LOOPBACK, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** A busy port: the one the server was asked for, or the one it remembers from its last run. */
export type PortConflict = { readonly key: keyof Ports; readonly port: number; readonly server: string; readonly remembered: boolean };

/**
 * The busy-port error, naming the port, the pgdev server holding it if there is one, and what to do, in the words
 * of the caller (`names`: the API's options or the CLI's flags).
 */
export function portInUse(conflict: PortConflict, names: PortNames = PORT_OPTIONS): PgdevError {
  const { key, port, server, remembered } = conflict;
  const command = pgdevCommand();
  const holder = serverOnPort(port);
  const by = holder ? ` by pgdev server "${holder}"` : '';
  const cli = names === PORT_FLAGS;
  let message: string;
  if (remembered) {
    const free = holder ? `stop it with \`${command} stop ${holder}\`` : 'free it';
    const move = cli ? `move "${server}" with \`${command} -n ${server} ${names[key]} <port>\`` : `set ${names[key]} to move "${server}"`;
    message = `port ${port}, the ${ROLES[key]} port server "${server}" had last time, is in use${by}; ${free}, or ${move} (and update its URL in .env)`;
  } else {
    message = `port ${port} is in use${by}; ${cli ? `pass ${names[key]} with a free port` : `set ${names[key]} to a free port (or 0 for any free port)`}`;
  }
  return new PgdevError(ErrorCode.PortInUse, message, { details: { ...conflict, holder } });
}

/** One port given for two roles: the second would fail as "in use", which hides the real mistake. */
function portGivenTwice(requested: RequestedPorts, names: PortNames): PgdevError | undefined {
  const keys = (Object.keys(requested) as Array<keyof Ports>).filter((key) => requested[key]);
  for (const [i, first] of keys.entries()) {
    const second = keys.slice(i + 1).find((key) => requested[key] === requested[first]);
    if (second) {
      return new PgdevError(ErrorCode.InvalidPort, `port ${requested[first]} was given twice (${names[first]} and ${names[second]}); give each its own port`, {
        details: { port: requested[first], keys: [first, second] },
      });
    }
  }
  return undefined;
}

/**
 * Picks the three ports as described above; `remembered` are the ports of the server's last run.
 * `source` says which, for the ready line.
 */
export async function choosePorts(
  server: string,
  asked: RequestedPorts,
  remembered: Ports | undefined,
  names: PortNames = PORT_OPTIONS,
): Promise<{ ports: Ports; source: string }> {
  const keys = Object.keys(DEFAULT_PORTS) as Array<keyof Ports>;
  const requested = Object.fromEntries(Object.entries(asked).filter(([, port]) => port !== undefined)) as RequestedPorts;
  for (const key of keys) if (requested[key] !== undefined) validatePort(requested[key], names[key]);
  const twice = portGivenTwice(requested, names);
  if (twice) throw twice;
  const allAsked = keys.every((key) => requested[key] !== undefined);
  if (remembered) {
    const ports = { ...remembered, ...requested } as Ports;
    for (const key of keys) {
      if (!(await isPortFree(ports[key]))) throw portInUse({ key, port: ports[key], server, remembered: requested[key] === undefined }, names);
    }
    return { ports, source: allAsked ? 'the ports asked for' : 'the ports of its last run' };
  }
  for (const key of keys) {
    const port = requested[key];
    if (port !== undefined && !(await isPortFree(port))) throw portInUse({ key, port, server, remembered: false }, names);
  }
  const candidates: Array<{ base: Ports; source: string }> = [{ base: DEFAULT_PORTS, source: 'the default ports' }];
  for (let block = 1; block <= 50; block++) {
    const offset = block * 3;
    candidates.push({
      base: { http: DEFAULT_PORTS.http + offset, database: DEFAULT_PORTS.database + offset, shadowDatabase: DEFAULT_PORTS.shadowDatabase + offset },
      source: 'the next free ports (the defaults are taken)',
    });
  }
  for (const { base, source } of candidates) {
    const ports = { ...base, ...requested } as Ports;
    const free = await Promise.all(keys.map((key) => (requested[key] === undefined ? isPortFree(ports[key]) : true)));
    if (free.every(Boolean)) return { ports, source: allAsked ? 'the ports asked for' : source };
  }
  throw new PgdevError(ErrorCode.PortInUse, `no free ports found near 51213; give all three: ${keys.map((key) => names[key]).join(', ')}`);
}
