// The options every control command shares: which cluster, and how to reach a remote one.
import type { Argv } from 'yargs';
import { connect, type Connection } from '../control/discovery.js';
import { parseControlAddress, readControlToken, TOKEN_ENV } from '../control/options.js';
import { UsageError } from '../errors.js';
import { MAX_INSTANCES } from '../options.js';

export interface ControlArgs {
  control?: string;
  'control-token'?: string;
  'control-token-file'?: string;
}

/** Adds --control, --control-token and --control-token-file. */
export function withControlOptions<T>(yargs: Argv<T>): Argv<T & ControlArgs> {
  return yargs
    .option('control', {
      type: 'string',
      describe: 'Reach a remote cluster on its TCP control listener, HOST:PORT, instead of this user\'s local ones',
    })
    .option('control-token', { type: 'string', describe: `Token for --control (or set $${TOKEN_ENV}, which stays out of ps)` })
    .option('control-token-file', { type: 'string', describe: 'Read the token for --control from this file' })
    .group(['control', 'control-token', 'control-token-file'], 'Remote clusters:') as Argv<T & ControlArgs>;
}

/** Connects to the cluster the command line names (or the only one running). */
export function connectFromArgs(args: ControlArgs & { name?: string | undefined }): Promise<Connection> {
  if (args.control === undefined) return connect({ name: args.name });
  const address = parseControlAddress(args.control);
  const token = readControlToken({ token: args['control-token'], tokenFile: args['control-token-file'] });
  return connect({ name: args.name, control: { ...address, token } });
}

/**
 * `[NAME] TARGET`: one positional is the target (a worker id, a count), two are the cluster's
 * name and the target. So `restart 2` and `restart api 2` both read right.
 */
export function nameAndTarget(positionals: readonly (string | number | undefined)[], what: string): { name: string | undefined; target: string } {
  const given = positionals.filter((value): value is string | number => value !== undefined).map(String);
  if (given.length === 1) return { name: undefined, target: given[0]! };
  if (given.length === 2) return { name: given[0], target: given[1]! };
  throw new UsageError(given.length === 0 ? `Expected ${what}` : `Expected [NAME] and ${what}, got ${given.length} arguments: ${given.join(' ')}`);
}

/** A worker id as typed on the command line: 1 to MAX_INSTANCES (ids are 1..N). */
export function parseWorkerId(text: string): number {
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(id >= 1 && id <= MAX_INSTANCES)) throw new UsageError(`Expected WORKER_ID to be an integer from 1 to ${MAX_INSTANCES}, got \`${text}\``);
  return id;
}

/**
 * A `scale` target as typed: `N`, `+K` or `-K`, with N and K at most MAX_INSTANCES. The master
 * checks the resulting count (it alone knows the current one); this catches the typo early.
 */
export function parseScaleSpec(text: string): string {
  const match = /^[+-]?(\d+)$/.exec(text.trim());
  if (!match || Number(match[1]) > MAX_INSTANCES) {
    throw new UsageError(`Expected a worker count N, +K or -K with N and K from 0 to ${MAX_INSTANCES}, got \`${text}\``);
  }
  return text.trim();
}
