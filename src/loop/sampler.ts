// The always-on sampler every worker runs: once per interval it reads the loop-delay histogram, event-loop
// utilisation, libuv's loop counters, CPU, memory, active resources and the HTTP counters into a LoopSample.
//
// Cost: nothing runs per request (the runtime bumps plain counters) and no async_hooks. Per interval it
// makes a few native calls and a handful of small objects; getActiveResourcesInfo() is O(open handles).
// The delay probe is a timer every `resolutionMs` (see delay-monitor.ts for why not monitorEventLoopDelay),
// so an idle worker wakes 1000 / resolutionMs times a second. Every timer is unref'd: the sampler never
// keeps a worker alive.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { createDelayMonitor, type DelayMonitor } from './delay-monitor.js';
import { summarizeLag } from './lag.js';
import type { LoopSample, TrafficCounters } from './types.js';
import { uvMetricsReader, type UvCounters } from './uv-metrics.js';

export interface SamplerOptions {
  /** Time between samples, in ms (the worker's `--stats-interval`). */
  intervalMs: number;
  /**
   * Period of the loop-delay probe, in whole ms; default 10, as monitorEventLoopDelay's. A stall of S ms
   * shows as S - resolutionMs to S ms, depending on where it falls between two ticks.
   */
  resolutionMs?: number;
  /** The runtime's live HTTP counters, read (never written) once per interval. */
  traffic: TrafficCounters;
  /** Receives each periodic sample. */
  onSample: (sample: LoopSample) => void;
  /** Receives what onSample throws; by default a process warning, so the app's worker is not crashed. */
  onError?: (error: unknown) => void;
}

export interface Sampler {
  /** Takes the baselines, starts the delay probe and the interval. No-op when running. */
  start(): void;
  /** Stops the interval and the delay probe and drops them. No-op when stopped; start() may follow. */
  stop(): void;
  /**
   * Returns a sample of the time since the previous one, now, without calling onSample (for example a
   * last sample before shutdown); the next periodic sample then covers only the time since this one.
   * Throws when the sampler is not running.
   */
  sampleNow(): LoopSample;
  readonly running: boolean;
}

/** Baselines of the cumulative counters at the previous sample. */
interface Baseline {
  time: number;
  elu: EventLoopUtilization;
  cpuMicros: number;
  uv: UvCounters | null;
  requests: number;
}

export const DEFAULT_RESOLUTION_MS = 10;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Creates a stopped sampler; call start(). Throws a RangeError naming a bad option. */
export function createSampler({ intervalMs, resolutionMs = DEFAULT_RESOLUTION_MS, traffic, onSample, onError = warn }: SamplerOptions): Sampler {
  if (!(Number.isFinite(intervalMs) && intervalMs >= 1 && intervalMs <= MAX_TIMER_MS)) {
    throw new RangeError(`Expected the \`intervalMs\` option to be a number of ms from 1 to ${MAX_TIMER_MS}, got \`${intervalMs}\``);
  }
  // A whole number of ms, as monitorEventLoopDelay's resolution, and at least one tick per interval.
  if (!(Number.isInteger(resolutionMs) && resolutionMs >= 1 && resolutionMs <= intervalMs)) {
    throw new RangeError(`Expected the \`resolutionMs\` option to be an integer from 1 to \`intervalMs\` (${intervalMs}), got \`${resolutionMs}\``);
  }
  const readUv = uvMetricsReader();
  let delay: DelayMonitor | null = null;
  let timer: NodeJS.Timeout | null = null;
  let pending: NodeJS.Immediate | null = null;
  let last: Baseline | null = null;

  const take = (): LoopSample => {
    if (delay === null || last === null) throw new Error('The sampler is not running: call start() first');
    // A stall that held the loop past the probe's tick is in ELU already: record its lag now too, or it
    // lands in the next sample whenever this one is read before the probe's overdue tick runs.
    delay.settle();
    const now = performance.now();
    const elapsedMs = now - last.time;
    const perSecond = elapsedMs > 0 ? 1000 / elapsedMs : 0;
    const elu = performance.eventLoopUtilization();
    const cpu = process.cpuUsage();
    const cpuMicros = cpu.user + cpu.system;
    const uv = readUv === null ? null : readUv();
    const requests = traffic.requests;
    const memory = process.memoryUsage();

    const sample: LoopSample = {
      time: Date.now(),
      intervalMs: elapsedMs,
      lag: summarizeLag(delay.histogram, resolutionMs),
      elu: performance.eventLoopUtilization(elu, last.elu).utilization,
      loop: uv === null || last.uv === null ? null : {
        iterationsPerSec: (uv.loopCount - last.uv.loopCount) * perSecond,
        eventsPerSec: (uv.events - last.uv.events) * perSecond,
        eventsWaiting: uv.eventsWaiting - last.uv.eventsWaiting,
      },
      // cpuUsage is in µs: (µs / 1000) / elapsedMs * 100 %.
      cpu: elapsedMs > 0 ? (cpuMicros - last.cpuMicros) / 10 / elapsedMs : 0,
      memory: {
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        heapTotal: memory.heapTotal,
        external: memory.external,
        arrayBuffers: memory.arrayBuffers,
      },
      resources: countResources(process.getActiveResourcesInfo()),
      http: {
        rps: (requests - last.requests) * perSecond,
        requests,
        inflight: traffic.inflight,
        connections: traffic.connections,
      },
    };
    delay.reset();
    last = { time: now, elu, cpuMicros, uv, requests };
    return sample;
  };

  const flush = (): void => {
    pending = null;
    if (timer === null) return;
    try {
      onSample(take());
    } catch (error) {
      onError(error);
    }
  };

  // The probe records a stall when its own timer next fires, which may come after this interval's timer
  // in the same timers phase. Reading from the check phase that follows lets a stall that ended just
  // before the tick land in this sample, together with the busy time ELU already counts for it.
  const tick = (): void => {
    if (pending === null) pending = setImmediate(flush).unref();
  };

  return {
    start() {
      if (timer !== null) return;
      delay = createDelayMonitor(resolutionMs);
      delay.enable();
      const cpu = process.cpuUsage();
      last = {
        time: performance.now(),
        elu: performance.eventLoopUtilization(),
        cpuMicros: cpu.user + cpu.system,
        uv: readUv === null ? null : readUv(),
        requests: traffic.requests,
      };
      timer = setInterval(tick, intervalMs).unref();
    },
    stop() {
      if (timer === null) return;
      clearInterval(timer);
      timer = null;
      if (pending !== null) clearImmediate(pending);
      pending = null;
      delay?.disable();
      delay = null;
      last = null;
    },
    sampleNow: take,
    get running() {
      return timer !== null;
    },
  };
}

/** Counts process.getActiveResourcesInfo()'s list by type: ['Timeout', 'Timeout'] -> { Timeout: 2 }. */
export function countResources(types: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  // hasOwn, not `?? 0`: a plain object inherits names such as toString.
  for (const type of types) counts[type] = Object.hasOwn(counts, type) ? counts[type]! + 1 : 1;
  return counts;
}

function warn(error: unknown): void {
  process.emitWarning(error instanceof Error ? error : String(error), { code: 'CLUSTERD_SAMPLER' });
}
