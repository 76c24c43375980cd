/**
 * @module
 * The `pgdev` command line (commander). Each command lives in its own module, loaded only when it runs (`pgdev ls`
 * never loads PGlite or the HTTP stack); this file only wires options.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { PGDEV_VERSION } from '../package-root.js';
import { compiledPglite } from '../engine/wasm.js';
import { pgdevCommand } from '../command-name.js';
import { ErrorCode, PgdevError } from '../errors.js';
import { reportError } from './output.js';

const manage = () => import('./manage.js');

function port(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value) || parsed > 65535) throw new InvalidArgumentError(`${flag} takes a port number from 0 to 65535`);
    return parsed;
  };
}

function seconds(flag: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0 || value.trim() === '') throw new InvalidArgumentError(`${flag} takes a number of seconds, such as 30 (0 or more)`);
    return parsed;
  };
}

function major(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) < 9) throw new InvalidArgumentError('takes a Postgres major version, such as 15');
  return Number(value);
}

/** The commands, for `pgdev help`, unknown-command errors and their suggestions. */
const COMMANDS = ['ls', 'start', 'stop', 'rm', 'url', 'sessions', 'dump', 'load', 'prisma-executors', 'help'] as const;
/** Words people type for a command that pgdev calls something else. */
const SYNONYMS: Record<string, string> = { list: 'ls', status: 'ls', ps: 'ls', remove: 'rm', delete: 'rm', run: 'start', up: 'start', down: 'stop', kill: 'stop' };

/** The command closest to `word`: a synonym, else one at most two edits away. */
function closestCommand(word: string): string | undefined {
  if (SYNONYMS[word]) return SYNONYMS[word];
  const distance = (a: string, b: string): number => {
    let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      const current = [i];
      for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
    return previous[b.length]!;
  };
  return COMMANDS.map((command) => ({ command, edits: distance(word, command) }))
    .filter(({ edits }) => edits <= Math.min(2, word.length - 1))
    .sort((a, b) => a.edits - b.edits)[0]?.command;
}

/**
 * commander's own errors (unknown option, missing argument, ...) in pgdev's one form: a single `pgdev: ...` line
 * saying where to find the usage, and exit status 1 like every other error.
 */
function oneLineErrors(command: Command, usage: string): Command {
  return command.exitOverride().configureOutput({
    writeErr: (text) => {
      if (!text.startsWith('error: ')) return process.stderr.write(text);
      let message = text.slice('error: '.length).trim().replace(/\s*\(Did you mean (.+)\?\)$/, '; did you mean $1?').replaceAll('\n', ' ');
      const unknown = /^unknown option '(--[^']+)'$/.exec(message)?.[1];
      const suggestion = unknown === undefined ? undefined : sameOptionInOtherCase(command, unknown, usage);
      if (suggestion) message += `; did you mean ${suggestion}?`;
      return process.stderr.write(`pgdev: ${message} (see \`${usage} --help\`)\n`);
    },
  });
}

/**
 * An option typed in the wrong case (`--HTTP`), which commander's suggestions miss (every letter counts as an
 * edit): the command's own option, else a subcommand's, as the command line to type (`pgdev url --http`).
 */
function sameOptionInOtherCase(command: Command, flag: string, usage: string): string | undefined {
  const matches = (candidate: Command) => candidate.options.find((option) => option.long?.toLowerCase() === flag.toLowerCase())?.long;
  const own = matches(command);
  if (own) return own;
  for (const subcommand of command.commands) {
    const long = matches(subcommand);
    if (long) return `\`${usage} ${subcommand.name()} ${long}\``;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const debugHelp = 'log protocol and lifecycle events, and print stack traces with errors';
  const pgdev = pgdevCommand();
  const unknownCommand = (command: string) => {
    if ((COMMANDS as readonly string[]).includes(command)) {
      return new PgdevError(ErrorCode.UnknownCommand, `"${command}" must come before the options: \`${pgdev} ${command} ...\` (see \`${pgdev} --help\`)`);
    }
    const closest = closestCommand(command);
    const hint = closest ? `did you mean \`${pgdev} ${closest}\`?` : `the commands are ${COMMANDS.join(', ')}, and \`${pgdev}\` alone starts a server`;
    return new PgdevError(ErrorCode.UnknownCommand, `unknown command "${command}"; ${hint} (see \`${pgdev} --help\`)`);
  };
  // `pgdev dev` is what a `prisma dev` user types: the same as bare `pgdev` (and `pgdev dev ls` as `pgdev ls`).
  if (argv[0] === 'dev') argv = argv.slice(1);
  if (argv[0] === 'help' && argv[1] === 'dev') argv = ['--help'];
  if (argv[0] === 'help' && argv[1] !== undefined && !(COMMANDS as readonly string[]).includes(argv[1])) return reportError(unknownCommand(argv[1]), debug);
  const program = new Command('pgdev')
    .description('A local Postgres (PGlite) for development and tests: a drop-in replacement for `prisma dev`.')
    .version(PGDEV_VERSION)
    .usage('[dev] [options]\n       pgdev <command> [options]')
    .argument('[command]')
    .allowExcessArguments() // `pgdev stpo x` is an unknown command, not too many arguments
    // A command's options are its own: `pgdev start x --idle-close 5` is start's --idle-close, not the server's.
    .enablePositionalOptions()
    .option('-n, --name <name>', 'name of the server (isolates state between projects)', 'default')
    .option('-p, --port <port>', 'HTTP port (prisma+postgres:// URL, SQL over HTTP); default 51213', port('--port'))
    .option('-P, --db-port <port>', 'port of the main database; default 51214', port('--db-port'))
    .option('--shadow-db-port <port>', 'port of the shadow database; default 51215', port('--shadow-db-port'))
    .option('-d, --detach', 'run the server in the background')
    .addOption(new Option('--idle-in-transaction-timeout <seconds>', 'end a connection idle in a transaction this long while others wait').argParser(seconds('--idle-in-transaction-timeout')))
    .addOption(new Option('--idle-close <seconds>', 'close a created database after this long without connections (0: never; default: what the server was last given, else 300)').argParser(seconds('--idle-close')))
    .option('--debug', debugHelp)
    .helpCommand('help [command]', 'print the help of a command')
    .addHelpText('after', '\n`pgdev dev` is the same as `pgdev`, as `prisma dev` is.')
    .action(async (_command: string | undefined, options, self: Command) => {
      // `dev` after an option (`pgdev --debug dev`) is still the alias.
      const extra = self.args.filter((word, index) => !(word === 'dev' && index === 0));
      if (extra.length > 0) throw unknownCommand(extra[0]!);
      // A server in this process will need PGlite's WebAssembly: compile it while the server's modules load.
      if (!options.detach) void compiledPglite().catch(() => undefined);
      await (await import('./run.js')).run(options);
    });
  oneLineErrors(program, pgdev);

  const subcommand = (name: string, description: string) =>
    oneLineErrors(program.command(name).description(description).option('--debug', debugHelp), `${pgdev} ${name}`);
  subcommand('ls', 'list servers')
    .option('--json', 'machine-readable output')
    .action(async (options) => (await manage()).ls(options));
  subcommand('start', 'start existing, stopped servers in the background, on their remembered ports')
    .argument('<names...>', 'names or glob patterns')
    .addOption(new Option('--idle-close <seconds>', 'close a created database after this long without connections (0: never; default: what the server was last given, else 300)').argParser(seconds('--idle-close')))
    .action(async (names, options) => (await manage()).start(names, options));
  subcommand('stop', 'stop running servers')
    .argument('<names...>', 'names or glob patterns')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for a clean shutdown before killing the server').argParser(seconds('--timeout')).default(10))
    .action(async (names, options) => (await manage()).stop(names, options));
  subcommand('rm', "delete servers' data")
    .argument('<names...>', 'names or glob patterns')
    .option('--force', 'stop running servers first')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (names, options) => (await manage()).rm(names, options));
  subcommand('url', "print a running server's connection string")
    .argument('[name]', 'server name', 'default')
    .addOption(new Option('--shadow', 'the shadow database URL').conflicts(['http', 'json']))
    .addOption(new Option('--http', 'the prisma+postgres:// URL').conflicts('json'))
    .addOption(new Option('--database <name>', 'the URL of this database (one made with CREATE DATABASE)').conflicts(['http', 'json']))
    .addOption(new Option('--tls', 'over TLS, verifying the server\'s certificate (sslmode=verify-full): for Node clients, which sslmode=require fails').conflicts(['http', 'json']))
    .option('--json', 'all URLs as JSON')
    .action(async (name, options) => (await manage()).url(name, options));

  subcommand('sessions', "a running server's connections: state, last statement, who holds the database and who waits")
    .argument('[name]', 'server name', 'default')
    .option('--json', 'as JSON')
    .action(async (name, options) => (await import('./sessions.js')).sessions(name, options));

  const data = () => import('./data.js');
  subcommand('dump', "write a database's schema and rows as SQL (pg_dump's plain format), from a running or stopped server")
    .argument('[name]', 'server name', 'default')
    .option('--database <db>', 'the database: postgres (also template1), one made with CREATE DATABASE, or shadow', 'postgres')
    .option('-f, --file <file>', 'write to this file instead of standard output')
    .option('--schema-only', 'only the schema')
    .option('--data-only', 'only the rows')
    .addOption(new Option('--target-version <major>', 'for an older Postgres: leave out settings it does not know (e.g. 15)').argParser(major))
    .action(async (name, options) => (await data()).dump(name, options));
  subcommand('load', 'run a SQL script (such as a dump) in one transaction, on a running or stopped server')
    .usage('[options] [name] <file.sql | ->')
    .argument('<args...>', '[name] file.sql, or - for standard input')
    .option('--database <db>', 'the database: postgres (also template1), one made with CREATE DATABASE, or shadow', 'postgres')
    .action(async (args, options) => (await data()).load(args, options));
  subcommand('prisma-executors', "list Prisma's query plan executors on this machine, or fetch one ahead of time")
    .option('--fetch <version>', 'fetch the executor for this Prisma version (7.2 or 7.2.0) from the npm registry')
    .option('--json', 'machine-readable output')
    .action(async (options) => (await import('./prisma-executors.js')).prismaExecutors(options));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return;
    if (code?.startsWith('commander.')) {
      process.exitCode = 1; // the message is out already, in one line (oneLineErrors)
      return;
    }
    reportError(error, debug);
  }
}
