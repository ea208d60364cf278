import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, nameAndTarget, parseWorkerId, WORKER_ID_TARGET, withControlOptions, type ControlArgs } from './control-args.js';
import { stackLines, type StackJson } from './stack-view.js';

interface StackArgs extends ControlArgs {
  name?: string;
  'worker-id'?: string;
  json: boolean;
}

export const stackCommand: CommandModule<object, StackArgs> = {
  // Two optional positionals, as for restart.
  command: 'stack [name] [worker-id]',
  describe: "Print a worker's current JavaScript stack, idle, busy or blocked",
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 stack [NAME] <WORKER_ID>')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or WORKER_ID' })
        .positional('worker-id', { type: 'string', describe: 'WORKER_ID, when NAME is given' })
        .option('json', { type: 'boolean', default: false, describe: 'Print {"id","pid","state","frames":[{"functionName","url","line","column"}]}' })
        .epilog('The master takes the stack through the worker\'s inspector (started on demand), so a worker stuck in a busy loop answers too.'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['worker-id']], WORKER_ID_TARGET('stack'));
      const id = parseWorkerId(target);
      const { client, status } = await connectFromArgs({ ...args, name });
      try {
        const { state, frames } = await client.stack(id);
        const report: StackJson = { id, pid: status.workers.find((worker) => worker.id === id)?.pid ?? 0, state, frames };
        process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : stackLines(report).join('\n')}\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      fail(error);
    }
  },
};
