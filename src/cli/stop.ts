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
        for (const line of stopped.stderr) process.stderr.write(`clusterd: ${line}\n`);
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

/** A stopped cluster: the line to print, the lines for stderr, and the exit code. */
interface Stopped {
  line: string;
  /** The master's line for each worker it killed rather than drained, or a note that how the stop went could not be learned. */
  stderr: string[];
  exitCode: number;
}

/** What asking for the stop learned: how long to wait for the master, and how the stop went. */
interface Asked {
  pid: number;
  waitMs: number;
  /** Null from a master older than that answer, and when it was lost. */
  outcome: StopOutcome | null;
  /** The master went without answering: how the stop went is in its log only. */
  lost: boolean;
}

/** Stops one cluster and waits for its master to exit. */
async function stopOne(args: StopArgs): Promise<Stopped> {
  const { client, status } = await connectFromArgs(args);
  try {
    const askedAt = Date.now();
    const asked = status.stopTerms ? await askAndLearn(client, status.masterPid, status.stopTerms.graceMs) : await askAsBefore(client, status.masterPid);
    const { pid, waitMs } = asked;
    if (!(await until(masterGone(client, pid), askedAt + waitMs - Date.now()))) {
      throw new ClusterdError('ERR_CLUSTERD_STOP_TIMEOUT', `cluster ${status.name} (master pid ${pid}) is still running ${Math.round(waitMs / 1000)}s after it was asked to stop`);
    }
    const line = `stopped cluster ${status.name} (master pid ${pid})`;
    // The master is gone, as asked: exit 0, and the note says the rest is in its log.
    if (asked.lost) return { line, stderr: [`the master (pid ${pid}) exited without saying how the stop went: its log names any worker it killed rather than drained`], exitCode: ExitCode.OK };
    const { killed, exitCode } = outcomeOf(asked.outcome);
    return { line, stderr: killed, exitCode };
  } finally {
    client.close();
  }
}

/**
 * A master that says its --grace up front (ClusterStatus.stop_terms) is asked once, to answer when
 * every worker has exited, with what it killed. Asked first to stop and then again for the outcome,
 * a `--grace 0` master could kill its workers and close its control plane between the two calls:
 * the second was refused, and the stop read as clean.
 */
async function askAndLearn(client: ControlClient, pid: number, graceMs: number): Promise<Asked> {
  const waitMs = graceMs + STOP_MARGIN_MS;
  const learned = await askForOutcome(client, { timeoutMs: waitMs, gone: masterGone(client, pid) });
  return { pid, waitMs, ...learned };
}

/** A master older than the outcome: asked once, answered at once; its exit is waited for as always. */
async function askAsBefore(client: ControlClient, statusPid: number): Promise<Asked> {
  const asked = await askToStop(client);
  // An older master says 0 when it does not know its --grace.
  return { pid: asked?.masterPid || statusPid, waitMs: (asked?.graceMs || DEFAULT_GRACE_MS) + STOP_MARGIN_MS, outcome: null, lost: false };
}

/**
 * The Stop call that waits for the outcome. `lost` when the master went without answering (its
 * reply lost as its control plane closed; seen under load), told from its exit rather than waited
 * for to the deadline, or when no answer came by then (the wait for its exit says the rest).
 * Refused at once, it is asked once more, as askToStop does: a master still there answers.
 */
export async function askForOutcome(
  client: Pick<ControlClient, 'stop'>,
  { timeoutMs, gone }: { timeoutMs: number; gone: () => boolean | Promise<boolean> },
): Promise<{ outcome: StopOutcome | null; lost: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const called = new AbortController();
    try {
      const reply = await Promise.race([client.stop({ waitForOutcome: true, timeoutMs: Math.max(0, deadline - Date.now()), signal: called.signal }), goneWithoutAnswer(gone, called.signal)]);
      return reply ? { outcome: reply.outcome, lost: false } : { outcome: null, lost: true };
    } catch (error) {
      if (!(error instanceof ClusterdError)) throw error;
      if (error.code === NOT_RUNNING && attempt === 1) continue;
      if (error.code === NOT_RUNNING || error.code === 'ERR_CLUSTERD_TIMEOUT') return { outcome: null, lost: true };
      throw error;
    } finally {
      called.abort();
    }
  }
}

/**
 * How long a reply the master sent just before it exited may still take to be read: its socket's
 * close comes after it, and fails the call anyway.
 */
const LAST_WORD_MS = 1_000;

/** Resolves with null once the master is gone and LAST_WORD_MS passed, unless `signal` ends the wait first. */
async function goneWithoutAnswer(gone: () => boolean | Promise<boolean>, signal: AbortSignal): Promise<null> {
  const wait = (ms: number): Promise<void> => pause(ms, undefined, { signal }).catch(() => {});
  while (!signal.aborted && !(await gone())) await wait(POLL_MS);
  if (!signal.aborted) await wait(LAST_WORD_MS);
  return null;
}

/**
 * Workers killed rather than drained make the master exit 5 (at --grace) or 6 (a forced stop), and
 * `stop` exits the same: their requests in flight were cut off. The master's exit code decides, not
 * the lines: a forced stop that finds every worker exited already kills none, and still exits 6. An
 * older master: as before, 0.
 */
export function outcomeOf(outcome: StopOutcome | null): { killed: string[]; exitCode: number } {
  if (!outcome) return { killed: [], exitCode: ExitCode.OK };
  const said = outcome.exitCode === ExitCode.FORCED || outcome.exitCode === ExitCode.GRACE_EXPIRED;
  return { killed: outcome.killed.map((worker) => worker.message), exitCode: said ? outcome.exitCode : ExitCode.OK };
}

/**
 * The Stop call of a master older than the outcome; null when the master stopped answering instead
 * of replying. A master whose stop is quick (idle workers) closes its control plane as it exits, and
 * the reply can be lost on the way (seen under load: UNAVAILABLE from a master that did stop). Stop
 * is idempotent, so it is asked once more: a master still there answers it; one that is going
 * refuses the connection, and the caller waits for it to be gone as after any stop.
 */
export async function askToStop(client: Pick<ControlClient, 'stop'>): Promise<{ masterPid: number; graceMs: number } | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { masterPid, graceMs } = await client.stop();
      return { masterPid, graceMs };
    } catch (error) {
      if (!(error instanceof ClusterdError && error.code === NOT_RUNNING)) throw error;
      if (attempt === 2) return null;
    }
  }
}

/**
 * How much an exit code of one cluster's stop weighs in `stop --all`'s: a stop that failed (10: still
 * running, 7, 1...) over one that stopped but killed workers (5, 6), over a clean one; among equals,
 * the first in name order. A cluster still running was hidden behind another's 5.
 */
function severity(code: number): number {
  if (code === ExitCode.OK) return 0;
  return code === ExitCode.GRACE_EXPIRED || code === ExitCode.FORCED ? 1 : 2;
}

/** `stop --all`: every local cluster at once, a line for each; the exit code of the worst (severity()). */
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
    if (severity(code) > severity(exitCode)) exitCode = code;
  };
  for (const [index, outcome] of outcomes.entries()) {
    if (outcome.status === 'fulfilled') {
      for (const line of outcome.value.stderr) process.stderr.write(`clusterd: ${names[index]!}: ${line}\n`);
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

/** Whether the master has exited: a local one's pid; a remote one, once its control listener refuses connections. */
export function masterGone(client: ControlClient, pid: number): () => boolean | Promise<boolean> {
  return client.target.transport === 'unix' ? () => !isRunning(pid) : () => notAnswering(client);
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
