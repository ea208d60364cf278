// The three workloads of issue 5. Request paths are a fixed cycle, so every system sees the same mix.

export type WorkloadId = 'a' | 'b' | 'c';

export interface Workload {
  id: WorkloadId;
  title: string;
  /** false: every request opens a new connection and sends `Connection: close`. */
  keepAlive: boolean;
  /** Paths each load-generator thread or client cycles through, in order. */
  paths: string[];
}

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
};
