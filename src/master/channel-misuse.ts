// What a worker does wrong on its IPC channel, logged without flooding the log: malformed messages
// (dropped) and handles sent to the master (closed), each at once the first time, then at most once a
// minute with a count. The WorkerProcess owns one and calls it as it meets them.
import { clip } from '../errors.js';
import type { LogSink } from './logs.js';

/** The window of each limit here: a minute, from the first thing counted after the last one ended. */
const MINUTE_MS = 60_000;
/** Changes of whether a worker listens logged per minute, before the rest go unlogged. */
export const LISTENING_LINES_PER_MINUTE = 10;

/** The worker whose misuse is logged. */
export interface MisusingWorker {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
}

/** Logs a worker's malformed messages and the handles it sent, each at most once a minute, and its listening changes. */
export class ChannelMisuse {
  readonly #worker: MisusingWorker;
  readonly #malformedSeen = new PerMinute(1);
  readonly #handlesClosed = new PerMinute(1);
  readonly #listening = new PerMinute(LISTENING_LINES_PER_MINUTE);

  constructor(worker: MisusingWorker) {
    this.#worker = worker;
  }

  /**
   * The app sent something that looks like clusterd's protocol but is not (or the runtime is
   * broken): it is dropped. Logged at once the first time, then at most once a minute with a count,
   * so that a worker sending garbage in a loop cannot flood the log.
   */
  malformed(cmd: string, why: string): void {
    const { id, pid, logs } = this.#worker;
    // The reason may quote key names the app chose: a line of the log, not a copy of the message.
    const error = clip(why, 200);
    if (!this.#malformedSeen.count()) return;
    const count = this.#malformedSeen.total;
    logs.event(
      'malformed-message',
      `worker ${id} (pid ${pid}) sent a malformed ${JSON.stringify(cmd.slice(0, 40))} message (${error}); dropped (${count} so far)`,
      { worker: id, pid, cmd: cmd.slice(0, 40), error, count },
      'warn',
    );
  }

  /**
   * Whether a change of whether the app listens (it closed every server, or listens again) is logged:
   * LISTENING_LINES_PER_MINUTE a minute per worker, then one line saying the rest go unlogged, and their
   * count with the next minute's first. An app toggling its servers in a loop (or lying about them)
   * wrote a line per message: 1.3 million in 20 s.
   */
  listeningLogged(): boolean {
    const { id, pid, logs } = this.#worker;
    const logged = this.#listening.count((unlogged) => {
      logs.event('listening-unlogged', `worker ${id} (pid ${pid}): ${unlogged} more changes of whether it listens were not logged`, { worker: id, pid, count: unlogged }, 'warn');
    });
    if (!logged && this.#listening.unlogged === 1) {
      logs.event(
        'listening-unlogged',
        `worker ${id} (pid ${pid}) changes whether it listens more than ${LISTENING_LINES_PER_MINUTE} times a minute: the next changes in this minute are not logged (status shows its state)`,
        { worker: id, pid },
        'warn',
      );
    }
    return logged;
  }

  /** A handle the worker sent came to nothing (closed): said once a minute, with the count. */
  handleClosed(): void {
    const { id, pid, logs } = this.#worker;
    if (!this.#handlesClosed.count()) return;
    const count = this.#handlesClosed.total;
    logs.event(
      'handle-refused',
      `worker ${id} (pid ${pid}) sent the master a socket or server with a message (process.send(message, handle)); the master takes none: closed (${count} so far)`,
      { worker: id, pid, count },
      'warn',
    );
  }
}

/**
 * Counts what a worker does, and says which of it to log: the first `limit` in a minute (a minute
 * from the first counted after the last one ended; with a limit of 1, at once and then at most once a
 * minute), the rest counted unlogged.
 */
export class PerMinute {
  /** Everything counted, logged or not. */
  total = 0;
  /** Counted unlogged in this minute. */
  unlogged = 0;
  readonly #limit: number;
  readonly #now: () => number;
  #since = -Infinity;
  #logged = 0;

  /** `now`: the clock (a test's own). */
  constructor(limit: number, now: () => number = Date.now) {
    this.#limit = limit;
    this.#now = now;
  }

  /** Counts one more; true when it is to be logged. `ended` is told how many went unlogged in the minute this one ends, if any did. */
  count(ended?: (unlogged: number) => void): boolean {
    this.total++;
    const now = this.#now();
    if (now - this.#since >= MINUTE_MS) {
      if (this.unlogged > 0) ended?.(this.unlogged);
      this.#since = now;
      this.#logged = 0;
      this.unlogged = 0;
    }
    if (this.#logged < this.#limit) {
      this.#logged++;
      return true;
    }
    this.unlogged++;
    return false;
  }
}
