// One interval's measurements of a worker's event loop and process, as sent to the master.

/** Event-loop delay over the interval, in milliseconds, corrected for the sampler's resolution. */
export interface LagSummary {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoopSample {
  /** Wall-clock time the sample was taken (epoch ms). */
  time: number;
  /** Length of the interval it covers, in ms. */
  intervalMs: number;
  lag: LagSummary;
  /** Event-loop utilisation over the interval, 0..1. */
  elu: number;
  /**
   * From performance.nodeTiming.uvMetricsInfo; null where this Node lacks it (< 20.18 / 22.8).
   * iterationsPerSec includes the wake-ups of the delay probe's own timer (1000 / resolutionMs per second);
   * eventsWaiting is a count over the interval (not a rate) of poll events that were already pending when
   * the loop reached the poll phase: under I/O load it grows as the loop falls behind.
   */
  loop: { iterationsPerSec: number; eventsPerSec: number; eventsWaiting: number } | null;
  /**
   * CPU time (user + system) over the interval, as a percentage of one core. It counts every thread of the
   * process (GC helpers, the libuv pool, worker_threads), so it can pass 100.
   */
  cpu: number;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  /** process.getActiveResourcesInfo(), counted by type (TCPSocketWrap: 3, Timeout: 2, ...). */
  resources: Record<string, number>;
  /**
   * HTTP traffic of every server the app started, counted by the runtime: rps over the interval, requests
   * as the running total since the worker started, inflight and connections as of the sample.
   */
  http: { rps: number; requests: number; inflight: number; connections: number };
}

/** Live counters the worker runtime mutates and the sampler reads once per interval. */
export interface TrafficCounters {
  /** Requests received since start (only grows). */
  requests: number;
  /** Requests whose response has not finished. */
  inflight: number;
  /** Open connections of the HTTP servers. */
  connections: number;
}
