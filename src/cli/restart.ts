import type { CommandModule } from 'yargs';
import { connectFromArgs, nameAndTarget, parseWorkerId, WORKER_ID_TARGET, withControlOptions, type ControlArgs } from './control-args.js';
import { failOperation, printOperation } from './operation.js';

interface RestartArgs extends ControlArgs {
  name?: string;
  'worker-id'?: string;
  json: boolean;
}

export const restartCommand: CommandModule<object, RestartArgs> = {
  // Two optional positionals, sorted out by nameAndTarget: `restart 2` is worker 2 of the only cluster.
  command: 'restart [name] [worker-id]',
  describe: 'Replace one worker: its successor is ready before it drains',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 restart [NAME] <WORKER_ID>')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or WORKER_ID' })
        .positional('worker-id', { type: 'string', describe: 'WORKER_ID, when NAME is given' })
        .option('json', { type: 'boolean', default: false, describe: 'Print each step as a JSON object, one per line' })
        .example('$0 restart 2', 'worker 2 of the only running cluster')
        .example('$0 restart api 2', 'worker 2 of cluster api'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['worker-id']], WORKER_ID_TARGET('restart'));
      const id = parseWorkerId(target);
      const { client } = await connectFromArgs({ ...args, name });
      try {
        await printOperation(args.json, 'restart', (onProgress) => client.restart(id, onProgress));
      } finally {
        client.close();
      }
    } catch (error) {
      failOperation(error);
    }
  },
};
