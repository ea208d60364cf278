// A ControlSource without a master: a cluster status the test shapes by hand.
import type { LoopSample } from '../../../src/loop/types.js';
import type { ClusterStatus, ControlSource, WorkerStatus } from '../../../src/master/status.js';
import type { WorkerState } from '../../../src/master/worker-state.js';

/** A sample with plausible values; `over` replaces any of them. */
export function sample(over: Partial<LoopSample> = {}): LoopSample {
  return {
    time: 1_700_000_000_000,
    intervalMs: 1000,
    lag: { mean: 1.2, p50: 1.1, p90: 1.6, p99: 2.5, max: 4.1 },
    elu: 0.12,
    loop: { iterationsPerSec: 950, eventsPerSec: 1200, eventsWaiting: 1 },
    cpu: 14.5,
    memory: { rss: 80 * 1024 * 1024, heapUsed: 20 * 1024 * 1024, heapTotal: 32 * 1024 * 1024, external: 1024 * 1024, arrayBuffers: 65_536 },
    resources: { TCPServerWrap: 1, TCPSocketWrap: 3, Timeout: 2 },
    http: { rps: 310.5, requests: 310, inflight: 2, connections: 14 },
    ...over,
  };
}

/** A worker whose history holds `history` samples ending with `latest`. */
export function worker(id: number, over: Partial<WorkerStatus> = {}, history: LoopSample[] = [sample()]): WorkerStatus {
  return {
    id,
    pid: 40_000 + id,
    state: 'ready' as WorkerState,
    generation: 1,
    startedAt: 1_700_000_000_000 - 65_000,
    uptimeMs: 65_000,
    restarts: 0,
    memoryReplacements: 0,
    sample: history.at(-1) ?? null,
    inherited: null,
    history,
    blockedSites: [],
    blocks: 0,
    blockedMs: 0,
    ...over,
  };
}

export function clusterStatus(name: string, workers: WorkerStatus[]): ClusterStatus {
  const sum = (pick: (worker: WorkerStatus) => number): number => workers.reduce((total, w) => total + pick(w), 0);
  return {
    name,
    masterPid: 39_999,
    startedAt: 1_700_000_000_000 - 70_000,
    uptimeMs: 70_000,
    entry: '/srv/app/server.js',
    balance: 'rr',
    statsIntervalMs: 1000,
    workers,
    totals: {
      workers: workers.length,
      ready: workers.filter((w) => w.state === 'ready' && w.blockedMs === 0).length,
      blocked: workers.filter((w) => w.blockedMs > 0).length,
      desired: workers.length,
      rps: sum((w) => w.sample?.http.rps ?? 0),
      inflight: sum((w) => w.sample?.http.inflight ?? 0),
      connections: sum((w) => w.sample?.http.connections ?? 0),
      rss: sum((w) => w.sample?.memory.rss ?? 0),
      restarts: sum((w) => w.restarts),
      memoryReplacements: sum((w) => w.memoryReplacements),
    },
    addresses: ['127.0.0.1:3000'],
    counts: countsOf(workers),
    waiting: [],
    master: { rss: 41 * 1024 * 1024, heapUsed: 9 * 1024 * 1024, heapTotal: 14 * 1024 * 1024, cpuSeconds: 1.25 },
    stopTerms: { graceMs: 1_000 },
  };
}

/** The counts of each worker id the list holds, as the master keeps them. */
export function countsOf(workers: WorkerStatus[]): ClusterStatus['counts'] {
  const ids = [...new Set(workers.map((w) => w.id))].sort((a, b) => a - b);
  return ids.map((id) => {
    const { restarts, memoryReplacements, blocks } = workers.find((w) => w.id === id)!;
    return { id, restarts, memoryReplacements, blocks };
  });
}

export class FakeSource implements ControlSource {
  current: ClusterStatus;
  readonly listeners = new Set<() => void>();
  /** When set, status() throws it (a master bug, as the service must survive it). */
  failWith: Error | null = null;

  constructor(status: ClusterStatus) {
    this.current = status;
  }

  status(): ClusterStatus {
    if (this.failWith) throw this.failWith;
    return this.current;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the status and tells the listeners, like the master after a sample. */
  update(status: ClusterStatus): void {
    this.current = status;
    for (const listener of [...this.listeners]) listener();
  }
}

/** Two ready workers with one sample each: the shape most tests start from. */
export function twoWorkers(name = 'fake'): ClusterStatus {
  return clusterStatus(name, [worker(1), worker(2, { restarts: 1 }, [sample({ lag: { mean: 40, p50: 3, p90: 120, p99: 210, max: 230 }, elu: 0.93 })])]);
}
