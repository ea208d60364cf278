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
  /** From performance.nodeTiming.uvMetricsInfo; null where this Node lacks it (< 20.18 / 22.8). */
  loop: { iterationsPerSec: number; eventsPerSec: number; eventsWaiting: number } | null;
  /** CPU time (user + system) over the interval, as a percentage of one core. */
  cpu: number;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
  /** process.getActiveResourcesInfo(), counted by type (TCPSocketWrap: 3, Timeout: 2, ...). */
  resources: Record<string, number>;
  /** HTTP traffic of every server the app started, counted by the runtime. */
  http: { rps: number; requests: number; inflight: number; connections: number };
}
