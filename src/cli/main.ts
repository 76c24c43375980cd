/**
 * @module
 * The `pgdev` command line (commander). Each command lives in its own module, loaded only when it runs (`pgdev ls`
 * never loads PGlite or the HTTP stack); this file only wires options.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { PGDEV_VERSION } from '../daemon/version.js';
import { compiledPglite } from '../engine/wasm.js';
import { reportError } from './output.js';

const manage = () => import('./manage.js');

function port(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed > 65535) throw new InvalidArgumentError(`${flag} takes a port number from 0 to 65535`);
    return parsed;
  };
}

function seconds(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('takes a number of seconds (0 disables it)');
  return parsed;
}

function major(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) < 9) throw new InvalidArgumentError('takes a Postgres major version, such as 15');
  return Number(value);
}

export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const program = new Command('pgdev')
    .description('A local Postgres (PGlite) for development and tests: a drop-in replacement for `prisma dev`.')
    .version(PGDEV_VERSION)
    .option('-n, --name <name>', 'name of the server (isolates state between projects)', 'default')
    .option('-p, --port <port>', 'HTTP port (prisma+postgres:// URL, SQL over HTTP); default 51213', port('--port'))
    .option('-P, --db-port <port>', 'port of the main database; default 51214', port('--db-port'))
    .option('--shadow-db-port <port>', 'port of the shadow database; default 51215', port('--shadow-db-port'))
    .option('-d, --detach', 'run the server in the background')
    .addOption(new Option('--idle-in-transaction-timeout <seconds>', 'end a connection idle in a transaction this long while others wait').argParser(seconds))
    .option('--debug', 'log protocol and lifecycle events')
    .showHelpAfterError('(run `pgdev --help` for usage)')
    .action(async (options) => {
      // A server in this process will need PGlite's WebAssembly: compile it while the server's modules load.
      if (!options.detach) void compiledPglite().catch(() => undefined);
      await (await import('./run.js')).run(options);
    });

  program.command('ls').description('list servers').option('--json', 'machine-readable output').option('--debug').action(async (options) => (await manage()).ls(options));
  program
    .command('start')
    .description('start existing, stopped servers in the background')
    .argument('<names...>', 'names or glob patterns')
    .option('--debug')
    .action(async (names, options) => (await manage()).start(names, options));
  program.command('stop').description('stop running servers').argument('<names...>', 'names or glob patterns').option('--debug').action(async (names) => (await manage()).stop(names));
  program
    .command('rm')
    .description("delete servers' data")
    .argument('<names...>', 'names or glob patterns')
    .option('--force', 'stop running servers first')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--debug')
    .action(async (names, options) => (await manage()).rm(names, options));
  program
    .command('url')
    .description("print a running server's connection string")
    .argument('[name]', 'server name', 'default')
    .option('--shadow', 'the shadow database URL')
    .option('--http', 'the prisma+postgres:// URL')
    .option('--json', 'all URLs as JSON')
    .option('--debug')
    .action(async (name, options) => (await manage()).url(name, options));

  program
    .command('sessions')
    .description("a running server's connections: state, last statement, who holds the database and who waits")
    .argument('[name]', 'server name', 'default')
    .option('--json', 'as JSON')
    .option('--debug')
    .action(async (name, options) => (await import('./sessions.js')).sessions(name, options));

  const data = () => import('./data.js');
  program
    .command('dump')
    .description("write a database's schema and rows as SQL (pg_dump's plain format), from a running or stopped server")
    .argument('[name]', 'server name', 'default')
    .option('--database <db>', 'the database: postgres (also template1) or shadow', 'postgres')
    .option('-f, --file <file>', 'write to this file instead of standard output')
    .option('--schema-only', 'only the schema')
    .option('--data-only', 'only the rows')
    .addOption(new Option('--target-version <major>', 'for an older Postgres: leave out settings it does not know (e.g. 15)').argParser(major))
    .option('--debug')
    .action(async (name, options) => (await data()).dump(name, options));
  program
    .command('load')
    .description('run a SQL script (such as a dump) in one transaction, on a running or stopped server')
    .usage('[options] [name] <file.sql | ->')
    .argument('<args...>', '[name] file.sql, or - for standard input')
    .option('--database <db>', 'the database: postgres (also template1) or shadow', 'postgres')
    .option('--debug')
    .action(async (args, options) => (await data()).load(args, options));
  program
    .command('prisma-executors')
    .description("list Prisma's query plan executors on this machine, or fetch one ahead of time")
    .option('--fetch <version>', 'fetch the executor for this Prisma version (7.2 or 7.2.0) from the npm registry')
    .option('--json', 'machine-readable output')
    .option('--debug')
    .action(async (options) => (await import('./prisma-executors.js')).prismaExecutors(options));

  program.exitOverride();
  program.configureOutput({ writeErr: (text) => process.stderr.write(text.startsWith('error:') ? `pgdev: ${text.slice(7)}` : text) });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version') return;
    if (code?.startsWith('commander.')) {
      process.exitCode = 2;
      return;
    }
    reportError(error, debug);
  }
}
