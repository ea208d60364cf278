// What the benchmark asks of a load generator, and what it reads back.
import type { Workload } from '../workloads.js';
import type { LowerBound } from './open-loop-tally.js';

export interface LoadRun {
  port: number;
  workload: Workload;
  connections: number;
  /** wrk threads; autocannon always runs on one. */
  threads: number;
  durationS: number;
  /** A request slower than this counts as a timeout (an error); wrk and autocannon leave it out of the latencies. */
  timeoutS: number;
}

export interface LoadResult {
  /** Completed responses, whatever their status. */
  requests: number;
  durationS: number;
  rps: number;
  /**
   * p90 and p99.9 come from the open-loop generator only. Its figures include requests that got no
   * response, at their time so far and at least the timeout; `lowerBounds` names the figures those
   * decide, whose true value is higher (absent when every request was answered).
   */
  latencyMs: { p50: number; p90?: number; p99: number; p999?: number; max: number; lowerBounds?: LowerBound[] };
  errors: { socket: number; non2xx: number; timeouts: number; total: number };
  /** Open-loop runs only: the schedule and whether the generator kept it. */
  open?: OpenLoopFigures;
}

export interface LoadGenerator {
  name: 'wrk' | 'autocannon';
  version: string;
  /** How a new connection per request is made, for the record. */
  connectionPerRequest: string;
  /** Durations this generator can honour (wrk takes whole seconds). */
  roundDuration(seconds: number): number;
  run(run: LoadRun): Promise<LoadResult>;
}

/** One open-loop run: `rate` requests per second, each due at start + i / rate. */
export interface OpenLoopRun {
  port: number;
  workload: Workload;
  rate: number;
  durationS: number;
  /** Unmeasured load at the same rate first, in the same child (at least MIN_WARMUP_S: its JIT). */
  warmupS: number;
  timeoutS: number;
  /** Keep-alive: at most this many connections, all opened before the first request is due. */
  pool: number;
  /** New connection per request: at most this many connections open at once; later requests wait. */
  maxInFlight: number;
  /**
   * Awaited between the warm-up and the measured load, so that the caller's count and CPU snapshots
   * frame the measured load, and not the child's start-up or warm-up.
   */
  onStart?: () => void | Promise<void>;
}

/** What only an open-loop run knows: the schedule, how well it was kept, and the generator's own cost. */
export interface OpenLoopFigures {
  mode: 'new-connection' | 'keep-alive';
  /** Requests per second asked for. */
  targetRps: number;
  /** Requests due in the run (rate x duration), and how many were sent. */
  scheduled: number;
  sent: number;
  /** sent / the time from the first due request to the last send (at least the duration). */
  sendRps: number;
  /** false when the generator itself fell behind: `notHeld` says how. Latencies are then suspect. */
  heldRate: boolean;
  notHeld?: string;
  /** The pacing loop's lateness: when it handled a request minus when the request was due. */
  sendLagMs: { p50: number; p99: number; max: number };
  /** Due time to the request going out, including any wait for a free connection (counted in latency). */
  startDelayMs: { p99: number; max: number };
  /** Requests that had to wait for a free connection, and the longest such queue. */
  queued: number;
  maxQueue: number;
  /** Connections the generator opened. */
  connections: number;
  /**
   * Keep-alive: connections the server ended after a response (`Connection: close`, or HTTP/1.0), each
   * closed and replaced by a new one rather than reused. Absent in results written before it was kept.
   */
  reconnects?: number;
  errors: { connect: number; read: number; write: number; non2xx: number; timeouts: number };
  /** The generator's own CPU over the run (user + system) and its event-loop utilisation. */
  cpuS: number;
  cpuPct: number;
  elu: number;
  /** Its CPU over its whole life, start-up included: the runner subtracts it from its own children's. */
  lifetimeCpuS: number;
  /** The CPU priority it ran at ("nice -10, and its autogroup too"), or why it could not raise it. */
  priority?: string;
}

/** The open-loop generator: a child process per run, spawned by the benchmark. */
export interface OpenLoopGenerator {
  name: 'open-loop';
  version: string;
  run(run: OpenLoopRun): Promise<LoadResult>;
}
