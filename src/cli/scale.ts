import type { CommandModule } from 'yargs';
import { failOperation } from './operation.js';
import { MAX_INSTANCES } from '../options.js';
import { connectFromArgs, nameAndTarget, parseScaleSpec, withControlOptions, type ControlArgs } from './control-args.js';

interface ScaleArgs extends ControlArgs {
  name?: string | number;
  'count'?: string | number;
  json: boolean;
}

export const scaleCommand: CommandModule<object, ScaleArgs> = {
  // `scale -1` reads as a count because yargs-parser takes a bare negative number for a value;
  // `scale -- -1` works too (main.ts puts the words after `--` in the positionals). Two optional
  // positionals, as for restart.
  command: 'scale [name] [count]',
  describe: `Set the number of workers: N, +K or -K (1 to ${MAX_INSTANCES} workers); scaling down drains the workers with the highest ids`,
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 scale [NAME] <N|+K|-K>')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or the count' })
        .positional('count', { type: 'string', describe: 'The count, when NAME is given' })
        .option('json', { type: 'boolean', default: false, describe: 'Print {"name":..., "workers":N}' })
        .example('$0 scale 4', 'four workers')
        .example('$0 scale api -1', 'one worker fewer in cluster api (never fewer than one)'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['count']], {
        label: 'the worker count N|+K|-K',
        form: /^[+-]?\d+$/,
        usage: 'clusterd scale [NAME] <N|+K|-K>',
      });
      const spec = parseScaleSpec(target);
      const { client, status } = await connectFromArgs({ ...args, name });
      try {
        const workers = await client.scale(spec);
        const text = args.json ? JSON.stringify({ name: status.name, workers }) : `${status.name}: ${workers} worker${workers === 1 ? '' : 's'}, all ready`;
        process.stdout.write(`${text}\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      // A new worker that failed to boot: its last output under the line, as for reload.
      failOperation(error);
    }
  },
};
