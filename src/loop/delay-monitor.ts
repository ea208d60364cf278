// The loop-delay probe: perf_hooks.monitorEventLoopDelay's method, without the stall it loses at each reset.
//
// monitorEventLoopDelay({ resolution }) arms a native timer every `resolution` ms and records the time
// between two ticks (Node's Histogram::RecordDelta). Its reset() also zeroes the time of the last tick
// (src/histogram-inl.h: `prev_ = 0`), so the first delay after every reset is dropped: a stall that
// starts before the next tick, or that ends after the sampler's tick but before the monitor's, vanishes
// from every sample. Checked on Node 20.20 and 24.21 (reset, block 200 ms: max stays ~10 ms), and the
// test "no stall is lost" catches it. This probe records the same thing, ns between ticks with the
// resolution included, into a RecordableHistogram (the same native HDR histogram, 3 significant digits),
// but keeps the last tick's time across resets. Cost: one JS timer callback per `resolution` ms, on the
// worker's shared timer (ticker.ts), which the heartbeat's beats ride too; while the loop is idle the
// ticks stretch to the heartbeat's period, and the time between two of them is accounted from the
// loop's busy time (recordStretched, below).
//
// Percentiles are weighted by time, not by tick: a stall of S ms is one late tick among S/resolution
// ticks it swallowed, so counted once it stays below the 99th percentile of a second that held it
// (one 200 ms stall among ~80 ticks: p99 ~0). Each swallowed tick would have seen a delay of S - k *
// resolution, so those are recorded too (HdrHistogram's recordCorrectedValue, the "coordinated
// omission" correction): p99 then reads as what a request arriving at a random moment of the interval
// waited for, and a one-second interval holding one 200 ms stall reports p99 ~190 ms.
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { every, tickPeriod } from './ticker.js';

/** Busy time between two stretched ticks, in ms, below which it is no block at all (the ticks' own work). */
const STRETCH_BUSY_MS = 1;

export interface DelayMonitor {
  /** ns between consecutive ticks, the resolution included, since the last reset(). */
  readonly histogram: RecordableHistogram;
  /** Starts ticking (on the shared unref'd timer) if not already. */
  enable(): void;
  /** Stops ticking; the histogram keeps its values. */
  disable(): void;
  /**
   * Records the delay in progress now if the next tick is overdue (the loop was held past it), as that
   * tick would, and counts the next delay from now. A no-op when the tick is not yet due or disabled.
   */
  settle(): void;
  /** Empties the histogram; the delay in progress is recorded at the next tick (or settle()), not lost. */
  reset(): void;
}

/** Creates a disabled probe ticking every `resolutionMs` (an integer >= 1, checked by the caller). */
export function createDelayMonitor(resolutionMs: number): DelayMonitor {
  const histogram = createHistogram();
  let stop: (() => void) | null = null;
  let last = 0;

  const intervalNs = resolutionMs * 1e6;
  /** The loop's busy time (ELU's `active`, ms) at the last record, and idle time not yet a whole tick. */
  let lastActive = 0;
  let idleCarryMs = 0;
  /** One delay, in ns, and the ticks it swallowed (each would have seen resolutionMs less). */
  const recordDelay = (delay: number): void => {
    histogram.record(delay);
    for (let missed = delay - intervalNs; missed >= intervalNs; missed -= intervalNs) histogram.record(missed);
  };
  /** Records up to `now`; `active`: the loop's busy time then (ELU's, which the shared timer reads for each tick). */
  const record = (now: number, active: number): void => {
    if (tickPeriod() > resolutionMs) recordStretched(now - last, active - lastActive);
    // record() takes integers >= 1; the delta is at least about resolutionMs anyway.
    else recordDelay(Math.max(1, Math.round((now - last) * 1e6)));
    last = now;
    lastActive = active;
  };
  // The ticks were stretched (the loop was idle, ticker.ts): record what ticks every resolutionMs
  // would have, taking the busy time since the last record as one block that ends now (a request
  // that woke the loop and held it): on-time ticks for the idle time, then that block's delay. Only
  // where the busy time was spread over several callbacks does this read more lag than the ticks
  // would have; the first busy tick brings them back.
  const recordStretched = (elapsedMs: number, busyMs: number): void => {
    const busy = busyMs >= STRETCH_BUSY_MS ? Math.min(busyMs, elapsedMs) : 0;
    idleCarryMs += elapsedMs - busy;
    for (; idleCarryMs >= resolutionMs; idleCarryMs -= resolutionMs) histogram.record(intervalNs);
    if (busy === 0) return;
    // A tick falls due at a uniform moment within the block's first resolutionMs (or the block within a tick).
    const delayMs = busy >= resolutionMs ? busy + resolutionMs / 2 : resolutionMs + busy / 2;
    recordDelay(Math.round(delayMs * 1e6));
  };

  return {
    histogram,
    enable() {
      if (stop !== null) return;
      last = performance.now();
      lastActive = performance.eventLoopUtilization().active;
      idleCarryMs = 0;
      // The worker's shared timer (ticker.ts): the heartbeat rides the same ticks; they stretch while the loop is idle.
      stop = every(resolutionMs, (now, { activeMs }) => record(now, activeMs), { stretch: true });
    },
    disable() {
      if (stop === null) return;
      stop();
      stop = null;
    },
    settle() {
      if (stop === null) return;
      const now = performance.now();
      // The tick that is due runs right after; it then records only the little it waited since now.
      if ((now - last) * 1e6 >= intervalNs) record(now, performance.eventLoopUtilization().active);
    },
    reset() {
      histogram.reset();
    },
  };
}
