/**
 * @module
 * `pgdev [options]`: runs a named server in the foreground (keys q/h/t on a TTY; Ctrl-C, SIGTERM and its parent
 * process exiting shut it down cleanly), or with `-d` starts it in the background and returns once it is ready.
 */
import { reportToParent, spawnDetached } from '../daemon/client/detach.js';
import { PORT_FLAGS } from '../daemon/server/ports.js';
import { startServer, type PgdevServer } from '../daemon/server/server.js';
import { isPgdevError } from '../errors.js';
import { validateName } from '../state/paths.js';
import { httpUrlLine, portRange, reportError, urlLines } from './output.js';
import { pgdevCommand } from '../command-name.js';

export type RunOptions = {
  name: string;
  port?: number;
  dbPort?: number;
  shadowDbPort?: number;
  detach?: boolean;
  debug?: boolean;
  idleInTransactionTimeout?: number;
  idleClose?: number;
};

export function runArgs(options: RunOptions): string[] {
  const args: string[] = [];
  if (options.port !== undefined) args.push('--port', String(options.port));
  if (options.dbPort !== undefined) args.push('--db-port', String(options.dbPort));
  if (options.shadowDbPort !== undefined) args.push('--shadow-db-port', String(options.shadowDbPort));
  if (options.idleInTransactionTimeout !== undefined) args.push('--idle-in-transaction-timeout', String(options.idleInTransactionTimeout));
  if (options.idleClose !== undefined) args.push('--idle-close', String(options.idleClose));
  if (options.debug) args.push('--debug');
  return args;
}

export async function run(options: RunOptions): Promise<void> {
  validateName(options.name);
  if (options.detach) {
    const started = performance.now();
    const record = await spawnDetached(options.name, runArgs(options), (line) => process.stdout.write(`${line}\n`));
    const ms = Math.round(performance.now() - started);
    process.stdout.write(`✔ pgdev server ${record.name} is running in the background on ${portRange(record.ports)} (pid ${record.pid}, ready in ${ms} ms).\n\n${urlLines(record.urls, record.name)}\n\nStop it with: ${pgdevCommand()} stop ${record.name}\n`);
    return;
  }
  const detachedChild = process.env.PGDEV_DETACHED === '1';
  let server: PgdevServer;
  try {
    server = await startServer({
      name: options.name,
      port: options.port,
      databasePort: options.dbPort,
      shadowDatabasePort: options.shadowDbPort,
      debug: options.debug,
      portNames: PORT_FLAGS,
      idleInTransactionTimeoutMs: options.idleInTransactionTimeout === undefined ? undefined : options.idleInTransactionTimeout * 1000,
      idleCloseMs: options.idleClose === undefined ? undefined : options.idleClose * 1000,
      onProgress: (line) => {
        process.stdout.write(`${line}\n`);
        if (detachedChild) reportToParent({ progress: line });
      },
    });
  } catch (error) {
    if (detachedChild) reportToParent({ error: isPgdevError(error) ? error.message : String(error), code: isPgdevError(error) ? error.code : undefined });
    throw error;
  }
  const stamp = () => new Date().toISOString();
  process.stdout.write(
    `✔ Great Success! Your pgdev server ${server.name} is ready and listening on ${portRange(server.ports)} (${server.startupMs} ms; ${server.portSource}).\n\n${urlLines(server, server.name)}\n\n`,
  );
  if (detachedChild) {
    process.stdout.write(`${stamp()} running in the background (pid ${process.pid})\n`);
    reportToParent({ ready: { version: 1, name: server.name, pid: process.pid, ports: server.ports, urls: server, pgdevVersion: '', startedAt: stamp(), persistence: server.persistence } });
  }

  const shutdown = (reason: string) => {
    void server.close(reason);
  };
  process.once('SIGINT', () => shutdown('interrupted'));
  process.once('SIGTERM', () => shutdown('terminated'));
  process.once('SIGHUP', () => shutdown('terminal closed'));
  const stopKeys = !detachedChild && process.stdin.isTTY ? listenForKeys(server, shutdown) : () => undefined;
  const stopWatching = detachedChild ? () => undefined : stopWithParent(shutdown);
  const reason = await server.closed;
  stopWatching();
  stopKeys();
  process.stdout.write(`${detachedChild ? `${stamp()} ` : ''}pgdev server ${server.name} stopped (${reason}).\n`);
  exitIfStuck();
}

/** How long a stopped server's process may take to end on its own. */
const EXIT_GRACE_MS = 3_000;

/**
 * Everything is closed and the lock released, so nothing left may keep the process alive; a thread or handle that
 * does would leave a stopped server's pid running. The timer is unref'd: it fires only if something else is left.
 */
function exitIfStuck(): void {
  setTimeout(() => {
    const left = process.getActiveResourcesInfo().filter((resource) => resource !== 'Timeout');
    process.stderr.write(`pgdev: warning: still running ${EXIT_GRACE_MS / 1000} s after the server stopped (${left.join(', ') || 'no handles'}); exiting\n`);
    process.exit(0);
  }, EXIT_GRACE_MS).unref();
}

/** How often a foreground server checks that its parent process is still there. */
const PARENT_CHECK_MS = 1_000;

/**
 * npm and npx run pgdev through `sh -c`, and pass a SIGTERM or SIGINT on to that shell only, which dies of it without
 * passing it on (so do IDEs and process managers that signal only the pid they started): pgdev would be left
 * running, holding its ports and its name. A foreground server stops, as on SIGTERM, once its parent is gone.
 */
function stopWithParent(shutdown: (reason: string) => void): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) shutdown('its parent process exited');
  }, PARENT_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

function listenForKeys(server: PgdevServer, shutdown: (reason: string) => void): () => void {
  const keys = ' [q]uit  [h]ttp url  [t]cp urls ';
  // Raw mode first: a key pressed as soon as the box shows must not be echoed by the terminal.
  process.stdin.setRawMode(true);
  process.stdout.write(`╭${'─'.repeat(keys.length)}╮\n│${keys}│\n╰${'─'.repeat(keys.length)}╯\n`);
  const onKey = (key: Buffer) => {
    const text = key.toString();
    if (text === 'q' || text === '\u0003') shutdown('quit');
    else if (text === 'h') process.stdout.write(`${httpUrlLine(server)}\n`);
    else if (text === 't') process.stdout.write(`DATABASE_URL=${server.databaseUrl}\nSHADOW_DATABASE_URL=${server.shadowDatabaseUrl}\n`);
  };
  process.stdin.on('data', onKey);
  process.stdin.resume();
  return () => {
    process.stdin.off('data', onKey);
    process.stdin.setRawMode(false);
    process.stdin.pause();
  };
}

export { reportError };
