import type { CommandModule } from 'yargs';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import { failOperation, printOperation } from './operation.js';
import { MAX_INSTANCES, parseInteger } from '../options.js';

interface ReloadArgs extends ControlArgs {
  name?: string;
  parallel: string;
  json: boolean;
}

export const reloadCommand: CommandModule<object, ReloadArgs> = {
  command: 'reload [name]',
  describe: 'Replace every worker with one running the current code, without dropping a request',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .option('parallel', { type: 'string', default: '1', describe: `Workers replaced at a time (1 to ${MAX_INSTANCES})` })
        .option('json', { type: 'boolean', default: false, describe: 'Print each step as a JSON object, one per line' })
        .epilog(
          'Each new worker is ready before the one it replaces stops taking connections and drains within --grace. ' +
            'If a new worker fails to boot, the reload stops, the old workers keep serving, and its output is printed (exit 3). ' +
            'A reload or restart already in progress: refused (exit 9), never queued.',
        ),
    ),
  handler: async (args) => {
    try {
      const parallel = parseInteger('parallel', args.parallel, { min: 1, max: MAX_INSTANCES });
      const { client } = await connectFromArgs(args);
      try {
        await printOperation(args.json, 'reload', (onProgress) => client.reload({ parallel }, onProgress));
      } finally {
        client.close();
      }
    } catch (error) {
      failOperation(error);
    }
  },
};
