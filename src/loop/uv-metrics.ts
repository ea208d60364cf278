// libuv's loop counters, which Node exposes as performance.nodeTiming.uvMetricsInfo from 20.18 / 22.8 on.
import { performance } from 'node:perf_hooks';

/** Cumulative counters since the loop started (uv_metrics_info). */
export interface UvCounters {
  /** Loop iterations. */
  loopCount: number;
  /** Events handed to callbacks by the poll phase. */
  events: number;
  /** Of those, events that were already pending when the loop reached the poll phase. */
  eventsWaiting: number;
}

/**
 * Returns a reader of libuv's loop counters, or null where this Node lacks them. Detected on each call,
 * not at import, so a test can hide the getter; @types/node declares it unconditionally, hence the `in`.
 */
export function uvMetricsReader(): (() => UvCounters) | null {
  const timing = performance.nodeTiming;
  if (!('uvMetricsInfo' in timing)) return null;
  return () => timing.uvMetricsInfo;
}
