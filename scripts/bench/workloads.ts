// The workloads: a, b and c of issue 5 (closed loop: wrk keeps N requests in flight), d and e of issue
// 10 (open loop: a fixed arrival rate, for tail latency). Request paths are a fixed cycle, so every
// system sees the same mix.

export type WorkloadId = 'a' | 'b' | 'c' | 'd' | 'e';

export const WORKLOAD_IDS: readonly WorkloadId[] = ['a', 'b', 'c', 'd', 'e'];

export interface Workload {
  id: WorkloadId;
  title: string;
  /** false: every request opens a new connection and sends `Connection: close`. */
  keepAlive: boolean;
  /** Paths each load-generator thread or client cycles through, in order. */
  paths: string[];
  /** Open-loop workloads only: how their rates are set and what the systems run with. */
  open?: OpenLoopSpec;
}

export interface OpenLoopSpec {
  /**
   * The closed-loop workload whose node:cluster rr req/s, measured in the same run, is the capacity
   * the rates are shares of.
   */
  capacityOf: WorkloadId;
  /** Rates to measure at, in % of that capacity. */
  ratesPct: number[];
  /** Worker count every system runs with, whatever --workers says. */
  workers?: number;
  /** Environment for the app's processes. */
  appEnv?: Record<string, string>;
}

/** (e): the one stalling worker blocks its loop this long, this often (scripts/bench/apps/server.cjs). */
export const BLOCK_MS = 200;
export const BLOCK_EVERY_MS = 1000;

/** One request in `MIX_EVERY` burns CPU: 2%. */
export const MIX_EVERY = 50;
export const BURN_MIN_MS = 20;
export const BURN_MAX_MS = 50;

/**
 * The mixed cycle: 49 trivial requests then one `/burn/<ms>`, the burn stepping 20, 21, ... 50 ms
 * over 31 blocks (35 ms on average). The burn sits mid-block so that clients starting together do
 * not all begin with a slow request.
 */
function mixedPaths(): string[] {
  const steps = BURN_MAX_MS - BURN_MIN_MS + 1;
  const paths: string[] = [];
  for (let block = 0; block < steps; block++) {
    for (let slot = 0; slot < MIX_EVERY; slot++) {
      paths.push(slot === MIX_EVERY / 2 ? `/burn/${BURN_MIN_MS + block}` : '/');
    }
  }
  return paths;
}

export const workloads: Record<WorkloadId, Workload> = {
  a: { id: 'a', title: '(a) hello world, keep-alive', keepAlive: true, paths: ['/'] },
  b: { id: 'b', title: '(b) hello world, new connection per request', keepAlive: false, paths: ['/'] },
  c: {
    id: 'c',
    title: '(c) mixed: 2% burn 20-50 ms of CPU, new connection per request',
    keepAlive: false,
    paths: mixedPaths(),
  },
  d: {
    id: 'd',
    title: "(d) open loop: (c)'s mix at a fixed rate, new connection per request",
    keepAlive: false,
    paths: mixedPaths(),
    open: { capacityOf: 'c', ratesPct: [50, 70, 90] },
  },
  e: {
    id: 'e',
    title: `(e) open loop, keep-alive, 2 workers, one blocking its loop ${BLOCK_MS} ms every ${BLOCK_EVERY_MS / 1000} s`,
    keepAlive: true,
    paths: ['/'],
    open: {
      capacityOf: 'a',
      ratesPct: [50],
      workers: 2,
      appEnv: { BENCH_BLOCK_MS: String(BLOCK_MS), BENCH_BLOCK_EVERY_MS: String(BLOCK_EVERY_MS) },
    },
  },
};
