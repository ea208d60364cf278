import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { outputWidth } from './format.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import { statusJson, statusLines } from './views.js';

interface StatusArgs extends ControlArgs {
  name?: string;
  json: boolean;
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status [name]',
  describe: 'One row per worker: pid, state, req/s, event-loop lag p50/p99/max, ELU, CPU, RSS, fitted to the terminal\'s width',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print JSON: lag in ms, elu 0..1, cpu in % of one core, memory in bytes' })
        .example('$0 status', 'the only running cluster')
        .example('$0 status api --json | jq \'.workers[].lag.p99\'', 'p99 loop lag of each worker of `api`, in ms'),
    ),
  handler: async (args) => {
    try {
      const { client, status } = await connectFromArgs(args);
      client.close();
      const text = args.json ? JSON.stringify(statusJson(status), null, 2) : statusLines(status, outputWidth()).join('\n');
      process.stdout.write(`${text}\n`);
    } catch (error) {
      fail(error);
    }
  },
};
