// The options every control command shares: which cluster, and how to reach a remote one.
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { connect, type Connection } from '../control/discovery.js';
import { CLUSTER_NAME, runtimeDir, socketPath } from '../control/paths.js';
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
export async function connectFromArgs(args: ControlArgs & { name?: string | undefined }): Promise<Connection> {
  // `clusterd stop "$NAME"` with NAME unset: refused, not read as no NAME (the only cluster).
  if (args.name === '') throw new UsageError('Expected NAME, the cluster\'s name, got an empty argument');
  if (args.control === undefined) return connect({ name: args.name });
  const address = parseControlAddress(args.control);
  const token = readControlToken({ token: args['control-token'], tokenFile: args['control-token-file'] });
  return connect({ name: args.name, control: { ...address, token } });
}

/** What a command takes after [NAME]: its name in the usage, its form, and the usage line. */
export interface TargetSpec {
  /** As the usage writes it: `WORKER_ID`, `the worker count N|+K|-K`. */
  label: string;
  /** Whether a word has the target's form (it may still be out of range). */
  form: RegExp;
  usage: string;
}

export const WORKER_ID_TARGET = (command: string): TargetSpec => ({ label: 'WORKER_ID', form: /^\d+$/, usage: `clusterd ${command} [NAME] <WORKER_ID>` });

/**
 * `[NAME] TARGET`: one positional is the target (a worker id, a count), two are the cluster's
 * name and the target. So `restart 2` and `restart api 2` both read right. A lone word that is no
 * target but names a cluster running here is that NAME with the target left out (`restart api`):
 * said so, rather than that `api` is no worker id. An empty word is refused as missing.
 */
export function nameAndTarget(positionals: readonly (string | number | undefined)[], target: TargetSpec, dir?: string): { name: string | undefined; target: string } {
  const given = positionals.filter((value): value is string | number => value !== undefined).map(String);
  const missing = (name?: string): UsageError => new UsageError(`Missing ${target.label}${name ? ` after NAME \`${name}\`` : ''}: ${target.usage}`);
  if (given.length === 0) throw missing();
  if (given.length === 1) {
    const only = given[0]!;
    if (only === '') throw missing();
    if (!target.form.test(only.trim()) && namesLocalCluster(only, dir)) throw missing(only);
    return { name: undefined, target: only };
  }
  if (given.length === 2) {
    if (given[1] === '') throw missing(given[0]);
    return { name: given[0], target: given[1]! };
  }
  throw new UsageError(`Expected [NAME] and ${target.label}, got ${given.length} arguments: ${given.join(' ')}`);
}

/** Whether a cluster named `name` has its control socket in the runtime directory. */
function namesLocalCluster(name: string, dir?: string): boolean {
  try {
    return CLUSTER_NAME.test(name) && existsSync(socketPath(name, dir ?? runtimeDir()));
  } catch {
    // An unusable runtime directory: connecting says so, later.
    return false;
  }
}

/** A worker id as typed on the command line: 1 to MAX_INSTANCES (ids are 1..N); spaces around it are dropped, as for scale. */
export function parseWorkerId(text: string): number {
  const id = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(id >= 1 && id <= MAX_INSTANCES)) throw new UsageError(`Expected WORKER_ID to be an integer from 1 to ${MAX_INSTANCES}, got \`${text}\``);
  return id;
}

/**
 * A `scale` target as typed: `N` from 1 to MAX_INSTANCES, or `+K` or `-K` with K at most
 * MAX_INSTANCES. The master checks the resulting count (it alone knows the current one); this
 * catches the typo, and `scale 0`, before looking for a cluster.
 */
export function parseScaleSpec(text: string): string {
  const match = /^([+-]?)(\d+)$/.exec(text.trim());
  if (!match || Number(match[2]) > MAX_INSTANCES) {
    throw new UsageError(`Expected a worker count N from 1 to ${MAX_INSTANCES}, or +K or -K with K at most ${MAX_INSTANCES}, got \`${text}\``);
  }
  if (match[1] === '' && Number(match[2]) === 0) throw new UsageError('cannot scale to 0 workers: at least one worker must run');
  return text.trim();
}
