// What a worker's loop sample can really hold, checked before the master keeps it. The parser
// (src/protocol/parse.ts) checks each figure alone (a finite number, not negative, ELU 0..1); a forged
// sample within those ranges still put a lag of years, a CPU of 10^15 % or 9 * 10^15 requests into
// status, /metrics, the dashboard and the cluster's totals. These checks need what the master knows
// of the worker (how long it has run, its previous sample) or tie a sample's figures to one another.
// A sample that fails one is malformed: dropped and counted as any other, never clamped (a clamped
// lie is still a lie, shown as a measurement).
import { availableParallelism, cpus, totalmem } from 'node:os';
import type { LoopSample } from '../loop/types.js';

/**
 * More of anything per second (requests, new connections, loop iterations, poll events) than one
 * Node process handles: a loop iteration costs at least a syscall, a request far more. Ten times
 * past what the fastest of them reach.
 */
export const MAX_PER_SECOND = 10_000_000;

/**
 * Slack for CPU time against the wall clock: the kernel accounts CPU time per tick, and the two are
 * read one after the other.
 */
const CPU_SLACK_MS = 10;

/** Slack for figures the sampler derives from one another (a rate times its interval is a count) by floating point. */
const ROUNDING = 1e-6;

/** What the master knows of the worker that sent the sample. */
export interface SampleContext {
  /** How long since the master forked it, by the monotonic clock: its sampler started after that. */
  uptimeMs: number;
  /** How long its accepted samples cover in all: each covers the interval since the one before. */
  sampledMs: number;
  /** Its last accepted sample, or null. */
  previous: LoopSample | null;
}

/** Why `sample` cannot be what the worker's runtime measured (`sample.cpu: ...`), or null when it can be. */
export function implausibleSample(sample: LoopSample, context: SampleContext): string | null {
  return intervalProblem(sample, context) ?? lagProblem(sample, context) ?? cpuProblem(sample) ?? memoryProblem(sample) ?? httpProblem(sample, context) ?? loopProblem(sample);
}

function intervalProblem({ intervalMs }: LoopSample, { uptimeMs, sampledMs }: SampleContext): string | null {
  if (intervalMs <= 0) return 'sample.intervalMs: not a time that passed';
  if (sampledMs + intervalMs > uptimeMs + 1) return `sample.intervalMs: its samples would cover ${Math.round(sampledMs + intervalMs)} ms of a worker that has run ${Math.round(uptimeMs)} ms`;
  return null;
}

/** A summary of one histogram: no percentile past the max, in order, and no delay longer than the worker's life. */
function lagProblem({ lag }: LoopSample, { uptimeMs }: SampleContext): string | null {
  if (!(lag.p50 <= lag.p90 && lag.p90 <= lag.p99 && lag.p99 <= lag.max && lag.mean <= lag.max)) return 'sample.lag: percentiles out of order, or past the max';
  if (lag.max > uptimeMs) return `sample.lag.max: ${Math.round(lag.max)} ms, in a worker that has run ${Math.round(uptimeMs)} ms`;
  return null;
}

/** CPU time over the interval: every thread of the process together runs on at most every core of the machine. */
function cpuProblem({ cpu, intervalMs }: LoopSample): string | null {
  const cores = machineCores();
  if ((cpu / 100) * intervalMs > cores * intervalMs + CPU_SLACK_MS) return `sample.cpu: ${Math.round(cpu)} % is more than ${cores} cores`;
  return null;
}

/** The machine's cores, read once (os.cpus() reads /proc and builds an object per core: not for every sample). */
let cores: number | undefined;
function machineCores(): number {
  cores ??= Math.max(availableParallelism(), cpus().length);
  return cores;
}

/** Resident memory fits in the machine's; the heap uses no more than V8 committed for it. */
function memoryProblem({ memory }: LoopSample): string | null {
  if (memory.rss > totalmem()) return 'sample.memory.rss: more than the machine has';
  if (memory.heapUsed > memory.heapTotal) return 'sample.memory.heapUsed: more than heapTotal';
  return null;
}

/**
 * `requests` is a running total: it never falls, and it grows by at least the interval's rate times
 * its length (more when a sample before was dropped), at no more than MAX_PER_SECOND. The requests
 * in flight were counted in it; open connections grow no faster than MAX_PER_SECOND either.
 */
function httpProblem({ http, intervalMs }: LoopSample, { uptimeMs, previous }: SampleContext): string | null {
  const before = previous?.http ?? { requests: 0, connections: 0 };
  const grown = http.requests - before.requests;
  if (grown < 0) return `sample.http.requests: ${http.requests}, fewer than the ${before.requests} it reported before`;
  if (http.requests > (MAX_PER_SECOND * uptimeMs) / 1000) return `sample.http.requests: ${http.requests} in ${Math.round(uptimeMs)} ms`;
  if (http.rps > MAX_PER_SECOND) return `sample.http.rps: ${Math.round(http.rps)} a second`;
  if ((http.rps * intervalMs) / 1000 > grown * (1 + ROUNDING) + ROUNDING) return `sample.http.rps: ${Math.round(http.rps)} a second, but its requests grew by ${grown}`;
  if (http.inflight > http.requests) return 'sample.http.inflight: more than the requests it has had';
  if (http.connections - before.connections > (MAX_PER_SECOND * intervalMs) / 1000) return `sample.http.connections: ${http.connections - before.connections} more in ${Math.round(intervalMs)} ms`;
  return null;
}

/** libuv's counters: at most MAX_PER_SECOND a second, and the events found waiting are some of the events handled. */
function loopProblem({ loop, intervalMs }: LoopSample): string | null {
  if (loop === null) return null;
  if (loop.iterationsPerSec > MAX_PER_SECOND) return `sample.loop.iterationsPerSec: ${Math.round(loop.iterationsPerSec)}`;
  if (loop.eventsPerSec > MAX_PER_SECOND) return `sample.loop.eventsPerSec: ${Math.round(loop.eventsPerSec)}`;
  const events = (loop.eventsPerSec * intervalMs) / 1000;
  if (loop.eventsWaiting > events * (1 + ROUNDING) + ROUNDING) return `sample.loop.eventsWaiting: ${loop.eventsWaiting}, more than the ${Math.round(events)} events of the interval`;
  return null;
}
