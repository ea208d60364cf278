import { performance } from 'node:perf_hooks';
import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, nameAndTarget, parseWorkerId, WORKER_ID_TARGET, withControlOptions, type ControlArgs } from './control-args.js';
import { blockedNote, loopLines } from './profile-view.js';
import { LOOP_DURATION_MS } from '../control/requests.js';
import { ExitCode } from '../exit-codes.js';
import { parseDuration } from '../options.js';

interface LoopArgs extends ControlArgs {
  name?: string;
  'worker-id'?: string;
  duration: string;
  json: boolean;
}

export const loopCommand: CommandModule<object, LoopArgs> = {
  command: 'loop [name] [worker-id]',
  describe: "Where a worker's event loop spends its time: per phase, per callback",
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 loop [NAME] <WORKER_ID> [--duration 5s] [--json]')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or WORKER_ID' })
        .positional('worker-id', { type: 'string', describe: 'WORKER_ID, when NAME is given' })
        .option('duration', { type: 'string', default: '5s', describe: 'How long to measure (100ms to 1m)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print {"worker","durationMs","phases":{...},"iterationsPerSec","callbacks":[...],"overheadPct"}; a blocked worker: {"worker","blocked":true,"blockedMs","frames":[...]}, exit 11' })
        .epilog('Measured in the worker with async_hooks for the window only; what that cost is printed with the result.'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['worker-id']], WORKER_ID_TARGET('loop'));
      const id = parseWorkerId(target);
      const durationMs = parseDuration('duration', args.duration, LOOP_DURATION_MS);
      const { client, status } = await connectFromArgs({ ...args, name });
      try {
        const asked = performance.now();
        const view = await client.loop(id, { durationMs });
        if ('blocked' in view) {
          // Blocked once the window was over: it ran, its answer did not come (the master found the loop blocked when asked, at once).
          process.stderr.write(`${blockedNote(id, view.blocked, { runtimePrefixes: status.runtimePrefixes, during: performance.now() - asked >= durationMs }).join('\n')}\n`);
          // A script that reads stdout as JSON gets JSON, which says so, as `stack --json` would.
          const { blockedMs, frames } = view.blocked;
          if (args.json) process.stdout.write(`${JSON.stringify({ worker: id, blocked: true, blockedMs, frames }, null, 2)}\n`);
          process.exitCode = ExitCode.BLOCKED;
          return;
        }
        const { worker, durationMs: measured, phases, iterationsPerSec, callbacks, overheadPct } = view;
        const report = { worker, durationMs: measured, phases, iterationsPerSec, callbacks, overheadPct };
        process.stdout.write(`${args.json ? JSON.stringify(report, null, 2) : loopLines(id, report).join('\n')}\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      fail(error);
    }
  },
};
