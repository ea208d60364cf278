// What a worker does wrong on its IPC channel, logged without flooding the log: malformed messages
// (dropped) and handles sent to the master (closed), each at once the first time, then at most once a
// minute with a count. The WorkerProcess owns one and calls it as it meets them.
import { clip } from '../errors.js';
import type { LogSink } from './logs.js';

/** A worker's malformed messages are logged at most this often. */
const MALFORMED_LOG_MS = 60_000;

/** The worker whose misuse is logged. */
export interface MisusingWorker {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
}

/** Logs a worker's malformed messages and the handles it sent, each at most once per MALFORMED_LOG_MS. */
export class ChannelMisuse {
  readonly #worker: MisusingWorker;
  readonly #malformedSeen = new LoggedOnceAMinute();
  readonly #handlesClosed = new LoggedOnceAMinute();

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

  /** A handle the worker sent came to nothing (closed): said once per MALFORMED_LOG_MS, with the count. */
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

/** Counts what a worker does wrong, and says when to log it: at once the first time, then at most once per MALFORMED_LOG_MS. */
class LoggedOnceAMinute {
  total = 0;
  #loggedAt = -Infinity;

  /** Counts one more; true when it is to be logged now. */
  count(): boolean {
    this.total++;
    const now = Date.now();
    if (now - this.#loggedAt < MALFORMED_LOG_MS) return false;
    this.#loggedAt = now;
    return true;
  }
}
