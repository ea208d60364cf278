// What the open-loop child counts while it runs: one outcome per request (a response, an error or a
// timeout), and three histograms. Shared by the pacing loop and both connection modes.
//
// A request that got no response (it timed out, or its connection failed) still has a latency: it was
// not answered within its time so far, nor within the timeout. Left out, the percentiles would be
// those of the answered requests only, and a system that answers half its requests after the timeout
// would show the other half's p99. So it is recorded in `latency` at its time so far, and at least the
// timeout, and `unanswered` holds the same samples: a percentile that reaches into them is a lower
// bound, the report prints it as "≥". (A reset at 1 ms counts as unanswered at the timeout, not at
// 1 ms: a client would have had to retry, and its true latency is not known.)
import { Histogram, type LatencySummaryMs } from './histogram.js';

export type Failure = 'connect' | 'read' | 'write' | 'timeouts';

export class Tally {
  /** Response complete - due time: the latency the system is charged with; unanswered requests included. */
  readonly latency = new Histogram();
  /** The samples of requests that got no response: lower bounds of their latency. */
  readonly unanswered = new Histogram();
  /** Pacing loop handled the request - due time: the generator's own lateness. */
  readonly sendLag = new Histogram();
  /** Request went out - due time: send lag plus any wait for a free connection. */
  readonly startDelay = new Histogram();
  completed = 0;
  non2xx = 0;
  readonly failures: Record<Failure, number> = { connect: 0, read: 0, write: 0, timeouts: 0 };
  connections = 0;
  /** Keep-alive connections the server ended after a response (`Connection: close`), each replaced by a new one. */
  reconnects = 0;
  queued = 0;
  maxQueue = 0;

  constructor(
    /** When request `index` was due (ms, performance.now()'s clock). */
    readonly due: (index: number) => number,
    /** A request slower than this is given up on; an unanswered one counts at least this long. */
    readonly timeoutMs = Infinity,
  ) {}

  /** Request `index` got a whole response with `status`. */
  complete(index: number, status: number): void {
    this.latency.record((performance.now() - this.due(index)) * 1000);
    this.completed++;
    if (status < 200 || status > 299) this.non2xx++;
  }

  /** Request `index` got no response: counted as `kind`, and in the latencies as a lower bound. */
  fail(kind: Failure, index: number): void {
    this.failures[kind]++;
    const elapsedMs = performance.now() - this.due(index);
    const us = (Number.isFinite(this.timeoutMs) ? Math.max(elapsedMs, this.timeoutMs) : elapsedMs) * 1000;
    this.latency.record(us);
    this.unanswered.record(us);
  }

  /** The latency summary, naming the figures that are lower bounds (they reach into unanswered requests). */
  latencySummary(): LatencySummaryMs & { lowerBounds?: LowerBound[] } {
    const summary = this.latency.summaryMs();
    const lowerBounds = lowerBoundsOf(this.latency, this.unanswered);
    return lowerBounds.length ? { ...summary, lowerBounds } : summary;
  }
}

export type LowerBound = 'p50' | 'p90' | 'p99' | 'p999' | 'max';
const QUANTILES = [
  ['p50', 0.5],
  ['p90', 0.9],
  ['p99', 0.99],
  ['p999', 0.999],
] as const;

/**
 * The percentiles of `all` that are only lower bounds: fewer answered samples than the percentile's
 * rank lie at or below it, so unanswered ones (whose true latency is longer) decide it. The max is one
 * as soon as any request went unanswered.
 */
export function lowerBoundsOf(all: Histogram, unanswered: Histogram): LowerBound[] {
  if (unanswered.count === 0) return [];
  const bounds: LowerBound[] = [];
  for (const [name, q] of QUANTILES) {
    const value = all.percentile(q);
    const rank = Math.max(1, Math.ceil(q * all.count));
    if (all.countUpTo(value) - unanswered.countUpTo(value) < rank) bounds.push(name);
  }
  bounds.push('max');
  return bounds;
}

/** The failure an `error` event stands for, given whether the connection had been established. */
export function failureOf(error: NodeJS.ErrnoException, connected: boolean): Failure {
  if (!connected) return 'connect';
  return error.syscall === 'write' || error.code === 'EPIPE' ? 'write' : 'read';
}
