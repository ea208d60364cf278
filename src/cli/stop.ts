import type { CommandModule } from 'yargs';
import { setTimeout as pause } from 'node:timers/promises';
import { fail } from './fail.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import type { ControlClient } from '../control/client.js';
import { NOT_RUNNING } from '../control/status-codes.js';
import { ClusterdError } from '../errors.js';

interface StopArgs extends ControlArgs {
  name?: string;
}

/** Waited beyond the master's --grace: its last workers are killed at the grace, then it exits. */
export const STOP_MARGIN_MS = 5_000;
/** Assumed when the master does not say (an older one): clusterd start's default --grace. */
const DEFAULT_GRACE_MS = 10_000;
const POLL_MS = 50;

export const stopCommand: CommandModule<object, StopArgs> = {
  command: 'stop [name]',
  describe: 'Stop the cluster gracefully (workers drain within its --grace) and wait until the master has exited',
  builder: (yargs) =>
    withControlOptions(
      yargs
        .positional('name', { type: 'string', describe: 'The cluster (may be left out when only one runs)' })
        .epilog(`Waits for the master to exit for its --grace plus ${STOP_MARGIN_MS / 1000}s; exit 10 if it has not by then.`),
    ),
  handler: async (args) => {
    try {
      const { client, status } = await connectFromArgs(args);
      try {
        const { masterPid, graceMs } = await client.stop();
        const pid = masterPid || status.masterPid;
        const waitMs = (graceMs || DEFAULT_GRACE_MS) + STOP_MARGIN_MS;
        const gone = client.target.transport === 'unix' ? () => !alive(pid) : () => notAnswering(client);
        if (!(await until(gone, waitMs))) {
          throw new ClusterdError(
            'ERR_CLUSTERD_STOP_TIMEOUT',
            `cluster ${status.name} (master pid ${pid}) is still running ${Math.round(waitMs / 1000)}s after it was asked to stop`,
          );
        }
        process.stdout.write(`stopped cluster ${status.name} (master pid ${pid})\n`);
      } finally {
        client.close();
      }
    } catch (error) {
      fail(error);
    }
  },
};

/** Polls `done` until it holds or `timeoutMs` passed; the master gives no other sign it exited. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() >= deadline) return false;
    await pause(POLL_MS);
  }
  return true;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, as another user's process.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A remote master: gone once its control listener refuses connections. */
async function notAnswering(client: ControlClient): Promise<boolean> {
  try {
    await client.status({ timeoutMs: 1_000 });
    return false;
  } catch (error) {
    return error instanceof ClusterdError && error.code === NOT_RUNNING;
  }
}
