/**
 * @module
 * Port choice: an explicit port wins (and a busy one is an error naming its flag); otherwise a server reuses the
 * ports it had last time, else the defaults, else the next free block of three.
 */
import net from 'node:net';
import { ErrorCode, PgdevError } from '../errors.js';
import type { Ports } from '../state/files.js';

export const DEFAULT_PORTS: Ports = { http: 51213, database: 51214, shadowDatabase: 51215 };
export const LOOPBACK = '127.0.0.1';

export const PORT_FLAGS: Record<keyof Ports, string> = { http: '--port', database: '--db-port', shadowDatabase: '--shadow-db-port' };

export type RequestedPorts = { [K in keyof Ports]?: number };

export function validatePort(value: number, flag: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw new PgdevError(ErrorCode.InvalidPort, `invalid port ${String(value)} for ${flag}; use a number from 1 to 65535 (or 0 for any free port)`);
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

export function portInUse(key: keyof Ports, port: number): PgdevError {
  return new PgdevError(ErrorCode.PortInUse, `port ${port} is in use; pass ${PORT_FLAGS[key]} with a free port`, { details: { port } });
}

/** Picks the three ports as described above; `remembered` are the ports of the server's last run. */
export async function choosePorts(asked: RequestedPorts, remembered: Ports | undefined): Promise<{ ports: Ports; source: string }> {
  const keys = Object.keys(DEFAULT_PORTS) as Array<keyof Ports>;
  const requested = Object.fromEntries(Object.entries(asked).filter(([, port]) => port !== undefined)) as RequestedPorts;
  for (const key of keys) {
    const port = requested[key];
    if (port !== undefined && !(await isPortFree(validatePort(port, PORT_FLAGS[key])))) throw portInUse(key, port);
  }
  const candidates: Array<{ base: Ports; source: string }> = [];
  if (remembered) candidates.push({ base: remembered, source: 'the ports of its last run' });
  candidates.push({ base: DEFAULT_PORTS, source: 'the default ports' });
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
    if (free.every(Boolean)) return { ports, source: keys.every((key) => requested[key] !== undefined) ? 'the ports asked for' : source };
  }
  throw new PgdevError(ErrorCode.PortInUse, 'no free ports found near 51213; pass --port, --db-port and --shadow-db-port');
}
