// The options every control command shares: which cluster, and how to reach a remote one.
import type { Argv } from 'yargs';
import { connect, type Connection } from '../control/client.js';
import { parseControlAddress, readControlToken, TOKEN_ENV } from '../control/options.js';

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
