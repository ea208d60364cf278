// What the open-loop child counts while it runs: one outcome per request (a response, an error or a
// timeout), and three histograms. Shared by the pacing loop and both connection modes.
import { Histogram } from './histogram.js';

export type Failure = 'connect' | 'read' | 'write' | 'timeouts';

export class Tally {
  /** Response complete - due time: the latency the system is charged with. */
  readonly latency = new Histogram();
  /** Pacing loop handled the request - due time: the generator's own lateness. */
  readonly sendLag = new Histogram();
  /** Request went out - due time: send lag plus any wait for a free connection. */
  readonly startDelay = new Histogram();
  completed = 0;
  non2xx = 0;
  readonly failures: Record<Failure, number> = { connect: 0, read: 0, write: 0, timeouts: 0 };
  connections = 0;
  queued = 0;
  maxQueue = 0;

  constructor(
    /** When request `index` was due (ms, performance.now()'s clock). */
    readonly due: (index: number) => number,
  ) {}

  /** Request `index` got a whole response with `status`. */
  complete(index: number, status: number): void {
    this.latency.record((performance.now() - this.due(index)) * 1000);
    this.completed++;
    if (status < 200 || status > 299) this.non2xx++;
  }

  fail(kind: Failure): void {
    this.failures[kind]++;
  }
}

/** The failure an `error` event stands for, given whether the connection had been established. */
export function failureOf(error: NodeJS.ErrnoException, connected: boolean): Failure {
  if (!connected) return 'connect';
  return error.syscall === 'write' || error.code === 'EPIPE' ? 'write' : 'read';
}
