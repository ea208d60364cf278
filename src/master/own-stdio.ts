// The master's own stdout and stderr, and the terminal they may be on: written without blocking,
// watched for errors when a log file takes the cluster's lines, and let go of at exit once the
// terminal has hung up.
import { closeSync, openSync } from 'node:fs';
import { isatty } from 'node:tty';
import type { LogOutput, LogSink } from './logs.js';
import { nativeHelper } from '../system/native.js';

export type StdioName = 'stdout' | 'stderr';

/**
 * The master's stdout and stderr, not blocking when they are terminals. Node writes to a terminal
 * synchronously: one that is not read (Ctrl-S, a stalled SSH session, a pty nobody reads) stopped the
 * master's loop in write(), with it the control plane, the probes and the reading of the workers'
 * pipes, so the workers froze at their next log line and the watchdog then killed them. Unblocked,
 * a terminal queues like a pipe, and past LogSink's limit lines are dropped and counted. libuv opens
 * a terminal again for this process, so the flag does not reach the shell or other programs on it.
 */
export function terminalsUnblocked(): LogOutput {
  for (const stream of [process.stdout, process.stderr]) {
    if (!stream.isTTY) continue;
    const handle = (stream as unknown as { _handle?: { setBlocking?(blocking: boolean): number } })._handle;
    handle?.setBlocking?.(false);
  }
  return process;
}

/** Whether this process has a controlling terminal (one that hung up is taken away from it). */
export function hasTerminal(): boolean {
  try {
    closeSync(openSync('/dev/tty', 'r'));
    return true;
  } catch {
    return false;
  }
}

/**
 * With a log file the LogSink writes there, and nothing heard errors on the master's own stdout and
 * stderr, which still carry what Node writes (a warning) and the flush before the exit: an error
 * there (EIO on a terminal that hung up, EPIPE) was uncaught, and a cluster that had stopped cleanly
 * exited 1 with `internal error: write EIO`. Each stream that fails is said once, in the log file
 * (event `output-lost`), and left alone from then on. Returns whether a stream failed.
 */
export function watchOwnStdio(logs: LogSink, logPath: string): (name: StdioName) => boolean {
  const lost = new Set<StdioName>();
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (error: NodeJS.ErrnoException) => {
      if (lost.has(name)) return;
      lost.add(name);
      logs.event('output-lost', `the master's own ${name} failed (${error.code ?? error.message}): what Node writes there (a warning) is dropped from now on; the cluster's lines go on to ${logPath}`, { output: name, code: error.code }, 'warn');
    });
  }
  return (name) => lost.has(name);
}

/** The master's stdio descriptors that are terminals, at start (a hung-up terminal is one no more). */
export function stdioTerminals(): number[] {
  return [0, 1, 2].filter((fd) => isatty(fd));
}

/**
 * Lets go of each of `fds` (stdio on a terminal at start) whose terminal has hung up, just before the
 * exit. At exit Node sets each stdio terminal back as it found it (ResetStdio), which on a terminal
 * that hung up fails with EIO, and Node 20 asserts that it cannot: it aborts, and dies of SIGSEGV in
 * the abort (exit 139) after a clean drain (nodejs/node#51519, no longer asserted since
 * nodejs/node#58200). Node passes over a descriptor that is closed or that is not the file it saw
 * at start: it is pointed at /dev/null (the native helper's dup2), or closed without the helper.
 */
export function releaseHungUpTerminal(fds: number[]): void {
  // isatty() asks the terminal for its settings: false, with EIO, once it hung up.
  const gone = fds.filter((fd) => !isatty(fd));
  if (gone.length === 0) return;
  const dup2 = nativeHelper()?.dup2;
  let devNull: number | null = null;
  try {
    if (dup2) devNull = openSync('/dev/null', 'r+');
  } catch {
    devNull = null;
  }
  for (const fd of gone) {
    if (devNull !== null && dup2 && dup2(devNull, fd) === 0) continue;
    try {
      closeSync(fd);
    } catch {
      // closed already: Node passes over it as well.
    }
  }
  if (devNull !== null) closeSync(devNull);
}
