// The clusterd command line. Commands stay thin: they parse, validate, and call into the
// master (start) or the control plane client (everything else).
import yargs, { type CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { fail } from './fail.js';
import { startCommand } from './start.js';
import { lsCommand } from './ls.js';
import { statusCommand } from './status.js';
import { topCommand } from './top.js';
import { reloadCommand } from './reload.js';
import { restartCommand } from './restart.js';
import { scaleCommand } from './scale.js';
import { stopCommand } from './stop.js';
import { stackCommand } from './stack.js';
import { logsCommand } from './logs.js';
import { loopCommand } from './loop.js';
import { profileCommand } from './profile.js';
import { dashboardCommand } from './dashboard.js';
import { clusterdVersion } from '../version.js';
import { checkFlags, needsValue, type DeclaredOptions } from './flag-checks.js';

const COMMAND_MODULES = [startCommand, lsCommand, statusCommand, topCommand, reloadCommand, scaleCommand, restartCommand, stopCommand, stackCommand, profileCommand, loopCommand, logsCommand, dashboardCommand];
/** The commands' names (the first word of each `command`). */
const COMMANDS = COMMAND_MODULES.map((module) => String(module.command).split(' ')[0]!);

/** Each command's positionals, in order (`restart [name] [worker-id]`: name, worker-id). */
const POSITIONALS = new Map(
  COMMAND_MODULES.map((module) => {
    const [command, ...positionals] = String(module.command).split(' ');
    return [command!, positionals.map((positional) => positional.replace(/^[[<]|[\]>]$/g, ''))];
  }),
);

/** The commands whose first word after them is the cluster's NAME (`restart [name] [worker-id]`). */
const NAMED_COMMANDS = COMMAND_MODULES.filter((module) => String(module.command).split(' ')[1] === '[name]').map((module) => String(module.command).split(' ')[0]!);

/**
 * `restart --name api 2` as `restart api 2`. NAME is a positional, and yargs lets a flag of the same
 * name set it, then overwrites it with the first word: `--name api` was dropped without a word, and
 * with two clusters running the command said to name one. Given twice, or with no value, it is left
 * for the flag checks to refuse; given with a NAME word of another value, `before` says so.
 */
function nameFlagAsPositional(argv: readonly string[]): { argv: string[]; before?: { word: string; name: string } } {
  const command = argv.findIndex((token) => !token.startsWith('-'));
  if (command === -1 || !NAMED_COMMANDS.includes(argv[command]!)) return { argv: [...argv] };
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const at = argv.flatMap((token, index) => (index < end && (token === '--name' || token.startsWith('--name=')) ? [index] : []));
  if (at.length !== 1) return { argv: [...argv] };
  const index = at[0]!;
  const joined = argv[index]!.startsWith('--name=');
  const value = joined ? argv[index]!.slice('--name='.length) : argv[index + 1];
  if (value === undefined || (!joined && (index + 1 >= end || value.startsWith('-')))) return { argv: [...argv] };
  const rest = argv.filter((_, position) => position !== index && (joined || position !== index + 1));
  // NAME given both ways, the same: once (`status api --name api` said "Unknown argument: api").
  if (rest[command + 1] === value) return { argv: rest };
  rest.splice(command + 1, 0, value);
  // A word was there already: restart's WORKER_ID (`restart 2 --name api`), or a second NAME, which
  // yargs then calls an unknown argument (`status a --name b`): `before`, for the error to say so.
  const word = rest[command + 2];
  return { argv: rest, ...(word !== undefined && !word.startsWith('-') ? { before: { word, name: value } } : {}) };
}

/** `help CMD` as `CMD --help` (`help` alone is yargs' own). */
function helpCommand(argv: readonly string[]): string[] {
  return argv[0] === 'help' && argv.length > 1 ? [argv[1]!, '--help', ...argv.slice(2)] : [...argv];
}

/** Prints a usage error's one line and exits 2. */
function usage(line: string): never {
  process.stderr.write(`clusterd: ${line} (see clusterd --help)\n`);
  process.exit(ExitCode.USAGE);
}

export function main(raw: string[]): void {
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  const { argv, before } = nameFlagAsPositional(helpCommand(raw));
  // yargs prints the version and exits 0 whatever else the line says (`--version extra`).
  const ownEnd = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const own = argv.slice(0, ownEnd);
  if (argv.length > 1 && own.some((token) => token === '--version' || token === '-V')) usage('`--version` takes nothing else: clusterd --version');
  if (raw[0] === 'help' && raw[1] !== undefined && !COMMANDS.includes(raw[1])) usage(`unknown command \`${raw[1]}\``);
  let declared: DeclaredOptions | undefined;
  yargs(argv)
    .scriptName('clusterd')
    .usage('$0 <command> [options]\n\nRun a Node.js server on every core, and see each worker\'s event loop.')
    .command(COMMAND_MODULES as CommandModule[])
    // A reader that stops reading (`clusterd reload --json | head -3`) ends a command quietly, as it
    // ends `git log`: what it asked for is done or under way in the master either way. Not `start`:
    // there this process is the master, which keeps the cluster running whatever its output does.
    // Before validation, which fails an unknown flag before the middleware below: the command's own
    // options, for .fail to tell a flag's value that starts with a dash (`--name -x`).
    .middleware(((_args: unknown, parser: { getOptions(): DeclaredOptions }) => {
      declared = parser.getOptions();
    }) as never, true)
    .middleware(((args: Record<string, unknown> & { _: unknown[] }, parser: { getOptions(): DeclaredOptions }) => {
      if (args._[0] !== 'start') process.stdout.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? process.exit(0) : fail(error)));
      checkFlags(args, parser.getOptions(), argv);
      operandsAfterDashes(args, argv);
    }) as never)
    .demandCommand(1, 'a command is required')
    .parserConfiguration({ 'populate--': true })
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version(clusterdVersion())
    .alias('version', 'V')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error) => {
      if (error) fail(error);
      // yargs spreads some messages over lines ("Invalid values:\n  Argument: balance, Given: ..."): one line.
      let line = (message ?? 'invalid command line').replace(/\s*\n\s*/g, ' ').trim();
      // A word where the command goes: say that it is no command, then what yargs suggests.
      const command = argv.find((token) => !token.startsWith('-'));
      if (command !== undefined && !COMMANDS.includes(command) && (line.startsWith('Did you mean') || line === `Unknown argument: ${command}`)) {
        line = `unknown command \`${command}\`${line.startsWith('Did you mean') ? ` (${line.replace(/^Did/, 'did')})` : ''}`;
      }
      // No command, but a flag: the flag is what is wrong (`clusterd --bogus`, `clusterd -v`).
      const flag = argv.find((token) => token.startsWith('-'));
      if (command === undefined && flag !== undefined && line === 'a command is required') {
        line = flag === '-v' ? 'unknown flag `-v` (did you mean -V, --version?)' : `unknown flag \`${flag}\`, and a command is required`;
      }
      // `status a --name b`: NAME given twice, which yargs calls the first an unknown argument.
      if (before !== undefined && line.startsWith('Unknown argument')) {
        line = `the cluster's NAME was given twice, as \`${before.word}\` and as \`--name ${before.name}\`: give it once`;
      }
      // `--node-arg --max-old-space-size=512`, `--name -x`: the value was read as a flag of clusterd's own.
      const swallowed = unknownAfterFlag(line, argv, valueFlags(declared));
      if (swallowed) line = needsValue(swallowed.flag, swallowed.value).message;
      usage(unknownAsTyped(line, argv));
    })
    .parse();
}

/**
 * The words after `--` of a control command are its operands, as for any command-line tool:
 * `status -- api` is `status api` (yargs left them aside, and the command looked for the only
 * cluster). They fill the positionals left empty, in order; a word beyond them is refused, as
 * yargs refuses one before `--`. Start's go to the app.
 */
function operandsAfterDashes(args: Record<string, unknown> & { _: unknown[] }, argv: readonly string[]): void {
  const command = String(args._[0]);
  const count = ((args['--'] ?? []) as unknown[]).length;
  if (command === 'start' || count === 0) return;
  // The words as typed, the line's last ones: yargs made numbers of them (`-0` became `0`).
  const words = argv.slice(argv.length - count);
  for (const key of POSITIONALS.get(command) ?? []) {
    if (args[key] !== undefined || words.length === 0) continue;
    const word = words.shift();
    args[key] = word;
    args[key.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())] = word;
  }
  args['--'] = [];
  if (words.length > 0) throw new UsageError(`Unknown argument${words.length === 1 ? '' : 's'}: ${words.join(', ')}`);
}

/** Flags whose values start with a dash (node's own flags). */
const DASHED_VALUES = ['--node-arg'];

/** The flags that take a value (`--name`), as the parser that failed declares them. */
function valueFlags(options: DeclaredOptions | undefined): Set<string> {
  const names = [...(options?.string ?? []), ...(options?.array ?? [])].filter((name) => !(options?.boolean ?? []).includes(name));
  return new Set(names.map((name) => `${name.length === 1 ? '-' : '--'}${name}`));
}

/**
 * A flag given with no `=` and followed by a word starting with `-` that yargs called unknown: the
 * value meant for it. `--node-arg --max-old-space-size=512`, a flag that takes a value (`--name -x`,
 * one of `takesValue`), or a negative number (`--max-memory -1G` read as the short flags -1 and -G:
 * "Unknown arguments: 1, G").
 */
function unknownAfterFlag(message: string, argv: readonly string[], takesValue: Set<string>): { flag: string; value: string } | null {
  if (!message.startsWith('Unknown argument')) return null;
  const unknown = message.replace(/^Unknown arguments?: /, '').split(', ');
  const end = argv.indexOf('--');
  const tokens = end === -1 ? argv : argv.slice(0, end);
  for (let index = 0; index < tokens.length - 1; index++) {
    const [flag, value] = [tokens[index]!, tokens[index + 1]!];
    const name = /^--?([^=]+)/.exec(value)?.[1];
    if ((DASHED_VALUES.includes(flag) || takesValue.has(flag)) && name !== undefined && unknown.includes(name)) return { flag, value };
    // `--name -xy`, read as the short flags -x and -y; some may be clusterd's own (`--name -bad`: -d is
    // --daemon, and it said "Unknown arguments: b, a").
    const letters = /^-([^-=][^=]*)$/.exec(value)?.[1];
    if (takesValue.has(flag) && letters !== undefined && [...letters].some((letter) => unknown.includes(letter))) return { flag, value };
    const negative = /^-(\d[^=]*)$/.exec(value)?.[1];
    if (flag.startsWith('--') && !flag.includes('=') && negative !== undefined && [...negative].every((letter) => unknown.includes(letter) || /\d/.test(letter))) return { flag, value };
  }
  return null;
}

/**
 * yargs names an unknown flag without its dashes (`Unknown argument: bogus`), and a long one with a
 * dash twice (`bogus-flag, bogusFlag`): each as it was typed (`--bogus`, `--no-bogus`, `-x`, `--Bogus`,
 * `-X`), once. A word that is no flag (a second NAME) stays as it is.
 */
function unknownAsTyped(line: string, argv: readonly string[]): string {
  const listed = /^Unknown arguments?: (.+)$/.exec(line)?.[1];
  if (listed === undefined) return line;
  const end = argv.indexOf('--');
  const tokens = end === -1 ? argv : argv.slice(0, end);
  const names = listed.split(', ');
  // yargs' camelCase copy of a name with dashes: the name itself, as typed, is listed too.
  const camel = (name: string): string => name.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase());
  const twins = new Set(names.filter((name) => camel(name) !== name).map(camel));
  const typed = [...new Set(names.filter((name) => !twins.has(name)).map((name) => flagAsTyped(name, tokens)))];
  return `Unknown argument${typed.length === 1 ? '' : 's'}: ${typed.join(', ')}`;
}

/** `bogus` as the command line has it: `--bogus`, `--no-bogus`, `-b` (alone or in a group such as `-xb`), or the word itself. */
function flagAsTyped(name: string, tokens: readonly string[]): string {
  const long = [`--${name}`, `--no-${name}`].find((flag) => tokens.some((token) => token === flag || token.startsWith(`${flag}=`)));
  if (long !== undefined) return long;
  const short = name.length === 1 && tokens.some((token) => /^-[^-]/.test(token) && token.slice(1).split('=')[0]!.includes(name));
  return short ? `-${name}` : name;
}
