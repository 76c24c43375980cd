/**
 * @module
 * `pgdev sessions`: the connections of a running server, from the same data as `pg_stat_activity`, with who holds
 * each database (a single-session engine runs one transaction at a time) and who waits, and for how long.
 */
import { notRunning, readRunning, serverNames, unknownServer } from '../daemon/client/registry.js';
import { readJson, requestServer } from '../daemon/client/request.js';
import { ErrorCode } from '../errors.js';
import { statementSummary, type SessionReport } from '../gateway/backends.js';
import { table } from './output.js';

type Session = SessionReport & { database: string };

export async function sessions(name: string, options: { json?: boolean }): Promise<void> {
  const running = readRunning(name);
  if (!running) throw serverNames().includes(name) ? notRunning(name) : unknownServer(name);
  const response = await requestServer(running, { method: 'GET', path: '/sessions', failure: ErrorCode.NotRunning });
  const { sessions: list } = await readJson<{ sessions: Session[] }>(response);
  if (options.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return;
  }
  if (list.length === 0) {
    process.stdout.write(`no connections to "${name}"\n`);
    return;
  }
  const rows = list.map((session) => [
    session.database,
    String(session.pid),
    session.user,
    session.applicationName || '-',
    session.state,
    session.holdsDatabase ? `holds the database (${seconds(session.stateMs)})` : session.waitingFor ? `waits for the ${session.waitingFor} (${seconds(session.waitingMs ?? 0)})` : '-',
    statementSummary(session.query),
  ]);
  process.stdout.write(table(['DATABASE', 'PID', 'USER', 'APPLICATION', 'STATE', 'DATABASE USE', 'LAST STATEMENT'], rows));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
