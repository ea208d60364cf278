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

/** One JavaScript frame of a worker's main thread; `line` and `column` count from 1. `url` may be '' (eval). */
export interface StackFrame {
  functionName: string;
  url: string;
  line: number;
  column: number;
}

/**
 * What the main thread was doing when its stack was taken: `idle` waiting in the event loop (no JS on the
 * stack), `busy` running JavaScript, `blocked` running JavaScript with no heartbeat for over the threshold.
 */
export type LoopState = 'idle' | 'busy' | 'blocked';

/** The phases `clusterd loop` reports (src/loop/phases.ts says what each one counts). */
export type LoopPhaseName = 'timers' | 'pending' | 'poll' | 'check' | 'close' | 'nextTick' | 'microtasks' | 'idle';

/** Time in one phase's callbacks over a window: in all, per second of window, and how many ran. */
export interface PhaseTime {
  ms: number;
  msPerSec: number;
  count: number;
}

/** The callbacks of one async resource type created at one place, over a window. */
export interface CallbackTime {
  type: string;
  /** Where it was created: the app's innermost frame then (empty when not known, as for promises). */
  function: string;
  url: string;
  line: number;
  count: number;
  totalMs: number;
  maxMs: number;
}

/** Where a worker's loop spent a window of time (`clusterd loop`). */
export interface LoopBreakdown {
  durationMs: number;
  phases: Record<LoopPhaseName, PhaseTime>;
  /** Loop iterations per second (0 where Node has no uvMetricsInfo). */
  iterationsPerSec: number;
  /** The callbacks that took the most time, most first. */
  callbacks: CallbackTime[];
  /** The measuring's own cost: time in the hooks, as a share of the window (%). */
  overheadPct: number;
}

/** A V8 CPU profile, as Chrome DevTools and speedscope read it (.cpuprofile). */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number; scriptId: string }; hitCount?: number; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}
