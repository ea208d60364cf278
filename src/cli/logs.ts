import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, parseWorkerId, withControlOptions, type ControlArgs } from './control-args.js';
import { logLine } from './stack-view.js';
import type { LogView } from '../control/types.js';
import type { ClusterdError } from '../errors.js';
import { RECENT_LINES } from '../master/logs.js';
import { parseInteger } from '../options.js';

interface LogsArgs extends ControlArgs {
  name?: string;
  follow: boolean;
  worker?: string;
  lines: string;
  json: boolean;
}

export const logsCommand: CommandModule<object, LogsArgs> = {
  command: 'logs [name]',
  describe: "Print the workers' recent output lines; -f keeps streaming new ones",
  builder: (yargs) =>
    withControlOptions(
      yargs
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep printing new lines until Ctrl-C' })
        .option('worker', { type: 'string', describe: 'Only this worker id\'s lines' })
        .option('lines', { alias: 'n', type: 'string', default: '100', describe: `How many recent lines to print first, 0 to ${RECENT_LINES} (what the master keeps)` })
        .option('json', { type: 'boolean', default: false, describe: 'One {"time","worker","pid","stream","message"} object per line' })
        .epilog('Lines a worker wrote to stderr go to stderr, the rest to stdout, each as `[w<id>] line`.'),
    ),
  handler: async (args) => {
    try {
      const lines = parseInteger('lines', args.lines, { min: 0, max: RECENT_LINES });
      const worker = args.worker === undefined ? 0 : parseWorkerId(args.worker);
      await followLogs(args, { worker, lines });
    } catch (error) {
      fail(error);
    }
  },
};

async function followLogs(args: LogsArgs, { worker, lines }: { worker: number; lines: number }): Promise<void> {
  const { client, status } = await connectFromArgs(args);
  const print = (entry: LogView): void => {
    if (args.json) process.stdout.write(`${JSON.stringify(entry)}\n`);
    else process[entry.stream].write(`${logLine(entry)}\n`);
  };
  await new Promise<void>((resolve, reject) => {
    let finished = false;
    const finish = (error: Error | null, note?: string): void => {
      if (finished) return;
      finished = true;
      subscription.cancel();
      client.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.stdout.off('error', onOutputError);
      if (note) process.stderr.write(`clusterd: ${note}\n`);
      if (error) reject(error);
      else resolve();
    };
    const onSignal = (): void => finish(null);
    // `clusterd logs | head`: the reader is gone, which is not an error.
    const onOutputError = (error: NodeJS.ErrnoException): void => finish(error.code === 'EPIPE' ? null : error);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.stdout.on('error', onOutputError);
    const subscription = client.logs(
      { follow: args.follow, worker, lines },
      {
        onEntry: print,
        onEnd: (error: ClusterdError | null) => finish(error, error === null && args.follow ? `cluster ${status.name} stopped` : undefined),
      },
    );
  });
}
