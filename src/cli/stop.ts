import type { CommandModule } from 'yargs';
import { setTimeout as pause } from 'node:timers/promises';
import { fail } from './fail.js';
import { connectFromArgs, withControlOptions, type ControlArgs } from './control-args.js';
import type { ControlClient } from '../control/client.js';
import type { StopOutcome } from '../master/status.js';
import { surveyClusters } from '../control/discovery.js';
import { NOT_RUNNING } from '../control/status-codes.js';
import { ClusterdError, oneLine, UsageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { isRunning } from '../system/process-state.js';

interface StopArgs extends ControlArgs {
  name?: string;
  all?: boolean;
}

/**
 * Waited beyond the master's --grace: its last workers are killed at the grace, then it exits, after
 * at most EXIT_FLUSH_LIMIT_MS for its own output (src/master/exit-flush.ts).
 */
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
        .option('all', { type: 'boolean', default: false, describe: 'Stop every cluster of this user on this machine, at the same time' })
        .epilog(
          `Waits for the master to exit for its --grace plus ${STOP_MARGIN_MS / 1000}s; exit 10 if it has not by then. ` +
            'Workers killed rather than drained are named on stderr, with what they still had open: exit 5 (at --grace; 6: a forced stop).',
        ),
    ),
  handler: async (args) => {
    try {
      if (!args.all) {
        const stopped = await stopOne(args);
        for (const killed of stopped.killed) process.stderr.write(`clusterd: ${killed}\n`);
        process.stdout.write(`${stopped.line}\n`);
        process.exitCode = stopped.exitCode;
        return;
      }
      if (args.name !== undefined || args.control !== undefined) throw new UsageError('Expected --all alone: it stops every local cluster, so it takes no NAME and no --control');
      await stopAll();
    } catch (error) {
      fail(error);
    }
  },
};

/** A stopped cluster: the line to print, the master's lines for the workers it killed, and the exit code they make. */
interface Stopped {
  line: string;
  killed: string[];
  exitCode: number;
}

/** Stops one cluster and waits for its master to exit. */
async function stopOne(args: StopArgs): Promise<Stopped> {
  const { client, status } = await connectFromArgs(args);
  try {
    const askedAt = Date.now();
    const asked = await askToStop(client);
    const pid = asked?.masterPid || status.masterPid;
    // Asked again, to answer once its workers are gone (a second Stop changes nothing): what it
    // killed at --grace is said here too, not only in its log.
    const outcome = asked ? await stopOutcome(client, asked.graceMs + STOP_MARGIN_MS) : null;
    // A master that answers with an outcome knows its --grace, `--grace 0` (no draining) included;
    // an older one says 0 when it does not know either.
    const graceMs = outcome ? asked!.graceMs : asked?.graceMs || DEFAULT_GRACE_MS;
    const waitMs = graceMs + STOP_MARGIN_MS;
    const gone = client.target.transport === 'unix' ? () => !isRunning(pid) : () => notAnswering(client);
    if (!(await until(gone, askedAt + waitMs - Date.now()))) {
      throw new ClusterdError('ERR_CLUSTERD_STOP_TIMEOUT', `cluster ${status.name} (master pid ${pid}) is still running ${Math.round(waitMs / 1000)}s after it was asked to stop`);
    }
    return { line: `stopped cluster ${status.name} (master pid ${pid})`, ...outcomeOf(outcome) };
  } finally {
    client.close();
  }
}

/**
 * How the stop went, once every worker has exited; null from a master older than that answer (it
 * replies at once), and when the answer did not come (the master gone before it, or past `timeoutMs`):
 * waiting for the master's exit then says the rest, as before.
 */
async function stopOutcome(client: ControlClient, timeoutMs: number): Promise<StopOutcome | null> {
  try {
    return await client.stopOutcome({ timeoutMs });
  } catch {
    return null;
  }
}

/**
 * Workers killed rather than drained make the master exit 5 (at --grace) or 6 (a forced stop), and
 * `stop` exits the same: their requests in flight were cut off. An older master: as before, 0.
 */
export function outcomeOf(outcome: StopOutcome | null): { killed: string[]; exitCode: number } {
  if (!outcome || outcome.killed.length === 0) return { killed: [], exitCode: ExitCode.OK };
  const exitCode = outcome.exitCode === ExitCode.FORCED ? ExitCode.FORCED : ExitCode.GRACE_EXPIRED;
  return { killed: outcome.killed.map((worker) => worker.message), exitCode };
}

/**
 * The Stop call; null when the master stopped answering instead of replying. A master whose stop is
 * quick (idle workers) closes its control plane as it exits, and the reply can be lost on the way
 * (seen under load: UNAVAILABLE from a master that did stop). Stop is idempotent, so it is asked
 * once more: a master still there answers it; one that is going refuses the connection, and the
 * caller waits for it to be gone as after any stop.
 */
export async function askToStop(client: Pick<ControlClient, 'stop'>): Promise<{ masterPid: number; graceMs: number } | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.stop();
    } catch (error) {
      if (!(error instanceof ClusterdError && error.code === NOT_RUNNING)) throw error;
      if (attempt === 2) return null;
    }
  }
}

/** `stop --all`: every local cluster at once, a line for each; the exit code of the first that failed. */
async function stopAll(): Promise<void> {
  // The silent too (a master stopped with SIGSTOP, a blocked loop): asked like the others, so one that
  // answers late is stopped, and one that does not is a line and a failed exit, not passed over.
  const { running, silent } = await surveyClusters();
  const names = [...running.map((cluster) => cluster.name), ...silent].sort();
  if (names.length === 0) {
    process.stdout.write('no running clusters\n');
    return;
  }
  const outcomes = await Promise.allSettled(names.map((name) => stopOne({ name })));
  let exitCode: number = ExitCode.OK;
  const failed = (code: number): void => {
    if (exitCode === ExitCode.OK) exitCode = code;
  };
  for (const [index, outcome] of outcomes.entries()) {
    if (outcome.status === 'fulfilled') {
      for (const killed of outcome.value.killed) process.stderr.write(`clusterd: ${names[index]!}: ${killed}\n`);
      process.stdout.write(`${outcome.value.line}\n`);
      failed(outcome.value.exitCode);
    } else if (outcome.reason instanceof ClusterdError && (outcome.reason.code === NOT_RUNNING || outcome.reason.code === 'ERR_CLUSTERD_NOT_FOUND')) {
      // It stopped by itself between the listing and the request (connect() then finds no such
      // cluster): what was asked for holds.
      process.stdout.write(`cluster ${names[index]!} had stopped already\n`);
    } else {
      process.stderr.write(`clusterd: ${oneLine(outcome.reason)}\n`);
      failed(outcome.reason instanceof ClusterdError ? outcome.reason.exitCode : ExitCode.INTERNAL);
    }
  }
  process.exitCode = exitCode;
}

/** Polls `done` until it holds or `timeoutMs` passed; the master gives no other sign it exited. */
async function until(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() >= deadline) return false;
    await pause(POLL_MS);
  }
  return true;
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
