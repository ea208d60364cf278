// Turns a loop-delay histogram into the LagSummary a sample carries.
//
// The delay probe (delay-monitor.ts, like perf_hooks.monitorEventLoopDelay) ticks every `resolution` ms
// and records, in ns, the time between two of its ticks. An idle loop therefore records about
// `resolution` per tick, not 0: the delay the app suffered is the recorded value minus the resolution.
// Every value is shifted by the same constant, so subtracting it from each percentile, the mean and the
// max gives the figures of the unshifted distribution. Node keeps timer due times in whole ms of a
// cached loop clock, so a tick can come a little early (9.7 ms for a 10 ms resolution has been seen) as
// well as late: results are clamped at 0 (which can lift the mean slightly; by at most ~1 ms).
import type { LagSummary } from './types.js';

/** What summarizeLag reads: a subset of Node's Histogram (RecordableHistogram, IntervalHistogram). */
export interface HistogramReading {
  /** Number of recorded values; Node reports mean NaN and meaningless percentiles when 0. */
  readonly count: number;
  /** Values are in nanoseconds. */
  readonly mean: number;
  readonly max: number;
  percentile(percentile: number): number;
}

const NS_PER_MS = 1e6;

/** Summarises a delay histogram (ns) in ms, minus the monitor's resolution; all zeros when it is empty. */
export function summarizeLag(histogram: HistogramReading, resolutionMs: number): LagSummary {
  if (histogram.count === 0) return { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const offsetNs = resolutionMs * NS_PER_MS;
  const toMs = (ns: number): number => {
    const ms = (ns - offsetNs) / NS_PER_MS;
    // Microsecond precision is beyond what the HDR histogram keeps (3 significant digits) and keeps IPC short.
    return Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1000) / 1000 : 0;
  };
  return {
    mean: toMs(histogram.mean),
    p50: toMs(histogram.percentile(50)),
    p90: toMs(histogram.percentile(90)),
    p99: toMs(histogram.percentile(99)),
    max: toMs(histogram.max),
  };
}
