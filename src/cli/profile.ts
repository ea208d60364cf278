import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { fail } from './fail.js';
import { connectFromArgs, nameAndTarget, parseWorkerId, WORKER_ID_TARGET, withControlOptions, type ControlArgs } from './control-args.js';
import { blockedNote, isCpuProfile, ownPrefixes, selfTimeLines, topSelfTime } from './profile-view.js';
import { PROFILE_DURATION_MS, profileFileName } from '../control/requests.js';
import { ClusterdError, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { parseDuration } from '../options.js';

interface ProfileArgs extends ControlArgs {
  name?: string;
  'worker-id'?: string;
  duration: string;
  out?: string;
}


export const profileCommand: CommandModule<object, ProfileArgs> = {
  command: 'profile [name] [worker-id]',
  describe: "Take a CPU profile of a worker's main thread while it runs, and print where its time goes",
  builder: (yargs) =>
    withControlOptions(
      yargs
        .usage('$0 profile [NAME] <WORKER_ID> [--duration 5s] [--out FILE]')
        .positional('name', { type: 'string', describe: 'NAME (may be left out when only one cluster runs), or WORKER_ID' })
        .positional('worker-id', { type: 'string', describe: 'WORKER_ID, when NAME is given' })
        .option('duration', { type: 'string', default: '5s', describe: 'How long to sample (100ms to 5m)' })
        .option('out', { type: 'string', describe: 'Where to write the .cpuprofile (default: <cluster>-w<id>-<time>.cpuprofile here)' })
        .epilog('The file opens in Chrome DevTools (Performance) and speedscope. Nothing needs enabling at start: the master opens the worker\'s inspector for the profile.'),
    ),
  handler: async (args) => {
    try {
      const { name, target } = nameAndTarget([args.name, args['worker-id']], WORKER_ID_TARGET('profile'));
      const id = parseWorkerId(target);
      const durationMs = parseDuration('duration', args.duration, PROFILE_DURATION_MS);
      const { client, status } = await connectFromArgs({ ...args, name });
      try {
        // Where it goes is checked first: a profile sampled for minutes, then lost to a typo, is not.
        const file = resolve(args.out ?? profileFileName(status.name, id));
        checkWritable(file);
        const outcome = await client.profile(id, { durationMs });
        if ('blocked' in outcome) {
          process.stderr.write(`${blockedNote(id, outcome.blocked, { runtimePrefixes: status.runtimePrefixes }).join('\n')}\n`);
          process.exit(ExitCode.BLOCKED);
        }
        const profile: unknown = JSON.parse(outcome.json.toString('utf8'));
        if (!isCpuProfile(profile)) throw new ClusterdError('ERR_CLUSTERD_CONTROL', 'the master sent something that is not a CPU profile');
        // Written whole under a temporary name, then renamed: a file of this name is a whole profile.
        const partial = `${file}.partial`;
        try {
          writeFileSync(partial, outcome.json);
          renameSync(partial, file);
        } catch (error) {
          rmSync(partial, { force: true });
          throw new ClusterdError('ERR_CLUSTERD_USAGE', `cannot write ${file}: ${(error as Error).message}`);
        }
        const samples = profile.samples?.length ?? profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
        const seconds = ((profile.endTime - profile.startTime) / 1e6).toFixed(1);
        process.stdout.write(`wrote ${file} (${samples} samples over ${seconds} s of worker ${id})\n\nmost self time:\n${selfTimeLines(topSelfTime(profile, 10, { ownPrefixes: ownPrefixes(status.runtimePrefixes) })).join('\n')}\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      fail(error);
    }
  },
};

/** The profile can be written to `file`: its folder exists and may be written to, and it is no folder itself. */
function checkWritable(file: string): void {
  const folder = dirname(file);
  const kind = (path: string): 'directory' | 'other' | null => {
    let stats;
    try {
      stats = statSync(path, { throwIfNoEntry: false });
    } catch {
      // ENOTDIR (a file where a directory should be in the path), ELOOP, EACCES: nothing to write to.
      return null;
    }
    return stats === undefined ? null : stats.isDirectory() ? 'directory' : 'other';
  };
  let why: string | null = null;
  if (kind(file) === 'directory') why = 'is a directory';
  else if (kind(folder) !== 'directory') why = `has no directory ${folder}`;
  else {
    try {
      accessSync(folder, constants.W_OK);
    } catch {
      why = `is in ${folder}, which this user cannot write to`;
    }
  }
  if (why !== null) throw new UsageError(`--out: ${file} ${why}`);
}
