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
 * for the flag checks to refuse.
 */
function nameFlagAsPositional(argv: readonly string[]): string[] {
  const command = argv.findIndex((token) => !token.startsWith('-'));
  if (command === -1 || !NAMED_COMMANDS.includes(argv[command]!)) return [...argv];
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const at = argv.flatMap((token, index) => (index < end && (token === '--name' || token.startsWith('--name=')) ? [index] : []));
  if (at.length !== 1) return [...argv];
  const index = at[0]!;
  const joined = argv[index]!.startsWith('--name=');
  const value = joined ? argv[index]!.slice('--name='.length) : argv[index + 1];
  if (value === undefined || (!joined && (index + 1 >= end || value.startsWith('-')))) return [...argv];
  const rest = argv.filter((_, position) => position !== index && (joined || position !== index + 1));
  // NAME given both ways, the same: once (`status api --name api` said "Unknown argument: api").
  if (rest[command + 1] !== value) rest.splice(command + 1, 0, value);
  return rest;
}

export function main(raw: string[]): void {
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  const argv = nameFlagAsPositional(raw);
  yargs(argv)
    .scriptName('clusterd')
    .usage('$0 <command> [options]\n\nRun a Node.js server on every core, and see each worker\'s event loop.')
    .command(COMMAND_MODULES as CommandModule[])
    // A reader that stops reading (`clusterd reload --json | head -3`) ends a command quietly, as it
    // ends `git log`: what it asked for is done or under way in the master either way. Not `start`:
    // there this process is the master, which keeps the cluster running whatever its output does.
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
      // `--node-arg --max-old-space-size=512`: the value was read as a flag of clusterd's own.
      const swallowed = unknownAfterFlag(line, argv);
      if (swallowed) line = needsValue(swallowed.flag, swallowed.value).message;
      process.stderr.write(`clusterd: ${line} (see clusterd --help)\n`);
      process.exit(ExitCode.USAGE);
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

/**
 * A flag given with no `=` and followed by a word starting with `-` that yargs called unknown: the
 * value meant for it. `--node-arg --max-old-space-size=512`, or a negative number (`--max-memory
 * -1G` read as the short flags -1 and -G: "Unknown arguments: 1, G").
 */
function unknownAfterFlag(message: string, argv: readonly string[]): { flag: string; value: string } | null {
  if (!message.startsWith('Unknown argument')) return null;
  const unknown = message.replace(/^Unknown arguments?: /, '').split(', ');
  const end = argv.indexOf('--');
  const tokens = end === -1 ? argv : argv.slice(0, end);
  for (let index = 0; index < tokens.length - 1; index++) {
    const [flag, value] = [tokens[index]!, tokens[index + 1]!];
    const name = /^--?([^=]+)/.exec(value)?.[1];
    if (DASHED_VALUES.includes(flag) && name !== undefined && unknown.includes(name)) return { flag, value };
    const negative = /^-(\d[^=]*)$/.exec(value)?.[1];
    if (flag.startsWith('--') && !flag.includes('=') && negative !== undefined && [...negative].every((letter) => unknown.includes(letter) || /\d/.test(letter))) return { flag, value };
  }
  return null;
}
