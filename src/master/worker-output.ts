// One worker's stdout and stderr as the master follows them: each line to the log sink under the
// worker's id (stderr's through the inspector's filter first), the last lines of each kept in its
// tails (a failed boot's or an exit's explanation); and, once its process has exited, the wait for
// their end before the exit is handled: bounded, since a process the app started that left its
// group (detached) may hold the pipes open for good. The WorkerProcess follows its output when it
// forks the worker and waits for it in its exit handler.
import type { ChildProcess } from 'node:child_process';
import type { LogSink, OutputTail } from './logs.js';

/**
 * How long an exited worker's output may take to end (the pipes' last lines) before the exit is
 * handled anyway: only a process holding the pipes open (one the app started, detached) takes longer.
 */
export const OUTPUT_AFTER_EXIT_MS = 2000;

/** The worker whose output is followed. */
export interface OutputSource {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
}

/** Follows the worker's stdout and stderr into the log sink; settles once both have ended. */
export function followOutput(
  child: ChildProcess,
  { id, pid, logs }: OutputSource,
  { stdoutTail, stderrTail, intercept }: { stdoutTail: OutputTail; stderrTail: OutputTail; intercept: (line: string) => boolean },
): Promise<unknown> {
  return Promise.all([
    logs.follow(child.stdout!, { worker: id, pid, stream: 'stdout' }, stdoutTail),
    logs.follow(child.stderr!, { worker: id, pid, stream: 'stderr' }, stderrTail, intercept),
  ]);
}

/**
 * Resolves once the exited worker's `output` has ended and its IPC `channel` has closed, or after
 * OUTPUT_AFTER_EXIT_MS. Its last lines and messages first; but a process it started that left its
 * group (detached) may hold the pipes (or, handed it, the channel) open for good, and the exit (a
 * restart, a stop, a reload) must not wait on it: that process's lines go on being read, under this
 * worker's id. The warning says which is held.
 */
export function outputEnded({ output, channel }: { output: Promise<unknown>; channel: Promise<unknown> }, { id, pid, logs }: OutputSource): Promise<void> {
  let held: NodeJS.Timeout | undefined;
  const open = { output: true, channel: true };
  void output.then(() => (open.output = false));
  void channel.then(() => (open.channel = false));
  return Promise.race([
    Promise.all([output, channel]).then(() => clearTimeout(held)),
    new Promise<void>((resolve) => {
      held = setTimeout(() => {
        const what = open.output && open.channel ? 'its output and its IPC channel are' : open.output ? 'its output is' : 'its IPC channel is';
        logs.event('output-held', `worker ${id} (pid ${pid}) exited, but ${what} still held open by a process it started that left its group; not waiting for it`, { worker: id, pid }, 'warn');
        resolve();
      }, OUTPUT_AFTER_EXIT_MS);
    }),
  ]);
}
