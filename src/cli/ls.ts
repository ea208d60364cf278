import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import { SILENT, surveyClusters } from '../control/discovery.js';
import { runtimeDir } from '../control/paths.js';
import type { ClusterView } from '../control/types.js';
import { lsJson, lsLines } from './views.js';

interface LsArgs extends ControlArgs {
  json: boolean;
}

export const lsCommand: CommandModule<object, LsArgs> = {
  command: 'ls',
  describe: 'List the running clusters of this user: name, master pid, workers, uptime, where each listens',
  builder: (yargs) =>
    withControlOptions(yargs.option('json', { type: 'boolean', default: false, describe: 'Print a JSON array' })),
  handler: async (args) => {
    try {
      let clusters: ClusterView[];
      let silent: string[] = [];
      if (args.control !== undefined) {
        const { client, status } = await connectFromArgs(args);
        client.close();
        clusters = [status];
      } else {
        const survey = await surveyClusters();
        clusters = survey.running.map((cluster) => cluster.status);
        silent = survey.silent;
      }
      // On stderr, as the no-cluster line: scripts reading stdout (or --json) see the same rows.
      for (const name of silent) process.stderr.write(`${name}: ${SILENT}\n`);
      if (args.json) {
        process.stdout.write(`${JSON.stringify(lsJson(clusters), null, 2)}\n`);
      } else if (clusters.length === 0) {
        // Not an error: "nothing runs" is a fine answer to "what runs?". Said on stderr so that
        // scripts reading stdout see no rows.
        if (silent.length === 0) process.stderr.write(`no running clusters (looked in ${runtimeDir()})\n`);
      } else {
        process.stdout.write(`${lsLines(clusters).join('\n')}\n`);
      }
    } catch (error) {
      fail(error);
    }
  },
};
