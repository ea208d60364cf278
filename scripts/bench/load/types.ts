// What the benchmark asks of a load generator, and what it reads back.
import type { Workload } from '../workloads.js';

export interface LoadRun {
  port: number;
  workload: Workload;
  connections: number;
  /** wrk threads; autocannon always runs on one. */
  threads: number;
  durationS: number;
  /** A request slower than this counts as a timeout (an error), not a latency sample. */
  timeoutS: number;
}

export interface LoadResult {
  /** Completed responses, whatever their status. */
  requests: number;
  durationS: number;
  rps: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: { socket: number; non2xx: number; timeouts: number; total: number };
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
